import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** The data agent and the model agent each break the approved plan(s) into their own steps. */
export function decomposeNode(deps: GraphDeps) {
  return stage<State>(deps, "decompose", async (state) => {
    const req = state.requirements!;
    const profile = state.profile!;
    const plans = state.plans.filter((p) => state.approvedPlan === "best" || p.id === state.approvedPlan);
    const dataPlans = await deps.agents.data.decompose({ plans, requirements: req, profile });
    const modelPlans = await deps.agents.model.decompose({ plans, dataPlans, requirements: req, profile });
    return { dataPlans, modelPlans };
  });
}
