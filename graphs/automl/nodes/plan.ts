import { LlmCancelledError, LlmUnavailableError } from "../../../src/llm/errors.js";
import { leakNotice } from "../data/leakage.js";
import { runnerNameOf, stage, threadIdOf, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** P diverse plans from the knowledge base, steered by revision feedback and earlier failures. */
export function planNode(deps: GraphDeps) {
  return stage<State>(deps, "plan", async (state, config) => {
    const installed = await deps.installedModules(runnerNameOf(config, deps, state));
    try {
      const plans = await deps.agents.manager.plan({
        requirements: state.requirements!,
        profile: state.profile!,
        knowledge: state.knowledge,
        count: deps.config.planning.plans,
        feedback: state.feedback,
        failures: state.failedApproaches,
        installed,
        onPlan: (plan, ready, total) =>
          deps.emit(threadIdOf(config), { type: "progress", stage: "plan", done: ready, total, label: `plan ready: ${plan.title}` }),
      });
      // What the data made of the request comes first on every card, whichever engine planned.
      const leakage = (state.requirements?.leakage ?? []).map(leakNotice);
      const numbered = plans.map((p, i) => ({
        ...p,
        id: `plan-${state.planSerial + i + 1}`,
        notices: [...leakage, ...p.notices],
      }));
      const reading = state.requirements?.reading?.line;
      deps.emit(threadIdOf(config), { type: "plans", plans: numbered, ...(reading ? { reading } : {}) });
      // Substitutions and caveats stay in the conversation's notes even after a re-plan.
      const notices = [...new Set(numbered.flatMap((p) => p.notices))];
      return { plans: numbered, approvedPlan: null, planSerial: state.planSerial + plans.length, notices };
    } catch (err) {
      // An unreachable endpoint and a cancel carry their own message (see stage()).
      if (err instanceof LlmUnavailableError || err instanceof LlmCancelledError) throw err;
      return { status: "failed", error: `I could not make a plan: ${(err as Error).message}` };
    }
  });
}
