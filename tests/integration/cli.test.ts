import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeClassificationCsv, writeClusteringCsv, writeRegressionCsv } from "../helpers/datasets.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

// The headless CLI end to end, as a new user runs it: real profile, real search, sandboxed harness
// runs, a real model server checked with a real request.

const tmp = tempDir("threadml-cli-");
const cwd = tmp.dir;
const env = { THREADML_DATA_DIR: join(cwd, ".threadml") };

beforeAll(() => {
  requirePython();
  writeClassificationCsv(join(cwd, "banana_quality.csv"), { rows: 1500, seed: 11 });
  writeRegressionCsv(join(cwd, "crabs.csv"), { rows: 1200, seed: 12 });
  writeClusteringCsv(join(cwd, "blobs.csv"), { rows: 600, seed: 13, clusters: 3 });
});

describe("threadml run: whole conversations", () => {
  it("asks for the target when the request does not say, offering the columns", async () => {
    const { result, code } = await runCli(["--yes", "Build a classifier for banana_quality.csv"], { cwd, env });
    expect(code).toBe(0);
    expect(result.status).toBe("needs_input");
    expect(result.questions?.[0]).toMatch(/Which column/);
    expect(result.questions?.[0]).toMatch(/Quality/);
    expect(result.metrics).toEqual({});
  });

  it("states its reading on the plan card, and reads a revision that names the target again", async () => {
    const task = "Predict Quality in banana_quality.csv, leaving out Acidity";
    const first = await runCli([task], { cwd, env });
    expect(first.result.status).toBe("needs_input");
    expect(first.result.questions?.[0]).toMatch(/^I read: predict Quality\b.* · leaving out Acidity\. Approve a plan\?/);
    expect((first.result.requirements as { reading: { line: string } }).reading.line).toMatch(/^I read: predict Quality\b/);
    const revised = await runCli(["--answer", "r: the target is Sweetness", task], { cwd, env });
    expect(revised.result.status).toBe("needs_input");
    expect(revised.result.questions?.[0]).toMatch(/^I read: predict Sweetness · judged by RMSE · leaving out Acidity\. Approve a plan\?/);
    expect(revised.result.requirements).toMatchObject({ target: "Sweetness", task: "regression" });
    expect(revised.result.metrics).toEqual({});
  });

  it("classification: answers the question, trains, meets the threshold and deploys a checked endpoint", async () => {
    const { result } = await runCli(
      ["--yes", "--answer", "Quality", "Build a classifier for banana_quality.csv with accuracy at least 0.9 and under 50 milliseconds per row"],
      { cwd, env },
    );
    expect(result.status, result.error).toBe("deployed");
    expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0.9);
    const acc = result.constraints.find((c) => c.name === "accuracy")!;
    expect(acc).toMatchObject({ op: ">=", target: 0.9, met: true });
    expect(acc.actual).toBe(result.metrics.accuracy);
    const latency = result.constraints.find((c) => c.name === "latency_ms_per_row")!;
    expect(latency.actual).toBeGreaterThan(0);
    expect(latency.met).toBe(latency.actual! < 50);
    expect(result.endpoint?.check.ok).toBe(true);
    expect(["Good", "Bad"]).toContain(result.endpoint?.check.prediction);
    expect(result.endpoint?.serving).toBe(false);
    for (const file of [result.artifacts.model, result.artifacts.code, result.artifacts.report]) expect(existsSync(file!)).toBe(true);
    expect(result.artifacts.plots.some((p) => p.endsWith("confusion_matrix.png"))).toBe(true);
    expect(readFileSync(result.artifacts.code!, "utf8")).toMatch(/def build\(ctx\)/);
    expect(readFileSync(result.artifacts.report!, "utf8")).toMatch(/\| accuracy \|/);
    expect((result.plan as { id: string }).id).toMatch(/^plan-/);
    expect(result.timings.total).toBeGreaterThan(0);
    expect(result.llm.calls).toBe(0);
  });

  it("regression with a categorical column and missing values", async () => {
    const { result } = await runCli(["--yes", "Predict Age from crabs.csv. The evaluation metric is RMSE; training must not exceed 10 minutes"], { cwd, env });
    expect(result.status, result.error).toBe("deployed");
    expect((result.requirements as { task: string }).task).toBe("regression");
    expect(result.metrics.rmse).toBeGreaterThan(0);
    expect(result.metrics.r2).toBeGreaterThan(0.3);
    expect(result.constraints).toEqual([expect.objectContaining({ name: "train_time_s", op: "<=", target: 600, met: true })]);
    expect(typeof result.endpoint?.check.prediction).toBe("number");
  });

  it("reads semicolon-separated files", async () => {
    const text = readFileSync(join(cwd, "banana_quality.csv"), "utf8").replace(/,/g, ";");
    tmp.write("semicolon.csv", text);
    const { result } = await runCli(["--yes", "Classify Quality in semicolon.csv"], { cwd, env });
    expect(result.status, result.error).toBe("deployed");
    expect(result.metrics.accuracy).toBeGreaterThan(0.85);
  });

  it("clustering judged against a labels column", async () => {
    const { result } = await runCli(["--yes", "Cluster blobs.csv into 3 clusters; evaluate against the group labels. Rand index at least 0.8"], { cwd, env });
    expect(result.status, result.error).toBe("deployed");
    expect((result.requirements as { labels_column: string }).labels_column).toBe("group");
    expect(result.metrics.rand_index).toBeGreaterThanOrEqual(0.8);
    expect(result.constraints[0]).toMatchObject({ name: "rand_index", met: true });
  });
});

describe("threadml run: requests it declines or cannot serve", () => {
  it("declines an off-topic request", async () => {
    const { result, code } = await runCli(["--yes", "What's the weather in Paris tomorrow? Write me a poem about it."], { cwd, env });
    expect(code).toBe(0);
    expect(result.status).toBe("rejected");
    expect(result.error).toMatch(/machine-learning/);
  });

  it("names a missing image archive instead of guessing", async () => {
    const { result } = await runCli(["--yes", "Classify the butterfly images in images.zip with a CNN"], { cwd, env });
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(/can't find the data file .*images\.zip/);
  });

  it("names the interpreter and what to install when Python cannot run the harness", async () => {
    const { result } = await runCli(["--yes", "Predict Quality in banana_quality.csv"], { cwd, env: { ...env, THREADML_PYTHON: "/nonexistent/python3" } });
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(/environment_error/);
    expect(result.error).toMatch(/\/nonexistent\/python3/);
    expect(result.error).toMatch(/python3-sklearn/);
  });

  it("refuses an unknown engine or runner with a clear message", async () => {
    const { result, code } = await runCli(["--runner", "gpu9", "Predict Quality in banana_quality.csv"], { cwd, env });
    expect(code).toBe(1);
    expect(result.error).toMatch(/Unknown runner "gpu9"/);
  });
});

describe("threadml run: bad data gets a clear message and no crash", () => {
  const cases: Array<[string, string | null, string, RegExp, string?]> = [
    ["missing file", null, "Predict y in nowhere.csv", /can't find the data file .*nowhere\.csv/],
    ["empty CSV", "", "Predict y in empty.csv", /empty/],
    ["malformed CSV", "a,b,y\n1,2,0\n3,4,5,6\n", "Predict y in bad.csv", /not valid CSV/],
    ["one-row file", "a,b,y\n1,2,0\n", "Predict y in one.csv", /1 data row.*at least 20/],
    ["single-class target", `a,y\n${Array.from({ length: 40 }, (_, i) => `${i},yes`).join("\n")}\n`, "Build a classifier that predicts y in single.csv", /single value/],
    ["file over the size limit", `a,y\n${"1,0\n".repeat(2000)}`, "Predict y in large.csv", /over the .* limit/, "0.001"],
  ];
  const names: Record<string, string> = { "missing file": "nowhere.csv", "empty CSV": "empty.csv", "malformed CSV": "bad.csv", "one-row file": "one.csv", "single-class target": "single.csv", "file over the size limit": "large.csv" };

  it.each(cases)("%s", async (name, content, task, message, maxMb) => {
    if (content !== null) tmp.write(names[name], content);
    const { result, code } = await runCli(["--yes", task], { cwd, env: { ...env, ...(maxMb ? { THREADML_MAX_UPLOAD_MB: maxMb } : {}) } });
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(message);
    expect(code).toBe(1);
  });

  it("asks again when the target is not among the columns", async () => {
    const { result } = await runCli(["--yes", "Predict `price` in banana_quality.csv"], { cwd, env });
    expect(result.status).toBe("needs_input");
    expect(result.questions?.[0]).toMatch(/couldn't find "price".*Which column should I predict\?.*Choices: Quality/);
  });
});
