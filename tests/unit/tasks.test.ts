import { describe, expect, it } from "vitest";
import { normaliseTask } from "../../graphs/automl/agents/llm/shared.js";
import { loadKnowledgeBase } from "../../graphs/automl/knowledge/index.js";
import { HarnessSpec } from "../../runners/contract.js";
import { METRIC_NAMES, METRICS_BY_TASK, TABULAR_TASKS, defaultMetric, harnessTaskOf, harnessVariantOf, isClassification } from "../../src/schema/requirements.js";
import { TASK_KINDS, TASK_SPECS, taskSpec } from "../../src/schema/tasks.js";

// The task registry (src/schema/tasks.ts) and what the rest derives from it.

describe("task registry", () => {
  it("has one entry per kind, in the schema's order", () => {
    expect(TASK_KINDS).toEqual([
      "classification",
      "regression",
      "clustering",
      "image_classification",
      "text_classification",
      "time_series_forecasting",
      "node_classification",
    ]);
    expect(new Set(TASK_SPECS.map((t) => t.kind)).size).toBe(TASK_SPECS.length);
    expect(TABULAR_TASKS).toEqual(["classification", "regression", "clustering"]);
  });

  it("maps each kind onto the harness", () => {
    const harness = Object.fromEntries(TASK_KINDS.map((k) => [k, [harnessVariantOf(k), harnessTaskOf(k)]]));
    expect(harness).toEqual({
      classification: ["tabular", "classification"],
      regression: ["tabular", "regression"],
      clustering: ["tabular", "clustering"],
      image_classification: ["images", "classification"],
      text_classification: ["tabular", "classification"],
      time_series_forecasting: ["timeseries", "regression"],
      node_classification: ["graph", "classification"],
    });
    expect(TASK_KINDS.filter(isClassification)).toEqual(["classification", "image_classification", "text_classification", "node_classification"]);
  });

  it("lists known metrics, the default first", () => {
    for (const t of TASK_SPECS) {
      for (const m of t.metrics) expect(METRIC_NAMES).toContain(m);
      expect(METRICS_BY_TASK[t.kind]).toEqual(t.metrics);
    }
    expect(defaultMetric("regression")).toBe("rmse");
    expect(defaultMetric("time_series_forecasting")).toBe("rmse");
    expect(defaultMetric("clustering")).toBe("silhouette");
    expect(defaultMetric("clustering", true)).toBe("rand_index");
    expect(defaultMetric("node_classification", true)).toBe("accuracy");
  });

  it("carries the requirements schema's words for each kind", () => {
    expect(taskSpec("time_series_forecasting")).toMatchObject({ label: "time-series forecasting", area: "time-series analysis", modality: ["time series"], dataType: "time series" });
    expect(taskSpec("classification")).toMatchObject({ area: "tabular data analysis", downstreamTask: "tabular classification", modality: ["tabular"], dataType: "tabular" });
    for (const t of TASK_SPECS) {
      for (const source of [t.words.names, ...(t.words.withClassify?.all ?? []), ...(t.words.hints ?? []), t.synonyms]) {
        if (source !== undefined) expect(() => new RegExp(source, "i")).not.toThrow();
      }
    }
  });

  it("has recipes for every kind", () => {
    expect(Object.keys(loadKnowledgeBase()).sort()).toEqual([...TASK_KINDS].sort());
  });

  it("reads a kind from free wording, the specific kinds before the plain ones", () => {
    const cases: Record<string, string | null> = {
      "Image classification": "image_classification",
      "sentiment classification": "text_classification",
      "time series forecasting": "time_series_forecasting",
      "graph node classification": "node_classification",
      "k-means clustering": "clustering",
      "customer segmentation": "clustering",
      "Regression": "regression",
      "binary classification": "classification",
      "regression or classification": "regression",
      text_classification: "text_classification",
      unknown: null,
      "recommendation": null,
    };
    for (const [words, kind] of Object.entries(cases)) expect([words, normaliseTask(words)]).toEqual([words, kind]);
  });

  it("checks a variant's harness task in the spec", () => {
    const base = { mode: "train", data: "x.zip", target: "label", metric: "accuracy", variant: "images", images: {} };
    expect(HarnessSpec.safeParse({ ...base, task: "classification" }).success).toBe(true);
    const wrong = HarnessSpec.safeParse({ ...base, task: "regression" });
    expect(wrong.success).toBe(false);
    expect(wrong.error?.issues[0].message).toBe('the images variant runs as task "classification"');
  });
});
