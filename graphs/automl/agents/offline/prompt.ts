import {
  METRIC_NAMES,
  Requirements,
  TABULAR_TASKS,
  defaultMetric,
  metricDirection,
  type TaskKind,
} from "../../../../src/schema/requirements.js";
import type { Conversation, DataProfile, PromptAgent } from "../types.js";
import { parseRequest, type ParsedRequest } from "./parse.js";

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

const REGRESSION_MIN_UNIQUE = 15;

/** Classification or regression, from the target column itself. */
export function taskFromTarget(profile: DataProfile, target: string): { task: TaskKind; reason: string } {
  const column = profile.columns.find((c) => c.name === target);
  if (!column || column.kind !== "numeric" || !column.stats) return { task: "classification", reason: `the target "${target}" holds categories` };
  if (!column.stats.integer) return { task: "regression", reason: `the target "${target}" holds continuous numbers` };
  if (column.unique > REGRESSION_MIN_UNIQUE)
    return { task: "regression", reason: `the target "${target}" holds ${column.unique} distinct numbers` };
  return { task: "classification", reason: `the target "${target}" has only ${column.unique} distinct values` };
}

export function resolveColumn(profile: DataProfile | null, value: string | undefined | null): string | null {
  if (!value || !profile) return null;
  const norm = (s: string) => s.toLowerCase().replace(/[\s_\-`'"]/g, "");
  const wanted = norm(value);
  return profile.columns.find((c) => c.name === value)?.name ?? profile.columns.find((c) => norm(c.name) === wanted)?.name ?? null;
}

export function understand(conversation: Conversation, profile: DataProfile | null): Understanding {
  const columns = profile?.columns.map((c) => c.name);
  const parsed = parseRequest(conversation.messages.join("\n"), columns);
  const answeredTask = conversation.answers.task as TaskKind | undefined;
  let task: TaskKind | null = answeredTask ?? parsed.task;
  let taskReason = task ? "as requested" : "";
  const target = resolveColumn(profile, conversation.answers.target) ?? parsed.target;
  const labelsColumn = resolveColumn(profile, conversation.answers.labels) ?? parsed.labelsColumn;
  if (!task && parsed.nClusters !== null) {
    task = "clustering";
    taskReason = "you asked for groups";
  }
  if (!task && target && profile) ({ task, reason: taskReason } = taskFromTarget(profile, target));
  const written = profile && !target ? parseRequest(conversation.messages.join("\n")).target : null;
  return { parsed, unknownTarget: written, task, target: task === "clustering" ? null : target, labelsColumn, taskReason };
}

const DOMAIN_BY_TASK: Partial<Record<TaskKind, string>> = {
  classification: "tabular classification",
  regression: "tabular regression",
  clustering: "tabular clustering",
};

/** Rule-based parsing into the requirements schema; validated strictly before it is returned. */
export class OfflinePromptAgent implements PromptAgent {
  async parse({ conversation, profile }: { conversation: Conversation; profile: DataProfile }): Promise<Requirements> {
    const u = understand(conversation, profile);
    const task = u.task;
    if (!task) throw new Error("the task type is still unknown");
    if (!TABULAR_TASKS.includes(task)) throw new Error(`${task} is not a tabular task`);
    const p = u.parsed;
    const targetColumn = u.target ? profile.columns.find((c) => c.name === u.target) : undefined;
    let nClusters = p.nClusters;
    const labels = task === "clustering" ? u.labelsColumn : null;
    if (task === "clustering" && nClusters === null && labels) {
      const col = profile.columns.find((c) => c.name === labels);
      if (col && col.unique >= 2 && col.unique <= 50) nClusters = col.unique;
    }
    const metricName = p.metric && isMetricFor(task, p.metric) ? p.metric : defaultMetric(task, labels !== null);
    const suspects = profile.columns.filter((c) => c.suspect !== null && c.name !== u.target && c.name !== labels).map((c) => c.name);
    const drop = [...new Set([...p.dropColumns, ...suspects])].filter((c) => c !== u.target);
    const performance = p.constraints.filter((c) => (METRIC_NAMES as readonly string[]).includes(c.name));
    const complexity = p.constraints.filter((c) => !performance.includes(c));
    const positive = p.positiveClass ?? (targetColumn && task === "classification" ? guessPositive(targetColumn.top.map((t) => t.value)) : null);
    const text = conversation.messages.join("\n");

    return Requirements.parse({
      user: { intent: p.intent === "unclear" ? "build" : p.intent, expertise: "unknown" },
      problem: {
        area: "tabular data analysis",
        downstream_task: DOMAIN_BY_TASK[task] ?? task,
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
          modality: ["tabular"],
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
      data_card: { rows: profile.rows, columns: profile.columns.length, data_type: "tabular", domain: p.domain },
      requested_models: p.requestedModels,
    });
  }
}

const METRICS_BY_TASK: Record<string, string[]> = {
  classification: ["accuracy", "f1", "precision", "recall", "roc_auc"],
  regression: ["rmse", "rmsle", "mae", "r2"],
  clustering: ["rand_index", "adjusted_rand_index", "nmi", "silhouette"],
};

function isMetricFor(task: TaskKind, metric: string): boolean {
  return METRICS_BY_TASK[task]?.includes(metric) ?? false;
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
