import path from "node:path";
import type { LangGraphRunnableConfig } from "@langchain/langgraph";
import type { FailureClass, HarnessEvent, HarnessResult, HarnessSpecInput } from "../../runners/contract.js";
import type { HostArtifacts } from "../../runners/intake.js";
import type { RunRecord } from "./agents/types.js";
import type { Limits, RunOutcome, Runner, Workspace } from "../../runners/types.js";
import { harnessInputs, type HarnessInputs } from "./harness-inputs.js";
import { applyHoldout, type HoldoutFiles } from "./holdout.js";
import { runnerNameOf, threadIdOf, type GraphDeps, type Stage } from "./deps.js";
import { classifyOutcome } from "./failures.js";
import type { State } from "./state.js";

export interface JobRequest {
  kind: RunRecord["kind"];
  stage: Stage;
  candidateId: string | null;
  spec: Omit<HarnessSpecInput, "data" | "task" | "target" | "metric">;
  code?: string;
  /** Position among jobs a node starts at once (their run ids must differ). */
  seq?: number;
}

/** Metric lines the generated code printed itself (the harness sends its prints to stderr). */
export function printedClaims(stderr: string): Record<string, number> {
  const claims: Record<string, number> = {};
  for (const line of stderr.split("\n")) {
    const m = line.match(/"event"\s*:\s*"metric".*"name"\s*:\s*"([a-z_0-9]+)".*"value"\s*:\s*(-?[\d.eE+-]+)/);
    if (m && Number.isFinite(Number(m[2]))) claims[m[1]] = Number(m[2]);
  }
  return claims;
}

/** The runner itself could not run the job (no usable Python, no sandbox, a full disk): say so plainly. */
function runnerFailure(job: JobRequest, id: string, err: unknown, workspace = "", dir = ""): RunRecord {
  const message = (err as Error).message ?? String(err);
  return {
    kind: job.kind,
    runId: id,
    workspace,
    dir,
    candidateId: job.candidateId,
    result: null,
    // The runner itself failing (no interpreter, no sandbox, an unreachable or untrusted host) is no code bug to fix.
    failure: /not usable|python|module|sandbox|bubblewrap|connection to|cannot reach|host key|refused the login|could not be started/i.test(message) ? "environment_error" : "runtime_error",
    message,
    cancelled: false,
    durationS: 0,
    claims: {},
    artifacts: null,
  };
}

/**
 * A run id that is readable, safe as a folder name and deterministic: a node that runs again after a restart
 * asks for the same id, so the runner can re-attach to the job (or return its result) instead of starting twice.
 */
function runId(threadId: string, runKey: string, kind: string, n: number): string {
  const safe = threadId.replace(/[^A-Za-z0-9._-]+/g, "_").slice(-60);
  return `${safe}-${runKey || Date.now().toString(36)}-${kind}-${n}`;
}

/**
 * For plain tables: the held-out test split made on the host. Every run gets only the training rows in
 * place of the table; a full run also gets the test rows' features (no labels) to predict.
 */
async function withHoldout(deps: GraphDeps, state: State, inputs: HarnessInputs, full: boolean): Promise<HoldoutFiles | null> {
  const profile = state.profile!;
  return applyHoldout(inputs, { file: profile.file, seed: deps.config.seed, dir: path.resolve(deps.cwd, deps.config.dataDir, "holdout"), full });
}

interface Scored {
  failure: FailureClass | null;
  message: string;
  result: HarnessResult | null;
  artifacts: HostArtifacts | null;
}

interface Scorer {
  /** Hands the train run's predictions (host copy) to the scorer and waits for the test metrics. */
  score(outcome: RunOutcome): Promise<Scored>;
  /** The train run failed: stop the scorer. */
  abandon(): Promise<void>;
}

/**
 * The scorer of a full run: a harness process that loads no generated code, gets the held-out labels
 * and the saved model's predictions, and computes the test metrics and plots. Where the runner can put
 * a file into a running job's workspace it starts beside the training run, loads its libraries while
 * the model trains and waits for the predictions; elsewhere it runs after the training run.
 */
function startScorer(runner: Runner, o: { id: string; held: HoldoutFiles; inputs: HarnessInputs; limits: Limits; signal: AbortSignal; logger: GraphDeps["logger"] }): Scorer {
  const ctl = new AbortController();
  const signal = AbortSignal.any([o.signal, ctl.signal]);
  const runId = `${o.id}-score`;
  const { holdout: _h, ...base } = o.inputs.spec;
  // It may wait for the whole training run: twice the wall time, so the training run's limit comes first.
  const limits = { ...o.limits, wallTimeS: o.limits.wallTimeS * 2 };
  const spec = { ...base, mode: "score" as const, score: { predictions: "predictions.json", wait_s: limits.wallTimeS }, plots: true };
  const truth = { source: o.held.truth, dest: o.inputs.spec.data };
  const launch = (ws: Workspace) => runner.run(ws, { spec, limits, signal }).catch((err: unknown) => err as Error);
  const early = runner.put
    ? runner.prepare({ runId, files: [truth], texts: {} }).then(
        (ws) => ({ ws, done: launch(ws) }),
        (err: unknown) => err as Error,
      )
    : null;

  const judge = (outcome: RunOutcome | Error, ws: Workspace): Scored => {
    if (outcome instanceof Error) return { failure: "environment_error", message: `The scorer could not run: ${outcome.message}`, result: null, artifacts: null };
    const classified = classifyOutcome(outcome, limits.wallTimeS);
    if (classified.failure !== "success" || !outcome.result)
      return { failure: classified.failure === "cancelled" ? "runtime_error" : classified.failure, message: classified.message, result: null, artifacts: null };
    o.logger.info({ run: ws.runId, metrics: outcome.result.metrics }, "held-out rows scored");
    return { failure: null, message: "", result: outcome.result, artifacts: outcome.artifacts ?? null };
  };
  const abandon = async () => {
    ctl.abort();
    const started = await early;
    if (started && !(started instanceof Error)) await started.done;
  };
  return {
    abandon,
    async score(outcome) {
      const predictions = outcome.artifacts?.predictions;
      if (!predictions) {
        await abandon();
        return { failure: "runtime_error", message: "The training run wrote no predictions for the held-out test rows (out/predictions.json).", result: null, artifacts: null };
      }
      const started = await early;
      if (started && !(started instanceof Error)) {
        const put = await runner.put!(started.ws, "predictions.json", predictions).catch((err: unknown) => err as Error);
        if (!(put instanceof Error)) return judge(await started.done, started.ws);
        await abandon();
      }
      // No early scorer (or it could not be reached): prepare it with both files and run it now.
      const ws = await runner.prepare({ runId: early ? `${runId}-again` : runId, files: [truth, { source: predictions, dest: "predictions.json" }], texts: {} }).catch((err: unknown) => err as Error);
      if (ws instanceof Error) return judge(ws, { runId, dir: "", localDir: "" });
      return judge(await runner.run(ws, { spec, limits, signal: o.signal }).catch((err: unknown) => err as Error), ws);
    },
  };
}

/** Runs the harness for this conversation on its runner and turns the outcome into a RunRecord. */
export async function runJob(deps: GraphDeps, state: State, config: LangGraphRunnableConfig, job: JobRequest): Promise<RunRecord> {
  const threadId = threadIdOf(config);
  const req = state.requirements!;
  const runner = deps.runner(runnerNameOf(config, deps, state));
  const id = runId(threadId, state.runKey, job.kind, state.runs.length + 1 + (job.seq ?? 0));
  let ws;
  let inputs;
  let held: HoldoutFiles | null = null;
  try {
    // the strategy of the model being built (forecasts); a search gives each candidate its own
    const strategy = job.kind === "search" ? undefined : state.instructions?.candidate.strategy;
    inputs = harnessInputs(state.profile!, req, deps.config.seed, strategy);
    held = await withHoldout(deps, state, inputs, job.kind === "full");
    ws = await runner.prepare({ runId: id, files: inputs.files, texts: job.code ? { "solution.py": job.code } : {} });
  } catch (err) {
    return runnerFailure(job, id, err);
  }
  const claims: Record<string, number> = {};
  const onEvent = (event: HarnessEvent) => {
    if (event.event === "metric" && event.split === "claimed") claims[event.name] = event.value;
    if (event.event === "progress" && event.total) deps.emit(threadId, { type: "progress", stage: job.stage, done: event.done ?? 0, total: event.total, label: event.stage });
    else if (event.event === "metric" && event.split !== "claimed") deps.emit(threadId, { type: "metric", name: event.name, value: event.value, split: event.split });
    else if (event.event === "log" && event.level !== "info") deps.logger.debug({ threadId, run: ws.runId }, event.message);
  };
  const limits = { wallTimeS: deps.config.limits.wallTimeS, cpuS: deps.config.limits.cpuS, memoryMb: deps.config.limits.memoryMb, pids: deps.config.limits.pids, diskMb: deps.config.limits.diskMb };
  const scorer = held && job.kind === "full" ? startScorer(runner, { id, held, inputs: inputs!, limits, signal: deps.jobSignal(threadId), logger: deps.logger }) : null;
  const outcome = await runner
    .run(ws, {
    spec: { ...job.spec, ...inputs.spec },
    limits,
    signal: deps.jobSignal(threadId),
    onEvent,
    onNotice: (text) => deps.emit(threadId, { type: "notice", text }),
  })
    .catch((err: unknown) => err as Error);
  if (outcome instanceof Error) {
    await scorer?.abandon();
    return runnerFailure(job, ws.runId, outcome, ws.localDir, ws.dir);
  }
  let classified = classifyOutcome(outcome, limits.wallTimeS);
  // The test metrics come from the scorer, which alone sees the held-out labels.
  if (scorer && (classified.failure !== "success" || !outcome.result)) await scorer.abandon();
  else if (scorer && outcome.result) {
    const scored = await scorer.score(outcome);
    if (scored.failure) classified = { failure: scored.failure, message: scored.message };
    else {
      outcome.result = { ...outcome.result, metrics: scored.result!.metrics, plots: scored.result!.plots, rows: outcome.result.rows && { ...outcome.result.rows, test: scored.result!.rows?.test ?? 0 } };
      outcome.artifacts = outcome.artifacts && { ...outcome.artifacts, plots: scored.artifacts?.plots ?? [] };
      for (const [name, value] of Object.entries(scored.result!.metrics)) deps.emit(threadId, { type: "metric", name, value, split: "test" });
    }
  }
  deps.logger.info({ threadId, run: ws.runId, kind: job.kind, failure: classified.failure, seconds: outcome.durationS }, "run finished");
  return {
    kind: job.kind,
    runId: ws.runId,
    workspace: ws.localDir,
    dir: ws.dir,
    candidateId: job.candidateId,
    result: outcome.result,
    failure: classified.failure === "cancelled" ? "runtime_error" : classified.failure,
    message: classified.message,
    cancelled: classified.failure === "cancelled",
    durationS: outcome.durationS,
    claims: { ...printedClaims(outcome.stderrTail), ...claims },
    artifacts: outcome.artifacts ?? null,
  };
}
