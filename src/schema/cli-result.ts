import { z } from "zod";
import { DecisionThreshold } from "../../runners/contract.js";

// The headless CLI's JSON result (docs/architecture.md §5): other tools parse stdout's last line with this shape.

export const CLI_STATUSES = ["deployed", "trained", "needs_input", "rejected", "failed", "cancelled"] as const;

export const CliResult = z.object({
  status: z.enum(CLI_STATUSES),
  questions: z.array(z.string()).optional(),
  requirements: z.unknown().nullable(),
  /** The plan whose model was built. */
  plan: z.unknown().nullable(),
  plans: z.array(z.unknown()).default([]),
  /** The plan card's data section: how the file was read and each column as understood. */
  data: z.array(z.string()).default([]),
  /** Harness-computed, on the held-out test split. */
  metrics: z.record(z.string(), z.number()),
  constraints: z.array(
    z.object({ name: z.string(), op: z.string(), target: z.number(), actual: z.number().nullable(), met: z.boolean().nullable() }),
  ),
  endpoint: z
    .object({
      url: z.string(),
      check: z.object({ ok: z.boolean(), prediction: z.unknown(), error: z.string().optional() }),
      serving: z.boolean(),
    })
    .optional(),
  artifacts: z.object({ model: z.string().nullable(), code: z.string().nullable(), report: z.string().nullable(), plots: z.array(z.string()), bundle: z.string().nullable().default(null) }),
  timings: z.record(z.string(), z.number()),
  llm: z.object({ calls: z.number(), prompt_tokens: z.number(), completion_tokens: z.number(), cost_usd: z.number().optional() }),
  notices: z.array(z.string()).default([]),
  /** How the model was found and trained: the search, the decision threshold, date features, columns set aside. */
  training: z.array(z.string()).default([]),
  /** A binary classifier's decision threshold, chosen on the validation split (never the test split). */
  threshold: DecisionThreshold.nullable().default(null),
  error: z.string().optional(),
  /** The report's summary lines ("Compared with churn (…): accuracy 0.81 → 0.84, better." after a retrain). */
  summary: z.array(z.string()).default([]),
  /** After a retrain: the new model beside the thread's earlier ones, this one first. */
  comparison: z.object({ header: z.array(z.string()), rows: z.array(z.array(z.string())) }).nullable().default(null),
  /** `--thread NAME`: the conversation's name, and the model it registered (docs/architecture.md §9). */
  thread: z.string().optional(),
  model: z.string().nullable().optional(),
  /** A follow-up's answer (score, explain, compare, models, undeploy…): its lines, the file it made, the table it showed. */
  followup: z
    .object({
      kind: z.enum(["text", "file", "table"]),
      lines: z.array(z.string()),
      file: z.string().nullable().default(null),
      table: z.object({ header: z.array(z.string()), rows: z.array(z.array(z.string())) }).nullable().default(null),
    })
    .optional(),
});
export type CliResultT = z.infer<typeof CliResult>;

export function failedResult(error: string): CliResultT {
  return {
    status: "failed",
    requirements: null,
    plan: null,
    plans: [],
    data: [],
    metrics: {},
    constraints: [],
    artifacts: { model: null, code: null, report: null, plots: [], bundle: null },
    timings: {},
    llm: { calls: 0, prompt_tokens: 0, completion_tokens: 0 },
    notices: [],
    training: [],
    threshold: null,
    summary: [],
    comparison: null,
    error,
  };
}
