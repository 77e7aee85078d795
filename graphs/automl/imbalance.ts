import { oneLine } from "./format.js";
import { isClassification, type Requirements } from "../../src/schema/requirements.js";
import type { DataProfile } from "./agents/types.js";
import { METRIC_LABELS } from "./request/reading.js";

// Rare classes: a classifier trained on them as they come learns to ignore the minority, so class weights
// become a searched choice, and the plan card says so.

/** A minority class below this share of the labelled rows counts as rare. */
export const RARE_CLASS_SHARE = 0.2;
/** Metrics whose decision threshold the harness tunes on the validation split (binary classifiers only). */
const THRESHOLD_METRICS = new Set(["f1", "precision", "recall"]);

export interface Imbalance {
  /** The rarest class, as written in the file. */
  label: string;
  /** Its share of the labelled rows (0-1). */
  share: number;
  classes: number;
}

/** The rarest class of a classification target when it is rare, else null. */
export function classImbalance(profile: DataProfile, req: Pick<Requirements, "task" | "target">): Imbalance | null {
  if (!isClassification(req.task) || !req.target) return null;
  const target = profile.columns.find((c) => c.name === req.target);
  // `top` holds every class only when there are at most 20 of them; past that the shares are unknown.
  if (!target || target.top.length < 2 || target.unique > target.top.length) return null;
  const labelled = target.top.reduce((n, t) => n + t.count, 0);
  const rarest = target.top.reduce((a, t) => (t.count < a.count ? t : a));
  const share = rarest.count / labelled;
  return share < RARE_CLASS_SHARE ? { label: rarest.value, share, classes: target.top.length } : null;
}

/** The plan notice: `Classes are imbalanced ("yes" is 4% of rows): class weights are among the candidates…`. */
export function imbalanceNotice(imbalance: Imbalance, req: Pick<Requirements, "metric">): string {
  // 19.7% stays 19.7%: rounded to 20% it would read as not rare
  const p = imbalance.share * 100;
  const percent = p < 1 ? "under 1%" : `${Math.round(p) >= RARE_CLASS_SHARE * 100 ? p.toFixed(1) : Math.round(p)}%`;
  const label = oneLine(imbalance.label, 40);
  const threshold =
    imbalance.classes === 2 && THRESHOLD_METRICS.has(req.metric.name)
      ? `, and the decision threshold is chosen on the validation split for ${METRIC_LABELS[req.metric.name]}`
      : "";
  return `Classes are imbalanced ("${label}" is ${percent} of rows): class weights are among the candidates${threshold}.`;
}
