import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkConstraints } from "../../graphs/automl/constraints.js";
import { HarnessEvent, HarnessResult, HarnessSpec, type HarnessSpecInput } from "../../runners/contract.js";
import { writeClassificationCsv, writeClusteringCsv, writeRegressionCsv } from "../helpers/datasets.js";

// End-to-end tests of the fixed harness and the model server: real Python, real scikit-learn, no sandbox.

const PYTHON = process.env.THREADML_PYTHON || "/usr/bin/python3";
const PY_DIR = fileURLToPath(new URL("../../runners/python/", import.meta.url));
const EXAMPLE = readFileSync(path.join(PY_DIR, "solution_example.py"), "utf8");
const HARNESS_STAGES = ["load", "split", "build", "fit", "evaluate", "save", "plots"];

const workspaces: string[] = [];
afterAll(() => {
  for (const dir of workspaces) rmSync(dir, { recursive: true, force: true });
});

type DataKind = "classification" | "regression" | "clustering" | { csv: string };

/** A fresh workspace: the harness files, a CSV named data.csv and a solution.py. */
function makeWorkspace(data: DataKind, solution: string = EXAMPLE, rows?: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "threadml-harness-"));
  workspaces.push(dir);
  for (const f of readdirSync(PY_DIR)) if (f.endsWith(".py")) copyFileSync(path.join(PY_DIR, f), path.join(dir, f));
  const csv = path.join(dir, "data.csv");
  if (data === "classification") writeClassificationCsv(csv, { rows });
  else if (data === "regression") writeRegressionCsv(csv, { rows });
  else if (data === "clustering") writeClusteringCsv(csv, { rows });
  else writeFileSync(csv, data.csv);
  writeFileSync(path.join(dir, "solution.py"), solution);
  return dir;
}

interface HarnessRun {
  code: number | null;
  events: HarnessEvent[];
  lines: string[];
  stderr: string;
  result: HarnessResult;
}

function runProcess(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // one BLAS/OpenMP thread per process: tests run side by side on few cores
    const child = spawn(cmd, args, { cwd, env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Writes spec.json (through the contract's defaults) and runs the harness; every stdout line must be an event. */
async function runHarness(dir: string, spec: HarnessSpecInput, python = PYTHON): Promise<HarnessRun> {
  writeFileSync(path.join(dir, "spec.json"), JSON.stringify(HarnessSpec.parse(spec)));
  const { code, stdout, stderr } = await runProcess(python, ["harness.py", "--spec", "spec.json"], dir);
  const lines = stdout.split("\n").filter((l) => l.trim());
  const events = lines.map((l) => HarnessEvent.parse(JSON.parse(l)));
  const result = HarnessResult.parse(JSON.parse(readFileSync(path.join(dir, "out", "result.json"), "utf8")));
  return { code, events, lines, stderr, result };
}

function eventsOf<K extends HarnessEvent["event"]>(run: HarnessRun, kind: K): Extract<HarnessEvent, { event: K }>[] {
  return run.events.filter((e): e is Extract<HarnessEvent, { event: K }> => e.event === kind);
}

function isPng(file: string): boolean {
  return readFileSync(file).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

function expectError(run: HarnessRun, cls: string): string {
  expect(run.code).toBe(1);
  expect(run.result.status).toBe("error");
  expect(run.result.error?.class).toBe(cls);
  const errorEvents = eventsOf(run, "error");
  expect(errorEvents).toHaveLength(1);
  expect(errorEvents[0].class).toBe(cls);
  expect(run.events.at(-1)).toEqual({ event: "done", status: "error" });
  return run.result.error!.message;
}

const classificationSpec: HarnessSpecInput = {
  mode: "train",
  task: "classification",
  data: "data.csv",
  target: "Quality",
  metric: "accuracy",
};

// Independent runs go side by side (each is a separate Python process); the classification suite
// stays sequential because its server tests share one process.
describe.concurrent("harness", () => {
  describe("harness --check", () => {
    it("describes the interpreter and its modules", async () => {
      const dir = makeWorkspace({ csv: "a\n" });
      const { code, stdout } = await runProcess(PYTHON, ["harness.py", "--check"], dir);
      expect(code).toBe(0);
      const info = JSON.parse(stdout.trim());
      expect(info.python).toMatch(/python/);
      expect(info.version).toMatch(/^3\./);
      expect(typeof info.modules.sklearn).toBe("string");
      expect(typeof info.modules.pandas).toBe("string");
      expect(typeof info.modules.numpy).toBe("string");
      expect(Object.keys(info.modules)).toContain("matplotlib");
    });
  });

  describe.sequential("train: classification", () => {
    let dir: string;
    let run: HarnessRun;
    beforeAll(async () => {
      dir = makeWorkspace("classification");
      run = await runHarness(dir, classificationSpec);
    });

    it("succeeds and reports its stages in order", () => {
      expect(run.code, run.stderr).toBe(0);
      expect(run.result.status).toBe("ok");
      const stages = eventsOf(run, "progress").filter((e) => e.total === HARNESS_STAGES.length);
      expect(stages.map((e) => e.stage)).toEqual(HARNESS_STAGES);
      expect(stages.map((e) => e.done)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(run.events.at(-1)).toEqual({ event: "done", status: "ok" });
    });

    it("computes plausible test and valid metrics", () => {
      const m = run.result.metrics;
      expect(m.accuracy).toBeGreaterThan(0.85);
      for (const name of ["f1", "precision", "recall", "roc_auc"]) {
        expect(m[name]).toBeGreaterThan(0.5);
        expect(m[name]).toBeLessThanOrEqual(1);
      }
      expect(run.result.valid_metrics.accuracy).toBeGreaterThan(0.8);
      const metricEvents = eventsOf(run, "metric");
      expect(metricEvents.some((e) => e.split === "test" && e.name === "accuracy" && e.value === m.accuracy)).toBe(true);
      expect(metricEvents.some((e) => e.split === "valid" && e.name === "accuracy")).toBe(true);
      // the example solution claims its validation accuracy through ctx.report
      expect(metricEvents.some((e) => e.split === "claimed" && e.name === "accuracy")).toBe(true);
    });

    it("records rows, features, classes and complexity", () => {
      const r = run.result;
      expect(r.rows).not.toBeNull();
      expect(r.rows!.train + r.rows!.valid + r.rows!.test).toBe(1000);
      expect(r.rows!.test).toBe(150);
      expect(r.features).toEqual({
        numeric: ["Size", "Weight", "Sweetness", "Softness", "HarvestTime", "Ripeness", "Acidity"],
        categorical: [],
        text: [],
        dates: [],
      });
      expect(r.classes).toEqual(["Bad", "Good"]);
      for (const k of ["train_time_s", "test_predict_s", "latency_ms_per_row", "batch_latency_ms_per_row", "model_size_mb", "load_s", "total_s"]) {
        expect(r.complexity[k], k).toBeGreaterThan(0);
      }
    });

    it("saves the model, its metadata and a confusion matrix", () => {
      expect(run.result.model_path).toBe("out/model.pkl");
      expect(existsSync(path.join(dir, "out", "model.pkl"))).toBe(true);
      const meta = JSON.parse(readFileSync(path.join(dir, "out", "model_meta.json"), "utf8"));
      expect(meta).toMatchObject({ task: "classification", target: "Quality", classes: ["Bad", "Good"], solution: "solution.py" });
      expect(meta.features).toHaveLength(7);
      expect(run.result.plots).toEqual(["out/plots/confusion_matrix.png"]);
      expect(isPng(path.join(dir, run.result.plots[0]))).toBe(true);
    });

    it("keeps sample rows with the harness's predictions", () => {
      const sample = run.result.sample!;
      expect(sample.rows).toHaveLength(3);
      expect(sample.predictions).toHaveLength(3);
      expect(Object.keys(sample.rows[0]).sort()).toEqual([...run.result.features!.numeric].sort());
      for (const p of sample.predictions) expect(["Bad", "Good"]).toContain(p);
    });

    describe("serve.py", () => {
      let server: ChildProcess;
      let base: string;
      let exited: Promise<number | null>;

      beforeAll(async () => {
        server = spawn(PYTHON, ["serve.py", "--port", "0"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
        exited = new Promise((resolve) => server.on("exit", (code) => resolve(code)));
        let stderr = "";
        server.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        const first = await new Promise<string>((resolve, reject) => {
          let buf = "";
          const timer = setTimeout(() => reject(new Error(`serve.py did not listen: ${stderr}`)), 30_000);
          server.stdout!.setEncoding("utf8").on("data", (d: string) => {
            buf += d;
            const nl = buf.indexOf("\n");
            if (nl >= 0) {
              clearTimeout(timer);
              resolve(buf.slice(0, nl));
            }
          });
          server.on("exit", (code) => reject(new Error(`serve.py exited (${code}): ${stderr}`)));
        });
        const event = HarnessEvent.parse(JSON.parse(first));
        if (event.event !== "listening") throw new Error(`unexpected first line: ${first}`);
        expect(event.port).toBeGreaterThan(0);
        base = `http://${event.host}:${event.port}`;
      });

      afterAll(async () => {
        if (server.exitCode === null) {
          server.kill("SIGKILL");
          await exited;
        }
      });

      const json = async (res: Response) => (await res.json()) as Record<string, any>;
      const post = (body: string) => fetch(`${base}/predict`, { method: "POST", body, headers: { "Content-Type": "application/json" } });

      it("answers /health", async () => {
        const res = await fetch(`${base}/health`);
        expect(res.status).toBe(200);
        const body = await json(res);
        expect(body).toMatchObject({ status: "ok", task: "classification", target: "Quality" });
        expect(body.features).toEqual(JSON.parse(readFileSync(path.join(dir, "out", "model_meta.json"), "utf8")).features);
      });

      it("predicts what the harness predicted for the sample rows", async () => {
        const sample = run.result.sample!;
        const res = await post(JSON.stringify({ rows: sample.rows }));
        expect(res.status).toBe(200);
        expect((await json(res)).predictions).toEqual(sample.predictions);
        // the single-row and bare-list forms, with an extra column that is ignored
        const one = await post(JSON.stringify({ row: { ...sample.rows[0], Extra: "x" } }));
        expect((await json(one)).predictions).toEqual([sample.predictions[0]]);
        const list = await post(JSON.stringify(sample.rows.slice(0, 2)));
        expect((await json(list)).predictions).toEqual(sample.predictions.slice(0, 2));
      });

      it("rejects bad input with clear 4xx answers and keeps serving", async () => {
        const bad = await post("{not json");
        expect(bad.status).toBe(400);
        expect((await json(bad)).error).toMatch(/invalid JSON/);

        const { Weight: _w, Acidity: _a, ...partial } = run.result.sample!.rows[0];
        const missing = await post(JSON.stringify({ rows: [partial] }));
        expect(missing.status).toBe(400);
        const msg = (await json(missing)).error as string;
        expect(msg).toContain("Weight");
        expect(msg).toContain("Acidity");
        expect(msg).not.toContain("Size");

        const notRows = await post(JSON.stringify({ rows: [1, 2] }));
        expect(notRows.status).toBe(400);
        const notFound = await fetch(`${base}/nope`);
        expect(notFound.status).toBe(404);
        const big = await post("x".repeat(11 * 1024 * 1024));
        expect(big.status).toBe(413);

        const health = await fetch(`${base}/health`);
        expect(health.status).toBe(200);
      });

      it("shuts down cleanly on SIGTERM", async () => {
        server.kill("SIGTERM");
        expect(await exited).toBe(0);
      });
    });
  });

  describe("train: regression and clustering", () => {
    it("trains a regressor with a categorical column and missing values", async () => {
      const dir = makeWorkspace("regression");
      const csv = readFileSync(path.join(dir, "data.csv"), "utf8");
      expect(csv).toMatch(/,,/); // the generator leaves some Height cells empty
      const run = await runHarness(dir, { mode: "train", task: "regression", data: "data.csv", target: "Age", metric: "rmse" });
      expect(run.code, run.stderr).toBe(0);
      const r = run.result;
      expect(r.features!.categorical).toEqual(["Sex"]);
      expect(r.features!.numeric).toContain("Height");
      expect(r.metrics.r2).toBeGreaterThan(0.6);
      expect(r.metrics.rmse).toBeGreaterThan(0);
      expect(r.metrics.mae).toBeLessThanOrEqual(r.metrics.rmse);
      expect(r.metrics.rmsle).toBeGreaterThan(0);
      expect(r.valid_metrics.rmse).toBeGreaterThan(0);
      expect(r.classes).toBeNull();
      expect(r.plots).toEqual(["out/plots/residuals.png"]);
      expect(isPng(path.join(dir, r.plots[0]))).toBe(true);
      expect(r.sample!.predictions.every((p) => typeof p === "number")).toBe(true);
    });

    it("reports mape and smape for a regression run and checks a mape constraint", async () => {
      const dir = makeWorkspace("regression", EXAMPLE, 400);
      const run = await runHarness(dir, { mode: "train", task: "regression", data: "data.csv", target: "Age", metric: "mape", plots: false });
      expect(run.code, run.stderr).toBe(0);
      const r = run.result;
      for (const split of [r.metrics, r.valid_metrics]) {
        expect(Object.keys(split)).toEqual(expect.arrayContaining(["rmse", "mae", "r2", "rmsle", "mape", "smape"]));
        expect(split.mape).toBeGreaterThan(0);
        expect(split.mape).toBeLessThan(1); // a fraction: Age is 1..30 and r2 is high
        expect(split.smape).toBeGreaterThan(0);
        expect(split.smape).toBeLessThan(1);
      }
      expect(eventsOf(run, "metric").some((e) => e.name === "mape" && e.split === "test")).toBe(true);
      expect(r.warnings.some((w) => /primary metric/.test(w))).toBe(false);
      const checks = checkConstraints(
        [
          { name: "mape", op: "<=", target: 0.9, phrase: "MAPE under 90%" },
          { name: "mape", op: "<", target: 0.0001 },
          { name: "smape", op: "<=", target: 0.9 },
        ],
        r,
      );
      expect(checks.map((c) => c.actual)).toEqual([r.metrics.mape, r.metrics.mape, r.metrics.smape]);
      expect(checks.map((c) => c.met)).toEqual([true, false, true]);
    });

    it("scores mape over non-zero actuals and leaves it out when every actual is zero", async () => {
      const scoreSpec = (dir: string, actual: number[], pred: number[]): Promise<HarnessRun> => {
        writeFileSync(path.join(dir, "data.csv"), ["x,y", ...actual.map((a, i) => `${i},${a}`)].join("\n") + "\n");
        writeFileSync(path.join(dir, "predictions.json"), JSON.stringify({ predictions: pred }));
        return runHarness(dir, {
          mode: "score",
          task: "regression",
          data: "data.csv",
          target: "y",
          metric: "mape",
          plots: false,
          score: { predictions: "predictions.json" },
        });
      };
      const some = await scoreSpec(makeWorkspace({ csv: "x\n" }), [1, 2, 0, 4], [1.1, 1.8, 0.5, 4]);
      expect(some.code, some.stderr).toBe(0);
      expect(some.result.metrics.mape).toBeCloseTo((0.1 / 1 + 0.2 / 2 + 0 / 4) / 3, 10);
      expect(some.result.metrics.smape).toBeCloseTo((0.2 / 2.1 + 0.4 / 3.8 + 2 + 0) / 4, 10);

      const zeros = await scoreSpec(makeWorkspace({ csv: "x\n" }), [0, 0, 0], [0, 1, 2]);
      expect(zeros.code, zeros.stderr).toBe(0);
      expect(zeros.result.metrics).not.toHaveProperty("mape");
      expect(zeros.result.metrics.smape).toBeCloseTo((0 + 2 + 2) / 3, 10);
      expect(zeros.result.metrics.rmse).toBeGreaterThan(0);
      expect(checkConstraints([{ name: "mape", op: "<=", target: 0.1 }], zeros.result)[0]).toMatchObject({ actual: null, met: null });
    });

    it("defines mape and smape for tables as forecasts define them", () => {
      const dir = makeWorkspace({ csv: "x\n" });
      const script = [
        "import json, numpy as np, harness as H, variant_timeseries as T",
        "rng = np.random.default_rng(0)",
        "out = []",
        "for a in (rng.normal(5, 3, 50), np.r_[0.0, 0.0, rng.normal(0, 1, 20)], np.zeros(6), np.r_[0.0, -2.0, 3.0]):",
        "    p = a + rng.normal(0, 1, len(a))",
        "    if len(a) == 3: p = np.r_[0.0, 1.0, -3.0]",
        "    r, f = H.regression_metrics(a, p), T.forecast_metrics(a, p)",
        "    out.append({k: [r.get(k), f.get(k)] for k in ('mape', 'smape')})",
        "print(json.dumps(out))",
      ].join("\n");
      const res = spawnSync(PYTHON, ["-c", script], { cwd: dir, encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
      expect(res.status, res.stderr).toBe(0);
      const cases = JSON.parse(res.stdout) as Record<string, [number | null, number | null]>[];
      for (const c of cases) for (const [table, forecast] of Object.values(c)) expect(table).toBe(forecast);
      expect(cases[2].mape).toEqual([null, null]); // every actual zero: left out by both
      expect(cases[3].smape[0]).toBeCloseTo((0 + 2 * 3 / 3 + 2 * 6 / 6) / 3, 12);
    });

    it("clusters and scores against the labels column", async () => {
      const dir = makeWorkspace("clustering");
      const run = await runHarness(dir, {
        mode: "train",
        task: "clustering",
        data: "data.csv",
        target: null,
        labels_column: "group",
        n_clusters: 3,
        metric: "adjusted_rand_index",
      });
      expect(run.code, run.stderr).toBe(0);
      const r = run.result;
      expect(r.features!.numeric).toEqual(["f1", "f2", "f3", "f4", "f5"]);
      expect(r.features!.categorical).toEqual([]);
      expect(r.metrics.rand_index).toBeGreaterThan(0.9);
      expect(r.metrics.adjusted_rand_index).toBeGreaterThan(0.8);
      expect(r.metrics.nmi).toBeGreaterThan(0.8);
      expect(r.metrics.silhouette).toBeGreaterThan(0.3);
      expect(r.plots).toEqual(["out/plots/clusters.png"]);
      expect(isPng(path.join(dir, r.plots[0]))).toBe(true);
      expect(Object.keys(r.sample!.rows[0])).not.toContain("group");
    });

    it("holds the number of clusters asked for against code that left the model at its default", async () => {
      const oneComponent = [
        "from sklearn.mixture import GaussianMixture",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.decomposition import PCA",
        "def build(ctx):",
        "    return make_pipeline(ctx.preprocessor(scale=True), PCA(n_components=2), GaussianMixture(random_state=0))",
        "",
      ].join("\n");
      const dir = makeWorkspace("clustering", oneComponent);
      const run = await runHarness(dir, { mode: "train", task: "clustering", data: "data.csv", target: null, labels_column: "group", n_clusters: 3, metric: "adjusted_rand_index", plots: false });
      expect(run.code, run.stderr).toBe(0);
      expect(run.result.warnings.join("\n")).toMatch(/GaussianMixture with n_components=1; set to the 3 clusters asked for/);
      // The PCA step's n_components is not the cluster count and stays.
      expect(run.result.warnings.join("\n")).not.toMatch(/PCA/);
      expect(run.result.metrics.adjusted_rand_index).toBeGreaterThan(0.8);
    });

    it("sets the cluster count on the estimator's own key only, and drops a distance threshold that contradicts it", () => {
      const dir = makeWorkspace({ csv: "x\n" });
      const script = [
        "import json, harness as H",
        "from sklearn.cluster import SpectralClustering, AgglomerativeClustering",
        "class Run:",
        "    warnings = []",
        "    def warn(self, m): self.warnings.append(m)",
        "out = {}",
        "for name, m in [('spectral', SpectralClustering(n_clusters=3)), ('agglo', AgglomerativeClustering(n_clusters=None, distance_threshold=5.0))]:",
        "    r = Run(); r.warnings = []",
        "    H.hold_cluster_count(r, m, 3)",
        "    p = m.get_params()",
        "    out[name] = {'warnings': r.warnings, 'n_clusters': p['n_clusters'], 'n_components': p.get('n_components'), 'distance_threshold': p.get('distance_threshold')}",
        "print(json.dumps(out))",
      ].join("\n");
      const res = spawnSync(PYTHON, ["-c", script], { cwd: dir, encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
      expect(res.status, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout);
      expect(out.spectral).toEqual({ warnings: [], n_clusters: 3, n_components: null, distance_threshold: null });
      expect(out.agglo).toMatchObject({ n_clusters: 3, distance_threshold: null });
      expect(out.agglo.warnings[0]).toMatch(/AgglomerativeClustering with n_clusters=None; set to the 3 clusters asked for/);
    });

    it("smoke-samples rows and falls back to the default fit and predict", async () => {
      const buildOnly = [
        "from sklearn.linear_model import LogisticRegression",
        "from sklearn.pipeline import make_pipeline",
        "def build(ctx):",
        "    return make_pipeline(ctx.preprocessor(scale=True), LogisticRegression(max_iter=500))",
        "",
      ].join("\n");
      const dir = makeWorkspace("classification", buildOnly);
      const run = await runHarness(dir, { ...classificationSpec, sample_rows: 200, plots: false });
      expect(run.code, run.stderr).toBe(0);
      const rows = run.result.rows!;
      expect(rows.train + rows.valid + rows.test).toBe(200);
      expect(rows.test).toBe(30);
      expect(run.result.plots).toEqual([]);
      expect(run.result.metrics.accuracy).toBeGreaterThan(0.5);
    });
  });

  describe("search mode", () => {
    it("runs candidates round-robin and survives a missing estimator", async () => {
      const dir = makeWorkspace("classification", EXAMPLE, 600);
      const run = await runHarness(dir, {
        mode: "search",
        task: "classification",
        data: "data.csv",
        target: "Quality",
        metric: "f1",
        search: {
          n_iter: 3,
          budget_s: 60,
          cv_folds: 3,
          sample_rows: 300,
          candidates: [
            {
              id: "hgb",
              estimator: "sklearn.ensemble.HistGradientBoostingClassifier",
              preprocess: { encode: "ordinal" },
              params: { max_iter: 30 },
              space: { learning_rate: { type: "log", low: 0.01, high: 0.3 }, max_depth: { type: "choice", values: [null, 3] } },
            },
            {
              id: "lr",
              estimator: "sklearn.linear_model.LogisticRegression",
              preprocess: { scale: true },
              params: { max_iter: 300 },
              space: { C: { type: "log", low: 0.01, high: 10 } },
            },
            { id: "missing", estimator: "threadml_no_such_module.Classifier", preprocess: {} },
            { id: "tree", estimator: "sklearn.tree.DecisionTreeClassifier", preprocess: {}, params: { max_depth: -1 } },
          ],
        },
      });
      expect(run.code, run.stderr).toBe(0);
      const search = run.result.search!;
      expect(search.metric).toBe("f1");
      expect(search.greater_is_better).toBe(true);
      const byId = Object.fromEntries(search.candidates.map((c) => [c.id, c]));

      expect(byId.missing.error).toMatch(/^environment_error: .*threadml_no_such_module/);
      expect(byId.missing.trials).toEqual([]);
      expect(byId.tree.trials).toHaveLength(1);
      expect(byId.tree.trials[0].error).toBeTruthy();
      expect(byId.tree.best_score).toBeNull();

      for (const id of ["hgb", "lr"]) {
        const c = byId[id];
        expect(c.trials).toHaveLength(3);
        expect(c.trials[0].params).toEqual(id === "hgb" ? { max_iter: 30 } : { max_iter: 300 });
        // the best comes from completed trials: a pruned trial's score covers only its first folds
        const complete = c.trials.filter((t) => t.score !== null && !t.pruned);
        const scores = complete.map((t) => t.score!);
        expect(c.best_score).toBe(Math.max(...scores));
        expect(c.best_score!).toBeGreaterThan(0.5);
        expect(c.best_params).toEqual(complete[scores.indexOf(c.best_score!)].params);
      }
      expect(byId.lr.trials[1].params.max_iter).toBe(300); // sampled params merge over the fixed ones

      // round-robin: every candidate's default trial comes before any second trial
      const trials = eventsOf(run, "trial");
      expect(trials.slice(0, 3).map((t) => t.candidate)).toEqual(["hgb", "lr", "tree"]);
      expect(trials.map((t) => t.candidate).slice(3)).toEqual(["hgb", "lr", "hgb", "lr"]);
      const progress = eventsOf(run, "progress").filter((e) => e.stage === "search");
      expect(progress.at(-1)).toMatchObject({ done: 7, total: 7 });
    });

    it("gives every candidate its default trial even when the budget is spent", async () => {
      const dir = makeWorkspace("classification", EXAMPLE, 300);
      const run = await runHarness(dir, {
        mode: "search",
        task: "classification",
        data: "data.csv",
        target: "Quality",
        metric: "accuracy",
        search: {
          n_iter: 5,
          budget_s: 0.001,
          candidates: [
            { id: "tree", estimator: "sklearn.tree.DecisionTreeClassifier", preprocess: {}, space: { max_depth: { type: "int", low: 2, high: 8 } } },
            { id: "nb", estimator: "sklearn.naive_bayes.GaussianNB", preprocess: {} },
          ],
        },
      });
      expect(run.code, run.stderr).toBe(0);
      expect(eventsOf(run, "trial").map((t) => t.candidate)).toEqual(["tree", "nb"]);
      expect(run.result.search!.candidates.every((c) => c.trials.length === 1 && c.best_score !== null)).toBe(true);
      expect(run.result.warnings.some((w) => /budget/.test(w))).toBe(true);
    });

    it("reports regression errors in natural units", async () => {
      const dir = makeWorkspace("regression", EXAMPLE, 400);
      const run = await runHarness(dir, {
        mode: "search",
        task: "regression",
        data: "data.csv",
        target: "Age",
        metric: "rmse",
        search: {
          n_iter: 2,
          cv_folds: 3,
          candidates: [
            { id: "ridge", estimator: "sklearn.linear_model.Ridge", preprocess: { scale: true }, space: { alpha: { type: "log", low: 0.1, high: 10 } } },
          ],
        },
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.result.search!.greater_is_better).toBe(false);
      const c = run.result.search!.candidates[0];
      expect(c.best_score!).toBeGreaterThan(0);
      expect(c.best_score).toBe(Math.min(...c.trials.map((t) => t.score!)));
    });

    it("searches by mape and smape with the harness's own definitions", async () => {
      const dir = makeWorkspace("regression", EXAMPLE, 300);
      const base = { mode: "search", task: "regression", data: "data.csv", target: "Age" } as const;
      const search: HarnessSpecInput["search"] = {
        n_iter: 2,
        cv_folds: 3,
        candidates: [{ id: "ridge", estimator: "sklearn.linear_model.Ridge", preprocess: { scale: true }, space: { alpha: { type: "log", low: 0.1, high: 10 } } }],
      };
      const [byMape, bySmape] = await Promise.all([
        runHarness(dir, { ...base, metric: "mape", search }),
        runHarness(makeWorkspace("regression", EXAMPLE, 300), { ...base, metric: "smape", search }),
      ]);
      for (const [run, metric] of [[byMape, "mape"], [bySmape, "smape"]] as const) {
        expect(run.code, run.stderr).toBe(0);
        expect(run.result.warnings.some((w) => /not known/.test(w))).toBe(false);
        expect(run.result.search).toMatchObject({ metric, greater_is_better: false });
        const c = run.result.search!.candidates[0];
        expect(c.trials.every((t) => t.error === undefined)).toBe(true);
        expect(c.best_score!).toBeGreaterThan(0); // natural units: a positive fraction, not sklearn's negated score
        expect(c.best_score!).toBeLessThan(1);
        expect(c.best_score).toBe(Math.min(...c.trials.map((t) => t.score!)));
      }
    });
  });

  describe("errors are classified", () => {
    it("syntax_error for a solution that does not parse", async () => {
      const dir = makeWorkspace("classification", "def build(ctx)\n    return None\n", 200);
      const run = await runHarness(dir, classificationSpec);
      const msg = expectError(run, "syntax_error");
      expect(msg).toMatch(/line 1/);
      expect(run.result.error!.traceback).toMatch(/SyntaxError/);
    });

    it("environment_error naming a module that is not installed", async () => {
      const dir = makeWorkspace("classification", "import nonexistent_mod\n\ndef build(ctx):\n    return None\n", 200);
      const run = await runHarness(dir, classificationSpec);
      const msg = expectError(run, "environment_error");
      expect(msg).toContain("nonexistent_mod");
      expect(msg).toMatch(/install/i);
    });

    it("runtime_error for a solution that raises in fit", async () => {
      const solution = [
        "from sklearn.dummy import DummyClassifier",
        "def build(ctx):",
        "    return DummyClassifier()",
        "def fit(model, train, valid, ctx):",
        "    raise RuntimeError('boom in fit')",
        "",
      ].join("\n");
      const dir = makeWorkspace("classification", solution, 200);
      const run = await runHarness(dir, classificationSpec);
      const msg = expectError(run, "runtime_error");
      expect(msg).toContain("boom in fit");
      expect(run.result.error!.traceback).toContain("boom in fit");
      expect(run.result.rows).not.toBeNull(); // what was known before the failure is kept
    });

    it("value_error naming a missing target and listing the columns", async () => {
      const dir = makeWorkspace("classification", EXAMPLE, 200);
      const run = await runHarness(dir, { ...classificationSpec, target: "Qualty" });
      const msg = expectError(run, "value_error");
      expect(msg).toContain("'Qualty'");
      expect(msg).toContain("Sweetness");
      expect(msg).toContain("Did you mean 'Quality'");
    });

    it("value_error for an empty CSV, a header without rows and a ragged file", async () => {
      const empty = await runHarness(makeWorkspace({ csv: "" }), classificationSpec);
      expect(expectError(empty, "value_error")).toMatch(/has no rows/);
      const header = await runHarness(makeWorkspace({ csv: "Size,Quality\n" }), classificationSpec);
      expect(expectError(header, "value_error")).toMatch(/has no rows/);
      const ragged = await runHarness(makeWorkspace({ csv: "Size,Quality\n1,Good\n2,Bad,3,4\n" }), classificationSpec);
      expect(expectError(ragged, "value_error")).toMatch(/could not be parsed as CSV/);
    });

    it("value_error for a target with a single class", async () => {
      const csv = "a,b,Quality\n" + Array.from({ length: 30 }, (_, i) => `${i},${i % 3},Good`).join("\n") + "\n";
      const run = await runHarness(makeWorkspace({ csv }), classificationSpec);
      expect(expectError(run, "value_error")).toMatch(/single class/);
    });

    it("value_error for too few rows and unknown drop_columns", async () => {
      const csv = "a,Quality\n" + Array.from({ length: 6 }, (_, i) => `${i},${i % 2 ? "Good" : "Bad"}`).join("\n") + "\n";
      const few = await runHarness(makeWorkspace({ csv }), classificationSpec);
      expect(expectError(few, "value_error")).toMatch(/at least 10/);
      const drop = await runHarness(makeWorkspace("classification", EXAMPLE, 100), { ...classificationSpec, drop_columns: ["Colour"] });
      expect(expectError(drop, "value_error")).toContain("'Colour'");
    });

    it("never lets generated code print events onto stdout", async () => {
      const fake = '{"event":"metric","name":"accuracy","value":1.0,"split":"test"}';
      const solution = [
        "import os, sys",
        `FAKE = '${fake}'`,
        "print(FAKE)",
        "from sklearn.dummy import DummyClassifier",
        "def build(ctx):",
        "    print(FAKE)",
        "    sys.__stdout__.write(FAKE + '\\n'); sys.__stdout__.flush()",
        "    os.write(1, (FAKE + '\\n').encode())",
        "    return DummyClassifier()",
        "def fit(model, train, valid, ctx):",
        "    print(FAKE, flush=True)",
        "    return model.fit(train.X, train.y)",
        "",
      ].join("\n");
      const dir = makeWorkspace("classification", solution, 200);
      const run = await runHarness(dir, { ...classificationSpec, plots: false });
      expect(run.code, run.stderr).toBe(0);
      expect(run.lines).not.toContain(fake);
      expect(eventsOf(run, "metric").some((e) => e.value === 1 && e.split === "test")).toBe(false);
      // all five attempts (module import, print, sys.__stdout__, fd 1, print in fit) landed on stderr
      expect(run.stderr.split(fake).length - 1).toBe(5);
    });
  });

});

// The PATH python3 on development machines often lacks scikit-learn: then the harness must say so (exit 3).
const barePython = (() => {
  const probe = spawnSync("python3", ["-c", "import sklearn, pandas, numpy"], { encoding: "utf8" });
  if (probe.error || probe.status === 0) return null;
  return "python3";
})();

describe("missing packages", () => {
  it.skipIf(barePython === null)("exits 3 with an environment_error naming the interpreter", async () => {
    const dir = makeWorkspace("classification", EXAMPLE, 100);
    const run = await runHarness(dir, classificationSpec, barePython!);
    expect(run.code).toBe(3);
    expect(run.result.error!.class).toBe("environment_error");
    expect(run.result.error!.message).toMatch(/python/);
    expect(run.result.error!.message).toMatch(/pip install/);
    expect(run.events.at(-1)).toEqual({ event: "done", status: "error" });
  });
});
