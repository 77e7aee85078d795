import { describe, expect, it } from "vitest";
import { OfflineManagerAgent } from "../../graphs/automl/agents/offline/manager.js";
import { loadKnowledgeBase, retrieveLocal } from "../../graphs/automl/knowledge/index.js";
import type { DataProfile, RankedCandidate, SelectInput } from "../../graphs/automl/agents/types.js";
import { harnessInputs, metricGoal } from "../../graphs/automl/harness-inputs.js";
import { preferRequested } from "../../graphs/automl/nodes/select.js";
import { makeProfile, makeRequirements } from "../helpers/requirements.js";

const manager = new OfflineManagerAgent();
const plan = (over: Partial<Parameters<OfflineManagerAgent["plan"]>[0]> = {}) =>
  manager.plan({ requirements: makeRequirements(), profile: makeProfile(), knowledge: [], count: 3, feedback: [], failures: [], installed: {}, ...over });

describe("recipe knowledge base", () => {
  it("is valid and covers every approach it lists", () => {
    const kb = loadKnowledgeBase();
    for (const recipes of Object.values(kb)) {
      for (const approach of recipes.approaches) expect(recipes.families.some((f) => f.approach === approach)).toBe(true);
      for (const f of recipes.families) {
        expect(f.estimator).toMatch(/^[a-z_.]+\.[A-Z]\w+$/);
        if (f.strategy) expect(["direct", "recursive"]).toContain(f.strategy);
        if (f.requires.length) expect(recipes.families.some((g) => g.id === f.substitute)).toBe(true);
      }
    }
    expect(retrieveLocal("regression").length).toBeGreaterThan(3);
    expect(retrieveLocal("image_classification").some((k) => /convolutional/.test(k.text))).toBe(true);
    expect(retrieveLocal("object_detection")).toEqual([]);
    expect(retrieveLocal("text_classification").some((k) => /TF-IDF/.test(k.text))).toBe(true);
  });

  it("offers text classification only families that take sparse input", () => {
    const text = loadKnowledgeBase().text_classification;
    expect(text.families.every((f) => !f.dense_only)).toBe(true);
    expect(text.families.map((f) => f.estimator)).toEqual(
      expect.arrayContaining(["sklearn.linear_model.LogisticRegression", "sklearn.svm.LinearSVC", "sklearn.naive_bayes.ComplementNB"]),
    );
    // naive Bayes needs non-negative features: no standardisation
    for (const f of text.families.filter((f) => f.estimator.includes("naive_bayes"))) expect(f.preprocess.scale).toBe(false);
  });
});

/** A profile with a free-text column, as the profiler reports product descriptions. */
function textProfile(): DataProfile {
  const base = makeProfile();
  return {
    ...base,
    columns: [
      ...base.columns.filter((c) => c.name !== "b"),
      { name: "description", kind: "text", missing: 2, unique: 990, examples: ["Wireless bluetooth headphones with case"], stats: null, top: [], suspect: null },
    ],
  };
}

describe("offline planner", () => {
  it("gives P plans from different approaches", async () => {
    const plans = await plan();
    expect(plans).toHaveLength(3);
    expect(new Set(plans.map((p) => p.approach)).size).toBe(3);
    expect(plans[0].models[0].family).toBe("hist_gradient_boosting");
    expect(plans.every((p) => p.preprocessing.length > 0 && p.summary.length > 0)).toBe(true);
  });

  it("honours P", async () => {
    expect(await plan({ count: 1 })).toHaveLength(1);
    expect(await plan({ count: 5 })).toHaveLength(5);
  });

  it("substitutes a requested model that is not installed, and says so", async () => {
    const plans = await plan({ requirements: makeRequirements({ requested_models: ["xgboost"] }) });
    expect(plans[0].models[0].family).toBe("hist_gradient_boosting");
    expect(plans[0].notices.join(" ")).toMatch(/XGBoost.*not installed.*Histogram gradient boosting/);
  });

  it("uses a requested model that is installed", async () => {
    const plans = await plan({ requirements: makeRequirements({ requested_models: ["xgboost"] }), installed: { xgboost: true } });
    expect(plans[0].models[0].family).toBe("xgboost");
    expect(plans[0].notices).toEqual([]);
  });

  it("puts the user's revision first and drops refused families", async () => {
    const plans = await plan({ feedback: ["try a random forest, and no logistic regression"] });
    expect(plans[0].models[0].family).toBe("random_forest");
    expect(plans.flatMap((p) => p.models.map((m) => m.family))).not.toContain("logistic_regression");
  });

  it("leaves out approaches that were already tried", async () => {
    const plans = await plan({ failures: ["boosting", "linear", "bagging"] });
    expect(plans.map((p) => p.approach)).toEqual(["kernel", "neural"]);
  });

  it("leaves out families that do not fit large data", async () => {
    const plans = await plan({ profile: makeProfile(50_000), count: 5 });
    expect(plans.flatMap((p) => p.models.map((m) => m.family))).not.toContain("svm");
  });

  it("plans clustering and regression", async () => {
    const clusters = await plan({ requirements: makeRequirements({ task: "clustering", target: null, metric: { name: "silhouette", direction: "max" } }) });
    expect(clusters[0].models[0].estimator).toMatch(/cluster|mixture/);
    const reg = await plan({ requirements: makeRequirements({ task: "regression", metric: { name: "rmse", direction: "min" } }) });
    expect(reg.map((p) => p.approach)).toContain("linear");
  });

  it("plans text classification with three different sparse-friendly approaches", async () => {
    const requirements = makeRequirements({ task: "text_classification" });
    const plans = await plan({ requirements, profile: textProfile() });
    expect(plans.map((p) => p.approach)).toEqual(["linear", "margin", "probabilistic"]);
    const families = plans.flatMap((p) => p.models.map((m) => m.family));
    expect(families).toEqual(expect.arrayContaining(["logistic_regression", "linear_svm", "complement_nb"]));
    expect(plans[0].preprocessing.join(" ")).toMatch(/TF-IDF on "description"/);
    expect(plans[0].preprocessing.join(" ")).toMatch(/stratified/);
    expect(plans[0].summary).toMatch(/text classification of "y"/);
  });

  it("says when a requested model is not offered for text", async () => {
    const plans = await plan({ requirements: makeRequirements({ task: "text_classification", requested_models: ["mlp"] }), profile: textProfile() });
    expect(plans[0].notices.join(" ")).toMatch(/mlp is not offered for text classification/);
  });

  it("leaves out families that need dense input when a tabular task has a text column", async () => {
    const reg = await plan({ requirements: makeRequirements({ task: "regression", metric: { name: "rmse", direction: "min" } }), profile: textProfile(), count: 5 });
    const families = reg.flatMap((p) => p.models.map((m) => m.family));
    expect(families).not.toContain("hist_gradient_boosting");
    expect(families).toContain("random_forest");
    const asked = await plan({
      requirements: makeRequirements({ task: "regression", metric: { name: "rmse", direction: "min" }, requested_models: ["hist_gradient_boosting"] }),
      profile: textProfile(),
    });
    expect(asked[0].notices.join(" ")).toMatch(/Histogram gradient boosting was requested but needs dense input/);
    // a dropped text column leaves the data dense again
    const dropped = await plan({ requirements: makeRequirements({ task: "regression", metric: { name: "rmse", direction: "min" }, drop_columns: ["description"] }), profile: textProfile() });
    expect(dropped[0].models[0].family).toBe("hist_gradient_boosting");
  });
});

describe("metric goal for the harness", () => {
  it("is the bound the user set on the primary metric, in its better direction", () => {
    const f1 = { name: "f1" as const, direction: "max" as const };
    expect(metricGoal(makeRequirements({ metric: f1, constraints: [{ name: "f1", op: ">=", target: 0.6 }] }))).toBe(0.6);
    expect(metricGoal(makeRequirements({ metric: f1, constraints: [{ name: "train_time_s", op: "<=", target: 60 }, { name: "f1", op: ">", target: 0.7 }] }))).toBe(0.7);
    // a cap on it, a goal on another metric, or none at all is no goal
    expect(metricGoal(makeRequirements({ metric: f1, constraints: [{ name: "f1", op: "<=", target: 0.9 }] }))).toBeNull();
    expect(metricGoal(makeRequirements({ metric: f1, constraints: [{ name: "recall", op: ">=", target: 0.8 }] }))).toBeNull();
    expect(metricGoal(makeRequirements({ metric: f1 }))).toBeNull();
    expect(metricGoal(makeRequirements({ task: "regression", metric: { name: "rmse", direction: "min" }, constraints: [{ name: "rmse", op: "<", target: 20000 }] }))).toBe(20000);
  });

  it("goes into the harness spec", () => {
    const req = makeRequirements({ metric: { name: "f1", direction: "max" }, constraints: [{ name: "f1", op: ">=", target: 0.6 }] });
    expect(harnessInputs(makeProfile(), req, 42).spec.metric_goal).toBe(0.6);
    expect(harnessInputs(makeProfile(), makeRequirements(), 42).spec.metric_goal).toBeNull();
  });
});

describe("requested models are built", () => {
  const cand = (id: string, label: string, score: number | null, error?: string): RankedCandidate => ({
    id,
    label,
    estimator: `est.${id.split(":")[1]}`,
    preprocess: { scale: false, encode: "ordinal" },
    params: {},
    score,
    trials: 4,
    ...(error ? { error } : {}),
  });
  const input = (requested: string[], candidates: RankedCandidate[][]): SelectInput => ({
    requirements: makeRequirements({ metric: { name: "f1", direction: "max" }, requested_models: requested }),
    plans: [],
    executions: candidates.map((c, i) => ({ planId: `plan-${i + 1}`, metric: "f1", candidates: c, dataFindings: [] })),
    verdicts: [],
    dataPlans: [{ planId: "plan-1", steps: [], dropColumns: ["id"], preprocess: { scale: false, encode: "ordinal" }, findings: [] }],
    chosenPlanId: "best",
  });
  const choose = async (i: SelectInput) => preferRequested(await manager.select(i), i);

  it("builds the requested family when it scored, and says what scored better", async () => {
    const i = input(["xgboost"], [[cand("plan-1:xgboost", "XGBoost", 0.71), cand("plan-1:hist_gradient_boosting", "Histogram gradient boosting", 0.7)], [cand("plan-2:random_forest", "Random forest", 0.73)]]);
    const out = await choose(i);
    expect(out.candidate.id).toBe("plan-1:xgboost");
    expect(out.planId).toBe("plan-1");
    expect(out.dropColumns).toEqual(["id"]);
    expect(out.notes).toEqual(["XGBoost scored F1 0.710 in cross-validation; Random forest scored 0.730 but you asked for XGBoost."]);
    // the others stay alternatives, best first
    expect(out.alternatives.map((c) => c.id)).toEqual(["plan-2:random_forest", "plan-1:hist_gradient_boosting"]);
  });

  it("keeps the manager's choice when it is the requested family, or when nothing was requested", async () => {
    const both = [[cand("plan-1:xgboost", "XGBoost", 0.75)], [cand("plan-2:random_forest", "Random forest", 0.73)]];
    const requested = await choose(input(["xgboost"], both));
    expect(requested.candidate.id).toBe("plan-1:xgboost");
    expect(requested.notes[0]).toMatch(/the best of 2 candidate/);
    const none = await choose(input([], [[cand("plan-1:xgboost", "XGBoost", 0.7)], [cand("plan-2:random_forest", "Random forest", 0.73)]]));
    expect(none.candidate.id).toBe("plan-2:random_forest");
  });

  it("says why when the requested family produced no score, and builds the best other one", async () => {
    const error = "value_error: ValueError: Invalid classes inferred from unique values of `y`.\nExpected: [0 1], got ['N' 'Y']";
    const out = await choose(input(["xgboost"], [[cand("plan-1:xgboost", "XGBoost", null, error)], [cand("plan-2:random_forest", "Random forest", 0.73)]]));
    expect(out.candidate.id).toBe("plan-2:random_forest");
    expect(out.notes.at(-1)).toBe(
      "You asked for XGBoost, but it produced no cross-validation score (XGBoost: value_error: ValueError: Invalid classes inferred from unique values of `y`. Expected: [0 1], got ['N' 'Y']); building Random forest instead.",
    );
  });

  it("counts the stand-in for a requested family that is not installed", async () => {
    const out = await choose(input(["xgboost"], [[cand("plan-1:hist_gradient_boosting", "Histogram gradient boosting", 0.7)], [cand("plan-2:random_forest", "Random forest", 0.73)]]));
    expect(out.candidate.id).toBe("plan-1:hist_gradient_boosting");
    expect(out.notes[0]).toMatch(/^Histogram gradient boosting scored F1 0\.700 in cross-validation; Random forest scored 0\.730 but you asked for XGBoost \(its stand-in/);
  });

  it("stays within the plan the user chose", async () => {
    const i = { ...input(["xgboost"], [[cand("plan-1:xgboost", "XGBoost", 0.7)], [cand("plan-2:random_forest", "Random forest", 0.73)]]), chosenPlanId: "plan-2" };
    expect((await choose(i)).candidate.id).toBe("plan-2:random_forest");
  });
});
