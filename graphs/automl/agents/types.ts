import { z } from "zod";
import { Constraint, Requirements, TASK_KINDS } from "../../../src/schema/requirements.js";
import { FailureClass, ForecastStrategy, HarnessResult, Preprocess, SearchCandidate } from "../../../runners/contract.js";

// Typed inputs and outputs of the five agent roles (manager, prompt, data, model, operation).
// Each role has an offline implementation (rules, recipes, real data) and an LLM one; both return
// values that pass these schemas, so the graph never acts on unvalidated output.

export const ColumnProfile = z.object({
  name: z.string(),
  kind: z.enum(["numeric", "categorical", "boolean", "text", "datetime", "empty"]),
  missing: z.number().int(),
  unique: z.number().int(),
  /** A few distinct values, as written in the file. */
  examples: z.array(z.string()),
  /** Numeric columns: summary statistics. */
  stats: z.object({ min: z.number(), max: z.number(), mean: z.number(), integer: z.boolean() }).nullable(),
  /** Up to 20 most frequent values with counts (categorical-looking columns). */
  top: z.array(z.object({ value: z.string(), count: z.number().int() })),
  suspect: z.enum(["id", "constant", "mostly_missing"]).nullable(),
});
export type ColumnProfile = z.infer<typeof ColumnProfile>;

/** The time axis of a table with timestamps (or numbered steps): what a forecast needs from the data. */
export const TimeProfile = z.object({
  /** The likeliest time column, and every candidate, best first. */
  column: z.string(),
  candidates: z.array(z.string()),
  kind: z.enum(["datetime", "number"]),
  /** Pandas-style alias of the typical step ("D", "h", "15min", "W", "MS"); null for numbered steps or no clear step. */
  frequency: z.string().nullable(),
  /** In words: "daily", "every 15 minutes", "steps of 1". */
  label: z.string(),
  /** The typical step: milliseconds for datetimes, units for numbers. */
  step: z.number().nullable(),
  /** The column that tells series apart when timestamps repeat, and every candidate. */
  idColumn: z.string().nullable(),
  idCandidates: z.array(z.string()),
  /** Timestamps repeat but no column tells the series apart. */
  repeated: z.boolean(),
  series: z.number().int(),
  /** Points per series. */
  points: z.object({ min: z.number().int(), max: z.number().int() }),
  start: z.string(),
  end: z.string(),
});
export type TimeProfile = z.infer<typeof TimeProfile>;

/** A node table with its edge list: how they join. */
export const GraphProfile = z.object({
  /** The edge list: a file, or an archive with `edgesMember` inside. */
  edgesFile: z.string(),
  edgesMember: z.string().nullable(),
  edgesDelimiter: z.string(),
  /** The node table inside the archive that `file` names; null when `file` is the table. */
  nodesMember: z.string().nullable(),
  nodeIdColumn: z.string(),
  sourceColumn: z.string(),
  targetColumn: z.string(),
  nodes: z.number().int(),
  edges: z.number().int(),
  /** Edges naming a node the table does not have. */
  unknownEndpoints: z.number().int(),
  /** Nodes with no edge. */
  isolated: z.number().int(),
});
export type GraphProfile = z.infer<typeof GraphProfile>;

/** Images in a zip archive or a folder, labelled by CSVs or by class folders. */
export const ImagesProfile = z.object({
  /** The archive or folder. */
  source: z.string(),
  kind: z.enum(["zip", "folder"]),
  images: z.number().int(),
  /** Images per file extension. */
  formats: z.record(z.string(), z.number().int()),
  /** Labels from CSVs, from class folders, or not found yet ("none": the request check asks for them). */
  layout: z.enum(["labels_csv", "folders", "none"]),
  /** The labels CSVs: a file beside the images, or a member of the archive or folder. */
  labels: z.array(z.object({ file: z.string().nullable(), member: z.string().nullable(), delimiter: z.string() })),
  filenameColumn: z.string().nullable(),
  /** Label rows that name an image, and images no label row names. */
  matched: z.number().int(),
  unlabelled: z.number().int(),
});
export type ImagesProfile = z.infer<typeof ImagesProfile>;

export const DataProfile = z.object({
  file: z.string(),
  name: z.string(),
  bytes: z.number().int(),
  rows: z.number().int(),
  /** True when only the first rows were read (large files); counts then describe the sample. */
  sampled: z.boolean(),
  columns: z.array(ColumnProfile),
  /** Columns that look like prediction targets, best first. */
  candidateTargets: z.array(z.string()),
  duplicateRows: z.number().int(),
  delimiter: z.string(),
  /** The files a run needs (the table or archive first), copied into its workspace. */
  inputs: z.array(z.string()).optional(),
  /** Every file the conversation had when this profile was made; a file outside it means a new profile. */
  given: z.array(z.string()).optional(),
  /** Set when the table has a time axis. */
  time: TimeProfile.nullable().optional(),
  /** Set when an edge list joins the table's rows (nodes). */
  graph: GraphProfile.nullable().optional(),
  /** Set for images; `columns` then describe the labels (file name and label per image). */
  images: ImagesProfile.nullable().optional(),
  /** How the uploaded file was read (format, encoding, separators, sheet, date formats). */
  source: z
    .object({
      format: z.enum(["csv", "excel", "json", "jsonl", "parquet"]),
      original: z.string(),
      encoding: z.string().nullable(),
      delimiter: z.string().nullable(),
      decimal: z.enum([".", ","]),
      thousands: z.string().nullable(),
      sheet: z.string().nullable(),
      sheets: z.array(z.string()),
      dates: z.array(z.object({ column: z.string(), format: z.string() })),
    })
    .optional(),
});
export type DataProfile = z.infer<typeof DataProfile>;

/** A question the graph puts to the user through `interrupt()`. */
export const Question = z.object({
  /** What the answer fills: `time`, `series` and `horizon` are the forecast's time column, series id and steps ahead. */
  /** What the answer fills; "constraint", "constraint_2", … ask where a written number belongs. */
  slot: z.union([
    z.enum(["dataset", "target", "task", "labels", "time", "series", "horizon", "runner", "sheet", "approval", "other", "constraint"]),
    z.string().regex(/^constraint_\d+$/) as z.ZodType<`constraint_${number}`>,
  ]),
  text: z.string(),
  choices: z.array(z.object({ label: z.string(), value: z.string() })).default([]),
  allowFreeText: z.boolean().default(true),
});
export type Question = z.infer<typeof Question>;

export const Assessment = z.object({
  relevant: z.boolean(),
  /** Set when the request is declined (off-topic or a task this engine cannot do). */
  declineReason: z.string().nullable(),
  /** Questions still open, most important first; empty when the request is adequate. */
  questions: z.array(Question),
  notes: z.array(z.string()).default([]),
});
export type Assessment = z.infer<typeof Assessment>;

export const ModelChoice = z.object({
  /** Recipe family id, e.g. "hist_gradient_boosting". */
  family: z.string(),
  label: z.string(),
  estimator: z.string(),
});

export const Plan = z.object({
  id: z.string(),
  title: z.string(),
  approach: z.string(),
  summary: z.string(),
  preprocessing: z.array(z.string()),
  models: z.array(ModelChoice).min(1),
  training: z.string(),
  inference: z.string(),
  rationale: z.string(),
  /** Plain statements about substitutions or caveats ("XGBoost is not installed; using ..."). */
  notices: z.array(z.string()).default([]),
});
export type Plan = z.infer<typeof Plan>;

export const DataPlan = z.object({
  planId: z.string(),
  steps: z.array(z.string()),
  dropColumns: z.array(z.string()),
  preprocess: Preprocess,
  findings: z.array(z.string()),
});
export type DataPlan = z.infer<typeof DataPlan>;

export const ModelPlan = z.object({
  planId: z.string(),
  candidates: z.array(SearchCandidate).min(1),
  labels: z.record(z.string(), z.string()),
  /** The model agent's expected cross-validated range per candidate id, when it gave one. */
  expected: z.record(z.string(), z.object({ low: z.number(), high: z.number() })).default({}),
});
export type ModelPlan = z.infer<typeof ModelPlan>;

export const RankedCandidate = z.object({
  id: z.string(),
  label: z.string(),
  estimator: z.string(),
  preprocess: Preprocess,
  /** Forecasting: how the horizon is forecast. */
  strategy: ForecastStrategy.optional(),
  params: z.record(z.string(), z.unknown()),
  /** Cross-validated score on the training split, in the metric's natural units. */
  score: z.number().nullable(),
  trials: z.number().int(),
  error: z.string().optional(),
});
export type RankedCandidate = z.infer<typeof RankedCandidate>;

export const PlanExecution = z.object({
  planId: z.string(),
  metric: z.string(),
  /** Top-k candidates, best first. */
  candidates: z.array(RankedCandidate),
  dataFindings: z.array(z.string()),
});
export type PlanExecution = z.infer<typeof PlanExecution>;

export const ExecutionVerdict = z.object({
  planId: z.string(),
  ok: z.boolean(),
  score: z.number().nullable(),
  meetsTarget: z.boolean().nullable(),
  reasons: z.array(z.string()),
});
export type ExecutionVerdict = z.infer<typeof ExecutionVerdict>;

/** What the operation agent is told to build. */
export const Instructions = z.object({
  planId: z.string(),
  candidate: RankedCandidate,
  /** Candidates not yet tried, best first: alternatives for the revision loop. */
  alternatives: z.array(RankedCandidate),
  dropColumns: z.array(z.string()),
  notes: z.array(z.string()),
});
export type Instructions = z.infer<typeof Instructions>;

export const Implementation = z.object({
  code: z.string(),
  candidateId: z.string(),
  description: z.string(),
  /** Hyperparameters the code uses, so a later fix starts from them. */
  params: z.record(z.string(), z.unknown()),
  /** Adjustments made to a template (shrunk, simplified), for the report. */
  adjustments: z.array(z.string()).default([]),
});
export type Implementation = z.infer<typeof Implementation>;

export const ConstraintCheck = z.object({
  name: z.string(),
  op: z.string(),
  target: z.number(),
  actual: z.number().nullable(),
  /** null when the harness could not measure it. */
  met: z.boolean().nullable(),
  phrase: z.string().optional(),
});
export type ConstraintCheck = z.infer<typeof ConstraintCheck>;

export const ImplementationVerdict = z.object({
  failure: FailureClass,
  checks: z.array(ConstraintCheck),
  reasons: z.array(z.string()),
});
export type ImplementationVerdict = z.infer<typeof ImplementationVerdict>;

export const RunRecord = z.object({
  kind: z.enum(["search", "smoke", "full"]),
  runId: z.string(),
  /** Local folder with the run's artifacts. */
  workspace: z.string(),
  /** The workspace on the runner's machine (the same folder for the local runner). */
  dir: z.string(),
  candidateId: z.string().nullable(),
  result: HarnessResult.nullable(),
  failure: FailureClass,
  message: z.string(),
  cancelled: z.boolean(),
  durationS: z.number(),
  /** Metrics the generated code itself reported; checked against the harness's own numbers. */
  claims: z.record(z.string(), z.number()).default({}),
  /** Host-owned copies of the run's artifacts (runners/intake.ts); the workspace itself is never read for them. */
  artifacts: z.object({ dir: z.string(), model: z.string().nullable(), code: z.string().nullable(), plots: z.array(z.string()) }).nullable().default(null),
});
export type RunRecord = z.infer<typeof RunRecord>;

export interface Conversation {
  /** The user's messages, oldest first (answers included). */
  messages: string[];
  /** Local data files known to the conversation. */
  files: string[];
  /** Answers given to slot questions, keyed by slot. */
  answers: Record<string, string>;
}

export interface KnowledgeItem {
  source: string;
  title: string;
  text: string;
}

// Named inputs, so every implementation states its signature once, by name.
export interface PlanInput {
  requirements: Requirements;
  profile: DataProfile;
  knowledge: KnowledgeItem[];
  count: number;
  feedback: string[];
  failures: string[];
  installed: Record<string, boolean>;
  /** Called as each plan is ready (an LLM writes them in parallel), for progress in the thread. */
  onPlan?: (plan: Plan, ready: number, total: number) => void;
}

export interface SelectInput {
  requirements: Requirements;
  plans: Plan[];
  executions: PlanExecution[];
  verdicts: ExecutionVerdict[];
  dataPlans: DataPlan[];
  chosenPlanId: string;
}

export interface VerifyImplementationInput {
  requirements: Requirements;
  result: HarnessResult;
  baseline: number | null;
  implementation: Implementation;
  /** Substitutions and caveats announced in the conversation. */
  notices: string[];
}

export interface FixInput {
  instructions: Instructions;
  requirements: Requirements;
  previous: Implementation;
  failure: FailureClass;
  message: string;
  memory: string[];
}

export interface ManagerAgent {
  assess(input: { conversation: Conversation; profile: DataProfile | null }): Promise<Assessment>;
  plan(input: PlanInput): Promise<Plan[]>;
  verifyExecution(input: { requirements: Requirements; executions: PlanExecution[]; modelPlans: ModelPlan[] }): Promise<ExecutionVerdict[]>;
  select(input: SelectInput): Promise<Instructions>;
  verifyImplementation(input: VerifyImplementationInput): Promise<ImplementationVerdict>;
}

export interface PromptAgent {
  parse(input: { conversation: Conversation; profile: DataProfile }): Promise<Requirements>;
}

// Decomposition takes every plan at once, so an LLM agent can do it in one call (one per agent, not per plan).
export interface DataAgent {
  /** Profiles the conversation's data: `file` first, `others` beside it (an edge list, a labels CSV). */
  /** `convertedDir`: where canonical copies of uploads are kept; `sheet`: the workbook sheet to read. */
  profile(file: string, options: { maxBytes: number; others?: string[]; convertedDir?: string; sheet?: string | null }): Promise<DataProfile>;
  decompose(input: { plans: Plan[]; requirements: Requirements; profile: DataProfile }): Promise<DataPlan[]>;
}

export interface ModelAgent {
  decompose(input: { plans: Plan[]; dataPlans: DataPlan[]; requirements: Requirements; profile: DataProfile }): Promise<ModelPlan[]>;
  /** Turns the real search results into top-k candidates per plan. */
  rank(input: { modelPlan: ModelPlan; result: HarnessResult; topK: number }): Promise<RankedCandidate[]>;
}

export interface OperationAgent {
  implement(input: { instructions: Instructions; requirements: Requirements }): Promise<Implementation>;
  /** A revised implementation for a failed run, or null when this agent has no further fix. */
  fix(input: FixInput): Promise<Implementation | null>;
}

export interface Agents {
  engine: "offline" | "llm";
  manager: ManagerAgent;
  prompt: PromptAgent;
  data: DataAgent;
  model: ModelAgent;
  operation: OperationAgent;
}

export { Constraint, Requirements, TASK_KINDS };
