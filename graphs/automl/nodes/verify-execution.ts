import { recipesFor } from "../knowledge/index.js";
import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** Checks each plan's evidence against the requirements; re-plans when none is usable or all miss the target. */
export function verifyExecutionNode(deps: GraphDeps) {
  return stage<State>(deps, "verify_execution", async (state) => {
    const verdicts = await deps.agents.manager.verifyExecution({ requirements: state.requirements!, executions: state.executions, modelPlans: state.modelPlans });
    const replans = state.budgets.replan ?? 0;
    // Plans sent to execution, those whose own search job failed included (one job per plan on a cluster).
    const executed = state.plans.filter((p) => state.executions.some((e) => e.planId === p.id) || state.modelPlans.some((m) => m.planId === p.id));
    const tried = new Set([...state.failedApproaches, ...executed.map((p) => p.approach)]);
    const untried = (recipesFor(state.requirements!.task)?.approaches ?? []).filter((a) => !tried.has(a));
    const canReplan = replans < deps.config.budgets.replan && untried.length > 0;
    const usable = verdicts.some((v) => v.ok);
    const anyMeets = verdicts.some((v) => v.meetsTarget !== false);
    if (!usable) {
      if (!canReplan)
        return { verdicts, status: "failed", error: `No plan could be evaluated: ${verdicts.flatMap((v) => v.reasons).join("; ")}` };
      return { verdicts, route: "plan", budgets: { replan: 1 }, failedApproaches: executed.map((p) => p.approach), notices: ["No plan could be evaluated; re-planning with other model families."] };
    }
    if (!anyMeets && canReplan && state.approvedPlan === "best") {
      return {
        verdicts,
        route: "plan",
        budgets: { replan: 1 },
        failedApproaches: executed.map((p) => p.approach),
        notices: ["No plan reached the requested metric in cross-validation; re-planning with other model families."],
      };
    }
    return { verdicts, route: "select" };
  });
}
