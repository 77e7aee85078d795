import { z } from "zod";
import type { HarnessTask, HarnessVariant } from "../../runners/contract.js";
import { TASK_KINDS, TASK_SPECS, isPlainTask, taskSpec, type TaskKind } from "./tasks.js";

// The requirements schema follows AutoML-Agent's Prompt-agent schema, with the additions of docs/architecture.md §2.
// Parsing is lenient (unknown enum values fall back, metric values may be null); `Requirements.parse`
// is the strict gate used before any stage acts on the result.

export const AREAS = [
  "computer vision",
  "graph machine learning",
  "natural language processing",
  "time-series analysis",
  "tabular data analysis",
  "recommendation systems",
  "multimodal learning",
] as const;
export type Area = (typeof AREAS)[number];
export const INTENTS = ["build", "consult-build", "consult", "inquire", "unclear"] as const;
export const SOURCES = ["user-upload", "user-link", "direct-search", "infer-search"] as const;
export const MODEL_TYPES = [
  "neural networks",
  "classical machine learning",
  "ensemble models",
  "statistical models",
] as const;

/** Task kinds ThreadML distinguishes; every fact about each is in the registry (./tasks.ts). */
export { TASK_KINDS, type TaskKind } from "./tasks.js";
/** Classification, regression and clustering of a plain table. */
export const TABULAR_TASKS: readonly TaskKind[] = TASK_KINDS.filter(isPlainTask);
/** Tasks the harness trains: all of them (text through TF-IDF features, the others through harness variants). */
export const TRAINABLE_TASKS: readonly TaskKind[] = TASK_KINDS;

/** How the harness reads the data of a task (runners/python/variant_*.py beside the harness). */
export function harnessVariantOf(task: TaskKind): HarnessVariant {
  return taskSpec(task).harnessVariant;
}

/** The harness task a task runs as (text, image and node classification are classification, forecasting regression). */
export function harnessTaskOf(task: TaskKind): HarnessTask {
  return taskSpec(task).harnessTask;
}

/** Tasks judged as classification (stratified splits, class baselines, a positive class). */
export function isClassification(task: TaskKind): boolean {
  return harnessTaskOf(task) === "classification";
}

/** What to install on a runner for the PyTorch models (a small CNN for images). */
export const TORCH_INSTALL = "torch torchvision";

export const METRIC_NAMES = [
  "accuracy",
  "f1",
  "precision",
  "recall",
  "roc_auc",
  "rmse",
  "rmsle",
  "mae",
  "r2",
  "rand_index",
  "adjusted_rand_index",
  "nmi",
  "silhouette",
  "mape",
  "smape",
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
/** MAPE and sMAPE are fractions (0.1 is 10%), as scikit-learn computes them. */
export const LOWER_IS_BETTER: ReadonlySet<string> = new Set(["rmse", "rmsle", "mae", "mape", "smape"]);

/** Metrics that fit each task, the default first. */
export const METRICS_BY_TASK = Object.fromEntries(TASK_SPECS.map((t) => [t.kind, t.metrics])) as Record<TaskKind, readonly MetricName[]>;

/** Complexity measurements the harness makes; constraint names refer to these. */
export const COMPLEXITY_NAMES = [
  "train_time_s",
  "latency_ms_per_row",
  "test_predict_s",
  "model_size_mb",
  "gpu_memory_mb",
] as const;
export type ComplexityName = (typeof COMPLEXITY_NAMES)[number];

export const ConstraintOp = z.enum([">=", ">", "<=", "<"]);
export type ConstraintOp = z.infer<typeof ConstraintOp>;

/** One checkable constraint: a metric threshold or a complexity limit, in the harness's units. */
export const Constraint = z.object({
  name: z.string().min(1),
  op: ConstraintOp,
  target: z.number().finite(),
  /** The words the user wrote, for the report. */
  phrase: z.string().optional(),
});
export type Constraint = z.infer<typeof Constraint>;

export const Forecast = z.object({
  time_column: z.string().min(1),
  /** One series per value of this column; null for a single series. */
  id_column: z.string().nullable().default(null),
  /** Steps ahead, in the data's own frequency. */
  horizon: z.number().int().min(1).max(10_000),
  /** How the user put it ("14 days"), for the report. */
  horizon_phrase: z.string().nullable().default(null),
  /** Pandas-style alias read from the timestamps ("D", "h", "MS"); null when the harness infers it. */
  frequency: z.string().nullable().default(null),
  /** Other numeric columns the forecasts may use (their values at the forecast origin). */
  exogenous: z.array(z.string()).default([]),
});
export type Forecast = z.infer<typeof Forecast>;

export const GraphLayout = z.object({
  /** File name of the edge list (or of the archive holding both tables). */
  edges: z.string().min(1),
  node_id_column: z.string().min(1),
  source_column: z.string().min(1),
  target_column: z.string().min(1),
});
export type GraphLayout = z.infer<typeof GraphLayout>;

export const ImagesLayout = z.object({
  /** A labels CSV (file name and label per image), or one folder per class. */
  layout: z.enum(["labels_csv", "folders"]),
  /** Names of the labels CSVs (files, or members of the archive). */
  labels: z.array(z.string()).default([]),
  filename_column: z.string().nullable().default(null),
});
export type ImagesLayout = z.infer<typeof ImagesLayout>;

/** One field of the requirements and the words of the request it came from. */
export const ReadingBinding = z.object({ slot: z.string(), value: z.string(), words: z.string() });
export const Reading = z.object({
  /** "I read: predict Survived · ROC AUC > 0.8 · leaving out PassengerId, Name". */
  line: z.string(),
  bindings: z.array(ReadingBinding).default([]),
  /** Numbers of the request nothing could place (asked about before planning). */
  unplaced: z.array(z.string()).default([]),
});
export type Reading = z.infer<typeof Reading>;

/** A column that gives the target away, why, and whether the user chose to keep it. */
export const Leakage = z.object({ column: z.string(), reason: z.string(), kept: z.boolean() });
export type Leakage = z.infer<typeof Leakage>;

const lenientEnum = <T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
  z.preprocess(
    (v) => (typeof v === "string" && (values as readonly string[]).includes(v.trim().toLowerCase()) ? v.trim().toLowerCase() : fallback),
    z.enum(values),
  );

const numberOrNull = z.preprocess((v) => {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
}, z.number().nullable());

export const Requirements = z.object({
  user: z.object({
    intent: lenientEnum(INTENTS, "unclear"),
    expertise: z.string().default("unknown"),
  }),
  problem: z.object({
    area: lenientEnum(AREAS, "tabular data analysis"),
    downstream_task: z.string(),
    application_domain: z.string().default(""),
    description: z.string().default(""),
    performance_metrics: z.array(z.object({ name: z.string(), value: numberOrNull })).default([]),
    complexity_metrics: z
      .array(z.object({ name: z.string(), value: numberOrNull, unit: z.string().default("") }))
      .default([]),
  }),
  dataset: z
    .array(
      z.object({
        name: z.string(),
        modality: z.array(z.string()).default([]),
        target_variables: z.array(z.string()).default([]),
        specification: z.string().default(""),
        description: z.string().default(""),
        preprocessing: z.array(z.string()).default([]),
        augmentation: z.array(z.string()).default([]),
        visualization: z.array(z.string()).default([]),
        source: lenientEnum(SOURCES, "user-upload"),
      }),
    )
    .default([]),
  model: z
    .array(
      z.object({
        name: z.string(),
        family: z.string().default(""),
        type: lenientEnum(MODEL_TYPES, "classical machine learning"),
        specification: z.string().default(""),
        description: z.string().default(""),
      }),
    )
    .default([]),
  knowledge: z.array(z.string()).default([]),
  service: z
    .object({
      feature_engineering: z.array(z.string()).default([]),
      target_device: z.string().default("cpu"),
      deployment_endpoint: z.string().default("http"),
      inference_engine: z.array(z.string()).default([]),
      demonstration: z.string().default(""),
    })
    .default({ feature_engineering: [], target_device: "cpu", deployment_endpoint: "http", inference_engine: [], demonstration: "" }),
  confidence: z.object({ rationale: z.string().default(""), score: z.number().min(0).max(1) }),

  // Additions (docs/architecture.md §2).
  task: z.enum(TASK_KINDS),
  target: z.string().nullable(),
  /** The metric the user is judged by, with its direction. */
  metric: z.object({ name: z.enum(METRIC_NAMES), direction: z.enum(["max", "min"]) }),
  positive_class: z.string().nullable().default(null),
  n_clusters: z.number().int().min(2).nullable().default(null),
  /** For clustering: a column of known groups used only to evaluate. */
  labels_column: z.string().nullable().default(null),
  drop_columns: z.array(z.string()).default([]),
  constraints: z.array(Constraint).default([]),
  data_card: z
    .object({
      rows: z.number().int(),
      columns: z.number().int(),
      data_type: z.string(),
      domain: z.string().default(""),
    })
    .nullable()
    .default(null),
  /** Model families the user asked for, by name as written ("xgboost", "random forest"). */
  requested_models: z.array(z.string()).default([]),
  /** Time-series forecasting: how the table becomes series, and how far ahead to forecast. */
  forecast: Forecast.nullable().default(null),
  /** Node classification: the edge list beside the node table. */
  graph: GraphLayout.nullable().default(null),
  /** Image classification: where the labels come from. */
  images: ImagesLayout.nullable().default(null),
  /** How the request was read: the one-line restatement on the plan card and which words became which field. */
  reading: Reading.nullable().default(null),
  /** Columns that alone predict the target (graphs/automl/data/leakage.ts): left out unless the user kept them. */
  leakage: z.array(Leakage).default([]),
});
export type Requirements = z.infer<typeof Requirements>;

export function metricDirection(name: string): "max" | "min" {
  return LOWER_IS_BETTER.has(name) ? "min" : "max";
}

export function defaultMetric(task: TaskKind, hasLabels = false): MetricName {
  const spec = taskSpec(task);
  return (!hasLabels && spec.labelFreeMetric) || spec.metrics[0];
}
