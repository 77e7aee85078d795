import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** The data agent and the model agent each break the approved plan(s) into their own steps. */
export function decomposeNode(deps: GraphDeps) {
  return stage<State>(deps, "decompose", async (state) => {
    const req = state.requirements!;
    const profile = state.profile!;
    const approved = state.plans.filter((p) => state.approvedPlan === "best" || p.id === state.approvedPlan);
    // A plan id that no longer names a card (a stale choice after a re-plan) means the best of them.
    const plans = approved.length ? approved : state.plans;
    if (plans.length === 0) return { status: "failed", error: "There is no plan left to run; send the request again, or change it." };
    const dataPlans = await deps.agents.data.decompose({ plans, requirements: req, profile });
    const modelPlans = await deps.agents.model.decompose({ plans, dataPlans, requirements: req, profile });
    // Evaluation needs something to evaluate; an empty search is a clear stop, not a validation dump.
    if (!modelPlans.some((m) => m.candidates.length > 0))
      return { status: "failed", error: `None of the plans names a model ThreadML can train for ${req.task.replace(/_/g, " ")}; send the request again, or change it.` };
    return { dataPlans, modelPlans };
  });
}
