import { z } from "zod";

// The requirements schema follows AutoML-Agent's Prompt-agent schema, with the additions of DESIGN.md §4.
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
export const INTENTS = ["build", "consult-build", "consult", "inquire", "unclear"] as const;
export const SOURCES = ["user-upload", "user-link", "direct-search", "infer-search"] as const;
export const MODEL_TYPES = [
  "neural networks",
  "classical machine learning",
  "ensemble models",
  "statistical models",
] as const;

/** Task kinds ThreadML distinguishes; TRAINABLE_TASKS are those the harness can train. */
export const TASK_KINDS = [
  "classification",
  "regression",
  "clustering",
  "image_classification",
  "text_classification",
  "time_series_forecasting",
  "node_classification",
] as const;
export type TaskKind = (typeof TASK_KINDS)[number];
export const TABULAR_TASKS: readonly TaskKind[] = ["classification", "regression", "clustering"];
/** Tasks the scikit-learn harness trains: the tabular ones, and text classification with TF-IDF features. */
export const TRAINABLE_TASKS: readonly TaskKind[] = [...TABULAR_TASKS, "text_classification"];

/** The harness task a trainable task runs as: text classification is classification over TF-IDF features. */
export function harnessTaskOf(task: TaskKind): "classification" | "regression" | "clustering" {
  if (task === "text_classification") return "classification";
  if (task === "classification" || task === "regression" || task === "clustering") return task;
  throw new Error(`${task} cannot be trained by the harness`);
}

/** Tasks judged as classification (stratified splits, class baselines, a positive class). */
export function isClassification(task: TaskKind): boolean {
  return task === "classification" || task === "text_classification";
}

/** Why a task kind cannot be trained yet, naming what it would need. */
export const UNTRAINABLE_NEEDS: Partial<Record<TaskKind, string>> = {
  image_classification:
    "Image classification needs a PyTorch harness variant (torch and torchvision on the runner, with images read from a folder or archive), which this version does not have.",
  time_series_forecasting:
    "Time-series forecasting needs a forecasting harness variant (time-ordered splits, lag features and a horizon), which this version does not have.",
  node_classification:
    "Node classification needs a graph harness variant (PyTorch Geometric on the runner, with an edge list beside the node table), which this version does not have.",
};

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
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
export const LOWER_IS_BETTER: ReadonlySet<string> = new Set(["rmse", "rmsle", "mae"]);

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

  // Additions (DESIGN.md §4).
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
});
export type Requirements = z.infer<typeof Requirements>;

export function metricDirection(name: string): "max" | "min" {
  return LOWER_IS_BETTER.has(name) ? "min" : "max";
}

export function defaultMetric(task: TaskKind, hasLabels = false): MetricName {
  if (task === "regression" || task === "time_series_forecasting") return "rmse";
  if (task === "clustering") return hasLabels ? "rand_index" : "silhouette";
  return "accuracy";
}
