import { describe, expect, it } from "vitest";
import { OfflineManagerAgent } from "../../graphs/automl/agents/offline/manager.js";
import { OfflineModelAgent } from "../../graphs/automl/agents/offline/model.js";
import type { ColumnProfile, DataProfile, Plan } from "../../graphs/automl/agents/types.js";
import { classImbalance, imbalanceNotice } from "../../graphs/automl/imbalance.js";
import { loadKnowledgeBase } from "../../graphs/automl/knowledge/index.js";
import type { Requirements } from "../../src/schema/requirements.js";
import type { z } from "zod";
import { LlmModelAgent } from "../../graphs/automl/agents/llm/model.js";
import type { Client } from "../../graphs/automl/agents/llm/shared.js";
import type { LlmRequest } from "../../src/llm/client.js";
import { makeProfile, makeRequirements } from "../helpers/requirements.js";

// Rare classes: found from the profile's class counts, announced on the plan, and searched as class weights.

/** The profile's target column `y` with these class counts. */
function withClasses(counts: Record<string, number>, rows = 1000): DataProfile {
  const base = makeProfile(rows);
  const top = Object.entries(counts)
    .map(([value, count]) => ({ value, count }))
    .sort((a, b) => b.count - a.count);
  const y: ColumnProfile = { name: "y", kind: "categorical", missing: 0, unique: top.length, examples: top.map((t) => t.value), stats: null, top, suspect: null };
  return { ...base, columns: [...base.columns.filter((c) => c.name !== "y"), y] };
}

const f1 = (over: Partial<Requirements> = {}) => makeRequirements({ metric: { name: "f1", direction: "max" }, ...over });

describe("classImbalance", () => {
  it("finds the rarest class when it is under 20% of the labelled rows, binary or multiclass", () => {
    expect(classImbalance(withClasses({ no: 960, yes: 40 }), f1())).toEqual({ label: "yes", share: 0.04, classes: 2 });
    expect(classImbalance(withClasses({ a: 450, b: 450, c: 100 }), f1())).toMatchObject({ label: "c", share: 0.1, classes: 3 });
    expect(classImbalance(withClasses({ a: 19, b: 81 }), f1())?.share).toBe(0.19);
  });

  it("is null for balanced classes, at exactly 20%, for regression and without a target", () => {
    expect(classImbalance(withClasses({ a: 500, b: 500 }), f1())).toBeNull();
    expect(classImbalance(withClasses({ a: 20, b: 80 }), f1())).toBeNull();
    expect(classImbalance(withClasses({ no: 960, yes: 40 }), makeRequirements({ task: "regression", metric: { name: "rmse", direction: "min" } }))).toBeNull();
    expect(classImbalance(withClasses({ no: 960, yes: 40 }), f1({ target: null }))).toBeNull();
  });

  it("is null when the profile does not hold every class's count", () => {
    const profile = withClasses({ a: 900, b: 95, c: 5 });
    const y = profile.columns.find((c) => c.name === "y")!;
    y.unique = 40; // more classes than the counts listed
    expect(classImbalance(profile, f1())).toBeNull();
  });
});

describe("imbalanceNotice", () => {
  const rare = { label: "yes", share: 0.04, classes: 2 };
  it("says which class is rare and how rare, and that class weights are searched", () => {
    expect(imbalanceNotice(rare, makeRequirements())).toBe('Classes are imbalanced ("yes" is 4% of rows): class weights are among the candidates.');
    expect(imbalanceNotice({ ...rare, share: 0.004 }, makeRequirements())).toContain('"yes" is under 1% of rows');
    expect(imbalanceNotice({ ...rare, share: 13 / 66 }, makeRequirements())).toContain('"yes" is 19.7% of rows');
  });

  it("adds the decision threshold for a binary target judged by F1, precision or recall", () => {
    expect(imbalanceNotice(rare, f1())).toBe(
      'Classes are imbalanced ("yes" is 4% of rows): class weights are among the candidates, and the decision threshold is chosen on the validation split for F1.',
    );
    expect(imbalanceNotice(rare, makeRequirements({ metric: { name: "recall", direction: "max" } }))).toMatch(/threshold is chosen on the validation split for recall\.$/);
    expect(imbalanceNotice({ ...rare, classes: 3 }, f1())).not.toContain("threshold");
    expect(imbalanceNotice(rare, makeRequirements({ metric: { name: "roc_auc", direction: "max" } }))).not.toContain("threshold");
  });
});

describe("class weights in the search", () => {
  const model = new OfflineModelAgent();
  const families = loadKnowledgeBase().classification.families;
  const plan = (ids: string[]): Plan => ({
    id: "plan-1",
    title: "t",
    approach: "boosting",
    summary: "s",
    preprocessing: [],
    models: ids.map((id) => ({ family: id, label: id, estimator: families.find((f) => f.id === id)!.estimator })),
    training: "",
    inference: "",
    rationale: "",
    notices: [],
  });
  const spaces = async (profile: DataProfile, ids: string[]) => {
    const [mp] = await model.decompose({ plans: [plan(ids)], dataPlans: [], requirements: f1(), profile });
    return Object.fromEntries(mp.candidates.map((c) => [c.id.split(":")[1], c.space]));
  };

  it("are searched for families that take them when a class is rare, and only then", async () => {
    const rare = await spaces(withClasses({ no: 960, yes: 40 }), ["hist_gradient_boosting", "random_forest", "logistic_regression", "knn", "mlp"]);
    for (const id of ["hist_gradient_boosting", "random_forest", "logistic_regression"])
      expect(rare[id].class_weight).toEqual({ type: "choice", values: [null, "balanced"] });
    expect(rare.knn.class_weight).toBeUndefined();
    expect(rare.mlp.class_weight).toBeUndefined();
    // the family's own space is kept
    expect(rare.random_forest.max_depth).toBeDefined();
    const balanced = await spaces(withClasses({ no: 500, yes: 500 }), ["hist_gradient_boosting", "random_forest"]);
    expect(Object.values(balanced).every((s) => !("class_weight" in s))).toBe(true);
  });

  it("are flagged on the recipe families whose estimators accept class_weight", () => {
    const kb = loadKnowledgeBase();
    const flagged = new Set(
      Object.values(kb)
        .flatMap((r) => r.families)
        .filter((f) => f.class_weight)
        .map((f) => f.estimator.split(".").pop()),
    );
    expect([...flagged].sort()).toEqual(
      ["ExtraTreesClassifier", "HistGradientBoostingClassifier", "LGBMClassifier", "LinearSVC", "LogisticRegression", "RandomForestClassifier", "SGDClassifier", "SVC", "XGBClassifier"].sort(),
    );
    // no regressor, clusterer or naive Bayes takes it
    expect(kb.regression.families.some((f) => f.class_weight)).toBe(false);
    expect(kb.text_classification.families.filter((f) => f.estimator.includes("naive_bayes")).some((f) => f.class_weight)).toBe(false);
  });
});

describe("class weights with the LLM engine", () => {
  it("stay a choice whatever the model proposes for them", async () => {
    const families = loadKnowledgeBase().classification.families;
    const rf = families.find((f) => f.id === "random_forest")!;
    const plan: Plan = { id: "plan-1", title: "t", approach: "bagging", summary: "s", preprocessing: [], models: [{ family: rf.id, label: rf.label, estimator: rf.estimator }], training: "", inference: "", rationale: "", notices: [] };
    const answer = { plans: [{ plan_id: "plan-1", candidates: [{ family: "random_forest", ranges: { class_weight: [null], min_samples_leaf: { low: 2, high: 4 } }, expected: null, note: "" }] }] };
    const client = {
      json: async <T>(req: LlmRequest & { schema: z.ZodType<T> }) => req.schema.parse(answer),
      text: async () => "",
    } as unknown as Client;
    const [mp] = await new LlmModelAgent(client).decompose({ plans: [plan], dataPlans: [], requirements: f1(), profile: withClasses({ no: 960, yes: 40 }) });
    expect(mp.candidates[0].space.class_weight).toEqual({ type: "choice", values: [null, "balanced"] });
    // the model's other narrowing still applies
    expect(mp.candidates[0].space.min_samples_leaf).toEqual({ type: "int", low: 2, high: 4 });
  });
});

describe("the plan says so", () => {
  const manager = new OfflineManagerAgent();
  const plan = (profile: DataProfile, requirements: Requirements) =>
    manager.plan({ requirements, profile, knowledge: [], count: 3, feedback: [], failures: [], installed: {} });

  it("once, on the first plan, when a class is rare", async () => {
    const plans = await plan(withClasses({ no: 960, yes: 40 }), f1());
    expect(plans[0].notices).toContain(
      'Classes are imbalanced ("yes" is 4% of rows): class weights are among the candidates, and the decision threshold is chosen on the validation split for F1.',
    );
    expect(plans.slice(1).flatMap((p) => p.notices).some((n) => n.startsWith("Classes are imbalanced"))).toBe(false);
  });

  it("not when the classes are balanced", async () => {
    const plans = await plan(withClasses({ no: 500, yes: 500 }), f1());
    expect(plans.flatMap((p) => p.notices).some((n) => n.startsWith("Classes are imbalanced"))).toBe(false);
  });
});
