import { runnerNameOf, stage, threadIdOf, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** P diverse plans from the knowledge base, steered by revision feedback and earlier failures. */
export function planNode(deps: GraphDeps) {
  return stage<State>(deps, "plan", async (state, config) => {
    const installed = await deps.installedModules(runnerNameOf(config, deps));
    try {
      const plans = await deps.agents.manager.plan({
        requirements: state.requirements!,
        profile: state.profile!,
        knowledge: state.knowledge,
        count: deps.config.planning.plans,
        feedback: state.feedback,
        failures: state.failedApproaches,
        installed,
      });
      deps.emit(threadIdOf(config), { type: "plans", plans });
      return { plans, approvedPlan: null };
    } catch (err) {
      return { status: "failed", error: `I could not make a plan: ${(err as Error).message}` };
    }
  });
}
