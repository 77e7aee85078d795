import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { OfflineManagerAgent } from "../../graphs/automl/agents/offline/manager.js";
import { profileCsv, textFeatureColumns } from "../../graphs/automl/data/profile.js";
import { OfflinePromptAgent } from "../../graphs/automl/agents/offline/prompt.js";
import type { DataProfile } from "../../graphs/automl/agents/types.js";
import { TRAINABLE_TASKS, harnessTaskOf } from "../../src/schema/requirements.js";
import { writeTextClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// Text classification from the offline engine's side: the profile, the requirements and the decline
// messages for the task kinds that still cannot be trained.

const tmp = tempDir();
const file = join(tmp.dir, "products.csv");
let profile: DataProfile;
const prompt = new OfflinePromptAgent();
const manager = new OfflineManagerAgent();
const conversation = (message: string) => ({ messages: [message], files: [file], answers: {} });

beforeAll(async () => {
  writeTextClassificationCsv(file, { rows: 400, seed: 5 });
  profile = await profileCsv(file, { maxBytes: 1 << 20 });
});

describe("text classification: profile and requirements", () => {
  it("profiles descriptions as free text, never as an identifier", () => {
    const col = (n: string) => profile.columns.find((c) => c.name === n)!;
    expect(col("text").kind).toBe("text");
    expect(col("text").suspect).toBeNull();
    expect(col("product_id").suspect).toBe("id");
    expect(col("price").kind).toBe("numeric");
    expect(profile.candidateTargets[0]).toBe("category");
    expect(profile.candidateTargets).not.toContain("text");
  });

  it("reads a text classification request: the target, the text kept as a feature, the id dropped", async () => {
    const req = await prompt.parse({
      conversation: conversation("Classify the support tickets in products.csv into their category using the text column"),
      profile,
    });
    expect(req.task).toBe("text_classification");
    expect(req.target).toBe("category");
    expect(req.metric).toEqual({ name: "accuracy", direction: "max" });
    expect(req.drop_columns).toEqual(["product_id"]);
    expect(req.problem.area).toBe("natural language processing");
    expect(textFeatureColumns(profile, req)).toEqual(["text"]);
    expect(harnessTaskOf(req.task)).toBe("classification");
  });

  it("treats classification over free text alone, or asked for in words, as text classification", async () => {
    const onlyText = { ...profile, columns: profile.columns.filter((c) => c.name !== "price") };
    const req = await prompt.parse({ conversation: conversation("Predict category in products.csv"), profile: onlyText });
    expect(req.task).toBe("text_classification");
    expect(req.confidence.rationale).toMatch(/"text" is free text/);
    const asked = await prompt.parse({ conversation: conversation("Text classification: predict category from the descriptions in products.csv"), profile });
    expect(asked.task).toBe("text_classification");
  });

  it("keeps a tabular task tabular when a long string column sits beside ordinary columns", async () => {
    const tabular = await prompt.parse({ conversation: conversation("Predict category in products.csv"), profile });
    expect(tabular.task).toBe("classification");
    const dropped = await prompt.parse({ conversation: conversation("Predict category in products.csv, ignore the text column"), profile });
    expect(dropped.task).toBe("classification");
    expect(dropped.drop_columns).toContain("text");
  });

  it("asks for the target when the request does not name one", async () => {
    const a = await manager.assess({ conversation: conversation("Train a text classifier on products.csv"), profile });
    expect(a.declineReason).toBeNull();
    expect(a.questions[0]).toMatchObject({ slot: "target" });
    expect(a.questions[0].choices[0].value).toBe("category");
  });
});

describe("task kinds beyond tables", () => {
  it("lists every task kind as trainable", () => {
    expect(TRAINABLE_TASKS).toContain("text_classification");
    expect(TRAINABLE_TASKS).toEqual(expect.arrayContaining(["image_classification", "time_series_forecasting", "node_classification"]));
  });

  it.each([
    ["Train a CNN to classify photos of cats and dogs in pets.zip", /Attach a zip archive of images/],
    ["Forecast next month's electricity demand from load.csv", /CSV file with a time column/],
    ["Node classification on the Cora citation graph with a GCN", /node table and the edge list/],
  ])("no longer declines %s: it asks for the data that task reads", async (message, question) => {
    const a = await manager.assess({ conversation: { messages: [message], files: [], answers: {} }, profile: null });
    expect(a.relevant).toBe(true);
    expect(a.declineReason).toBeNull();
    expect(a.questions[0]).toMatchObject({ slot: "dataset" });
    expect(a.questions[0].text).toMatch(question);
  });
});
