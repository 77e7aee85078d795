import { runnerNameOf, stage, threadIdOf, type GraphDeps } from "../deps.js";
import { runJob } from "../jobs.js";
import type { ModelPlan, PlanExecution, RunRecord } from "../agents/types.js";
import type { State } from "../state.js";

const TOP_K = 3;

/**
 * Executes the plans with cheap real evidence: a harness search run cross-validates the plans'
 * candidates on the training split, and the model agent ranks them per plan. On a runner whose jobs
 * run side by side (a cluster), each plan gets its own search job and all run at once; elsewhere one
 * job evaluates every plan. Candidates are seeded one by one, so the split changes no trial.
 */
export function executeNode(deps: GraphDeps) {
  return stage<State>(deps, "execute", async (state, config) => {
    const s = deps.config.search;
    // "more time" in a follow-up widens the search: more trials within a longer budget
    const scale = state.searchScale;
    const runner = deps.runner(runnerNameOf(config, deps, state));
    const perPlan = runner.parallelSearches === true && state.modelPlans.length > 1;
    const groups: ModelPlan[][] = perPlan ? state.modelPlans.map((m) => [m]) : [state.modelPlans];
    if (perPlan)
      deps.emit(threadIdOf(config), { type: "notice", text: `Evaluating the ${groups.length} plans side by side: one search job per plan on ${runner.name}.` });
    const runs = await Promise.all(
      groups.map((plans, seq) =>
        runJob(deps, state, config, {
          kind: "search",
          stage: "execute",
          candidateId: null,
          seq,
          spec: {
            mode: "search",
            plots: false,
            search: {
              candidates: plans.flatMap((m) => m.candidates),
              n_iter: Math.round(s.trialsPerFamily * scale),
              budget_s: s.budgetS * scale,
              cv_folds: s.cvFolds,
              sample_rows: s.sampleRows,
            },
          },
        }),
      ),
    );
    // Only the thread's own cancel cancels the step; a job cancelled on the cluster (an administrator, a preemption) is that plan's failure.
    const cancelled = runs.find((r) => r.cancelled);
    if (cancelled && (!perPlan || deps.jobSignal(threadIdOf(config)).aborted)) return { runs, lastRun: cancelled, status: "cancelled" };
    const usable = (r: RunRecord) => r.failure === "success" && r.result !== null && !r.cancelled;
    const failed = runs.filter((r) => !usable(r));
    if (failed.length === runs.length) {
      const run = failed[0];
      return { runs, lastRun: run, status: "failed", error: `Evaluating the plans failed (${run.failure}): ${run.message}` };
    }
    const executions: PlanExecution[] = [];
    const notices: string[] = [];
    for (const [i, plans] of groups.entries()) {
      const run = runs[i];
      for (const modelPlan of plans) {
        if (!usable(run)) {
          notices.push(`Plan ${modelPlan.planId} could not be evaluated (${run.failure}): ${run.message}`);
          continue;
        }
        const ranked = await deps.agents.model.rank({ modelPlan, result: run.result!, topK: TOP_K });
        const dataPlan = state.dataPlans.find((d) => d.planId === modelPlan.planId);
        executions.push({ planId: modelPlan.planId, metric: state.requirements!.metric.name, candidates: ranked, dataFindings: dataPlan?.findings ?? [] });
      }
    }
    return { runs, lastRun: runs.find(usable)!, executions, ...(notices.length ? { notices } : {}) };
  });
}
