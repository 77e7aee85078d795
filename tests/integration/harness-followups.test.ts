import { spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../graphs/automl/holdout.js";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { harnessWorkspace, postPredict, PYTHON, runHarness, startServe, type HarnessRun } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// The follow-ups on a trained model, run by the real harness in a fresh workspace holding only a copy
// of the model (as the host keeps it): scoring a file (predict) and permutation importance (explain).

const tmp = tempDir("threadml-followups-");
const EXAMPLE = readFileSync(fileURLToPath(new URL("../../runners/python/solution_example.py", import.meta.url)), "utf8");
// a follow-up loads the model's own solution (model/solution.py), never one at the workspace root
const ROOT_SOLUTION = "raise RuntimeError('a follow-up must not import the workspace solution')\n";
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const s of servers) s.kill();
});

/**
 * `driver` alone decides the label (the sign, 4% flipped) or most of the value; noise1, noise2 and
 * colour are noise; id is a row identifier the harness sets aside.
 */
function writeTable(file: string, task: "classification" | "regression" | "clustering", rows = 600, seed = 7): string {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const colours = ["red", "green", "blue"];
  const lines = [`id,driver,noise1,noise2,colour,${task === "regression" ? "value" : "label"}`];
  for (let i = 0; i < rows; i++) {
    const group = i % 2;
    const driver = task === "clustering" ? (group ? 4 : -4) + normal() * 0.5 : normal() * 2;
    const [n1, n2] = [normal(), normal()];
    const colour = colours[Math.floor(rand() * 3)];
    let target: string;
    if (task === "classification") target = (driver > 0) !== rand() < 0.04 ? "yes" : "no";
    else if (task === "regression") target = (3 * driver + 10 + normal() * 0.3).toFixed(4);
    else target = group ? "A" : "B";
    lines.push([`row-${i}`, driver.toFixed(5), n1.toFixed(5), n2.toFixed(5), colour, target].join(","));
  }
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

type Row = Record<string, string>;
const readCsv = (file: string): Row[] => parse(readFileSync(file, "utf8"), { columns: true }) as Row[];
const writeRows = (file: string, header: string[], rows: Row[]) =>
  writeFileSync(file, [header.join(","), ...rows.map((r) => header.map((h) => r[h] ?? "").join(","))].join("\n") + "\n");

const specs = {
  classification: { task: "classification", target: "label", metric: "f1" },
  regression: { task: "regression", target: "value", metric: "rmse" },
  clustering: { task: "clustering", target: null, labels_column: "label", n_clusters: 2, metric: "silhouette" },
} as const;

/** Trains the example solution on a generated table; returns the workspace and its run. */
async function train(task: keyof typeof specs): Promise<{ dir: string; data: string; run: HarnessRun }> {
  const data = writeTable(join(tmp.dir, `${task}.csv`), task);
  const dir = harnessWorkspace(join(tmp.dir, `train-${task}`), EXAMPLE, { "data.csv": data });
  const run = await runHarness(dir, { mode: "train", data: "data.csv", ...specs[task] });
  expect(run.result.error).toBeNull();
  return { dir, data, run };
}

let fresh = 0;
/** A fresh workspace with the trained model copied under model/, in the host's layout, and `files`. */
function followupWorkspace(trained: string, files: Record<string, string> = {}): string {
  return harnessWorkspace(join(tmp.dir, `followup-${++fresh}`), ROOT_SOLUTION, {
    "model/out/model.pkl": join(trained, "out", "model.pkl"),
    "model/out/model_meta.json": join(trained, "out", "model_meta.json"),
    "model/solution.py": join(trained, "solution.py"),
    ...files,
  });
}

function predictSpec(task: keyof typeof specs, input = "data/input.csv"): HarnessSpecInput {
  return { mode: "predict", data: input, ...specs[task], predict: { input } };
}

function isPng(file: string): boolean {
  return readFileSync(file).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describe("harness follow-ups: classification", () => {
  let trained: { dir: string; data: string; run: HarnessRun };
  let rows: Row[];
  let header: string[];
  beforeAll(async () => {
    trained = await train("classification");
    rows = readCsv(trained.data).slice(0, 120);
    header = Object.keys(rows[0]);
  });

  it("records the interpreter and the library versions the model was trained with", () => {
    const versions = spawnSync(PYTHON, ["-c", "import platform, sklearn, pandas; print(platform.python_version(), sklearn.__version__, pandas.__version__)"], { encoding: "utf8" });
    const [python, sklearn, pandas] = versions.stdout.trim().split(" ");
    const env = trained.run.result.env!;
    expect(env.python).toBe(python);
    expect(env.packages["scikit-learn"]).toBe(sklearn);
    expect(env.packages.pandas).toBe(pandas);
    expect(Object.keys(env.packages)).toEqual(expect.arrayContaining(["numpy", "scipy"]));
    // the example solution uses neither: they are not pinned
    expect(env.packages).not.toHaveProperty("torch");
    expect(env.packages).not.toHaveProperty("xgboost");
  });

  it("scores a file exactly as the endpoint answers, keeping every column and adding probabilities", async () => {
    const input = join(tmp.dir, "input-labelled.csv");
    // a column the model never saw rides along
    writeRows(input, [...header, "note"], rows.map((r, i) => ({ ...r, note: `n${i}` })));
    const dir = followupWorkspace(trained.dir, { "data/input.csv": input });
    const run = await runHarness(dir, predictSpec("classification"));
    expect(run.result.error).toBeNull();
    const predicted = run.result.predicted!;
    expect(predicted.file).toBe("out/predictions.csv");
    expect(predicted.rows).toBe(rows.length);
    expect(predicted.ignored_columns).toEqual(["id", "note"]);

    const scored = readCsv(join(dir, "out", "predictions.csv"));
    expect(Object.keys(scored[0])).toEqual([...header, "note", "prediction", "probability_no", "probability_yes"]);
    expect(scored.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    expect(scored[5].driver).toBe(rows[5].driver); // cells come back as written
    for (const r of scored) expect(Number(r.probability_no) + Number(r.probability_yes)).toBeCloseTo(1, 6);

    // the same rows through serve.py's /predict (threshold, row coercion and predict slot included)
    const url = await startServe(trained.dir, servers);
    const body = rows.map((r) => ({ id: r.id, driver: Number(r.driver), noise1: Number(r.noise1), noise2: Number(r.noise2), colour: r.colour }));
    const answer = await postPredict<string>(url, { rows: body });
    expect(answer.status).toBe(200);
    expect(scored.map((r) => r.prediction)).toEqual(answer.body.predictions);

    const counts: Record<string, number> = {};
    for (const r of scored) counts[r.prediction] = (counts[r.prediction] ?? 0) + 1;
    expect(predicted.counts).toEqual(counts);
    // the target was in the file: the predictions are scored against it
    const accuracy = scored.filter((r) => r.prediction === r.label).length / scored.length;
    expect(predicted.metrics!.accuracy).toBeCloseTo(accuracy, 10);
    expect(accuracy).toBeGreaterThan(0.85);
    expect(predicted.metrics).toHaveProperty("roc_auc");
  });

  it("scores a file without the target, naming its own column afresh when 'prediction' is taken", async () => {
    const input = join(tmp.dir, "input-unlabelled.csv");
    const cols = header.filter((h) => h !== "label");
    writeRows(input, [...cols, "prediction"], rows.slice(0, 30).map((r) => ({ ...r, prediction: "mine" })));
    const dir = followupWorkspace(trained.dir, { "data/input.csv": input });
    const run = await runHarness(dir, predictSpec("classification"));
    expect(run.result.error).toBeNull();
    expect(run.result.predicted!.metrics).toBeNull();
    expect(run.result.predicted!.ignored_columns).toEqual(["id", "prediction"]);
    const scored = readCsv(join(dir, "out", "predictions.csv"));
    expect(scored.every((r) => r.prediction === "mine" && ["yes", "no"].includes(r.prediction_1))).toBe(true);
  });

  it("names a missing column and the closest one the file has", async () => {
    const input = join(tmp.dir, "input-misspelt.csv");
    writeRows(input, header.map((h) => (h === "driver" ? "Drivr" : h)), rows.slice(0, 10).map((r) => ({ ...r, Drivr: r.driver })));
    const dir = followupWorkspace(trained.dir, { "data/input.csv": input });
    const run = await runHarness(dir, predictSpec("classification"));
    expect(run.code).toBe(1);
    expect(run.result.error!.class).toBe("value_error");
    expect(run.result.error!.message).toMatch(/^input\.csv lacks 1 of the 4 columns the model was trained on: 'driver' \(the file has 'Drivr'\)/);
    expect(run.result.error!.message).toMatch(/header row names every one of them/);
  });

  it("refuses a file with no rows and a number column holding words, saying where", async () => {
    const empty = join(tmp.dir, "input-empty.csv");
    writeFileSync(empty, header.join(",") + "\n");
    const run = await runHarness(followupWorkspace(trained.dir, { "data/input.csv": empty }), predictSpec("classification"));
    expect(run.result.error).toMatchObject({ class: "value_error", message: expect.stringMatching(/input\.csv has a header but no rows/) });

    const words = join(tmp.dir, "input-words.csv");
    writeRows(words, header, rows.slice(0, 10).map((r, i) => (i === 3 ? { ...r, noise1: "lots" } : r)));
    const bad = await runHarness(followupWorkspace(trained.dir, { "data/input.csv": words }), predictSpec("classification"));
    expect(bad.result.error).toMatchObject({ class: "value_error", message: expect.stringMatching(/Column 'noise1' of input\.csv must hold numbers.*data row 4 has 'lots'/) });
  });

  it("refuses a model of a harness variant: it takes its own request", async () => {
    const meta = JSON.parse(readFileSync(join(trained.dir, "out", "model_meta.json"), "utf8"));
    const metaFile = join(tmp.dir, "variant-meta.json");
    writeFileSync(metaFile, JSON.stringify({ ...meta, variant: "images" }));
    const input = join(tmp.dir, "input-variant.csv");
    writeRows(input, header, rows.slice(0, 10));
    const dir = followupWorkspace(trained.dir, { "data/input.csv": input, "model/out/model_meta.json": metaFile });
    const run = await runHarness(dir, predictSpec("classification"));
    expect(run.result.error).toMatchObject({
      class: "value_error",
      message: "Scoring a file works for models trained on a table; this model (images) takes its own request at its endpoint.",
    });
  });

  it("explains the model on its validation rows: the driving column first, with a plot", async () => {
    const dir = followupWorkspace(trained.dir, { "data.csv": trained.data });
    const run = await runHarness(dir, { mode: "explain", data: "data.csv", ...specs.classification, explain: { repeats: 4, max_rows: 60 } });
    expect(run.result.error).toBeNull();
    const importance = run.result.importance!;
    expect(importance.metric).toBe("f1");
    expect(importance.rows).toBe(60); // sampled from the validation rows
    expect(run.result.rows!.valid).toBe(trained.run.result.rows!.valid);
    expect(importance.features.map((f) => f.feature).sort()).toEqual(["colour", "driver", "noise1", "noise2"]);
    const [first, ...rest] = importance.features;
    expect(first.feature).toBe("driver");
    expect(first.mean).toBeGreaterThan(0.2);
    for (const f of rest) expect(first.mean).toBeGreaterThan(f.mean + 3 * f.std);
    expect(run.result.plots).toEqual(["out/importance.png"]);
    expect(isPng(join(dir, "out", "importance.png"))).toBe(true);
  });
});

describe("harness follow-ups: regression and clusters", () => {
  it("scores a file with a regressor and measures importance as the rise in rmse", async () => {
    const trained = await train("regression");
    const rows = readCsv(trained.data).slice(0, 80);
    const input = join(tmp.dir, "input-regression.csv");
    writeRows(input, Object.keys(rows[0]), rows);
    const dir = followupWorkspace(trained.dir, { "data/input.csv": input, "data.csv": trained.data });
    const scored = await runHarness(dir, predictSpec("regression"));
    expect(scored.result.error).toBeNull();
    const { range, metrics, counts } = scored.result.predicted!;
    const values = readCsv(join(dir, "out", "predictions.csv")).map((r) => Number(r.prediction));
    expect(counts).toBeNull();
    expect(range).toEqual({ min: Math.min(...values), max: Math.max(...values), mean: expect.closeTo(values.reduce((a, b) => a + b, 0) / values.length, 8) });
    expect(metrics!.rmse).toBeLessThan(1.5);

    const run = await runHarness(dir, { mode: "explain", data: "data.csv", ...specs.regression, explain: {} });
    expect(run.result.error).toBeNull();
    const importance = run.result.importance!;
    expect(importance.metric).toBe("rmse");
    expect(importance.features[0].feature).toBe("driver");
    // shuffling the driver multiplies the error many times over; the noise barely moves it
    expect(importance.features[0].mean).toBeGreaterThan(2);
    expect(Math.abs(importance.features.at(-1)!.mean)).toBeLessThan(0.3);
    expect(isPng(join(dir, "out", "importance.png"))).toBe(true);
  });

  it("measures a clustering's importance as lost agreement with its own clusters", async () => {
    const trained = await train("clustering");
    const dir = followupWorkspace(trained.dir, { "data.csv": trained.data });
    const run = await runHarness(dir, { mode: "explain", data: "data.csv", ...specs.clustering, explain: { repeats: 3 } });
    expect(run.result.error).toBeNull();
    const importance = run.result.importance!;
    expect(importance.metric).toBe("adjusted_rand_index");
    expect(importance.features[0].feature).toBe("driver");
    expect(importance.features[0].mean).toBeGreaterThan(0.5);
  });
});
