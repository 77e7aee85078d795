import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { createLlmAgents } from "../../graphs/automl/agents/llm/index.js";
import { readingNotices } from "../../graphs/automl/agents/llm/reading-check.js";
import type { Conversation, DataProfile } from "../../graphs/automl/agents/types.js";
import type { LlmClient, LlmRequest } from "../../src/llm/client.js";
import { LlmOutputError } from "../../src/llm/errors.js";

// The user's words outrank a poor model's well-formed reading: a target, labels column, cluster count,
// metric or task kind the user named is never overridden, even when the model keeps its reading
// through the repair round, and the thread hears where they differed.

/** A client that answers every parse with the same reading, validated and repaired like the real one. */
function stubborn(reading: Record<string, unknown>, assess: Record<string, unknown> = ASSESS) {
  const calls: string[] = [];
  const client = {
    calls,
    async json<T>(req: LlmRequest & { schema: z.ZodType<T> }): Promise<T> {
      const answer = req.step === "parse" ? reading : assess;
      for (let round = 0; round < 2; round++) {
        calls.push(req.step);
        const out = req.schema.safeParse(answer);
        if (out.success) return out.data;
        if (round === 1) throw new LlmOutputError(req.step, out.error.issues.map((i) => i.message).join("\n"));
      }
      throw new Error("unreachable");
    },
    async text(): Promise<string> {
      throw new Error("no text step here");
    },
  };
  return client as unknown as LlmClient & { calls: string[] };
}

const ASSESS = { relevant: true, decline_reason: null, task: "classification", target: "bmi", questions: [] };

const numeric = (name: string, unique: number) => ({
  name,
  kind: "numeric" as const,
  missing: 0,
  unique,
  examples: ["1", "2"],
  stats: { min: 0, max: 100, mean: 50, integer: false },
  top: [],
  suspect: null,
});
const categorical = (name: string, values: string[]) => ({
  name,
  kind: "categorical" as const,
  missing: 0,
  unique: values.length,
  examples: values.slice(0, 2),
  stats: null,
  top: values.map((value) => ({ value, count: 100 })),
  suspect: null,
});

function profile(): DataProfile {
  return {
    file: "/data/patients.csv",
    name: "patients.csv",
    bytes: 10_000,
    rows: 300,
    sampled: false,
    delimiter: ",",
    duplicateRows: 0,
    candidateTargets: ["charges", "smoker"],
    columns: [numeric("age", 40), numeric("bmi", 280), numeric("charges", 300), categorical("smoker", ["yes", "no"]), categorical("region", ["north", "south", "east"])],
  };
}

const conversation = (text: string, answers: Record<string, string> = {}): Conversation => ({ messages: [text], files: ["/data/patients.csv"], answers });

/** A schema-valid reading that gets everything the user said wrong. */
const WRONG = {
  user: { intent: "build", expertise: "" },
  problem: { area: "tabular data analysis", downstream_task: "", application_domain: "", description: "" },
  dataset: null,
  model: [],
  service: null,
  knowledge: [],
  confidence: null,
  task: "regression",
  target: "bmi",
  metric: "rmse",
  positive_class: null,
  n_clusters: 1,
  labels_column: "region",
  drop_columns: [],
  constraints: [],
  requested_models: [],
};

describe("a poor model's reading against the user's words", () => {
  it("predicts the target the user named, judged by the metric they named, and says where the model read otherwise", async () => {
    const client = stubborn(WRONG);
    const req = await createLlmAgents(client, { codeAttempts: 2 }).prompt.parse({ conversation: conversation("Predict charges from the other columns, judged by MAE"), profile: profile() });
    expect(req).toMatchObject({ task: "regression", target: "charges", metric: { name: "mae" } });
    const notices = readingNotices(req).join("\n");
    expect(notices).toMatch(/The LLM read the column to predict as "bmi", but your words say "charges"; ThreadML predicts "charges"\./);
    expect(notices).toMatch(/The LLM read the metric as "RMSE", but your words say MAE/);
    // one request and one repair, then the words decide: no fall-through to more calls
    expect(client.calls).toEqual(["parse", "parse"]);
  });

  it("clusters into the number of groups asked for, judged by the labels named, though the model read a classification", async () => {
    const client = stubborn({ ...WRONG, task: "classification", target: "smoker", metric: "accuracy", n_clusters: 1, labels_column: "region" });
    const req = await createLlmAgents(client, { codeAttempts: 2 }).prompt.parse({
      conversation: conversation("Cluster the patients into 3 groups and evaluate against the smoker labels"),
      profile: profile(),
    });
    expect(req).toMatchObject({ task: "clustering", target: null, n_clusters: 3, labels_column: "smoker" });
    const notices = readingNotices(req).join("\n");
    expect(notices).toMatch(/The LLM read the task as classification, but your words say clustering; ThreadML follows your words\./);
    expect(notices).toMatch(/number of clusters as 1, but your words say 3/);
    expect(notices).not.toMatch(/column to predict/); // a clustering has none, so the model's "smoker" target is not a difference
  });

  it("keeps the user's cluster count and labels against a clustering with other ones", async () => {
    const client = stubborn({ ...WRONG, task: "clustering", target: null, metric: "silhouette", n_clusters: 7, labels_column: "region" });
    const req = await createLlmAgents(client, { codeAttempts: 2 }).prompt.parse({
      conversation: conversation("Cluster the patients into 3 groups and evaluate against the smoker labels"),
      profile: profile(),
    });
    expect(req).toMatchObject({ task: "clustering", n_clusters: 3, labels_column: "smoker" });
    const notices = readingNotices(req).join("\n");
    expect(notices).toMatch(/number of clusters as 7, but your words say 3; ThreadML makes 3/);
    expect(notices).toMatch(/labels column as "region", but your words say "smoker"/);
  });

  it("says nothing when the model read what the user said", async () => {
    const client = stubborn({ ...WRONG, target: "charges", metric: "mae", labels_column: null, n_clusters: null });
    const req = await createLlmAgents(client, { codeAttempts: 2 }).prompt.parse({ conversation: conversation("Predict charges from the other columns, judged by MAE"), profile: profile() });
    expect(req.target).toBe("charges");
    expect(readingNotices(req)).toEqual([]);
    expect(client.calls).toEqual(["parse"]);
  });

  it("lets the model fill what the words left open", async () => {
    const client = stubborn({ ...WRONG, target: "charges", metric: "r2", labels_column: null, n_clusters: null });
    const req = await createLlmAgents(client, { codeAttempts: 2 }).prompt.parse({ conversation: conversation("Build a model for patients.csv"), profile: profile() });
    expect(req).toMatchObject({ task: "regression", target: "charges", metric: { name: "r2" } });
    expect(readingNotices(req)).toEqual([]);
  });

  it("does not ask for a target when the model reads a clustering request as a classification", async () => {
    const client = stubborn(WRONG, { ...ASSESS, task: "classification", target: null });
    const a = await createLlmAgents(client, { codeAttempts: 2 }).manager.assess({ conversation: conversation("Cluster the patients into 3 groups"), profile: profile() });
    expect(a.relevant).toBe(true);
    expect(a.questions.map((q) => q.slot)).not.toContain("target");
  });
});
