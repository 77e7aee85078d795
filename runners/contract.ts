import { z } from "zod";
import { variantTask } from "../src/schema/tasks.js";

// The contract between ThreadML and the fixed Python harness (runners/python/harness.py).
// The harness reads `spec.json` from its working directory, emits JSON lines on stdout and writes
// `<out_dir>/result.json`. Everything crossing this boundary is validated with these schemas.

export const FAILURE_CLASSES = [
  "success",
  "syntax_error",
  "runtime_error",
  "value_error",
  "environment_error",
  "solution_stuck",
  "hallucination",
  "data_leakage",
  "degenerate",
  "design_mismatch",
  "constraint_unmet",
] as const;
export const FailureClass = z.enum(FAILURE_CLASSES);
export type FailureClass = z.infer<typeof FailureClass>;

export const HarnessTask = z.enum(["classification", "regression", "clustering"]);
export type HarnessTask = z.infer<typeof HarnessTask>;

/** Direct: one model with the step ahead as a feature; recursive: a one-step model fed its forecasts. */
export const ForecastStrategy = z.enum(["direct", "recursive"]);
export type ForecastStrategy = z.infer<typeof ForecastStrategy>;

/** A hyperparameter range for random search. */
export const ParamSpace = z.discriminatedUnion("type", [
  z.object({ type: z.literal("int"), low: z.number().int(), high: z.number().int() }),
  z.object({ type: z.literal("float"), low: z.number(), high: z.number() }),
  z.object({ type: z.literal("log"), low: z.number().positive(), high: z.number().positive() }),
  z.object({ type: z.literal("choice"), values: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1) }),
]);
export type ParamSpace = z.infer<typeof ParamSpace>;

export const Preprocess = z.object({
  /** Standard-scale numeric columns (after median imputation). */
  scale: z.boolean().default(false),
  /** How categorical columns become numbers. */
  encode: z.enum(["onehot", "ordinal"]).default("onehot"),
  /** The model takes the variant's raw input (a CNN on image pixels): no feature preprocessing. */
  raw: z.boolean().optional(),
});
export type Preprocess = z.infer<typeof Preprocess>;

export const SearchCandidate = z.object({
  /** Unique within one search, e.g. "plan-1:hgb". */
  id: z.string(),
  /** Dotted import path of a scikit-learn compatible estimator class. */
  estimator: z.string(),
  preprocess: Preprocess,
  /** Fixed constructor arguments (random_state is set by the harness when the class accepts it). */
  params: z.record(z.string(), z.unknown()).default({}),
  /** Ranges to sample; the first trial always uses `params` alone (the defaults). */
  space: z.record(z.string(), ParamSpace).default({}),
  /** Time-series forecasting: how the horizon is forecast (the spec's strategy when absent). */
  strategy: ForecastStrategy.optional(),
});
export type SearchCandidate = z.infer<typeof SearchCandidate>;

/** Harness variants: plain tables, and the data shapes that need their own loading and splitting. */
export const HARNESS_VARIANTS = ["tabular", "timeseries", "graph", "images"] as const;
export const HarnessVariant = z.enum(HARNESS_VARIANTS);
export type HarnessVariant = z.infer<typeof HarnessVariant>;

/** Time-series forecasting (runners/python/variant_timeseries.py). */
export const TimeSeriesSpec = z.object({
  time_column: z.string().min(1),
  /** One series per value; null for a single series. */
  id_column: z.string().nullable().default(null),
  /** Steps forecast from each origin. */
  horizon: z.number().int().min(1).max(10_000),
  /** Pandas offset alias ("D", "h", "MS"); null: inferred from the timestamps. */
  frequency: z.string().nullable().default(null),
  strategy: ForecastStrategy.default("direct"),
  /** Other numeric columns, used at their value at the forecast origin. */
  exogenous: z.array(z.string()).default([]),
  season_length: z.number().int().min(1).nullable().default(null),
  lags: z.array(z.number().int().min(1)).nullable().default(null),
  windows: z.array(z.number().int().min(1)).nullable().default(null),
  /** Horizon-sized blocks per series held out as the test split; null: about 15% of the shortest series. */
  test_blocks: z.number().int().min(1).max(20).nullable().default(null),
});
export type TimeSeriesSpec = z.infer<typeof TimeSeriesSpec>;

/** Node classification (runners/python/variant_graph.py); `data` is the nodes table. */
export const GraphSpec = z.object({
  /** The edges CSV, or the archive holding it (workspace-relative). */
  edges: z.string().min(1),
  edges_member: z.string().nullable().default(null),
  edges_delimiter: z.string().length(1).default(","),
  /** The nodes CSV inside the archive `data`; null when `data` is the CSV itself. */
  nodes_member: z.string().nullable().default(null),
  node_id_column: z.string().min(1),
  source_column: z.string().min(1),
  target_column: z.string().min(1),
  /** Propagation steps over the normalised adjacency. */
  hops: z.number().int().min(1).max(4).default(2),
  /** Base node features kept; a truncated SVD beyond it. */
  max_features: z.number().int().min(8).default(512),
});
export type GraphSpec = z.infer<typeof GraphSpec>;

/** A labels CSV: a workspace file, or a member of the image archive or folder. */
export const LabelsSource = z.union([
  z.object({ file: z.string().min(1), delimiter: z.string().length(1).optional() }),
  z.object({ member: z.string().min(1), delimiter: z.string().length(1).optional() }),
]);

/** Image classification (runners/python/variant_images.py); `data` is the zip archive or folder. */
export const ImagesSpec = z.object({
  /** CSVs naming each image and its label; empty: the class is each image's folder. */
  labels: z.array(LabelsSource).default([]),
  filename_column: z.string().nullable().default(null),
  /** Working size in pixels (images are centre-cropped and resized to it). */
  size: z.union([z.literal(16), z.literal(24), z.literal(32), z.literal(40), z.literal(48), z.literal(56), z.literal(64), z.literal(96), z.literal(128)]).default(32),
  max_images: z.number().int().min(10).default(50_000),
});
export type ImagesSpec = z.infer<typeof ImagesSpec>;

/** Shares of the rows for validation and test when a spec names none (the host-made holdout uses `test`). */
export const DEFAULT_SPLIT = { valid: 0.15, test: 0.15 };

export const HARNESS_MODES = ["train", "search", "score", "predict", "explain"] as const;
export const HarnessMode = z.enum(HARNESS_MODES);

export const HarnessSpec = z.object({
  /**
   * score: the trusted scorer, which loads no generated code (test labels live only there). predict and
   * explain load a trained model (out/model.pkl beside its model_meta.json and solution) for follow-ups:
   * predictions for a new file, permutation importance on the validation rows.
   */
  mode: HarnessMode,
  task: HarnessTask,
  /** How the data is read and split; each non-tabular variant has its settings under its own name. */
  variant: HarnessVariant.default("tabular"),
  timeseries: TimeSeriesSpec.nullable().default(null),
  graph: GraphSpec.nullable().default(null),
  images: ImagesSpec.nullable().default(null),
  /** Data file, relative to the workspace. */
  data: z.string(),
  /** Field separator of the data file (the profile detects it). */
  delimiter: z.string().length(1).default(","),
  target: z.string().nullable(),
  /** Clustering only: known groups, used to evaluate and never as a feature. */
  labels_column: z.string().nullable().default(null),
  drop_columns: z.array(z.string()).default([]),
  /** Columns to vectorise as free text (TF-IDF), besides those the harness recognises itself. */
  text_columns: z.array(z.string()).default([]),
  positive_class: z.string().nullable().default(null),
  n_clusters: z.number().int().min(2).nullable().default(null),
  /** Primary metric (lower snake case, docs/architecture.md §3). */
  metric: z.string(),
  /**
   * The value the user asked of the primary metric, when they gave one. A binary classifier judged by
   * F1, precision or recall picks its decision threshold on the validation rows toward it.
   */
  metric_goal: z.number().nullable().default(null),
  seed: z.number().int().default(42),
  split: z.object({ valid: z.number().gt(0).lt(0.5), test: z.number().gt(0).lt(0.5) }).default(DEFAULT_SPLIT),
  /** Use at most this many rows (sampled, seeded) before splitting: the smoke run. */
  sample_rows: z.number().int().positive().nullable().default(null),
  /** Generated code with the build/fit/predict slots (train mode), relative to the workspace. */
  solution: z.string().default("solution.py"),
  out_dir: z.string().default("out"),
  plots: z.boolean().default(true),
  /**
   * The test split was held out on the host: `data` holds only training and validation rows. A train run
   * predicts `features` (the test rows without labels) with the saved model into out/predictions.json.
   */
  holdout: z.object({ features: z.string().nullable().default(null) }).nullable().default(null),
  /** Score mode: `data` is the held-out test rows with labels; `predictions` a train run's out/predictions.json. */
  score: z.object({ predictions: z.string().min(1), wait_s: z.number().positive().optional() }).nullable().default(null),
  /** Predict mode: `input` (workspace-relative CSV) is scored by the model in `model_dir`; out/predictions.csv is written. */
  predict: z
    .object({ input: z.string().min(1), delimiter: z.string().length(1).default(","), model_dir: z.string().default("model") })
    .nullable()
    .default(null),
  /** Explain mode: permutation importance of the model in `model_dir` on the validation rows of `data` (split as in training). */
  explain: z
    .object({
      model_dir: z.string().default("model"),
      repeats: z.number().int().min(1).max(50).default(5),
      /** Validation rows used at most (seeded sample). */
      max_rows: z.number().int().min(10).default(2000),
      /** Features drawn in the plot. */
      top: z.number().int().min(1).max(50).default(15),
    })
    .nullable()
    .default(null),
  search: z
    .object({
      candidates: z.array(SearchCandidate).min(1),
      /** Random configurations per candidate, the defaults included. */
      n_iter: z.number().int().min(1).default(6),
      /** Wall-time budget for the whole search; trials stop being started after it. */
      budget_s: z.number().positive().default(20),
      cv_folds: z.number().int().min(2).default(3),
      /** Cross-validate on at most this many training rows. */
      sample_rows: z.number().int().positive().default(3000),
      /** auto: Optuna's TPE sampler with pruning where optuna is installed, random search otherwise. */
      sampler: z.enum(["auto", "tpe", "random"]).default("auto"),
    })
    .nullable()
    .default(null),
}).superRefine((spec, ctx) => {
  if (spec.variant !== "tabular" && spec[spec.variant] === null)
    ctx.addIssue({ code: "custom", path: [spec.variant], message: `the ${spec.variant} variant needs its "${spec.variant}" settings` });
  const task = variantTask(spec.variant);
  if (task && spec.task !== task) ctx.addIssue({ code: "custom", path: ["task"], message: `the ${spec.variant} variant runs as task "${task}"` });
});
export type HarnessSpec = z.infer<typeof HarnessSpec>;
export type HarnessSpecInput = z.input<typeof HarnessSpec>;

export const HarnessEvent = z.discriminatedUnion("event", [
  z.object({
    event: z.literal("progress"),
    stage: z.string(),
    done: z.number().optional(),
    total: z.number().optional(),
    message: z.string().optional(),
  }),
  z.object({ event: z.literal("metric"), name: z.string(), value: z.number(), split: z.string().optional() }),
  z.object({ event: z.literal("log"), level: z.enum(["debug", "info", "warning", "error"]).default("info"), message: z.string() }),
  z.object({
    event: z.literal("trial"),
    candidate: z.string(),
    params: z.record(z.string(), z.unknown()),
    score: z.number().nullable(),
    fit_s: z.number().optional(),
    error: z.string().optional(),
    /** Stopped early by the search's pruner (its score so far is below the other trials'). */
    pruned: z.boolean().optional(),
  }),
  z.object({ event: z.literal("error"), class: FailureClass, message: z.string() }),
  z.object({ event: z.literal("done"), status: z.enum(["ok", "error"]) }),
  z.object({ event: z.literal("listening"), host: z.string(), port: z.number().int() }),
]);
export type HarnessEvent = z.infer<typeof HarnessEvent>;

const MetricMap = z.record(z.string(), z.number());

export const CandidateResult = z.object({
  id: z.string(),
  best_params: z.record(z.string(), z.unknown()).nullable(),
  best_score: z.number().nullable(),
  trials: z.array(
    z.object({
      params: z.record(z.string(), z.unknown()),
      score: z.number().nullable(),
      fit_s: z.number(),
      error: z.string().optional(),
      pruned: z.boolean().optional(),
    }),
  ),
  error: z.string().optional(),
});
export type CandidateResult = z.infer<typeof CandidateResult>;

/** A decision threshold and what it did to the validation metric it was chosen for. */
export const DecisionThreshold = z.object({ value: z.number(), metric: z.string(), valid_default: z.number(), valid_chosen: z.number() });

/** What predict mode wrote: out/predictions.csv and a summary of it. */
export const Predicted = z.object({
  rows: z.number().int().min(0),
  /** Relative to the workspace: the input's columns plus `prediction` (and class probabilities). */
  file: z.string(),
  /** Classification and clustering: rows per predicted value. */
  counts: z.record(z.string(), z.number().int()).nullable().default(null),
  /** Regression: the predicted values' range and mean. */
  range: z.object({ min: z.number(), max: z.number(), mean: z.number() }).nullable().default(null),
  /** Input columns the model does not use (kept in the file, ignored by the model). */
  ignored_columns: z.array(z.string()).default([]),
  /** When the input holds the target column: the task's metrics on those rows. */
  metrics: MetricMap.nullable().default(null),
});
export type Predicted = z.infer<typeof Predicted>;

/** One feature's permutation importance: the mean (and spread) of the primary metric's loss when it is shuffled. */
export const Importance = z.object({ feature: z.string(), mean: z.number(), std: z.number() });
export type Importance = z.infer<typeof Importance>;

export const HarnessResult = z.object({
  status: z.enum(["ok", "error"]),
  mode: HarnessMode,
  task: HarnessTask,
  /** Train mode: metrics on the held-out test split, computed by the harness. */
  metrics: MetricMap.default({}),
  valid_metrics: MetricMap.default({}),
  /** train_time_s, latency_ms_per_row, test_predict_s, model_size_mb, load_s, total_s. */
  complexity: MetricMap.default({}),
  rows: z.object({ train: z.number().int(), valid: z.number().int(), test: z.number().int() }).nullable().default(null),
  features: z
    .object({
      numeric: z.array(z.string()),
      categorical: z.array(z.string()),
      text: z.array(z.string()).default([]),
      /** Dates and timestamps, turned into calendar features inside the model's pipeline. */
      dates: z.array(z.string()).default([]),
    })
    .nullable()
    .default(null),
  /** Relative to the workspace. */
  model_path: z.string().nullable().default(null),
  plots: z.array(z.string()).default([]),
  /**
   * A few held-out rows (features only) with the harness's own predictions: the deploy check. Variants
   * add `request`, the exact body to POST (images as base64, node ids, a series' history).
   */
  sample: z
    .object({ rows: z.array(z.record(z.string(), z.unknown())), predictions: z.array(z.unknown()), request: z.unknown().optional() })
    .nullable()
    .default(null),
  /** Facts a variant measured (series and frequency, images read, nodes and edges). */
  details: z.record(z.string(), z.unknown()).default({}),
  classes: z.array(z.unknown()).nullable().default(null),
  search: z
    .object({
      metric: z.string(),
      greater_is_better: z.boolean(),
      candidates: z.array(CandidateResult),
      /** "tpe" (Optuna) or "random", the sampler that ran. */
      sampler: z.string().optional(),
    })
    .nullable()
    .default(null),
  /**
   * A binary classifier's decision threshold chosen on the validation rows (never the test rows) for an
   * F1, precision or recall goal; saved in model_meta.json and applied by the model server.
   */
  threshold: DecisionThreshold.nullable().default(null),
  /** Predict mode. */
  predicted: Predicted.nullable().default(null),
  /** Explain mode: features by permutation importance, largest first, and the metric it was measured with. */
  importance: z.object({ metric: z.string(), rows: z.number().int(), features: z.array(Importance) }).nullable().default(null),
  /** Train mode: the interpreter and library versions the model was trained with (pinned in the bundle). */
  env: z.object({ python: z.string(), packages: z.record(z.string(), z.string()) }).nullable().default(null),
  warnings: z.array(z.string()).default([]),
  error: z.object({ class: FailureClass, message: z.string(), traceback: z.string().default("") }).nullable().default(null),
});
export type HarnessResult = z.infer<typeof HarnessResult>;

/** Parse one stdout line; anything that is not a valid event becomes a log line, never an exception. */
export function parseEventLine(line: string): HarnessEvent | null {
  const trimmed = line.trim();
  if (!trimmed) return null;
  if (trimmed.startsWith("{")) {
    try {
      const parsed = HarnessEvent.safeParse(JSON.parse(trimmed));
      if (parsed.success) return parsed.data;
    } catch {
      // fall through: treat as plain output
    }
  }
  return { event: "log", level: "info", message: trimmed.slice(0, 2000) };
}

/**
 * The model server launcher's first line, {"event":"bound","host":H,"port":P}: the address it bound
 * before any generated code ran, the only one the host trusts (runners/python/serve_launch.py).
 */
export function parseBoundLine(line: string): { host: string; port: number } | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{"event":"bound",')) return null;
  try {
    const v = JSON.parse(trimmed) as { host?: unknown; port?: unknown };
    if (typeof v.host === "string" && Number.isInteger(v.port) && (v.port as number) > 0 && (v.port as number) < 65536) return { host: v.host, port: v.port as number };
  } catch {
    // not the launcher's line
  }
  return null;
}
