// The accountability rule: every number and every column the request names ends up in a field or in a
// question. This file states the reading back (the plan card's "I read: …" line), lists which words
// became which field, and turns an unplaced number into a targeted question.

import { METRICS_BY_TASK, metricDirection, type Constraint, type MetricName, type Reading, type Requirements, type TaskKind } from "../../../src/schema/requirements.js";
import type { Conversation, DataProfile } from "../agents/types.js";
import { parseRequest, type ParsedRequest } from "./parse.js";
import type { PlacedNumber } from "./numbers.js";
import { UNIT_INTERVAL_METRICS } from "./lexicon.js";

export const METRIC_LABELS: Record<MetricName, string> = {
  accuracy: "accuracy",
  f1: "F1",
  precision: "precision",
  recall: "recall",
  roc_auc: "ROC AUC",
  rmse: "RMSE",
  rmsle: "RMSLE",
  mae: "MAE",
  r2: "R²",
  rand_index: "Rand index",
  adjusted_rand_index: "adjusted Rand index",
  nmi: "NMI",
  silhouette: "silhouette",
  mape: "MAPE",
  smape: "sMAPE",
};

const OPS: Record<Constraint["op"], string> = { ">=": "≥", ">": ">", "<=": "≤", "<": "<" };

/** A number as the user would write it: 0.8, 5, 25000, 0.293. */
function plain(n: number): string {
  return String(Number(n.toPrecision(4)));
}

function seconds(s: number): string {
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600} h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60} min`;
  return `${plain(s)} s`;
}

function megabytes(mb: number): string {
  if (mb >= 1024 && (mb / 1024) % 1 === 0) return `${mb / 1024} GB`;
  if (mb < 1) return `${plain(mb * 1024)} KB`;
  return `${plain(mb)} MB`;
}

/** One constraint in words: "ROC AUC > 0.8", "training ≤ 5 min", "model < 300 KB". */
export function constraintWords(c: Pick<Constraint, "name" | "op" | "target">): string {
  const op = OPS[c.op];
  switch (c.name) {
    case "train_time_s":
      return `training ${op} ${seconds(c.target)}`;
    case "test_predict_s":
      return `test predictions ${op} ${seconds(c.target)}`;
    case "latency_ms_per_row":
      return `latency ${op} ${plain(c.target)} ms per row`;
    case "model_size_mb":
      return `model ${op} ${megabytes(c.target)}`;
    case "gpu_memory_mb":
      return `GPU memory ${op} ${megabytes(c.target)}`;
    default:
      return `${METRIC_LABELS[c.name as MetricName] ?? c.name} ${op} ${plain(c.target)}`;
  }
}

const list = (names: readonly string[]) => names.join(", ");
/** The words of a drop binding for a column that predicts the target on its own (graphs/automl/data/leakage.ts). */
export const LEFT_OUT_LEAK = "left out: predicts the target on its own";

/** The requirements stated back on one line, in the order a person would check them. */
export function readingLine(req: Requirements): string {
  const parts: string[] = [];
  if (req.task === "clustering") {
    parts.push(req.n_clusters ? `cluster into ${req.n_clusters} groups` : "cluster (the number of groups searched)");
    if (req.labels_column) parts.push(`judged against ${req.labels_column}`);
  } else if (req.task === "time_series_forecasting" && req.forecast) {
    parts.push(`forecast ${req.target} ${req.forecast.horizon} step${req.forecast.horizon === 1 ? "" : "s"} ahead over ${req.forecast.time_column}`);
  } else if (req.target) {
    const what = req.task === "regression" ? "predict" : req.task === "text_classification" ? "classify text into" : "predict";
    const positive = req.positive_class && !/^(?:1|true|yes)$/i.test(req.positive_class) ? ` (positive: ${req.positive_class})` : "";
    parts.push(`${what} ${req.target}${positive}`);
  }
  const metricGoals = req.constraints.filter((c) => c.name in METRIC_LABELS);
  if (metricGoals.length === 0) parts.push(`judged by ${METRIC_LABELS[req.metric.name]}`);
  parts.push(...metricGoals.map(constraintWords));
  if (req.drop_columns.length) parts.push(`leaving out ${list(req.drop_columns)}`);
  parts.push(...req.constraints.filter((c) => !(c.name in METRIC_LABELS)).map(constraintWords));
  if (req.requested_models.length) parts.push(`with ${list(req.requested_models.map((m) => m.replace(/_/g, " ")))}`);
  return `I read: ${parts.join(" · ")}`;
}

/** Which words became which field, for the requirements record. */
export function readingOf(req: Requirements, parsed: ParsedRequest, answers: Record<string, string> = {}): Reading {
  const bindings: Reading["bindings"] = [];
  const wordsFor = (column: string) => parsed.columnMentions.find((m) => m.column === column)?.written;
  const said = (slot: string, value: string | null | undefined, answered?: string) => {
    if (!value) return;
    const words = answered !== undefined ? `your answer "${answered}"` : (wordsFor(value) ?? "from the data");
    bindings.push({ slot, value, words });
  };
  said("target", req.target, answers.target);
  said("labels", req.labels_column, answers.labels);
  const leaks = new Set(req.leakage.filter((l) => !l.kept).map((l) => l.column));
  for (const c of req.drop_columns) {
    const written = wordsFor(c);
    const words = parsed.dropColumns.includes(c) && written ? written : leaks.has(c) ? LEFT_OUT_LEAK : "set aside by the data profile";
    bindings.push({ slot: "drop", value: c, words });
  }
  for (const c of req.constraints) bindings.push({ slot: "constraint", value: constraintWords(c), words: c.phrase ?? "your answer" });
  if (req.n_clusters !== null) bindings.push({ slot: "clusters", value: String(req.n_clusters), words: parsed.nClusters === req.n_clusters ? String(parsed.nClusters) : "the labels' groups" });
  if (req.positive_class) bindings.push({ slot: "positive", value: req.positive_class, words: parsed.positiveClass ?? "from the target's values" });
  const used = new Set(bindings.filter((b) => ["target", "labels", "drop"].includes(b.slot)).map((b) => b.value));
  for (const m of parsed.columnMentions) {
    if (!used.has(m.column)) {
      bindings.push({ slot: "feature", value: m.column, words: m.written });
      used.add(m.column);
    }
  }
  const unplaced = unplacedNumbers(parsed, answers).map((n) => n.raw);
  return { line: readingLine(req), bindings, unplaced };
}

/** The question slot for the i-th unplaced number ("constraint", "constraint_2", …). */
export function numberSlot(i: number): "constraint" | `constraint_${number}` {
  return i === 0 ? "constraint" : `constraint_${i + 1}`;
}

/** Numbers nothing could place, in order, skipping those already answered. */
export function unplacedNumbers(parsed: ParsedRequest, answers: Record<string, string> = {}): PlacedNumber[] {
  return parsed.numbers.filter((n) => n.use === null).filter((_, i) => answers[numberSlot(i)] === undefined);
}

const IGNORE_NUMBER = "ignore";

/** "You wrote 0.7 — which metric is that for?", with the task's metrics as choices. */
export function numberQuestion(n: PlacedNumber, index: number, task: TaskKind | null) {
  const metrics = task ? METRICS_BY_TASK[task] : (["accuracy", "f1", "roc_auc", "rmse", "mae", "r2"] as const);
  return {
    slot: numberSlot(index),
    text: `You wrote ${n.raw} — which metric is that for?`,
    choices: [...metrics.map((m) => ({ label: METRIC_LABELS[m], value: m })), { label: "ignore it", value: IGNORE_NUMBER }],
    allowFreeText: true,
  };
}

/** An answered number as a constraint: the metric the user chose, the comparison from the words before it. */
export function constraintFromAnswer(parsed: ParsedRequest, n: PlacedNumber, answer: string): Constraint | null {
  const metric = (Object.keys(METRIC_LABELS) as MetricName[]).find(
    (m) => m === answer.trim().toLowerCase() || METRIC_LABELS[m].toLowerCase() === answer.trim().toLowerCase(),
  );
  if (!metric) return null;
  const before = parsed.text.slice(Math.max(0, n.start - 30), n.start);
  const max = metricDirection(metric) === "max";
  let op: Constraint["op"] = max ? ">=" : "<=";
  if (/(?:>|\babove|\bover|\bmore\s+than|\bhigher\s+than|\bbetter\s+than)\s*$/i.test(before)) op = max ? ">" : "<";
  else if (/(?:<|\bbelow|\bunder|\bless\s+than|\blower\s+than)\s*$/i.test(before)) op = "<";
  else if (/(?:≤|<=|\bat\s+most|\bno\s+more\s+than|\bwithin)\s*$/i.test(before)) op = "<=";
  let target = n.value;
  if (UNIT_INTERVAL_METRICS.has(metric) && (n.percent || (target > 1 && target <= 100))) target /= 100;
  return { name: metric, op, target, phrase: `${n.raw} (${METRIC_LABELS[metric]}, your answer)` };
}

/** Category values per column, so "predict which tumours are malignant" can find the column holding "malignant". */
export function categoryValues(profile: DataProfile | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of profile?.columns ?? []) {
    if (c.kind === "numeric" || c.unique < 2 || c.unique > 30) continue;
    out[c.name] = c.top.map((t) => t.value).filter((v) => /\p{L}{3,}/u.test(v));
  }
  return out;
}

/** The rule reading of the whole conversation against the data, with answered numbers placed. */
export function readConversation(conversation: Conversation, profile: DataProfile | null): ParsedRequest {
  // One step reads the same conversation several times (check, both engines' parse, the plan card line):
  // the reading of a text against a profile is kept. Readers never change what they are given.
  const key = JSON.stringify([conversation.messages, conversation.answers]);
  const kept = profile ? readings.get(profile) : undefined;
  const hit = kept?.get(key);
  if (hit) return hit;
  const reading = readAnew(conversation, profile);
  if (profile) {
    const map = kept ?? new Map<string, ParsedRequest>();
    if (map.size >= 16) map.clear();
    map.set(key, reading);
    readings.set(profile, map);
  }
  return reading;
}

let readings = new WeakMap<DataProfile, Map<string, ParsedRequest>>();

/** Forget kept readings (the speed benchmark times reading, not the memory of it). */
export function forgetReadings(): void {
  readings = new WeakMap();
}

function readAnew(conversation: Conversation, profile: DataProfile | null): ParsedRequest {
  const columns = profile?.columns.map((c) => c.name);
  const parsed = parseRequest(conversation.messages.join("\n"), columns, categoryValues(profile));
  const answered: Constraint[] = [];
  parsed.numbers
    .filter((n) => n.use === null)
    .forEach((n, i) => {
      const answer = conversation.answers[numberSlot(i)];
      if (answer === undefined) return;
      const c = constraintFromAnswer(parsed, n, answer);
      if (c && !parsed.constraints.some((x) => x.name === c.name)) answered.push(c);
    });
  return answered.length ? { ...parsed, constraints: [...parsed.constraints, ...answered] } : parsed;
}
