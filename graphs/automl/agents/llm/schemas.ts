import { z } from "zod";
import { looseList } from "../../../../src/llm/json-schema.js";

// Shapes of what the LLM returns, one per prompt. Fields that only colour the output (notes, wording)
// are lenient and fall back to empty values; fields that decide what happens next (relevance, ids,
// verdicts) are strict, so a malformed answer goes back to the model for one repair round (the
// client's job) instead of being guessed. Everything is checked again against the real data and the
// recipes before use: passing these schemas only means the JSON is well formed.

const text = z.string().catch("");
const texts = z.array(z.string()).catch([]);
const maybeText = z.union([z.string(), z.number()]).nullable().catch(null);
// Lists kept element by element (`looseList`): bad elements are dropped in code, not the whole list,
// while the schema sent to the model still shows the element's shape.

export const QuestionOutput = z.object({
  slot: z.string().catch("other"),
  text: z.string().min(1),
  choices: z.array(z.union([z.string(), z.number()])).catch([]),
});

export const ConstraintOutput = z.object({
  name: z.string().min(1),
  op: z.string().catch(""),
  value: z.union([z.number(), z.string()]),
  unit: text,
  phrase: text,
});

export const DropSuggestion = z.object({ column: z.string(), reason: text });

export const CandidateOutput = z.object({
  family: z.string(),
  /** param → {low, high} or {values: [...]}; checked against the recipe's space in code. */
  ranges: z.record(z.string(), z.unknown()).catch({}),
  expected: z.object({ low: z.number(), high: z.number() }).nullable().catch(null),
  note: text,
});

// ---- manager: request verification (relevancy and adequacy in one answer)
export const AssessOutput = z.object({
  relevant: z.boolean(),
  /** One of the task kinds listed in the prompt, or null when the request does not say. */
  task: maybeText,
  /** A column name copied from the list, or null. */
  target: maybeText,
  labels_column: maybeText,
  adequate: z.boolean().catch(false),
  missing: texts,
  questions: looseList(QuestionOutput),
  decline_reason: maybeText,
  notes: texts,
});
export type AssessOutput = z.infer<typeof AssessOutput>;

// ---- prompt agent: requirements
export const ParseOutput = z.object({
  user: z.object({ intent: text, expertise: text }).partial().catch({}),
  problem: z
    .object({
      area: text,
      downstream_task: text,
      application_domain: text,
      description: text,
    })
    .partial()
    .catch({}),
  dataset: z
    .object({
      description: text,
      preprocessing: texts,
      augmentation: texts,
      visualization: texts,
    })
    .partial()
    .nullable()
    .catch(null),
  model: looseList(z.object({ name: z.string(), family: text, type: text, specification: text, description: text }).partial()),
  service: z
    .object({
      feature_engineering: texts,
      target_device: text,
      deployment_endpoint: text,
      inference_engine: texts,
      demonstration: text,
    })
    .partial()
    .nullable()
    .catch(null),
  knowledge: texts,
  confidence: z.object({ rationale: text, score: z.number().min(0).max(1).catch(0.5) }).nullable().catch(null),
  task: maybeText,
  target: maybeText,
  metric: maybeText,
  positive_class: maybeText,
  n_clusters: z.number().int().nullable().catch(null),
  labels_column: maybeText,
  drop_columns: texts,
  constraints: looseList(ConstraintOutput),
  requested_models: texts,
  /** Forecasting only: the time column, the column that separates series, and the steps ahead. */
  time_column: maybeText,
  series_column: maybeText,
  horizon: z.number().int().positive().nullable().catch(null),
});
export type ParseOutput = z.infer<typeof ParseOutput>;

// ---- manager: knowledge summary
export const KnowledgeOutput = z.object({ insights: texts });
export type KnowledgeOutput = z.infer<typeof KnowledgeOutput>;

// ---- manager: one plan for an assigned approach
export const PlanOutput = z.object({
  title: z.string().min(1),
  summary: z.string().min(1),
  preprocessing: texts,
  /** Family ids from the list given in the prompt; anything else is dropped. */
  models: looseList(z.string()),
  training: text,
  inference: text,
  rationale: text,
});
export type PlanOutput = z.infer<typeof PlanOutput>;

// ---- data agent: every plan in one answer
export const DataDecomposeOutput = z.object({
  plans: z.array(
    z.object({
      plan_id: z.string(),
      steps: texts,
      preprocess: z.object({ scale: z.boolean(), encode: z.enum(["onehot", "ordinal"]) }).nullable().catch(null),
      drop_suggestions: looseList(DropSuggestion),
      findings: texts,
    }),
  ),
});
export type DataDecomposeOutput = z.infer<typeof DataDecomposeOutput>;


// ---- model agent: every plan in one answer
export const ModelDecomposeOutput = z.object({
  plans: z.array(
    z.object({
      plan_id: z.string(),
      candidates: looseList(CandidateOutput),
    }),
  ),
});
export type ModelDecomposeOutput = z.infer<typeof ModelDecomposeOutput>;


export const RangeOutput = z.union([
  z.object({ low: z.union([z.number(), z.string()]), high: z.union([z.number(), z.string()]) }),
  z.object({ values: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1) }),
  z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1),
]);

// ---- manager: execution verification
export const VerifyExecutionOutput = z.object({
  verdicts: z.array(z.object({ plan_id: z.string(), pass: z.boolean(), reasons: texts })),
});
export type VerifyExecutionOutput = z.infer<typeof VerifyExecutionOutput>;

// ---- manager: selection
export const SelectOutput = z.object({
  candidate_id: z.string().min(1),
  reason: text,
  notes: texts,
});
export type SelectOutput = z.infer<typeof SelectOutput>;

// ---- manager: implementation verification (non-numeric requirements only)
export const VerifyImplementationOutput = z.object({
  verdict: z.enum(["met", "design_mismatch"]),
  reasons: texts,
});
export type VerifyImplementationOutput = z.infer<typeof VerifyImplementationOutput>;
