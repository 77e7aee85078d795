import {
  AREAS,
  COMPLEXITY_NAMES,
  INTENTS,
  METRIC_NAMES,
  METRICS_BY_TASK,
  MODEL_TYPES,
  Requirements,
  TRAINABLE_TASKS,
  harnessVariantOf,
  isClassification,
  metricDirection,
  type Constraint,
  type MetricName,
  type TaskKind,
} from "../../../../src/schema/requirements.js";
import { OfflinePromptAgent, exactColumn, resolveColumn, taskFromTarget, understand } from "../offline/prompt.js";
import type { Conversation, DataProfile, PromptAgent } from "../types.js";
import { ConstraintOutput, ParseOutput } from "./schemas.js";
import { readConversation } from "../../request/reading.js";
import { heldToWords, readingDifferences } from "./reading-check.js";
import { askJson, clip, clipAll, columnsForPrompt, conversationForPrompt, isOutputError, modelKeys, normaliseTask, orOffline, profileForPrompt, refusedKeys, type Client } from "./shared.js";

// Parsing with the LLM, reconciled with the rules and the data: the LLM reads the request into the
// requirements schema; the rule parser's normalised numbers win where both exist; names (target, labels,
// dropped columns) must be real columns; constraint names and units are those the harness measures.

const UNIT_INTERVAL = new Set(["accuracy", "f1", "precision", "recall", "roc_auc", "r2", "rand_index", "adjusted_rand_index", "nmi", "silhouette", "mape", "smape"]);

const METRIC_ALIASES: Record<string, MetricName> = {
  acc: "accuracy",
  f1_score: "f1",
  f_score: "f1",
  f1_macro: "f1",
  macro_f1: "f1",
  auc: "roc_auc",
  roc: "roc_auc",
  auroc: "roc_auc",
  auc_roc: "roc_auc",
  rocauc: "roc_auc",
  root_mean_squared_error: "rmse",
  root_mean_squared_log_error: "rmsle",
  mean_absolute_error: "mae",
  r_squared: "r2",
  "r^2": "r2",
  r_2: "r2",
  ari: "adjusted_rand_index",
  adjusted_rand: "adjusted_rand_index",
  rand: "rand_index",
  ri: "rand_index",
  normalized_mutual_information: "nmi",
  silhouette_score: "silhouette",
  mean_absolute_percentage_error: "mape",
  symmetric_mean_absolute_percentage_error: "smape",
  s_mape: "smape",
};

/** A metric name as the harness writes it, or null. */
export function normaliseMetric(value: unknown): MetricName | null {
  if (value === null || value === undefined) return null;
  const s = String(value).toLowerCase().trim().replace(/[\s-]+/g, "_");
  if ((METRIC_NAMES as readonly string[]).includes(s)) return s as MetricName;
  return METRIC_ALIASES[s] ?? null;
}

type ComplexityName = (typeof COMPLEXITY_NAMES)[number];

const COMPLEXITY_ALIASES: Array<[RegExp, ComplexityName]> = [
  [/gpu/, "gpu_memory_mb"],
  [/size|disk|footprint|model_mb|storage/, "model_size_mb"],
  [/latency|per_row|per_prediction|per_sample|per_instance|response/, "latency_ms_per_row"],
  [/test|batch|predict|inference/, "test_predict_s"],
  [/train|fit|time|runtime|duration/, "train_time_s"],
];

/** The harness's name for a complexity limit (train_time_s, latency_ms_per_row, …), or null. */
export function normaliseComplexity(value: unknown): ComplexityName | null {
  const s = String(value ?? "").toLowerCase().trim().replace(/[\s-]+/g, "_");
  if (!s) return null;
  if ((COMPLEXITY_NAMES as readonly string[]).includes(s)) return s as ComplexityName;
  return COMPLEXITY_ALIASES.find(([re]) => re.test(s))?.[1] ?? null;
}

const SECONDS: Array<[RegExp, number]> = [
  [/^(?:us|µs|microseconds?)$/, 1e-6],
  [/^(?:ms|msec|millis(?:econds?)?|milliseconds?)$/, 1e-3],
  [/^(?:s|sec|secs|seconds?)$/, 1],
  [/^(?:m|min|mins|minutes?)$/, 60],
  [/^(?:h|hr|hrs|hours?)$/, 3600],
];
const MEGABYTES: Array<[RegExp, number]> = [
  [/^(?:b|bytes?)$/, 1 / (1024 * 1024)],
  [/^(?:kb|kib|kilobytes?)$/, 1 / 1024],
  [/^(?:mb|mib|megabytes?)$/, 1],
  [/^(?:gb|gib|gigabytes?)$/, 1024],
];

function scale(unit: string, table: Array<[RegExp, number]>, fallback: number): number {
  const u = unit.toLowerCase().trim();
  return table.find(([re]) => re.test(u))?.[1] ?? fallback;
}

function normaliseOp(op: string, name: string): Constraint["op"] {
  const s = op.toLowerCase().trim();
  if ([">=", "≥", "=>", "ge", "gte", "at_least", "at least", "min", "minimum"].includes(s)) return ">=";
  if ([">", "gt", "above", "more than"].includes(s)) return ">";
  if (["<=", "≤", "=<", "le", "lte", "at_most", "at most", "max", "maximum", "within"].includes(s)) return "<=";
  if (["<", "lt", "below", "under", "less than"].includes(s)) return "<";
  // No usable operator: the direction follows from what is limited.
  const metric = normaliseMetric(name);
  return metric && metricDirection(metric) === "max" ? ">=" : "<=";
}

/** One LLM constraint in the harness's names and units, or null when it names nothing the harness measures. */
export function normaliseConstraint(raw: unknown, task: TaskKind): Constraint | null {
  const parsed = ConstraintOutput.safeParse(raw);
  if (!parsed.success) return null;
  const c = parsed.data;
  let value = typeof c.value === "number" ? c.value : Number(String(c.value).replace(/[%,\s]/g, ""));
  if (!Number.isFinite(value)) return null;
  const percent = /%|percent/i.test(`${c.unit} ${c.value}`);
  const phrase = c.phrase ? clip(c.phrase, 120) : undefined;
  const metric = normaliseMetric(c.name);
  if (metric) {
    if (!(METRICS_BY_TASK[task] ?? []).includes(metric)) return null;
    if (UNIT_INTERVAL.has(metric) && (percent || (value > 1 && value <= 100))) value = value / 100;
    return { name: metric, op: normaliseOp(c.op, metric), target: value, ...(phrase ? { phrase } : {}) };
  }
  const name = normaliseComplexity(c.name);
  if (!name) return null;
  const unit = c.unit || (name === "latency_ms_per_row" ? "ms" : name.endsWith("_mb") ? "mb" : "s");
  if (name === "train_time_s" || name === "test_predict_s") value = value * scale(unit, SECONDS, 1);
  else if (name === "latency_ms_per_row") value = (value * scale(unit, SECONDS, 1e-3)) / 1e-3;
  else value = value * scale(unit, MEGABYTES, 1);
  if (!(value > 0)) return null;
  return { name, op: normaliseOp(c.op, name), target: Number(value.toPrecision(12)), ...(phrase ? { phrase } : {}) };
}

/** Rule constraints first; an LLM constraint is added only for a name the rules did not find. */
export function mergeConstraints(rule: Constraint[], llm: Constraint[]): Constraint[] {
  const out = [...rule];
  for (const c of llm) if (!out.some((r) => r.name === c.name)) out.push(c);
  return out;
}

function unitOf(name: string): string {
  if (name.endsWith("_ms_per_row")) return "ms";
  if (name.endsWith("_s")) return "s";
  if (name.endsWith("_mb")) return "MB";
  return "";
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function pick<T extends string>(values: readonly T[], value: unknown, fallback: T): T {
  const s = String(value ?? "").trim().toLowerCase();
  return (values as readonly string[]).includes(s) ? (s as T) : fallback;
}

export class LlmPromptAgent implements PromptAgent {
  private readonly offline = new OfflinePromptAgent();

  constructor(private readonly client: Client) {}

  async parse(input: { conversation: Conversation; profile: DataProfile }): Promise<Requirements> {
    return orOffline(
      () => this.parseWithLlm(input),
      () => this.offline.parse(input),
    );
  }

  private async parseWithLlm({ conversation, profile }: { conversation: Conversation; profile: DataProfile }): Promise<Requirements> {
    // The model's reading must agree with the user's words: each difference is a validation problem,
    // so the client's repair round spells it out to the model.
    const rule = readConversation(conversation, profile);
    const seen: { reading?: ParseOutput } = {};
    const checked = ParseOutput.superRefine((out, ctx) => {
      seen.reading = out;
      for (const d of readingDifferences(out, rule, profile, conversation)) ctx.addIssue({ code: "custom", path: [d.field], message: d.message });
    });
    let out: ParseOutput;
    try {
      out = await askJson(
        this.client,
        "prompt",
        "parse",
        {
          ...conversationForPrompt(conversation),
          profile: profileForPrompt(profile),
          columns: columnsForPrompt(profile),
          task_kinds: TRAINABLE_TASKS.join(", "),
          metrics: METRIC_NAMES.join(", "),
          complexity: COMPLEXITY_NAMES.join(", "),
          areas: AREAS.join(" | "),
          intents: INTENTS.join(" | "),
          model_types: MODEL_TYPES.join(" | "),
        },
        checked,
      );
    } catch (err) {
      // A well-formed reading that still differs from the words is used with the words winning
      // (reconcile holds them); an unusable one falls back to the rules (orOffline).
      if (!isOutputError(err) || !seen.reading) throw err;
      out = seen.reading;
    }
    const req = await reconcile(out, conversation, profile, (c) => this.offline.parse({ conversation: c, profile }));
    return heldToWords(req, out, rule, profile);
  }
}

/** Merges the LLM's reading with the rule parser's and checks every name against the data. */
export async function reconcile(
  out: ParseOutput,
  conversation: Conversation,
  profile: DataProfile,
  offlineParse: (c: Conversation) => Promise<Requirements>,
): Promise<Requirements> {
  const text = conversation.messages.join("\n");
  const columns = profile.columns.map((c) => c.name);
  const rule = readConversation(conversation, profile);
  const u = understand(conversation, profile);

  // Task: an answer, then the kind the user's words name, then the LLM, then the target's values. The
  // data settles what a plain reading misses: images, an edge list, a horizon over a time column.
  const llmTask = normaliseTask(out.task);
  const fromData = u.task !== null && harnessVariantOf(u.task) !== "tabular";
  const plain = llmTask === "classification" || llmTask === "regression";
  const worded = rule.task !== null || rule.nClusters !== null ? u.task : null;
  let task: TaskKind | null =
    normaliseTask(conversation.answers.task) ??
    worded ??
    (plain && fromData ? u.task : llmTask && TRAINABLE_TASKS.includes(llmTask) ? llmTask : null) ??
    u.task;
  // Names: an answer, then the column the user's words name, then the LLM's (when it is a column).
  const answeredTarget = resolveColumn(profile, conversation.answers.target);
  const llmTarget = out.target === null ? null : exactColumn(profile, String(out.target));
  let target = task === "clustering" ? null : (answeredTarget ?? u.target ?? llmTarget);
  if (!task && target) task = taskFromTarget(profile, target).task;
  if (!task) throw new Error("the task type is still unknown");
  if (!TRAINABLE_TASKS.includes(task)) throw new Error(`${task} cannot be trained by this version`);
  // A regression needs a numeric target; the data overrules a wrong reading.
  if (task === "regression" && target) {
    const col = profile.columns.find((c) => c.name === target);
    if (col && col.kind !== "numeric") task = "classification";
  }
  if (task === "clustering") target = null;
  const labels =
    task === "clustering"
      ? (resolveColumn(profile, conversation.answers.labels) ?? u.labelsColumn ?? (out.labels_column === null ? null : exactColumn(profile, String(out.labels_column))))
      : null;

  // The rule parser with the decided task, target and labels gives the normalised base.
  const answers: Record<string, string> = { ...conversation.answers, task };
  if (target) answers.target = target;
  if (labels) answers.labels = labels;
  // A forecast's time column, series column and horizon: the LLM's reading fills what the rules left open.
  if (task === "time_series_forecasting") {
    const llmTime = out.time_column === null ? null : exactColumn(profile, String(out.time_column));
    if (!answers.time && !rule.timeColumn && llmTime) answers.time = llmTime;
    const llmSeries = out.series_column === null ? null : exactColumn(profile, String(out.series_column));
    if (!answers.series && !rule.seriesColumn && llmSeries && llmSeries !== target) answers.series = llmSeries;
    if (!answers.horizon && !rule.horizon && out.horizon !== null) answers.horizon = String(out.horizon);
  }
  const base = await offlineParse({ ...conversation, answers });
  // The rules see the data: classification over a free-text column is text classification.
  if (task === "classification" && base.task === "text_classification") task = base.task;

  // Metric: the one the user named (rules), else the LLM's when it fits the task, else the base default.
  const llmMetric = normaliseMetric(out.metric);
  const fits = (m: MetricName | null) => m !== null && (METRICS_BY_TASK[task!] ?? []).includes(m);
  const metricName: MetricName = fits(rule.metric) ? rule.metric! : fits(llmMetric) ? llmMetric! : base.metric.name;

  const llmConstraints = out.constraints.map((c) => normaliseConstraint(c, task!)).filter((c): c is Constraint => c !== null);
  const constraints = mergeConstraints(base.constraints, llmConstraints);

  const protectedCols = new Set([target, labels].filter((c): c is string => c !== null));
  // The LLM may only drop columns the user wrote about; it cannot silently remove features.
  const said = [text, ...Object.values(conversation.answers)].join("\n").toLowerCase();
  const llmDrops = out.drop_columns
    .map((c) => exactColumn(profile, c))
    .filter((c): c is string => c !== null && new RegExp(`(?<![\\w])${escapeRegExp(c.toLowerCase())}(?![\\w])`).test(said));
  const drop = [...new Set([...base.drop_columns, ...llmDrops])].filter((c) => !protectedCols.has(c));
  // Never drop every feature.
  const features = columns.filter((c) => !protectedCols.has(c));
  const dropColumns = drop.length >= features.length ? base.drop_columns : drop;

  let nClusters = base.n_clusters;
  if (task === "clustering" && rule.nClusters === null && out.n_clusters !== null && out.n_clusters >= 2 && out.n_clusters < profile.rows)
    nClusters = out.n_clusters;

  let positive = base.positive_class;
  if (isClassification(task) && positive === null && out.positive_class !== null && target) {
    const col = profile.columns.find((c) => c.name === target);
    const wanted = String(out.positive_class).trim();
    const known = col?.top.map((t) => t.value) ?? [];
    if (known.includes(wanted)) positive = wanted;
  }

  const refused = refusedKeys(conversation.messages);
  const requested = [...new Set([...base.requested_models, ...modelKeys(task, out.requested_models).filter((k) => !refused.has(k))])];
  const performance = constraints.filter((c) => (METRIC_NAMES as readonly string[]).includes(c.name));
  const complexity = constraints.filter((c) => !performance.includes(c));
  const llmModels = out.model.flatMap((m): Array<Record<string, unknown>> => {
    if (typeof m === "string") return [{ name: clip(m, 60) }];
    if (typeof m !== "object" || m === null) return [];
    const r = m as Record<string, unknown>;
    return typeof r.name === "string" && r.name.trim() ? [r] : [];
  });
  const ds = out.dataset;
  const service = out.service;

  return Requirements.parse({
    ...base,
    user: {
      intent: pick(INTENTS, out.user.intent, base.user.intent),
      expertise: clip(out.user.expertise || base.user.expertise, 60) || "unknown",
    },
    problem: {
      area: base.problem.area,
      downstream_task: clip(out.problem.downstream_task, 120) || base.problem.downstream_task,
      application_domain: clip(out.problem.application_domain, 80) || base.problem.application_domain,
      description: base.problem.description,
      performance_metrics: [
        { name: metricName, value: performance.find((c) => c.name === metricName)?.target ?? null },
        ...performance.filter((c) => c.name !== metricName).map((c) => ({ name: c.name, value: c.target })),
      ],
      complexity_metrics: complexity.map((c) => ({ name: c.name, value: c.target, unit: unitOf(c.name) })),
    },
    dataset: base.dataset.map((d, i) =>
      i === 0 && ds
        ? {
            ...d,
            description: clip(ds.description ?? "", 400),
            preprocessing: clipAll(ds.preprocessing ?? [], 6, 200),
            augmentation: clipAll(ds.augmentation ?? [], 4, 200),
            visualization: clipAll(ds.visualization ?? [], 6, 200),
          }
        : d,
    ),
    model: [
      ...base.model,
      ...llmModels
        .filter((m) => !base.model.some((b) => b.name.toLowerCase() === String(m.name).toLowerCase()))
        .slice(0, 6)
        .map((m) => ({
          name: clip(m.name, 60),
          family: clip(m.family ?? "", 60),
          type: pick(MODEL_TYPES, m.type, "classical machine learning"),
          specification: clip(m.specification ?? "", 200),
          description: clip(m.description ?? "", 200),
        })),
    ],
    knowledge: clipAll(out.knowledge, 6, 200),
    service: service
      ? {
          feature_engineering: clipAll(service.feature_engineering ?? [], 6, 200),
          target_device: clip(service.target_device || base.service.target_device, 40),
          deployment_endpoint: clip(service.deployment_endpoint || base.service.deployment_endpoint, 40),
          inference_engine: clipAll(service.inference_engine?.length ? service.inference_engine : base.service.inference_engine, 4, 60),
          demonstration: clip(service.demonstration ?? "", 200),
        }
      : base.service,
    confidence: out.confidence ? { rationale: clip(out.confidence.rationale, 300), score: out.confidence.score } : base.confidence,
    task,
    target,
    metric: { name: metricName, direction: metricDirection(metricName) },
    positive_class: positive,
    n_clusters: nClusters,
    labels_column: labels,
    drop_columns: dropColumns,
    constraints,
    requested_models: requested,
  });
}
