import type { Constraint, Requirements } from "../../src/schema/requirements.js";
import { LOWER_IS_BETTER, isClassification } from "../../src/schema/requirements.js";
import type { HarnessResult } from "../../runners/contract.js";
import type { ConstraintCheck } from "./agents/types.js";

// Numeric verification: every constraint the user gave is compared with what the harness measured.

export function compare(actual: number, op: Constraint["op"], target: number): boolean {
  switch (op) {
    case ">=":
      return actual >= target;
    case ">":
      return actual > target;
    case "<=":
      return actual <= target;
    case "<":
      return actual < target;
  }
}

/** The harness value a constraint refers to: a test metric or a complexity measurement. */
export function measured(result: HarnessResult, name: string): number | null {
  const value = result.metrics[name] ?? result.complexity[name];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function checkConstraints(constraints: Constraint[], result: HarnessResult): ConstraintCheck[] {
  return constraints.map((c) => {
    const actual = measured(result, c.name);
    return { name: c.name, op: c.op, target: c.target, actual, met: actual === null ? null : compare(actual, c.op, c.target), phrase: c.phrase };
  });
}

/** True when `a` is a better value than `b` for this metric. */
export function better(metric: string, a: number | null, b: number | null): boolean {
  if (a === null) return false;
  if (b === null) return true;
  return LOWER_IS_BETTER.has(metric) ? a < b : a > b;
}

/**
 * A test score far better than the cross-validation evidence for the same candidate: with the scorer
 * computing it from held-out labels this is no forgery, but it is surprising enough to say (small
 * test split, a lucky draw, or a data problem such as duplicated rows across the split).
 */
export function implausibleGain(metric: string, test: number | null | undefined, cv: number | null | undefined): string | null {
  if (test === null || test === undefined || cv === null || cv === undefined || !Number.isFinite(test) || !Number.isFinite(cv)) return null;
  const far = LOWER_IS_BETTER.has(metric) ? cv > 0 && test < cv * 0.5 : test - cv > 0.15;
  return far ? `The test ${metric} (${test.toFixed(3)}) is far better than cross-validation promised (${cv.toFixed(3)}); check for rows duplicated across the split before relying on it.` : null;
}

/** The user's threshold on the primary metric, if they gave one. */
export function metricTarget(requirements: Requirements): Constraint | null {
  return requirements.constraints.find((c) => c.name === requirements.metric.name) ?? null;
}

/**
 * Claims the generated code made that the harness does not confirm: a claimed metric that differs from
 * the harness's value on the same name (test or validation split), or one the harness never computed.
 */
export function unconfirmedClaims(claims: Record<string, number>, result: HarnessResult): string[] {
  const out: string[] = [];
  for (const [rawName, value] of Object.entries(claims)) {
    const name = rawName.replace(/^(test|valid|val|validation)_/, "");
    const candidates = [result.metrics[name], result.valid_metrics[name]].filter((v): v is number => typeof v === "number");
    if (candidates.length === 0) out.push(`the code reported ${rawName} = ${value}, which the harness did not measure`);
    else if (!candidates.some((v) => Math.abs(v - value) <= Math.max(0.01, 0.02 * Math.abs(v))))
      out.push(`the code reported ${rawName} = ${value}, but the harness measured ${candidates.map((v) => v.toFixed(4)).join(" / ")}`);
  }
  return out;
}

/** How much worse than the seasonal-naive forecast a forecast may be before it counts as degenerate. */
const SEASONAL_NAIVE_SLACK = 1.25;

/**
 * Degenerate results: a classifier no better than always answering the majority class, a regressor
 * worse than predicting the mean, a forecast well behind the seasonal-naive one, or clustering that
 * puts everything in one group.
 */
export function degenerateReason(requirements: Requirements, result: HarnessResult, majorityRate: number | null): string | null {
  const m = result.metrics;
  if (isClassification(requirements.task)) {
    // Judged by accuracy, the majority class is the bar. Judged by F1, precision or recall, a model tuned
    // for a rare class may rightly trade accuracy below the majority rate; chance there is balanced accuracy 1/k.
    const k = result.classes?.length ?? 2;
    if (requirements.metric.name === "accuracy" && m.accuracy !== undefined && majorityRate !== null) {
      if (m.accuracy <= majorityRate + 1e-9 && majorityRate < 0.99)
        return `test accuracy ${m.accuracy.toFixed(3)} is no better than always predicting the majority class (${majorityRate.toFixed(3)})`;
    } else if (m.balanced_accuracy !== undefined && k >= 2 && m.balanced_accuracy <= 1 / k + 1e-9)
      return `test balanced accuracy ${m.balanced_accuracy.toFixed(3)} is no better than chance (${(1 / k).toFixed(3)}): the model does not tell the classes apart`;
  }
  if (requirements.task === "regression" && m.r2 !== undefined && m.r2 < 0)
    return `test R² is ${m.r2.toFixed(3)}: worse than predicting the mean`;
  // a forecast well behind repeating the last season has learnt nothing worth deploying
  const metric = requirements.metric.name;
  const naive = m[`baseline_${metric}`];
  if (requirements.task === "time_series_forecasting" && naive !== undefined && m[metric] !== undefined && m[metric] > naive * SEASONAL_NAIVE_SLACK)
    return `test ${metric} ${m[metric].toPrecision(4)} is more than ${Math.round((SEASONAL_NAIVE_SLACK - 1) * 100)}% worse than the seasonal-naive forecast's ${naive.toPrecision(4)}`;
  for (const [name, value] of Object.entries(m)) {
    if (!Number.isFinite(value)) return `metric ${name} is not a finite number`;
    if (["accuracy", "f1", "precision", "recall", "roc_auc", "rand_index", "nmi"].includes(name) && (value < 0 || value > 1))
      return `metric ${name} = ${value} is outside [0, 1]`;
  }
  return null;
}
