import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { OfflineManagerAgent } from "../../graphs/automl/agents/offline/manager.js";
import { OfflineModelAgent } from "../../graphs/automl/agents/offline/model.js";
import { renderSolution } from "../../graphs/automl/agents/offline/operation.js";
import { profileData } from "../../graphs/automl/data/profile-data.js";
import { OfflinePromptAgent } from "../../graphs/automl/agents/offline/prompt.js";
import type { Conversation, DataProfile, RankedCandidate } from "../../graphs/automl/agents/types.js";
import { degenerateReason } from "../../graphs/automl/constraints.js";
import { same } from "../../graphs/automl/endpoint-check.js";
import { harnessInputs } from "../../graphs/automl/harness-inputs.js";
import { curlExample } from "../../graphs/automl/report.js";
import { HarnessResult, HarnessSpec } from "../../runners/contract.js";
import { writeGraphCsvs, writeSeriesCsv, writeZip } from "../helpers/datasets.js";
import { makeRequirements } from "../helpers/requirements.js";
import { tempDir } from "../helpers/tmp.js";

// The offline engine on forecasting, graph and image data: the questions it asks, the requirements it
// writes, the plans it makes and the harness spec a run gets.

const tmp = tempDir("threadml-variants-");
const manager = new OfflineManagerAgent();
const prompt = new OfflinePromptAgent();
const conv = (message: string, answers: Record<string, string> = {}): Conversation => ({ messages: [message], files: [], answers });
const load = (file: string, others: string[] = []) => profileData(file, others, { maxBytes: 50 << 20 });

let sales: DataProfile;
let graph: DataProfile;
let pets: DataProfile;
let unlabelled: DataProfile;
let bare: DataProfile;

beforeAll(async () => {
  sales = await load(writeSeriesCsv(join(tmp.dir, "sales.csv"), { days: 120 }).file);
  const g = writeGraphCsvs(join(tmp.dir, "papers.csv"), join(tmp.dir, "cites.csv"), { nodes: 60 });
  graph = await load(g.file, [g.edges]);
  const png = Buffer.from("89504e470d0a1a0a", "hex");
  const files = Array.from({ length: 24 }, (_, i) => ({ name: `img/p${i}.png`, data: png }));
  const zip = writeZip(join(tmp.dir, "pets.zip"), files);
  const labels = tmp.write("labels.csv", ["file,breed", ...files.map((f, i) => `${f.name.slice(4)},${["pug", "corgi", "husky"][i % 3]}`)].join("\n"));
  pets = await load(zip, [labels]);
  unlabelled = await load(writeZip(join(tmp.dir, "loose.zip"), files));
  bare = await load(tmp.write("readings.csv", ["sensor_a,sensor_b", ...Array.from({ length: 40 }, (_, i) => `${i},${i * 2}`)].join("\n")));
});

describe("request check: what each task still needs", () => {
  it("asks a forecast for its horizon, with choices that suit the data's step", async () => {
    const a = await manager.assess({ conversation: conv("Forecast sales in sales.csv"), profile: sales });
    expect(a.questions.map((q) => q.slot)).toEqual(["horizon"]);
    expect(a.questions[0].text).toMatch(/daily/);
    expect(a.questions[0].choices.map((c) => c.value)).toEqual(["7", "14", "28"]);
    const answered = await manager.assess({ conversation: conv("Forecast sales in sales.csv", { horizon: "14" }), profile: sales });
    expect(answered.questions).toEqual([]);
    expect((await manager.assess({ conversation: conv("Forecast sales 2 weeks ahead in sales.csv"), profile: sales })).questions).toEqual([]);
  });

  it("asks which column holds the time when the data shows none, and the target among numbers first", async () => {
    const a = await manager.assess({ conversation: conv("Forecast the next 5 steps of readings.csv"), profile: bare });
    expect(a.questions.map((q) => q.slot)).toEqual(["target", "time"]);
    const b = await manager.assess({ conversation: conv("Forecast sensor_b 5 steps ahead", { time: "sensor_a" }), profile: bare });
    expect(b.questions).toEqual([]);
  });

  it("asks for the edge list of a node task, and the labels of unlabelled images", async () => {
    const nodes = await load(join(tmp.dir, "papers.csv"));
    const a = await manager.assess({ conversation: conv("Node classification on papers.csv: predict label"), profile: nodes });
    expect(a.questions).toHaveLength(1);
    expect(a.questions[0]).toMatchObject({ slot: "dataset" });
    expect(a.questions[0].text).toMatch(/edge list/);
    const b = await manager.assess({ conversation: conv("Classify the images in loose.zip"), profile: unlabelled });
    expect(b.questions[0].text).toMatch(/24 images .* no labels/);
    // a labels table with one label column needs no target question
    expect((await manager.assess({ conversation: conv("Classify the images in pets.zip"), profile: pets })).questions).toEqual([]);
  });
});

describe("requirements for the new tasks", () => {
  it("reads a forecast: time and series columns, horizon in steps, other inputs", async () => {
    const req = await prompt.parse({ conversation: conv("Forecast sales 2 weeks ahead in sales.csv, MAPE below 8%"), profile: sales });
    expect(req).toMatchObject({
      task: "time_series_forecasting",
      target: "sales",
      metric: { name: "mape", direction: "min" },
      problem: { area: "time-series analysis", downstream_task: "time-series forecasting" },
      forecast: { time_column: "date", id_column: "store", horizon: 14, horizon_phrase: "2 weeks ahead", frequency: "D", exogenous: ["price"] },
      constraints: [{ name: "mape", op: "<", target: 0.08 }],
      data_card: { data_type: "time series" },
    });
  });

  it("reads a graph and images, choosing the task from the data", async () => {
    const nodeReq = await prompt.parse({ conversation: conv("Predict the label of each paper"), profile: graph });
    expect(nodeReq).toMatchObject({
      task: "node_classification",
      target: "label",
      metric: { name: "accuracy" },
      graph: { edges: "cites.csv", node_id_column: "node_id", source_column: "source", target_column: "target" },
      problem: { area: "graph machine learning" },
    });
    const imageReq = await prompt.parse({ conversation: conv("Classify pets.zip by breed"), profile: pets });
    expect(imageReq).toMatchObject({
      task: "image_classification",
      target: "breed",
      images: { layout: "labels_csv", labels: ["labels.csv"], filename_column: "file" },
      drop_columns: [],
      problem: { area: "computer vision" },
    });
  });
});

describe("plans", () => {
  const plan = (req: Parameters<OfflineManagerAgent["plan"]>[0]["requirements"], profile: DataProfile, installed: Record<string, boolean> = {}) =>
    manager.plan({ requirements: req, profile, knowledge: [], count: 3, feedback: [], failures: [], installed });

  it("says what PyTorch would add when it is missing, and plans a CNN first when it is there", async () => {
    const req = await prompt.parse({ conversation: conv("Classify pets.zip by breed"), profile: pets });
    const without = await plan(req, pets);
    expect(without.flatMap((p) => p.models.map((m) => m.family))).not.toContain("small_cnn");
    expect(without[0].notices.join(" ")).toMatch(/PyTorch is not installed on the runner.*pip install torch torchvision/);
    const withTorch = await plan(req, pets, { torch: true });
    expect(withTorch[0].models[0]).toMatchObject({ family: "small_cnn", estimator: "variant_images.SmallCNNClassifier" });
    expect(withTorch[0].notices.join(" ")).toMatch(/trained from scratch/);
  });

  it("substitutes a requested CNN with a scikit-learn model when torch is missing, naming what to install", async () => {
    const req = await prompt.parse({ conversation: conv("Fine-tune a ResNet on pets.zip to classify the breed"), profile: pets });
    expect(req.requested_models).toEqual(["resnet"]);
    const plans = await plan(req, pets);
    expect(plans[0].models[0].family).toBe("hist_gradient_boosting");
    expect(plans[0].notices.join(" ")).toMatch(/Small convolutional network \(PyTorch\) was requested but the Python module torch is not installed on the runner \(install torch torchvision there/);
  });

  it("gives forecasting candidates their strategy, and a CNN its raw input", async () => {
    const req = await prompt.parse({ conversation: conv("Forecast sales 14 days ahead"), profile: sales });
    const plans = await plan(req, sales);
    expect(plans.map((p) => p.approach)).toEqual(["boosting", "linear", "bagging"]);
    expect(plans[0].inference).toMatch(/next 14 values/);
    const model = new OfflineModelAgent();
    const decomposed = await model.decompose({ plans, dataPlans: [], requirements: req, profile: sales });
    expect(decomposed.map((m) => m.candidates[0].strategy)).toEqual(["direct", "recursive", "direct"]);
    const imageReq = await prompt.parse({ conversation: conv("Classify pets.zip"), profile: pets });
    const cnn = await model.decompose({ plans: await plan(imageReq, pets, { torch: true }), dataPlans: [], requirements: imageReq, profile: pets });
    expect(cnn[0].candidates[0].preprocess).toMatchObject({ raw: true });
  });

  it("writes a CNN solution without a preprocessor and a forecast's with one", () => {
    const cnn: RankedCandidate = {
      id: "plan-1:small_cnn",
      label: "Small convolutional network (PyTorch)",
      estimator: "variant_images.SmallCNNClassifier",
      preprocess: { scale: false, encode: "onehot", raw: true },
      params: { epochs: 15 },
      score: 0.9,
      trials: 1,
    };
    const code = renderSolution(cnn, makeRequirements({ task: "image_classification" }), "plan-1", []);
    expect(code).toMatch(/from variant_images import SmallCNNClassifier/);
    expect(code).toMatch(/return SmallCNNClassifier\(\*\*params\)/);
    expect(code).not.toMatch(/ctx\.preprocessor/);
  });
});

describe("harness spec per variant", () => {
  it("copies every input under data/ and says how to read it", async () => {
    const req = await prompt.parse({ conversation: conv("Forecast sales 14 days ahead"), profile: sales });
    const ts = harnessInputs(sales, req, 7, "recursive");
    expect(ts.files).toEqual([{ source: sales.file, dest: "data/sales.csv" }]);
    const spec = HarnessSpec.parse({ mode: "train", ...ts.spec });
    expect(spec).toMatchObject({ variant: "timeseries", task: "regression", data: "data/sales.csv", target: "sales", seed: 7 });
    expect(spec.timeseries).toMatchObject({ time_column: "date", id_column: "store", horizon: 14, strategy: "recursive", exogenous: ["price"] });

    const nodeReq = await prompt.parse({ conversation: conv("Predict the label of each paper"), profile: graph });
    const g = harnessInputs(graph, nodeReq, 1);
    expect(g.files.map((f) => f.dest)).toEqual(["data/papers.csv", "data/cites.csv"]);
    expect(HarnessSpec.parse({ mode: "search", ...g.spec, search: { candidates: [{ id: "a", estimator: "x.Y", preprocess: {} }] } }).graph).toMatchObject({
      edges: "data/cites.csv",
      node_id_column: "node_id",
      source_column: "source",
      target_column: "target",
      hops: 2,
    });

    const imageReq = await prompt.parse({ conversation: conv("Classify pets.zip by breed"), profile: pets });
    const im = harnessInputs(pets, imageReq, 1);
    expect(im.files.map((f) => f.dest)).toEqual(["data/pets.zip", "data/labels.csv"]);
    expect(HarnessSpec.parse({ mode: "train", ...im.spec })).toMatchObject({
      variant: "images",
      task: "classification",
      data: "data/pets.zip",
      target: "breed",
      images: { labels: [{ file: "data/labels.csv", delimiter: "," }], filename_column: "file", size: 32 },
    });
  });

  it("refuses a variant spec without its settings or with the wrong task", () => {
    expect(HarnessSpec.safeParse({ mode: "train", task: "regression", variant: "timeseries", data: "d.csv", target: "y", metric: "rmse" }).success).toBe(false);
    expect(
      HarnessSpec.safeParse({ mode: "train", task: "classification", variant: "timeseries", data: "d.csv", target: "y", metric: "rmse", timeseries: { time_column: "t", horizon: 3 } })
        .success,
    ).toBe(false);
  });
});

describe("checks on variant results", () => {
  it("compares answers deeply, numbers within a tolerance", () => {
    expect(same([{ store: "a", sales: 1.0000000001 }], [{ sales: 1, store: "a" }])).toBe(true);
    expect(same([{ store: "a", sales: 1.01 }], [{ sales: 1, store: "a" }])).toBe(false);
    expect(same(["x", "y"], ["x"])).toBe(false);
  });

  it("shows curl examples a shell can run", () => {
    expect(curlExample("http://h:1", undefined, { images: ["abc"] })).toMatch(/\$\(base64 -w0 your-image\.png\)/);
    expect(curlExample("http://h:1", undefined, { nodes: ["p1"] })).toBe(`curl -s -X POST http://h:1/predict -H 'Content-Type: application/json' -d '{"nodes":["p1"]}'`);
    const history = Array.from({ length: 60 }, (_, i) => ({ date: `2024-01-${i}`, store: "north", sales: i }));
    expect(curlExample("http://h:1", undefined, { history, horizon: 7 })).toMatch(/-d @request\.json .*"horizon":7.*60 rows/);
  });

  it("counts a forecast well behind the seasonal-naive one as degenerate", () => {
    const req = makeRequirements({ task: "time_series_forecasting", target: "y", metric: { name: "rmse", direction: "min" } });
    const result = (metrics: Record<string, number>) => HarnessResult.parse({ status: "ok", mode: "train", task: "regression", metrics });
    expect(degenerateReason(req, result({ rmse: 2, baseline_rmse: 3 }), null)).toBeNull();
    expect(degenerateReason(req, result({ rmse: 5, baseline_rmse: 3 }), null)).toMatch(/worse than the seasonal-naive/);
  });
});
