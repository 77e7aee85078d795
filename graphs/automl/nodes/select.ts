import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** Chooses the candidate to build and writes the operation agent's instructions. */
export function selectNode(deps: GraphDeps) {
  return stage<State>(deps, "select", async (state) => {
    const instructions = await deps.agents.manager.select({
      requirements: state.requirements!,
      plans: state.plans,
      executions: state.executions,
      verdicts: state.verdicts,
      dataPlans: state.dataPlans,
      chosenPlanId: state.approvedPlan ?? "best",
    });
    return { instructions, notices: instructions.notes };
  });
}
