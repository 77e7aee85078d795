import { Annotation } from "@langchain/langgraph";
import { z } from "zod";
import type { Requirements } from "../../src/schema/requirements.js";
import type { Usage } from "../../src/llm/usage.js";
import type {
  Assessment,
  DataPlan,
  DataProfile,
  ExecutionVerdict,
  Implementation,
  ImplementationVerdict,
  Instructions,
  KnowledgeItem,
  ModelPlan,
  Plan,
  PlanExecution,
  Question,
  RunRecord,
} from "./agents/types.js";

// The conversation's state: everything here is plain JSON so any checkpointer can store it.

export const STATUSES = ["running", "needs_input", "deployed", "trained", "rejected", "failed", "cancelled"] as const;
export type Status = (typeof STATUSES)[number];

/** What a paused conversation waits for; sent to the chat adapter through `interrupt()`. */
export type InterruptPayload =
  | { kind: "question"; question: Question }
  | {
      kind: "approval";
      plans: Plan[];
      recommended: string;
      notices: string[];
      /** The requirements stated back ("I read: predict Survived · …"), shown first on the plan card. */
      reading?: string;
      /** The data section of the plan card: how the file was read, each column as understood (./data-card.ts). */
      data?: string[];
    };

/** What the user sent back: an answer, or a decision on the plans. */
export const ResumeValue = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("answer"), text: z.string(), files: z.array(z.string()).default([]), user: z.string().optional() }),
  z.object({ kind: z.literal("approve"), planId: z.string(), user: z.string().optional() }),
  z.object({ kind: z.literal("revise"), feedback: z.string().min(1), user: z.string().optional() }),
  z.object({ kind: z.literal("cancel"), user: z.string().optional() }),
]);
export type ResumeValue = z.infer<typeof ResumeValue>;

export interface Endpoint {
  url: string;
  /** Bearer token the server requires, when it requires one. */
  token?: string;
  check: { ok: boolean; prediction: unknown; error?: string };
  serving: boolean;
}

export interface BestRun {
  runId: string;
  workspace: string;
  runnerDir: string;
  candidateId: string;
  description: string;
  implementation: Implementation;
  result: NonNullable<RunRecord["result"]>;
  /** Host-owned copies of the run's artifacts; reports and uploads use only these. */
  artifacts?: RunRecord["artifacts"];
  verdict: ImplementationVerdict;
}

export type { Usage };

/** Node ids a deciding node may route to; typed so that a renamed step cannot leave a stale route behind. */
export type Route =
  | "ingest"
  | "clarify"
  | "parse"
  | "plan"
  | "decompose"
  | "select"
  | "implement"
  | "smoke"
  | "train"
  | "verify_implementation"
  | "revise"
  | "deploy"
  | "finish";

const last = <T>(initial: T) => Annotation<T>({ reducer: (_a: T, b: T) => b, default: () => initial });
const append = <T>() => Annotation<T[]>({ reducer: (a: T[], b: T[]) => a.concat(b), default: () => [] });
const mergeRecord = <T>() =>
  Annotation<Record<string, T>>({ reducer: (a, b) => ({ ...a, ...b }), default: () => ({}) });

export const AutoMLState = Annotation.Root({
  /** User messages, oldest first; answers to questions are appended. */
  messages: append<string>(),
  /** Data files given with the conversation (absolute paths). */
  files: Annotation<string[]>({ reducer: (a, b) => [...new Set([...a, ...b])], default: () => [] }),
  answers: mergeRecord<string>(),
  requester: last<string | null>(null),
  /** Whether paths typed in messages may be read from this machine: the terminal and CLI, never chat users. */
  localPaths: last<boolean>(true),
  /** Random per conversation: with the run count it names run workspaces, so a resumed node finds its own job again. */
  runKey: last<string>(""),
  profile: last<DataProfile | null>(null),
  assessment: last<Assessment | null>(null),
  requirements: last<Requirements | null>(null),
  knowledge: last<KnowledgeItem[]>([]),
  plans: last<Plan[]>([]),
  feedback: append<string>(),
  /** "best" (evaluate every plan, build the best) or one plan's id. */
  approvedPlan: last<string | null>(null),
  dataPlans: last<DataPlan[]>([]),
  modelPlans: last<ModelPlan[]>([]),
  /** Evidence per executed plan; kept across re-plans so the best evidence wins wherever it came from. */
  executions: Annotation<PlanExecution[]>({
    reducer: (a, b) => [...a.filter((x) => !b.some((y) => y.planId === x.planId)), ...b],
    default: () => [],
  }),
  /** Plans made so far, so that plan ids stay unique across revisions and re-plans. */
  planSerial: last<number>(0),
  verdicts: last<ExecutionVerdict[]>([]),
  /** Majority-class share in the data: the chance level for the degenerate check. */
  baseline: last<number | null>(null),
  instructions: last<Instructions | null>(null),
  implementation: last<Implementation | null>(null),
  runs: append<RunRecord>(),
  /** The run the next stage looks at. */
  lastRun: last<RunRecord | null>(null),
  verdict: last<ImplementationVerdict | null>(null),
  best: last<BestRun | null>(null),
  /** One-line summaries of fixes already tried, so a loop never repeats one. */
  fixMemory: append<string>(),
  budgets: Annotation<Record<string, number>>({
    reducer: (a, b) => {
      const out = { ...a };
      for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
      return out;
    },
    default: () => ({}),
  }),
  /** Approaches whose plans failed, steering a re-plan away from them. */
  failedApproaches: append<string>(),
  endpoint: last<Endpoint | null>(null),
  /** The next step a deciding node chose (read by the graph's conditional edges). */
  route: last<Route | null>(null),
  status: last<Status>("running"),
  /** A problem with the data file, reported once the request itself has been checked. */
  dataError: last<string | null>(null),
  error: last<string | null>(null),
  questions: last<string[]>([]),
  notices: append<string>(),
  /** Seconds per stage (summed over loops). */
  timings: Annotation<Record<string, number>>({
    reducer: (a, b) => {
      const out = { ...a };
      for (const [k, v] of Object.entries(b)) out[k] = Math.round(((out[k] ?? 0) + v) * 1000) / 1000;
      return out;
    },
    default: () => ({}),
  }),
  llm: Annotation<Usage>({
    reducer: (a, b) => ({ calls: a.calls + b.calls, prompt_tokens: a.prompt_tokens + b.prompt_tokens, completion_tokens: a.completion_tokens + b.completion_tokens }),
    default: () => ({ calls: 0, prompt_tokens: 0, completion_tokens: 0 }),
  }),
  report: last<Report | null>(null),
  /** The thread's earlier models, when this conversation retrains one of them: the report compares with them. */
  earlier: last<EarlierModel[]>([]),
  /** Search budget multiplier ("more time" in a follow-up). */
  searchScale: last<number>(1),
});

/** A model trained earlier in the same chat thread (from the deployment registry). */
export interface EarlierModel {
  name: string;
  description: string;
  metric: { name: string; direction: "max" | "min" };
  metrics: Record<string, number>;
  constraints: Array<{ name: string; met: boolean | null }>;
  status: "serving" | "stopped";
}

export type State = typeof AutoMLState.State;
export type Update = typeof AutoMLState.Update;

export interface Report {
  status: Status;
  title: string;
  summary: string[];
  metrics: Record<string, number>;
  constraints: Array<{ name: string; op: string; target: number; actual: number | null; met: boolean | null }>;
  endpoint: Endpoint | null;
  curl: string | null;
  /** `bundle`: the portable zip (model, serving script, pinned requirements, Dockerfile, model card). */
  artifacts: { model: string | null; code: string | null; report: string | null; plots: string[]; bundle?: string | null };
  /** The new model beside the thread's earlier ones (a retrain): one row per model, this one first. */
  comparison?: { header: string[]; rows: string[][] } | null;
  notices: string[];
  /** How the model was found and trained (search, decision threshold, date features, columns set aside). */
  training?: string[];
  /** LLM use of the whole conversation; null with the offline engine. */
  llm: (Usage & { cost_usd: number }) | null;
}
