import type { MetricName, Requirements, TaskKind } from "../../../../src/schema/requirements.js";
import type { ParsedRequest } from "../../request/parse.js";
import { METRIC_LABELS, constraintWords } from "../../request/reading.js";
import { exactColumn } from "../offline/prompt.js";
import type { Conversation, DataProfile } from "../types.js";
import type { ParseOutput } from "./schemas.js";
import { normaliseConstraint, normaliseMetric } from "./prompt.js";
import { clip, normaliseTask } from "./shared.js";

// The LLM's reading of a request is checked against the grounded reading of the same words (the
// rule reader, which only ever names real columns and every stated number). A difference goes back to
// the model in the repair round, spelled out. Whatever it still reads differently, the words win: a
// target, labels column, cluster count, metric or task kind the user named is never overridden, and the
// thread hears where the model read otherwise (docs/llm.md §3).

export interface ReadingDiff {
  field: "target" | "labels_column" | "drop_columns" | "constraints" | "n_clusters" | "time_column" | "series_column";
  message: string;
  /** For a target disagreement: the column the words name and the one the model chose. */
  said?: string;
  chose?: string;
}

/** Names and the user's words go back to the model as short JSON strings: one line, bounded. */
const quote = (s: string) => JSON.stringify(clip(s, 80));

/** How the model's parse output differs from what the user's words say, one problem per entry. */
export function readingDifferences(out: ParseOutput, rule: ParsedRequest, profile: DataProfile, conversation: Conversation): ReadingDiff[] {
  const diffs: ReadingDiff[] = [];
  const columns = profile.columns.map((c) => c.name);
  const list = columns.map(quote).join(", ");
  const answers = conversation.answers;
  const named = (value: unknown) => (value === null || value === undefined || String(value).trim() === "" ? null : String(value));
  const task = normaliseTask(answers.task) ?? normaliseTask(out.task) ?? rule.task;

  // Names must be columns of the data.
  for (const field of ["target", "labels_column", "time_column", "series_column"] as const) {
    const value = named(out[field]);
    if (value !== null && !exactColumn(profile, value))
      diffs.push({ field, message: `${quote(value)} is not a column of ${profile.name}; the columns are ${list}.` });
  }
  for (const c of out.drop_columns) {
    if (!exactColumn(profile, c)) diffs.push({ field: "drop_columns", message: `${quote(c)} is not a column of ${profile.name}; the columns are ${list}.` });
  }

  // The column the user named as the target, unless an answer already settled it.
  const llmTarget = exactColumn(profile, named(out.target));
  if (!answers.target && rule.target && task !== "clustering" && llmTarget !== null && llmTarget !== rule.target) {
    const words = rule.columnMentions.find((m) => m.column === rule.target)?.written ?? rule.target;
    diffs.push({
      field: "target",
      said: rule.target,
      chose: llmTarget,
      message: `the user named ${quote(rule.target)} as the column to predict (their words: ${quote(words)}), not ${quote(llmTarget)}.`,
    });
  } else if (!answers.target && rule.target && task !== "clustering" && named(out.target) === null) {
    diffs.push({ field: "target", message: `the user named ${quote(rule.target)} as the column to predict; target is empty.` });
  }
  const llmLabels = exactColumn(profile, named(out.labels_column));
  if (!answers.labels && task === "clustering" && rule.labelsColumn && llmLabels !== rule.labelsColumn)
    diffs.push({ field: "labels_column", message: `the user named ${quote(rule.labelsColumn)} as the labels to judge the clusters by.` });
  if (task === "clustering" && rule.nClusters !== null && out.n_clusters !== rule.nClusters)
    diffs.push({ field: "n_clusters", message: `the user asked for ${rule.nClusters} clusters.` });

  // Every column the user left out, and every number they stated.
  const drops = new Set(out.drop_columns.map((c) => exactColumn(profile, c)).filter((c): c is string => c !== null));
  for (const c of rule.dropColumns) {
    if (!drops.has(c)) {
      const words = rule.columnMentions.find((m) => m.column === c)?.written ?? c;
      diffs.push({ field: "drop_columns", message: `the user asked to leave out ${quote(c)} (their words: ${quote(words)}).` });
    }
  }
  if (task) {
    const stated = out.constraints.map((c) => normaliseConstraint(c, task as TaskKind)).filter((c) => c !== null);
    for (const c of rule.constraints) {
      if (c.name === "n_params") continue;
      const found = stated.some((s) => s!.name === c.name && Math.abs(s!.target - c.target) <= 1e-6 * Math.max(1, Math.abs(c.target)));
      if (!found)
        diffs.push({ field: "constraints", message: `the user wrote ${quote(c.phrase ?? constraintWords(c))} (${constraintWords(c)}); constraints lacks it.` });
    }
  }
  return diffs;
}

/** Readings kept beside the requirements they shaped, for the parse step to tell the thread. */
const heldNotices = new WeakMap<Requirements, string[]>();

/** Notes that the user's words outranked the model's reading of these requirements (none when they agreed). */
export function readingNotices(req: Requirements): string[] {
  return heldNotices.get(req) ?? [];
}

/**
 * Where the model read a target, labels column, cluster count, metric or task kind other than the one
 * the user's words name, and the requirements follow the words: one sentence each for the thread.
 */
export function heldToWords(req: Requirements, out: ParseOutput, rule: ParsedRequest, profile: DataProfile): Requirements {
  const notices: string[] = [];
  const said = (what: string, model: string, user: string, so: string) =>
    notices.push(`The LLM read ${what} as ${model}, but your words say ${user}; ${so}.`);
  const llmTask = normaliseTask(out.task);
  if (rule.task !== null && llmTask !== null && llmTask !== rule.task && llmTask !== req.task)
    said("the task", taskWords(llmTask), taskWords(req.task), "ThreadML follows your words");
  const llmTarget = written(out.target);
  if (req.target !== null && req.target === rule.target && llmTarget !== null && exactColumn(profile, llmTarget) !== req.target)
    said("the column to predict", quote(llmTarget), quote(req.target), `ThreadML predicts ${quote(req.target)}`);
  const llmLabels = written(out.labels_column);
  if (req.labels_column !== null && req.labels_column === rule.labelsColumn && llmLabels !== null && exactColumn(profile, llmLabels) !== req.labels_column)
    said("the labels column", quote(llmLabels), quote(req.labels_column), `the clusters are judged against ${quote(req.labels_column)}`);
  if (req.n_clusters !== null && req.n_clusters === rule.nClusters && out.n_clusters !== null && out.n_clusters !== req.n_clusters)
    said("the number of clusters", String(out.n_clusters), String(req.n_clusters), `ThreadML makes ${req.n_clusters}`);
  const llmMetric = normaliseMetric(out.metric) ?? written(out.metric);
  if (rule.metric !== null && req.metric.name === rule.metric && llmMetric !== null && llmMetric !== rule.metric) {
    const label = METRIC_LABELS[rule.metric];
    said("the metric", quote(METRIC_LABELS[llmMetric as MetricName] ?? llmMetric), label, `models are judged by ${label}`);
  }
  if (notices.length) heldNotices.set(req, notices);
  return req;
}

const written = (value: unknown) => (value === null || value === undefined || String(value).trim() === "" ? null : clip(String(value), 80));
const taskWords = (task: string) => task.replace(/_/g, " ");
