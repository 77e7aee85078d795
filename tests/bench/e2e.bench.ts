// End-to-end benchmark: wall time from the request to a deployed model, the share of it spent
// outside Python, and test-split quality against two plain scikit-learn baselines.
// Run with `npm run bench` (`--runs N` or BENCH_RUNS=N; default 3). `--suite realworld`
// (`npm run bench:realworld`) runs the tasks shaped like real uploads instead (a European CSV, an
// Excel workbook, a rare class, a date, a leaked column), without the in-process timing. Progress goes
// to stderr; the Markdown result goes to stdout and to tests/bench/last-run.md (last-run-realworld.md).

import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { loadConfig } from "../../src/config.js";
import { Engine, type Outcome } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { LocalRunner } from "../../runners/local/index.js";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { applyHoldout } from "../../graphs/automl/holdout.js";
import type { ModelServer, RunOptions, Runner, Workspace, WorkspaceInput } from "../../runners/types.js";
import { BIN, ROOT, runCli } from "../helpers/cli.js";
import { cliCodePath, commandSeconds, machineLine, median, runsFromArgs } from "./common.js";
import { writeClassificationCsv, writeClusteringCsv, writeRegressionCsv } from "../helpers/datasets.js";
import { customerRows, writeDatedCsv, writeEuropeanCsv, writeExcelWorkbook, writeImbalancedCsv, writeLeakyCsv, writeRowsCsv } from "../helpers/realworld.js";

// ----------------------------------------------------------------------------- tasks

interface BenchTask {
  id: string;
  file: string;
  rows: number;
  text: string;
  /** Writes the task's file; `baseline`, when the task has `baselineFile`, the same rows as a plain CSV. */
  write(path: string, baseline: string): void;
  /** What the baselines read when the upload is not a plain CSV: the rows as a careful reader makes them. */
  baselineFile?: string;
  /** The spec the baselines use if the ThreadML run did not get as far as its requirements. */
  fallback: { task: "classification" | "regression" | "clustering"; target: string | null; metric: string; labels_column: string | null; n_clusters: number | null };
  baselines: Array<{ name: string; code: string }>;
}

/** A solution file for the harness: `build(ctx)` returns an unfitted pipeline. */
function solution(imports: string, pre: string, model: string): string {
  return `${imports}\nfrom sklearn.pipeline import Pipeline\n\n\ndef build(ctx):\n    return Pipeline([("pre", ${pre}), ("model", ${model})])\n`;
}

const TASKS: BenchTask[] = [
  {
    id: "classification",
    file: "banana.csv",
    rows: 2000,
    text: "Build a model that predicts Quality in banana.csv, accuracy at least 0.9",
    write: (p) => writeClassificationCsv(p, { rows: 2000, seed: 101 }),
    fallback: { task: "classification", target: "Quality", metric: "accuracy", labels_column: null, n_clusters: null },
    baselines: [
      {
        name: "HistGradientBoosting (default)",
        code: solution("from sklearn.ensemble import HistGradientBoostingClassifier", 'ctx.preprocessor(encode="ordinal")', "HistGradientBoostingClassifier(random_state=ctx.seed)"),
      },
      {
        name: "LogisticRegression (scaled)",
        code: solution("from sklearn.linear_model import LogisticRegression", 'ctx.preprocessor(scale=True, encode="onehot")', "LogisticRegression(max_iter=2000)"),
      },
    ],
  },
  {
    id: "regression",
    file: "crabs.csv",
    rows: 3000,
    text: "Predict Age in crabs.csv; the evaluation metric is RMSE",
    write: (p) => writeRegressionCsv(p, { rows: 3000, seed: 102 }),
    fallback: { task: "regression", target: "Age", metric: "rmse", labels_column: null, n_clusters: null },
    baselines: [
      {
        name: "HistGradientBoosting (default)",
        code: solution("from sklearn.ensemble import HistGradientBoostingRegressor", 'ctx.preprocessor(encode="ordinal")', "HistGradientBoostingRegressor(random_state=ctx.seed)"),
      },
      {
        name: "Ridge (scaled)",
        code: solution("from sklearn.linear_model import Ridge", 'ctx.preprocessor(scale=True, encode="onehot")', "Ridge()"),
      },
    ],
  },
  {
    id: "clustering",
    file: "blobs.csv",
    rows: 5000,
    text: "Group blobs.csv into 4 clusters and check them against the group labels",
    write: (p) => writeClusteringCsv(p, { rows: 5000, seed: 103, clusters: 4 }),
    fallback: { task: "clustering", target: null, metric: "rand_index", labels_column: "group", n_clusters: 4 },
    baselines: [
      {
        name: "KMeans (n_init=10)",
        code: solution("from sklearn.cluster import KMeans", "ctx.preprocessor()", "KMeans(n_clusters=ctx.n_clusters, n_init=10, random_state=ctx.seed)"),
      },
      {
        name: "GaussianMixture (scaled)",
        code: solution("from sklearn.mixture import GaussianMixture", "ctx.preprocessor(scale=True)", "GaussianMixture(n_components=ctx.n_clusters, random_state=ctx.seed)"),
      },
    ],
  },
];

const hgb = (kind: "Classifier" | "Regressor") => ({
  name: "HistGradientBoosting (default)",
  code: solution(`from sklearn.ensemble import HistGradientBoosting${kind}`, 'ctx.preprocessor(encode="ordinal")', `HistGradientBoosting${kind}(random_state=ctx.seed)`),
});
const logistic = { name: "LogisticRegression (scaled)", code: solution("from sklearn.linear_model import LogisticRegression", 'ctx.preprocessor(scale=True, encode="onehot")', "LogisticRegression(max_iter=2000)") };
const ridge = { name: "Ridge (scaled)", code: solution("from sklearn.linear_model import Ridge", 'ctx.preprocessor(scale=True, encode="onehot")', "Ridge()") };
const regression = (target: string, metric = "rmse") => ({ task: "regression" as const, target, metric, labels_column: null, n_clusters: null });
const classification = (target: string, metric = "accuracy") => ({ task: "classification" as const, target, metric, labels_column: null, n_clusters: null });

/** Data as people upload it; the baselines read the same rows from a plain CSV, through the same harness. */
const REALWORLD: BenchTask[] = [
  {
    id: "european-csv",
    file: "wohnungen.csv",
    baselineFile: "wohnungen-plain.csv",
    rows: 2000,
    text: "Predict Preis in wohnungen.csv; the metric is RMSE",
    write: (p, b) => writeEuropeanCsv(p, { rows: 2000, seed: 201, canonical: b }),
    fallback: regression("Preis"),
    baselines: [hgb("Regressor"), ridge],
  },
  {
    id: "excel",
    file: "customers.xlsx",
    baselineFile: "customers-plain.csv",
    rows: 1500,
    text: "Which customers will churn? Predict Churn in customers.xlsx",
    write: (p, b) => {
      const { header, rows } = customerRows({ rows: 1500, seed: 202 });
      writeExcelWorkbook(p, [{ name: "Customers", header, rows, dateColumns: ["SignupDate"] }]);
      writeRowsCsv(b, header, rows);
    },
    fallback: classification("Churn"),
    baselines: [hgb("Classifier"), logistic],
  },
  {
    id: "imbalance",
    file: "transactions.csv",
    rows: 5000,
    text: "Predict is_fraud in transactions.csv; F1 at least 0.5",
    write: (p) => writeImbalancedCsv(p, { rows: 5000, seed: 203 }),
    fallback: classification("is_fraud", "f1"),
    baselines: [hgb("Classifier"), logistic],
  },
  {
    id: "dates",
    file: "rentals.csv",
    baselineFile: "rentals-plain.csv",
    rows: 1100,
    text: "Predict the daily rentals in rentals.csv; RMSE",
    write: (p, b) => writeDatedCsv(p, { days: 1100, seed: 204, canonical: b }),
    fallback: regression("rentals"),
    baselines: [hgb("Regressor"), ridge],
  },
  {
    id: "leakage",
    file: "loans.csv",
    rows: 2000,
    text: "Predict approved in loans.csv",
    write: (p) => writeLeakyCsv(p, { rows: 2000, seed: 205 }),
    fallback: classification("approved"),
    baselines: [hgb("Classifier"), logistic],
  },
];

const SUITES: Record<string, { tasks: BenchTask[]; inProcess: boolean; out: string }> = {
  default: { tasks: TASKS, inProcess: true, out: "tests/bench/last-run.md" },
  realworld: { tasks: REALWORLD, inProcess: false, out: "tests/bench/last-run-realworld.md" },
};

const LOWER_IS_BETTER = new Set(["rmse", "rmsle", "mae"]);
const LIMITS = { wallTimeS: 300, cpuS: 600, memoryMb: 4096 };

// ----------------------------------------------------------------------------- small helpers

// The 1-minute load average on every line: on a shared 2-core machine it tells a slow run from a disturbed one.
const log = (msg: string) => process.stderr.write(`[bench] ${msg} (load ${os.loadavg()[0].toFixed(2)})\n`);
const now = () => performance.now();
const secs = (ms: number) => ms / 1000;

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const f3 = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : x.toFixed(3));

/** A new user's folder: an empty directory holding only the data file. */
function freshDir(root: string, task: BenchTask): string {
  const dir = mkdtempSync(join(root, `${task.id}-`));
  copyFileSync(join(root, task.file), join(dir, task.file));
  return dir;
}

// ----------------------------------------------------------------------------- 1. the CLI as a user runs it

interface CliSample {
  seconds: number;
  status: string;
  metricName: string;
  metric: number | null;
  requirements: Record<string, unknown> | null;
  timings: Record<string, number>;
  /** What ThreadML said about the data and model: its notices, and the columns it left out. */
  notes: string[];
  error?: string;
}

async function runCliOnce(root: string, task: BenchTask): Promise<CliSample> {
  const dir = freshDir(root, task);
  const started = now();
  const { result } = await runCli(["--yes", "--data", task.file, task.text], {
    cwd: dir,
    env: { THREADML_DATA_DIR: join(dir, ".threadml"), LOG_LEVEL: "warn" },
    timeoutMs: 600_000,
  });
  const seconds = secs(now() - started);
  const requirements = (result.requirements ?? null) as Record<string, unknown> | null;
  const metricName = (requirements?.metric as { name?: string } | undefined)?.name ?? task.fallback.metric;
  const dropped = (requirements?.drop_columns as string[] | undefined) ?? [];
  const notes = [...(dropped.length ? [`left out: ${dropped.join(", ")}`] : []), ...result.notices];
  return { seconds, status: result.status, metricName, metric: result.metrics[metricName] ?? null, requirements, timings: result.timings, notes, error: result.error };
}

// ----------------------------------------------------------------------------- 2. in process, Python time measured

/** Busy time of possibly overlapping calls: the union of their intervals, so overlap is not counted twice. */
class Busy {
  ms = 0;
  private active = 0;
  private since = 0;

  async time<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active++ === 0) this.since = now();
    try {
      return await fn();
    } finally {
      if (--this.active === 0) this.ms += now() - this.since;
    }
  }
}

/**
 * A Runner that times every call that waits on Python: the interpreter and sandbox probes (check,
 * modules), harness runs (run) and the model server's start (serve). The module probe waits on the
 * interpreter check, so the calls can overlap; `all` is their union.
 */
class TimedRunner implements Runner {
  readonly name: string;
  readonly all = new Busy();
  readonly probes = new Busy();
  readonly harness = new Busy();
  readonly serveStart = new Busy();
  harnessRuns = 0;
  /** From serve() resolving to stop() returning: the endpoint check, reported apart for information. */
  endpointMs = 0;

  constructor(private readonly inner: LocalRunner) {
    this.name = inner.name;
  }

  private timed<T>(bucket: Busy, fn: () => Promise<T>): Promise<T> {
    return this.all.time(() => bucket.time(fn));
  }

  check() {
    return this.timed(this.probes, () => this.inner.check());
  }

  modules(names: string[]) {
    return this.timed(this.probes, () => this.inner.modules(names));
  }

  prepare(input: WorkspaceInput) {
    return this.inner.prepare(input); // copying files is Node's work
  }

  run(ws: Workspace, options: RunOptions) {
    this.harnessRuns++;
    return this.timed(this.harness, () => this.inner.run(ws, options));
  }

  async serve(ws: Workspace, options?: { signal?: AbortSignal }): Promise<ModelServer> {
    const server = await this.timed(this.serveStart, () => this.inner.serve(ws, options));
    const up = now();
    return {
      ...server,
      stop: async () => {
        await server.stop();
        this.endpointMs += now() - up;
      },
    };
  }

  close() {
    return this.inner.close();
  }
}

interface InProcessSample {
  totalS: number;
  pythonS: number;
  probesS: number;
  harnessS: number;
  harnessRuns: number;
  serveS: number;
  endpointS: number;
  status: string;
}

async function runInProcessOnce(root: string, task: BenchTask): Promise<InProcessSample> {
  const dir = freshDir(root, task);
  const config = loadConfig({ ...process.env, THREADML_DATA_DIR: join(dir, ".threadml"), LOG_LEVEL: "silent" });
  const runner = new TimedRunner(
    new LocalRunner({ dataDir: resolve(dir, config.dataDir), python: config.python, sandbox: config.sandbox, serveHost: config.serveHost }),
  );
  const started = now();
  const engine = new Engine({ config, logger: createLogger("silent"), cwd: dir, runners: { local: runner } });
  // Drive the conversation like the headless CLI with --yes: approve the plan card, stop at a question.
  const opts = { serve: false, runner: "local" };
  const threadId = `bench:${task.id}:${Date.now()}`;
  let outcome: Outcome;
  try {
    outcome = await engine.advance(threadId, { text: task.text, files: [task.file], requester: "cli" }, opts);
    while (outcome.kind === "interrupt" && outcome.payload.kind === "approval") {
      outcome = await engine.advance(threadId, { kind: "approve", planId: "best" }, opts);
    }
  } finally {
    await engine.close();
  }
  const totalS = secs(now() - started);
  const status = outcome.kind === "interrupt" ? "needs_input" : (outcome.state.report?.status ?? outcome.state.status);
  return {
    totalS,
    pythonS: secs(runner.all.ms),
    probesS: secs(runner.probes.ms),
    harnessS: secs(runner.harness.ms),
    harnessRuns: runner.harnessRuns,
    serveS: secs(runner.serveStart.ms),
    endpointS: secs(runner.endpointMs),
    status,
  };
}

// ----------------------------------------------------------------------------- 3. baselines through the same harness

/** The harness spec of the ThreadML run (same target, metric, seed, default split), plots off. */
function baselineSpec(task: BenchTask, sample: CliSample | undefined, seed: number): HarnessSpecInput {
  const r = sample?.requirements as
    | { task: BenchTask["fallback"]["task"]; target: string | null; metric: { name: string }; labels_column: string | null; n_clusters: number | null; drop_columns: string[]; positive_class: string | null }
    | null
    | undefined;
  const base = r
    ? { task: r.task, target: r.target, metric: r.metric.name, labels_column: r.labels_column, n_clusters: r.n_clusters, drop_columns: r.drop_columns, positive_class: r.positive_class }
    : task.fallback;
  return { mode: "train", data: `data/${task.baselineFile ?? task.file}`, seed, plots: false, ...base };
}

async function runBaseline(runner: LocalRunner, root: string, task: BenchTask, spec: HarnessSpecInput, b: { name: string; code: string }, n: number): Promise<number | null> {
  // The same host-made test split as ThreadML's runs, and the same scorer.
  const { mode: _m, ...rest } = spec;
  const file = task.baselineFile ?? task.file;
  const inputs = { files: [{ source: join(root, file), dest: `data/${file}` }], spec: rest };
  const held = await applyHoldout(inputs, { file: join(root, file), seed: spec.seed ?? 42, dir: join(root, "holdout"), full: true });
  const ws = await runner.prepare({ runId: `baseline-${task.id}-${n}`, files: inputs.files, texts: { "solution.py": b.code } });
  let outcome = await runner.run(ws, { spec: { ...inputs.spec, mode: "train" }, limits: LIMITS });
  const predictions = outcome.artifacts?.predictions;
  if (held && predictions) {
    const sw = await runner.prepare({ runId: `baseline-${task.id}-${n}-score`, files: [{ source: held.truth, dest: `data/${file}` }, { source: predictions, dest: "predictions.json" }], texts: {} });
    outcome = await runner.run(sw, { spec: { ...rest, mode: "score", score: { predictions: "predictions.json" } }, limits: LIMITS });
  }
  const value = outcome.result?.metrics[spec.metric] ?? null;
  if (value === null) log(`  baseline ${b.name} failed: ${outcome.result?.error?.message ?? outcome.stderrTail.slice(-300)}`);
  return value;
}

// ----------------------------------------------------------------------------- report

interface TaskResult {
  task: BenchTask;
  cli: CliSample[];
  inProcess: InProcessSample[];
  baselines: Array<{ name: string; value: number | null }>;
}

function isAtLeast(metric: string, a: number, b: number): boolean {
  const eps = 1e-9;
  return LOWER_IS_BETTER.has(metric) ? a <= b + eps : a >= b - eps;
}

function wallTable(results: TaskResult[]): string[] {
  const lines = [
    "| task | rows | runs | min s | median s | max s | ≤ 20 s | status per run | metric per run |",
    "|---|---:|---:|---:|---:|---:|:---:|---|---|",
  ];
  for (const { task, cli } of results) {
    const t = cli.map((s) => s.seconds);
    const metric = `${cli[0]?.metricName ?? task.fallback.metric} ${cli.map((s) => f3(s.metric)).join(" / ")}`;
    lines.push(
      `| ${task.id} | ${task.rows} | ${cli.length} | ${f1(Math.min(...t))} | ${f1(median(t))} | ${f1(Math.max(...t))} | ${median(t) <= 20 ? "yes" : "**no**"} | ${cli.map((s) => s.status).join(", ")} | ${metric} |`,
    );
  }
  return lines;
}

function stageTable(results: TaskResult[]): string[] {
  const stages = ["ingest", "verify_request", "plan", "execute", "smoke", "train", "deploy"];
  const lines = [
    `| task | ${stages.join(" | ")} | other | total |`,
    `|---|${stages.map(() => "---:").join("|")}|---:|---:|`,
  ];
  for (const { task, cli } of results) {
    const med = (key: string) => median(cli.map((s) => s.timings[key] ?? 0));
    const total = med("total");
    const named = stages.map(med);
    const other = median(cli.map((s) => (s.timings.total ?? 0) - stages.reduce((sum, k) => sum + (s.timings[k] ?? 0), 0)));
    lines.push(`| ${task.id} | ${named.map(f1).join(" | ")} | ${f1(other)} | ${f1(total)} |`);
  }
  return lines;
}

function outsideTable(results: TaskResult[], startupS: number): string[] {
  const lines = [
    "| task | in-process total | Python (runner calls) | = probes | + harness runs | + server start | outside Python, in process | + CLI start-up | outside Python | ≤ 1 s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const { task, inProcess } of results) {
    const m = (f: (s: InProcessSample) => number) => median(inProcess.map(f));
    const inside = m((s) => s.totalS - s.pythonS);
    const outside = inside + startupS;
    const harness = `${f1(m((s) => s.harnessS))} (${m((s) => s.harnessRuns)} runs)`;
    lines.push(
      `| ${task.id} | ${f1(m((s) => s.totalS))} | ${f1(m((s) => s.pythonS))} | ${f1(m((s) => s.probesS))} | ${harness} | ${f1(m((s) => s.serveS))} | ${f2(inside)} | ${f2(startupS)} | ${f2(outside)} | ${outside <= 1 ? "yes" : "**no**"} |`,
    );
  }
  return lines;
}

function qualityTable(results: TaskResult[]): string[] {
  const lines = [
    "| task | metric | ThreadML (median of runs) | baseline A | baseline B | ≥ better baseline |",
    "|---|---|---:|---|---|:---:|",
  ];
  for (const { task, cli, baselines } of results) {
    const metric = cli[0]?.metricName ?? task.fallback.metric;
    const ours = cli.map((s) => s.metric).filter((v): v is number => v !== null);
    const values = baselines.map((b) => b.value).filter((v): v is number => v !== null);
    const best = values.length ? (LOWER_IS_BETTER.has(metric) ? Math.min(...values) : Math.max(...values)) : null;
    const ok = ours.length && best !== null ? isAtLeast(metric, median(ours), best) : null;
    const every = ours.length && best !== null ? ours.filter((v) => isAtLeast(metric, v, best)).length : 0;
    const verdict = ok === null ? "n/a" : `${ok ? "yes" : "**no**"} (${every} of ${cli.length} runs)`;
    const cell = (b: { name: string; value: number | null }) => `${b.name}: ${f3(b.value)}`;
    const [lo, hi] = [Math.min(...ours), Math.max(...ours)];
    const range = f3(lo) === f3(hi) ? "" : ` (${f3(lo)}–${f3(hi)})`;
    lines.push(`| ${task.id} | ${metric} ${LOWER_IS_BETTER.has(metric) ? "↓" : "↑"} | ${ours.length ? f3(median(ours)) : "n/a"}${range} | ${cell(baselines[0])} | ${cell(baselines[1])} | ${verdict} |`);
  }
  return lines;
}

function markdown(results: TaskResult[], startupS: number, runs: number, machine: string): string {
  return [
    `## Results (${runs} run${runs === 1 ? "" : "s"} per task)`,
    "",
    machine,
    "",
    "### 1. Mention → deployed (headless CLI, wall time per run)",
    "",
    ...wallTable(results),
    "",
    "Median seconds per stage, from the CLI's own `timings` (execute = cross-validated search of every plan; smoke and train = harness runs; deploy = server start and endpoint check):",
    "",
    ...stageTable(results),
    "",
    "### 2. Time outside Python (in process, seconds, medians)",
    "",
    ...outsideTable(results, startupS),
    "",
    `CLI start-up is \`threadml --help\`, median of 5. The endpoint check (a prediction request to the started server, then its stop) took ${f2(median(results.flatMap((r) => r.inProcess.map((s) => s.endpointS))))} s and is counted outside Python here, although it mostly waits on the Python server.`,
    "",
    "### 3. Test-split quality against baselines (same harness, data, seed and split)",
    "",
    ...qualityTable(results),
    "",
  ].join("\n");
}

// ----------------------------------------------------------------------------- main

async function benchTask(root: string, task: BenchTask, runs: number, baselineRunner: LocalRunner, seed: number, withInProcess: boolean): Promise<TaskResult> {
  const cli: CliSample[] = [];
  for (let i = 1; i <= runs; i++) {
    const s = await runCliOnce(root, task);
    log(`${task.id} CLI run ${i}/${runs}: ${f1(s.seconds)} s, ${s.status}, ${s.metricName} ${f3(s.metric)}${s.error ? ` (${s.error})` : ""}`);
    cli.push(s);
  }
  const inProcess: InProcessSample[] = [];
  for (let i = 1; withInProcess && i <= runs; i++) {
    const s = await runInProcessOnce(root, task);
    log(`${task.id} in-process run ${i}/${runs}: ${f1(s.totalS)} s total, ${f1(s.pythonS)} s in Python (${f1(s.harnessS)} s harness), ${s.status}`);
    inProcess.push(s);
  }
  const spec = baselineSpec(task, cli.find((s) => s.requirements), seed);
  const baselines: TaskResult["baselines"] = [];
  for (const [n, b] of task.baselines.entries()) {
    const value = await runBaseline(baselineRunner, root, task, spec, b, n);
    log(`${task.id} baseline ${b.name}: ${spec.metric} ${f3(value)}`);
    baselines.push({ name: b.name, value });
  }
  return { task, cli, inProcess, baselines };
}

function suiteFromArgs(): string {
  const i = process.argv.indexOf("--suite");
  const name = i >= 0 ? process.argv[i + 1] : "default";
  if (!SUITES[name]) throw new Error(`--suite must be one of ${Object.keys(SUITES).join(", ")}, not ${name}`);
  return name;
}

/** Realworld suite: what ThreadML noticed (left-out columns, thresholds, dates), from the first run. */
function notesTable(results: TaskResult[]): string[] {
  const lines = ["| task | status | what ThreadML said (first run) |", "|---|---|---|"];
  const cell = (t: string) => t.replace(/\|/g, "\\|").replace(/\s+/g, " ");
  for (const { task, cli } of results) lines.push(`| ${task.id} | ${cli[0]?.status ?? "n/a"} | ${cell((cli[0]?.notes ?? []).join(" · ")).slice(0, 900)} |`);
  return lines;
}

/** `--only a,b`: just those task ids of the suite. */
function onlyFromArgs(tasks: BenchTask[]): BenchTask[] {
  const i = process.argv.indexOf("--only");
  if (i < 0) return tasks;
  const ids = (process.argv[i + 1] ?? "").split(",");
  const unknown = ids.filter((id) => !tasks.some((t) => t.id === id));
  if (unknown.length) throw new Error(`--only names unknown task(s) ${unknown.join(", ")}; known: ${tasks.map((t) => t.id).join(", ")}`);
  return tasks.filter((t) => ids.includes(t.id));
}

async function main(): Promise<void> {
  const runs = runsFromArgs();
  const chosen = SUITES[suiteFromArgs()];
  const suite = { ...chosen, tasks: onlyFromArgs(chosen.tasks) };
  const loadStart = os.loadavg();
  const codePath = cliCodePath();
  const root = mkdtempSync(join(os.tmpdir(), "threadml-bench-"));
  const baselineRunner = new LocalRunner({ dataDir: join(root, "baselines") });
  // The baselines must use ThreadML's seed so that the harness makes the same split.
  const seed = loadConfig({ ...process.env, LOG_LEVEL: "silent" }).seed;
  try {
    for (const task of suite.tasks) task.write(join(root, task.file), join(root, task.baselineFile ?? `${task.id}-unused.csv`));
    log(`data in ${root}; ${runs} run(s) per task; CLI runs ${codePath}`);
    if (!codePath.startsWith("compiled")) log("start-up is slower through tsx than for an installed package; run `npm run build` first to measure that");
    // only the default suite's report has the time outside Python, which counts the CLI's start-up
    const startupS = suite.inProcess ? commandSeconds(process.execPath, [BIN, "--help"]) : 0;
    if (suite.inProcess) log(`CLI start-up: ${f2(startupS)} s`);
    const results: TaskResult[] = [];
    for (const task of suite.tasks) results.push(await benchTask(root, task, runs, baselineRunner, seed, suite.inProcess));
    const machine = machineLine(loadStart, codePath);
    const md = suite.inProcess
      ? markdown(results, startupS, runs, machine)
      : [
          `## Real-world-shaped tasks (${runs} run${runs === 1 ? "" : "s"} per task)`,
          "",
          machine,
          "",
          "### Mention → deployed (headless CLI, wall time per run)",
          "",
          ...wallTable(results),
          "",
          "### Test-split quality against baselines (same harness, rows, seed and split; the baselines read a plain CSV of the same rows)",
          "",
          ...qualityTable(results),
          "",
          "### What ThreadML said",
          "",
          ...notesTable(results),
          "",
        ].join("\n");
    writeFileSync(join(ROOT, suite.out), md);
    process.stdout.write(md);
  } finally {
    await baselineRunner.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
