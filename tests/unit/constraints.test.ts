import { describe, expect, it } from "vitest";
import { better, checkConstraints, compare, degenerateReason, unconfirmedClaims } from "../../graphs/automl/constraints.js";
import { printedClaims } from "../../graphs/automl/jobs.js";
import { HarnessResult } from "../../runners/contract.js";
import { makeRequirements as req } from "../helpers/requirements.js";

const result = HarnessResult.parse({
  status: "ok",
  mode: "train",
  task: "classification",
  metrics: { accuracy: 0.96, f1: 0.95 },
  complexity: { latency_ms_per_row: 3.2, train_time_s: 12, model_size_mb: 60 },
});

describe("constraints", () => {
  it("compares with every operator", () => {
    expect(compare(1, ">=", 1)).toBe(true);
    expect(compare(1, ">", 1)).toBe(false);
    expect(compare(1, "<=", 1)).toBe(true);
    expect(compare(1, "<", 1)).toBe(false);
  });

  it("checks metrics and complexity, and marks what was not measured", () => {
    const checks = checkConstraints(
      [
        { name: "accuracy", op: ">=", target: 0.95 },
        { name: "latency_ms_per_row", op: "<", target: 5 },
        { name: "model_size_mb", op: "<=", target: 50 },
        { name: "gpu_memory_mb", op: "<=", target: 8192 },
      ],
      result,
    );
    expect(checks.map((c) => c.met)).toEqual([true, true, false, null]);
    expect(checks[2].actual).toBe(60);
  });

  it("knows metric directions", () => {
    expect(better("rmse", 1, 2)).toBe(true);
    expect(better("accuracy", 1, 2)).toBe(false);
    expect(better("accuracy", 0.5, null)).toBe(true);
  });

  it("flags chance-level classifiers and negative R²", () => {
    expect(degenerateReason(req({}), { ...result, metrics: { accuracy: 0.6 } }, 0.6)).toMatch(/majority/);
    expect(degenerateReason(req({}), result, 0.6)).toBeNull();
    const reg = req({ task: "regression", metric: { name: "rmse", direction: "min" } });
    expect(degenerateReason(reg, { ...result, task: "regression", metrics: { r2: -0.2, rmse: 3 } }, null)).toMatch(/R²/);
    expect(degenerateReason(req({}), { ...result, metrics: { accuracy: 1.4 } }, 0.5)).toMatch(/outside/);
  });

  it("judges a rare-class model tuned for F1 by balanced accuracy, not by the majority rate", () => {
    const f1 = req({ metric: { name: "f1", direction: "max" } });
    // a threshold chosen for F1 on 4% positives: accuracy below the majority rate, yet the classes are told apart
    const tuned = { ...result, classes: [0, 1], metrics: { accuracy: 0.93, balanced_accuracy: 0.74, f1: 0.38 } };
    expect(degenerateReason(f1, tuned, 0.96)).toBeNull();
    const chance = { ...result, classes: [0, 1], metrics: { accuracy: 0.96, balanced_accuracy: 0.5, f1: 0 } };
    expect(degenerateReason(f1, chance, 0.96)).toMatch(/no better than chance \(0\.500\)/);
    const threeClasses = { ...result, classes: ["a", "b", "c"], metrics: { accuracy: 0.5, balanced_accuracy: 0.3, f1: 0.2 } };
    expect(degenerateReason(req({ metric: { name: "f1", direction: "max" } }), threeClasses, 0.5)).toMatch(/chance \(0\.333\)/);
  });
});

describe("claims the harness does not confirm", () => {
  const withValid = { ...result, valid_metrics: { accuracy: 0.94 } };
  it("accepts claims that match the test or validation numbers", () => {
    expect(unconfirmedClaims({ accuracy: 0.961, valid_accuracy: 0.94 }, withValid)).toEqual([]);
  });
  it("flags a claim far from the measured value, or one never measured", () => {
    expect(unconfirmedClaims({ accuracy: 0.99 }, withValid)[0]).toMatch(/reported accuracy = 0.99, but the harness measured 0.9600/);
    expect(unconfirmedClaims({ rmse: 1 }, withValid)[0]).toMatch(/did not measure/);
  });
  it("reads metric lines the code printed", () => {
    const stderr = 'training...\n{"event": "metric", "name": "accuracy", "value": 0.995}\nnoise';
    expect(printedClaims(stderr)).toEqual({ accuracy: 0.995 });
  });
});
