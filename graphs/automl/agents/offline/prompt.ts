import {
  METRIC_NAMES,
  METRICS_BY_TASK,
  Requirements,
  TRAINABLE_TASKS,
  defaultMetric,
  isClassification,
  metricDirection,
  type Constraint,
  type TaskKind,
} from "../../../../src/schema/requirements.js";
import { taskSpec } from "../../../../src/schema/tasks.js";
import type { Conversation, DataProfile, PromptAgent } from "../types.js";
import { parseRequest, type ParsedRequest } from "../../request/parse.js";
import { readConversation } from "../../request/reading.js";
import { columnCandidates, squash } from "../../request/columns.js";
import { textFeatureColumns } from "../../data/profile.js";
import { forecastOf, graphOf, imagesOf, imageTarget, readForecast, taskFromData } from "./variants.js";

/** Everything the conversation has said so far, read with the answers to questions on top. */
export interface Understanding {
  parsed: ParsedRequest;
  /** The target as written, when it matches no column of the file. */
  unknownTarget: string | null;
  task: TaskKind | null;
  target: string | null;
  labelsColumn: string | null;
  /** How the task was decided, for the plan card ("you said", "the target column is numeric"). */
  taskReason: string;
}

// More distinct whole numbers than this are a quantity (days in hospital, a count), not classes.
const REGRESSION_MIN_UNIQUE = 10;

/** Classification or regression, from the target column itself. */
export function taskFromTarget(profile: DataProfile, target: string): { task: TaskKind; reason: string } {
  const column = profile.columns.find((c) => c.name === target);
  if (!column || column.kind !== "numeric" || !column.stats) return { task: "classification", reason: `the target "${target}" holds categories` };
  if (!column.stats.integer) return { task: "regression", reason: `the target "${target}" holds continuous numbers` };
  if (column.unique > REGRESSION_MIN_UNIQUE)
    return { task: "regression", reason: `the target "${target}" holds ${column.unique} distinct numbers` };
  return { task: "classification", reason: `the target "${target}" has only ${column.unique} distinct values` };
}

/** An LLM's column name to a real column: the same name in another case or form, nothing looser. */
export function exactColumn(profile: DataProfile | null, value: string | undefined | null): string | null {
  if (!value || !profile) return null;
  const names = profile.columns.map((c) => c.name);
  if (names.includes(value)) return value;
  const hits = names.filter((c) => squash(c) === squash(value.replace(/^[`'"]|[`'"]$/g, "")));
  return hits.length === 1 ? hits[0] : null;
}

/** A person's answer to a real column: exact, then any spelling that fits one column only ("sale price", "survival"). */
export function resolveColumn(profile: DataProfile | null, value: string | undefined | null): string | null {
  if (!value || !profile) return null;
  const names = profile.columns.map((c) => c.name);
  if (names.includes(value)) return value;
  const hits = columnCandidates(value.replace(/^[`'"]|[`'"]$/g, ""), names);
  return hits.length === 1 ? hits[0] : null;
}

export function understand(conversation: Conversation, profile: DataProfile | null): Understanding {
  const parsed = readConversation(conversation, profile);
  const answeredTask = conversation.answers.task as TaskKind | undefined;
  let task: TaskKind | null = answeredTask ?? parsed.task;
  let taskReason = task ? "as requested" : "";
  let target = resolveColumn(profile, conversation.answers.target) ?? parsed.target;
  const labelsColumn = resolveColumn(profile, conversation.answers.labels) ?? parsed.labelsColumn;
  // "forecast total charges" over a table with no time column is a plain prediction; the target decides
  if (task === "time_series_forecasting" && profile && !profile.time && !parsed.horizon && !answeredTask) {
    task = null;
    taskReason = "";
  }
  if (!task && parsed.nClusters !== null) {
    task = "clustering";
    taskReason = "you asked for groups";
  }
  if (!answeredTask) {
    const fromData = taskFromData(task, profile, parsed);
    if (fromData.task !== task) {
      task = fromData.task;
      taskReason = fromData.reason;
    }
  }
  // free text is what a model reads, not what it predicts: such a target was a misreading
  const targetKind = target && profile ? profile.columns.find((c) => c.name === target)?.kind : undefined;
  if (targetKind === "text" && !conversation.answers.target) target = null;
  if (!task && target && profile) ({ task, reason: taskReason } = taskFromTarget(profile, target));
  // "predict the sales channel" named no task but said "sales": categories decide it is classification
  if (task === "regression" && targetKind && targetKind !== "numeric" && !answeredTask) {
    task = "classification";
    taskReason = `the target "${target}" holds categories`;
  }
  if (task === "classification" && profile) {
    const promoted = withTextFeatures(task, profile, target, parsed.dropColumns, saysText(parsed, profile));
    if (promoted.task !== task) {
      task = promoted.task;
      taskReason = [taskReason, promoted.reason].filter(Boolean).join("; ");
    }
  }
  // images: the labels table's one label column, or the class folders, when the words named none
  const imageLabel = task === "image_classification" && profile && !target ? imageTarget(profile) : null;
  const chosen = target ?? imageLabel;
  const written = profile && !chosen ? parseRequest(conversation.messages.join("\n")).target : null;
  return { parsed, unknownTarget: written, task, target: task === "clustering" ? null : chosen, labelsColumn, taskReason };
}

/** Does the request speak of the text itself: a free-text column by name, or words for texts and sentiment? */
function saysText(parsed: ParsedRequest, profile: DataProfile): boolean {
  const textColumns = new Set(profile.columns.filter((c) => c.kind === "text").map((c) => c.name));
  return parsed.columnMentions.some((m) => textColumns.has(m.column)) || /\b(?:reviews?|texts?|comments?|tweets?|messages?|emails?|sentiment|sentences?|documents?|posts?)\b/i.test(parsed.text);
}

/**
 * Classification whose only features are free text is text classification: the text becomes TF-IDF
 * features, which are sparse, and the text recipes hold the models that suit them. A long string
 * column beside ordinary columns (a passenger's name, say) does not turn a tabular task into a text
 * task; the user can still ask for text classification in words.
 */
export function withTextFeatures(
  task: TaskKind,
  profile: DataProfile,
  target: string | null,
  dropColumns: readonly string[],
  aboutText = false,
): { task: TaskKind; reason: string } {
  if (task !== "classification") return { task, reason: "" };
  const text = textFeatureColumns(profile, { target, drop_columns: dropColumns });
  const others = profile.columns.filter(
    (c) => c.name !== target && !dropColumns.includes(c.name) && !text.includes(c.name) && c.suspect === null && c.kind !== "empty",
  );
  if (text.length === 0 || (others.length > 0 && !aboutText)) return { task, reason: "" };
  if (others.length > 0)
    return { task: "text_classification", reason: `the request is about ${text.map((c) => `"${c}"`).join(", ")}, which ${text.length === 1 ? "is" : "are"} free text` };
  return { task: "text_classification", reason: `${text.map((c) => `"${c}"`).join(", ")} ${text.length === 1 ? "is" : "are"} free text` };
}

/** Rule-based parsing into the requirements schema; validated strictly before it is returned. */
export class OfflinePromptAgent implements PromptAgent {
  async parse({ conversation, profile }: { conversation: Conversation; profile: DataProfile }): Promise<Requirements> {
    const u = understand(conversation, profile);
    const task = u.task;
    if (!task) throw new Error("the task type is still unknown");
    if (!TRAINABLE_TASKS.includes(task)) throw new Error(`${task} cannot be trained by this version`);
    const p = u.parsed;
    const spec = taskSpec(task);
    const targetColumn = u.target ? profile.columns.find((c) => c.name === u.target) : undefined;
    let nClusters = p.nClusters;
    const labels = task === "clustering" ? u.labelsColumn : null;
    if (task === "clustering" && nClusters === null && labels) {
      const col = profile.columns.find((c) => c.name === labels);
      if (col && col.unique >= 2 && col.unique <= 50) nClusters = col.unique;
    }
    const metricName = p.metric && isMetricFor(task, p.metric) ? p.metric : defaultMetric(task, labels !== null);
    const forecastReading = task === "time_series_forecasting" ? readForecast(conversation, profile, p) : null;
    // columns a variant reads for itself are never dropped: the time and series columns, the node ids
    const kept = new Set([u.target, labels, forecastReading?.time, forecastReading?.series].filter((c): c is string => !!c));
    const suspects = profile.columns.filter((c) => c.suspect !== null && !kept.has(c.name)).map((c) => c.name);
    const drop = task === "image_classification" ? [] : [...new Set([...p.dropColumns, ...suspects])].filter((c) => !kept.has(c));
    const forecast = forecastReading ? forecastOf(forecastReading, profile, u.target, drop) : null;
    if (task === "time_series_forecasting" && !forecast) throw new Error("the forecast still lacks its time column, target or horizon");
    const performance = p.constraints.filter((c) => (METRIC_NAMES as readonly string[]).includes(c.name));
    const complexity = p.constraints.filter((c) => !performance.includes(c));
    const positive = p.positiveClass ?? (targetColumn && isClassification(task) ? guessPositive(targetColumn.top.map((t) => t.value)) : null);
    const text = conversation.messages.join("\n");

    return Requirements.parse({
      user: { intent: p.intent === "unclear" ? "build" : p.intent, expertise: "unknown" },
      problem: {
        area: spec.area,
        downstream_task: spec.downstreamTask,
        application_domain: p.domain,
        description: text.slice(0, 2000),
        performance_metrics: [
          { name: metricName, value: performance.find((c) => c.name === metricName)?.target ?? null },
          ...performance.filter((c) => c.name !== metricName).map((c) => ({ name: c.name, value: c.target })),
        ],
        complexity_metrics: complexity.map((c) => ({ name: c.name, value: c.target, unit: unitOf(c.name) })),
      },
      dataset: [
        {
          name: profile.name,
          modality: [...spec.modality],
          target_variables: u.target ? [u.target] : [],
          specification: `${profile.rows} rows × ${profile.columns.length} columns`,
          description: "",
          preprocessing: [],
          augmentation: [],
          visualization: [],
          source: "user-upload",
        },
      ],
      model: p.requestedModels.map((name) => ({ name, family: name, type: "classical machine learning", specification: "", description: "" })),
      knowledge: [],
      service: { feature_engineering: [], target_device: "cpu", deployment_endpoint: "http", inference_engine: ["scikit-learn"], demonstration: "" },
      confidence: { rationale: u.taskReason || "from the request", score: u.parsed.task ? 0.9 : 0.7 },
      task,
      target: u.target,
      metric: { name: metricName, direction: metricDirection(metricName) },
      positive_class: positive,
      n_clusters: nClusters,
      labels_column: labels,
      drop_columns: drop,
      constraints: p.constraints.filter((c) => c.name !== "n_params"),
      data_card: { rows: profile.rows, columns: profile.columns.length, data_type: spec.dataType, domain: p.domain },
      requested_models: p.requestedModels,
      forecast,
      graph: task === "node_classification" ? graphOf(profile) : null,
      images: task === "image_classification" ? imagesOf(profile) : null,
    });
  }
}

function isMetricFor(task: TaskKind, metric: string): boolean {
  return (METRICS_BY_TASK[task] as readonly string[]).includes(metric);
}

function unitOf(name: string): string {
  if (name.endsWith("_s")) return "s";
  if (name.endsWith("_ms_per_row")) return "ms";
  if (name.endsWith("_mb")) return "MB";
  return "";
}

const POSITIVE_WORDS = ["1", "yes", "true", "positive", "good", "churn", "churned", "fraud", "defect", "spam", "malignant", "sick"];

/** The positive class of a binary target when its values say so; otherwise the harness picks the minority class. */
function guessPositive(values: string[]): string | null {
  if (values.length !== 2) return null;
  return values.find((v) => POSITIVE_WORDS.includes(v.toLowerCase())) ?? null;
}
