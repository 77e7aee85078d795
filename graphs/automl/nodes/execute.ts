import { stage, type GraphDeps } from "../deps.js";
import { runJob } from "../jobs.js";
import type { PlanExecution } from "../agents/types.js";
import type { State } from "../state.js";

const TOP_K = 3;

/**
 * Executes the plans with cheap real evidence: one harness search run cross-validates every plan's
 * candidates on the training split, and the model agent ranks them per plan.
 */
export function executeNode(deps: GraphDeps) {
  return stage<State>(deps, "execute", async (state, config) => {
    const s = deps.config.search;
    // "more time" in a follow-up widens the search: more trials within a longer budget
    const scale = state.searchScale;
    const candidates = state.modelPlans.flatMap((m) => m.candidates);
    const run = await runJob(deps, state, config, {
      kind: "search",
      stage: "execute",
      candidateId: null,
      spec: {
        mode: "search",
        plots: false,
        search: { candidates, n_iter: Math.round(s.trialsPerFamily * scale), budget_s: s.budgetS * scale, cv_folds: s.cvFolds, sample_rows: s.sampleRows },
      },
    });
    if (run.cancelled) return { runs: [run], lastRun: run, status: "cancelled" };
    if (run.failure !== "success" || !run.result)
      return { runs: [run], lastRun: run, status: "failed", error: `Evaluating the plans failed (${run.failure}): ${run.message}` };
    const executions: PlanExecution[] = [];
    for (const modelPlan of state.modelPlans) {
      const ranked = await deps.agents.model.rank({ modelPlan, result: run.result, topK: TOP_K });
      const dataPlan = state.dataPlans.find((d) => d.planId === modelPlan.planId);
      executions.push({ planId: modelPlan.planId, metric: state.requirements!.metric.name, candidates: ranked, dataFindings: dataPlan?.findings ?? [] });
    }
    return { runs: [run], lastRun: run, executions };
  });
}
