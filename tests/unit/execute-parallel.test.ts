import { beforeEach, describe, expect, it, vi } from "vitest";
import type { ModelPlan, PlanExecution, RunRecord } from "../../graphs/automl/agents/types.js";
import type { GraphDeps, ProgressEvent } from "../../graphs/automl/deps.js";
import type { JobRequest } from "../../graphs/automl/jobs.js";
import type { State } from "../../graphs/automl/state.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { makeRequirements } from "../helpers/requirements.js";

// The execute step on a runner whose jobs run side by side: one search job per plan, all at once;
// a plan whose job fails is left out with a notice; only the thread's own cancel cancels the step.
// runJob is replaced (it would start real jobs); the cluster tests run the real thing.

const jobs: JobRequest[] = [];
let outcome: (job: JobRequest) => Partial<RunRecord> = () => ({});
vi.mock("../../graphs/automl/jobs.js", () => ({
  runJob: async (_deps: unknown, _state: unknown, _config: unknown, job: JobRequest): Promise<RunRecord> => {
    jobs.push(job);
    const ids = job.spec.search!.candidates.map((c) => c.id);
    return {
      kind: "search",
      runId: `run-${job.seq}`,
      workspace: "",
      dir: "",
      candidateId: null,
      result: { search: { metric: "accuracy", greater_is_better: true, candidates: ids.map((id) => ({ id, best_params: {}, best_score: 0.9, trials: [] })) } } as never,
      failure: "success",
      message: "",
      cancelled: false,
      durationS: 1,
      claims: {},
      artifacts: null,
      ...outcome(job),
    };
  },
}));
const { executeNode } = await import("../../graphs/automl/nodes/execute.js");

/** The plans that got evidence, from a node's update. */
const planIds = (update: { executions?: unknown }) => (update.executions as PlanExecution[] | undefined)?.map((e) => e.planId);

const modelPlan = (n: number): ModelPlan => ({ planId: `plan-${n}`, candidates: [{ id: `plan-${n}:rf`, estimator: "sklearn.ensemble.RandomForestClassifier", label: "RF" }] }) as unknown as ModelPlan;

function setup(parallel: boolean, aborted = false) {
  const notices: string[] = [];
  const ctl = new AbortController();
  if (aborted) ctl.abort();
  const deps = {
    config: loadConfig({}, {}),
    logger: createLogger("silent"),
    runner: () => ({ name: "cluster", parallelSearches: parallel }),
    emit: (_t: string, e: ProgressEvent) => void (e.type === "notice" && notices.push(e.text)),
    jobSignal: () => ctl.signal,
    agents: { model: { rank: async ({ modelPlan: m }: { modelPlan: ModelPlan }) => m.candidates } },
  } as unknown as GraphDeps;
  const state = { requirements: makeRequirements({ target: "y" }), modelPlans: [modelPlan(1), modelPlan(2), modelPlan(3)], dataPlans: [], searchScale: 1, answers: {}, llm: { calls: 0 } } as unknown as State;
  return { run: () => executeNode(deps)(state, { configurable: { thread_id: "t" } }), notices };
}

describe("the execute step", () => {
  beforeEach(() => {
    jobs.length = 0;
    outcome = () => ({});
  });

  it("sends one search job per plan, at once, where the runner runs jobs side by side", async () => {
    const { run, notices } = setup(true);
    const update = await run();
    expect(jobs.map((j) => [j.seq, j.spec.search!.candidates.map((c) => c.id)])).toEqual([
      [0, ["plan-1:rf"]],
      [1, ["plan-2:rf"]],
      [2, ["plan-3:rf"]],
    ]);
    expect(planIds(update)).toEqual(["plan-1", "plan-2", "plan-3"]);
    expect(update.runs).toHaveLength(3);
    expect(notices).toContain("Evaluating the 3 plans side by side: one search job per plan on cluster.");
  });

  it("keeps one job for every plan elsewhere", async () => {
    const update = await setup(false).run();
    expect(jobs).toHaveLength(1);
    expect(jobs[0].spec.search!.candidates.map((c) => c.id)).toEqual(["plan-1:rf", "plan-2:rf", "plan-3:rf"]);
    expect(update.executions).toHaveLength(3);
  });

  it("leaves out a plan whose job failed or was cancelled on the cluster, and fails only when none worked", async () => {
    outcome = (j) => (j.seq === 1 ? { failure: "runtime_error", message: "node failure", result: null } : j.seq === 2 ? { cancelled: true, failure: "runtime_error", message: "cancelled" } : {});
    const update = await setup(true).run();
    expect(update.status).toBeUndefined();
    expect(planIds(update)).toEqual(["plan-1"]);
    expect(update.notices).toEqual(["Plan plan-2 could not be evaluated (runtime_error): node failure", "Plan plan-3 could not be evaluated (runtime_error): cancelled"]);

    outcome = () => ({ failure: "environment_error", message: "Slurm refused the job", result: null });
    const none = await setup(true).run();
    expect(none.status).toBe("failed");
    expect(none.error).toMatch(/Evaluating the plans failed \(environment_error\): Slurm refused the job/);
  });

  it("is cancelled when the thread cancelled", async () => {
    outcome = () => ({ cancelled: true, failure: "runtime_error", message: "cancelled", result: null });
    expect((await setup(true, true).run()).status).toBe("cancelled");
  });
});
