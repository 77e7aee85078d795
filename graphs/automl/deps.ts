import { isGraphBubbleUp, type LangGraphRunnableConfig } from "@langchain/langgraph";
import type { Config } from "../../config/schema.js";
import type { Logger } from "../../src/logger.js";
import { LlmCancelledError, LlmUnavailableError } from "../../src/llm/errors.js";
import { withUsage, type Usage } from "../../src/llm/usage.js";
import type { ModelServer, Runner } from "../../runners/types.js";
import type { Agents, Plan } from "./agents/types.js";
import type { Retriever } from "./knowledge/sources.js";
import type { Update } from "./state.js";

// Services the nodes use. They are bound when the graph is built and never stored in state.

/** Stage names, in graph order: each is the node id of its step (timings and progress events use them). */
export const STAGES = [
  "ingest",
  "verify_request",
  "parse",
  "retrieve",
  "plan",
  "approve",
  "decompose",
  "execute",
  "verify_execution",
  "select",
  "implement",
  "smoke",
  "train",
  "verify_implementation",
  "revise",
  "deploy",
  "finish",
] as const;
export type Stage = (typeof STAGES)[number];

export type ProgressEvent =
  | { type: "stage"; stage: Stage; state: "start" | "done" | "failed"; detail?: string }
  | { type: "progress"; stage: Stage; done: number; total: number; label?: string }
  | { type: "metric"; name: string; value: number; split?: string }
  | { type: "plans"; plans: Plan[]; reading?: string }
  | { type: "notice"; text: string };

export interface GraphDeps {
  agents: Agents;
  config: Config;
  logger: Logger;
  /** The runner for a name ("local", or a configured SSH host). */
  runner(name: string): Runner;
  /** Knowledge sources for planning: the local base and any configured online ones. */
  retriever: Retriever;
  /** Resolves relative data paths typed in messages. */
  cwd: string;
  emit(threadId: string, event: ProgressEvent): void;
  /** Signal of the thread's current job; aborted when the user cancels. */
  jobSignal(threadId: string): AbortSignal;
  /** Keeps a deployed model server for the thread (stopping the one it had). */
  keepServer(threadId: string, server: ModelServer): Promise<void>;
  /** Optional Python modules installed on the runner (xgboost, lightgbm...). */
  installedModules(runnerName: string): Promise<Record<string, boolean>>;
}

export function threadIdOf(config: LangGraphRunnableConfig): string {
  const id = config.configurable?.thread_id;
  if (typeof id !== "string" || !id) throw new Error("thread_id missing from the graph config");
  return id;
}

/** Whether this invocation keeps the model server running after its check (chat) or stops it (headless). */
export function keepServing(config: LangGraphRunnableConfig): boolean {
  return config.configurable?.serve !== false;
}

/** The runner of this conversation: named by the caller (`--runner`), else chosen in the thread, else the default. */
export function runnerNameOf(config: LangGraphRunnableConfig, deps: GraphDeps, state?: { answers: Record<string, string> }): string {
  const name = config.configurable?.runner;
  if (typeof name === "string" && name) return name;
  const chosen = state?.answers.runner;
  return chosen && runnerNames(deps).includes(chosen) ? chosen : deps.config.defaultRunner;
}

/** Every runner a conversation can use, the default first. */
export function runnerNames(deps: GraphDeps): string[] {
  return [...new Set([deps.config.defaultRunner, "local", ...Object.keys(deps.config.runners)])];
}

type NodeFn<S> = (state: S, config: LangGraphRunnableConfig) => Promise<Update>;

/** Wraps a node so that its time is recorded and its start and end reach the thread. */
export function stage<S>(deps: GraphDeps, name: Stage, fn: NodeFn<S>): NodeFn<S> {
  return async (state, config) => {
    const threadId = threadIdOf(config);
    const started = performance.now();
    deps.emit(threadId, { type: "stage", stage: name, state: "start" });
    const before = (state as { llm?: Usage }).llm?.calls ?? 0;
    const { result: update, usage, budgetSpent } = await withUsage(
      () =>
        fn(state, config).catch((err: unknown): Update => {
          // Interrupts (a question, a plan card) are how the graph pauses, not failures.
          if (isGraphBubbleUp(err)) throw err;
          // An LLM endpoint that stays down ends the conversation with its own clear message.
          if (err instanceof LlmUnavailableError) return { status: "failed", error: err.message };
          if (err instanceof LlmCancelledError) return { status: "cancelled", error: "Cancelled by the user." };
          // Anything else is a fault of ThreadML's own: the thread gets a sentence, the log the stack.
          deps.logger.error({ err, stage: name, thread: threadId }, "a step failed unexpectedly");
          const keys = [deps.config.llm.apiKey, ...Object.values(deps.config.llm.providers).map((p) => p?.apiKey)];
          return { status: "failed", error: unexpectedFailure(name, err, keys) };
        }),
      deps.jobSignal(threadId),
      { before, max: deps.config.llm.maxCalls },
    );
    // Said once, in the first step that was refused a request.
    const spent = `The LLM has made the ${deps.config.llm.maxCalls} requests one conversation may use (llm.maxCalls); the remaining steps follow ThreadML's own rules and templates.`;
    const said = ((state as { notices?: string[] }).notices ?? []).includes(spent);
    if (budgetSpent && !said && (update.notices === undefined || Array.isArray(update.notices))) {
      deps.emit(threadId, { type: "notice", text: spent });
      update.notices = [...(update.notices ?? []), spent];
    }
    const seconds = (performance.now() - started) / 1000;
    const failed = update.status === "failed";
    deps.emit(threadId, { type: "stage", stage: name, state: failed ? "failed" : "done" });
    return { ...update, timings: { ...(update.timings ?? {}), [name]: seconds }, ...(usage.calls ? { llm: usage } : {}) };
  };
}

/**
 * The thread's sentence for an exception a step did not expect. A message meant for people (one short
 * line) is kept; a programming error or a validation dump is not shown, only logged.
 */
export function unexpectedFailure(stage: Stage, err: unknown, secrets: Array<string | undefined> = []): string {
  let message = String((err as Error)?.message ?? err ?? "").trim();
  for (const secret of secrets) if (secret && secret.length >= 4) message = message.split(secret).join("[redacted]");
  const technical =
    err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError ||
    (err as Error)?.name === "ZodError" || !message || message.length > 200 || /[\n{}[\]]|\bat \S+:\d+/.test(message) ||
    // A host path or an address says more about this machine than the thread needs.
    /(?:^|[\s("'])(?:~?\/|[A-Za-z]:\\)[^\s]*[\/\\]|\b(?:https?|ssh):\/\/|\b\d{1,3}(?:\.\d{1,3}){3}\b/.test(message);
  const what = technical ? " on an internal error (the details are in ThreadML's log)" : `: ${message.replace(/\.$/, "")}`;
  return `ThreadML stopped this request: the ${stage.replace(/_/g, " ")} step failed${what}. The data and any earlier model are kept; send the request again, or change it.`;
}
