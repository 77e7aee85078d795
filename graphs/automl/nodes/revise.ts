import type { FailureClass } from "../../../runners/contract.js";
import { FALLBACK_NOTE, OfflineOperationAgent } from "../agents/offline/operation.js";
import type { Implementation, RankedCandidate } from "../agents/types.js";
import { stage, threadIdOf, type GraphDeps } from "../deps.js";
import type { State, Update } from "../state.js";

const FIXABLE: FailureClass[] = ["syntax_error", "runtime_error", "value_error", "environment_error", "solution_stuck", "constraint_unmet", "hallucination", "design_mismatch"];
// Generated code that failed any of these may do better as the template: a model that predicts one class
// or reads the target is as often the code's doing as the data's.
const TEMPLATE_HELPS: FailureClass[] = [...FIXABLE, "degenerate", "data_leakage"];

// Lighter models first when a time, latency or size limit was missed.
const SPEED_RANK: Array<[RegExp, number]> = [
  [/Logistic|Ridge|Linear/, 0],
  [/HistGradient|KMeans|Birch/, 1],
  [/GaussianMixture|MLP/, 2],
];
const speed = (c: RankedCandidate) => SPEED_RANK.find(([re]) => re.test(c.estimator))?.[1] ?? 3;

const offlineOperation = new OfflineOperationAgent();
/** Already the offline template (or a fix of it), so there is nothing further to fall back to. */
const isTemplate = (impl: Implementation) => impl.adjustments.some((a) => a.startsWith(FALLBACK_NOTE));

/**
 * The revision loop, with a budget per remedy: first a fix of the same candidate (the operation agent,
 * never repeating a fix in memory), then the next-best evaluated alternative, and finally the best
 * model found so far, or a clear failure.
 */
export function reviseNode(deps: GraphDeps) {
  return stage<State>(deps, "revise", async (state, config): Promise<Update> => {
    const threadId = threadIdOf(config);
    const run = state.lastRun!;
    const failure = state.verdict?.failure ?? run.failure;
    const message = state.verdict ? state.verdict.reasons.join("; ") : run.message;
    const budgets = deps.config.budgets;
    const say = (text: string) => deps.emit(threadId, { type: "notice", text });

    if (FIXABLE.includes(failure) && (state.budgets.fix ?? 0) < budgets.fix) {
      const fixed = await deps.agents.operation.fix({
        instructions: state.instructions!,
        requirements: state.requirements!,
        previous: state.implementation!,
        failure,
        message,
        memory: state.fixMemory,
      });
      if (fixed) {
        const summary = fixed.adjustments[fixed.adjustments.length - 1] ?? fixed.description;
        const notice = `${run.kind === "smoke" ? "Smoke run" : "Run"} failed (${failure}: ${message}); ${summary}.`;
        say(notice);
        return { implementation: fixed, fixMemory: [summary], budgets: { fix: 1 }, route: "smoke", notices: [notice] };
      }
    }

    // Generated code that keeps failing gives way to the offline template of the same candidate before
    // anything else: the template is the last resort whenever one exists (docs/llm.md §3).
    const impl = state.implementation!;
    if (deps.agents.engine === "llm" && TEMPLATE_HELPS.includes(failure) && !isTemplate(impl)) {
      const template = await offlineOperation.implement({ instructions: state.instructions!, requirements: state.requirements! });
      const note = `${FALLBACK_NOTE} after the generated code failed (${failure})`;
      const notice = `${impl.description} did not pass (${failure}: ${message}); using ThreadML's own template for ${state.instructions!.candidate.label} instead.`;
      say(notice);
      return {
        implementation: { ...template, description: `${template.description} (offline template)`, adjustments: [...impl.adjustments, note] },
        route: "smoke",
        notices: [notice],
      };
    }

    const alternatives = [...state.instructions!.alternatives];
    if (alternatives.length && (state.budgets.alternatives ?? 0) < budgets.alternatives) {
      const complexity = state.verdict?.checks.some((c) => c.met === false && !(c.name in run.result!.metrics)) ?? false;
      if (complexity || failure === "solution_stuck") alternatives.sort((a, b) => speed(a) - speed(b));
      const [next, ...rest] = alternatives;
      const notice = `${state.implementation!.description} did not pass (${failure}: ${message}); trying ${next.label} next.`;
      say(notice);
      return {
        instructions: { ...state.instructions!, candidate: next, alternatives: rest, notes: [notice] },
        budgets: { alternatives: 1 },
        route: "implement",
        notices: [notice],
      };
    }

    if (state.best) {
      const notice = `${state.implementation!.description} did not pass (${failure}: ${message}). Revision budgets are spent; deploying the best model found (${state.best.description}), which does not meet every constraint.`;
      say(notice);
      return { route: "deploy", notices: [notice] };
    }
    return { status: "failed", error: `Training failed (${failure}): ${message}`, route: "finish" };
  });
}
