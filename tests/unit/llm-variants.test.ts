import { LlmOutputError } from "../../src/llm/errors.js";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { createLlmAgents } from "../../graphs/automl/agents/llm/index.js";
import { profileData } from "../../graphs/automl/data/profile-data.js";
import type { Conversation, DataProfile, Instructions } from "../../graphs/automl/agents/types.js";
import type { LlmClient, LlmRequest } from "../../src/llm/client.js";
import { Requirements } from "../../src/schema/requirements.js";
import { writeSeriesCsv, writeZip } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// The LLM engine on the new task kinds: its readings are reconciled with the data (a forecast's time
// column and horizon, images found in an archive) and validated against the requirements schema; the
// code prompt tells the model what the harness hands its slots for each variant.

function fakeClient(script: Record<string, unknown>) {
  const calls: Array<LlmRequest & { mode: string }> = [];
  const client = {
    calls,
    modelFor: () => "fake-model",
    async json<T>(req: LlmRequest & { schema: z.ZodType<T> }): Promise<T> {
      calls.push({ ...req, mode: "json" });
      if (!(req.step in script)) throw new Error(`unscripted step ${req.step}`);
      // the real client asks once for a repair; the script answers the same, so a bad answer stays bad
      const checked = req.schema.safeParse(script[req.step]);
      if (checked.success) return checked.data;
      calls.push({ ...req, mode: "json" });
      const again = req.schema.safeParse(script[req.step]);
      if (again.success) return again.data;
      throw new LlmOutputError(req.step, again.error.issues.map((i) => i.message).join("\n"));
    },
    async text(req: LlmRequest): Promise<string> {
      calls.push({ ...req, mode: "text" });
      if (!(req.step in script)) throw new Error(`unscripted step ${req.step}`);
      return String(script[req.step]);
    },
  };
  return client as unknown as LlmClient & { calls: typeof calls };
}

const tmp = tempDir("threadml-llm-variants-");
const conv = (message: string, answers: Record<string, string> = {}): Conversation => ({ messages: [message], files: [], answers });
let sales: DataProfile;
let pets: DataProfile;

beforeAll(async () => {
  sales = await profileData(writeSeriesCsv(join(tmp.dir, "sales.csv"), { days: 90 }).file, [], { maxBytes: 1 << 26 });
  const png = Buffer.from("89504e470d0a1a0a", "hex");
  const files = Array.from({ length: 24 }, (_, i) => ({ name: `${["cat", "dog"][i % 2]}/${i}.png`, data: png }));
  pets = await profileData(writeZip(join(tmp.dir, "pets.zip"), files), [], { maxBytes: 1 << 26 });
});

const parseReply = (over: Record<string, unknown>) => ({
  user: { intent: "build" },
  problem: { downstream_task: "demand forecasting" },
  dataset: null,
  model: [],
  service: null,
  knowledge: [],
  confidence: { rationale: "clear", score: 0.8 },
  task: "time series forecasting",
  target: "sales",
  metric: null,
  positive_class: null,
  n_clusters: null,
  labels_column: null,
  drop_columns: [],
  constraints: [],
  requested_models: [],
  ...over,
});

describe("LLM engine on forecasts, graphs and images", () => {
  it("takes a forecast's time column, series and horizon from the LLM when the words left them open", async () => {
    const client = fakeClient({ parse: parseReply({ time_column: "date", series_column: "store", horizon: 10 }) });
    const req = await createLlmAgents(client, { codeAttempts: 1 }).prompt.parse({ conversation: conv("Forecast sales in sales.csv"), profile: sales });
    expect(Requirements.parse(req)).toMatchObject({
      task: "time_series_forecasting",
      target: "sales",
      metric: { name: "rmse" },
      forecast: { time_column: "date", id_column: "store", horizon: 10 },
    });
  });

  it("keeps the rules' horizon and refuses a time column that is not in the data", async () => {
    const client = fakeClient({ parse: parseReply({ time_column: "timestamp", horizon: 99, task: "regression" }) });
    const req = await createLlmAgents(client, { codeAttempts: 1 }).prompt.parse({ conversation: conv("Forecast sales 14 days ahead in sales.csv"), profile: sales });
    // "regression" from the LLM yields to the data: a horizon over a time column is a forecast
    expect(req.task).toBe("time_series_forecasting");
    expect(req.forecast).toMatchObject({ time_column: "date", horizon: 14 });
  });

  it("reads images from the data even when the LLM says plain classification, and asks nothing more", async () => {
    const client = fakeClient({
      "verify-request": { relevant: true, task: "classification", target: "label", labels_column: null, adequate: true, missing: [], questions: [], decline_reason: null, notes: [] },
      parse: parseReply({ task: "classification", target: "label", problem: { downstream_task: "pet photos" } }),
    });
    const agents = createLlmAgents(client, { codeAttempts: 1 });
    const a = await agents.manager.assess({ conversation: conv("Sort my pet photos in pets.zip"), profile: pets });
    expect(a).toMatchObject({ relevant: true, declineReason: null, questions: [] });
    const req = await agents.prompt.parse({ conversation: conv("Sort my pet photos in pets.zip"), profile: pets });
    expect(req).toMatchObject({ task: "image_classification", target: "label", images: { layout: "folders" }, problem: { area: "computer vision" } });
  });

  it("asks a forecast for its horizon through the LLM manager too", async () => {
    const client = fakeClient({
      "verify-request": { relevant: true, task: "time series forecasting", target: "sales", labels_column: null, adequate: true, missing: [], questions: [], decline_reason: null, notes: [] },
    });
    const a = await createLlmAgents(client, { codeAttempts: 1 }).manager.assess({ conversation: conv("Forecast sales in sales.csv"), profile: sales });
    expect(a.questions.map((q) => q.slot)).toEqual(["horizon"]);
  });

  it("tells the code model what the harness hands the slots for images", async () => {
    const code = ["from variant_images import SmallCNNClassifier", "PARAMS = {'epochs': 3}", "def build(ctx):", "    return SmallCNNClassifier(**PARAMS)"].join("\n");
    const client = fakeClient({ implement: `\`\`\`python\n${code}\n\`\`\`` });
    const requirements = Requirements.parse({
      user: { intent: "build" },
      problem: { downstream_task: "image classification" },
      confidence: { score: 1 },
      task: "image_classification",
      target: "label",
      metric: { name: "accuracy", direction: "max" },
    });
    const candidate = {
      id: "plan-1:small_cnn",
      label: "Small convolutional network (PyTorch)",
      estimator: "variant_images.SmallCNNClassifier",
      preprocess: { scale: false, encode: "onehot" as const, raw: true },
      params: { epochs: 3 },
      score: 0.9,
      trials: 1,
    };
    const instructions: Instructions = { planId: "plan-1", candidate, alternatives: [], dropColumns: [], notes: [] };
    const impl = await createLlmAgents(client, { codeAttempts: 1 }).operation.implement({ instructions, requirements });
    expect(impl.code).toMatch(/SmallCNNClassifier\(\*\*PARAMS\)/);
    expect(impl.params).toEqual({ epochs: 3 });
    const prompt = client.calls[0].user;
    expect(prompt).toMatch(/X has one column, "image"/);
    expect(prompt).toMatch(/Preprocessing: ctx\.preprocessor\(none: the model takes the images themselves/);
  });
});
