import { EventEmitter } from "node:events";
import { resolve } from "node:path";
import { Command, MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph";
import type { Config } from "../config/schema.js";
import { createOfflineAgents } from "../graphs/automl/agents/offline/index.js";
import type { Agents } from "../graphs/automl/agents/types.js";
import type { GraphDeps, ProgressEvent } from "../graphs/automl/deps.js";
import { buildAutoMLGraph, type AutoMLGraph } from "../graphs/automl/graph.js";
import { optionalModules } from "../graphs/automl/knowledge/index.js";
import { createRetriever } from "../graphs/automl/knowledge/sources.js";
import type { EarlierModel, InterruptPayload, ResumeValue, State } from "../graphs/automl/state.js";
import { explainModel } from "../graphs/automl/followup/explain.js";
import type { FollowUpAnswer, FollowUpModel } from "../graphs/automl/followup/job.js";
import { scoreFile } from "../graphs/automl/followup/score.js";
import { createRunners, localRunnerFor } from "../runners/index.js";
import { FENCE_CONFIGURABLE } from "./store/redis-checkpointer.js";
import { LocalRunner } from "../runners/local/index.js";
import type { ModelServer, Runner, ServeOptions, Workspace } from "../runners/types.js";
import { ConfigError } from "./config.js";
import type { Logger } from "./logger.js";

export type StartInput = {
  text: string;
  files?: string[];
  requester?: string | null;
  /** Read paths typed in the text from this machine (default true: the terminal and CLI). Chat platforms pass false. */
  localPaths?: boolean;
  /** A retrain in the same thread: the earlier request it changes, and the models to compare with. */
  seed?: RetrainSeed;
};

/** What a "change and retrain" follow-up keeps from the earlier conversation (docs/architecture.md §9). */
export interface RetrainSeed {
  messages: string[];
  files: string[];
  answers: Record<string, string>;
  feedback: string[];
  earlier: EarlierModel[];
  searchScale: number;
}

export type Outcome =
  | { kind: "interrupt"; payload: InterruptPayload; state: State }
  | { kind: "done"; state: State };

export interface AdvanceOptions {
  /** Keep the model server running after its check (default true). */
  serve?: boolean;
  runner?: string;
  /** The caller's lease on the conversation: checkpoint writes are refused once a newer holder exists. */
  fence?: { key: string; token: number };
}

function graphConfig(threadId: string, options: AdvanceOptions) {
  const configurable: Record<string, unknown> = { thread_id: threadId, serve: options.serve ?? true, runner: options.runner ?? "" };
  if (options.fence) configurable[FENCE_CONFIGURABLE] = options.fence;
  return { configurable, recursionLimit: 100 };
}

export interface EngineOptions {
  config: Config;
  logger: Logger;
  cwd?: string;
  checkpointer?: BaseCheckpointSaver;
  agents?: Agents;
  runners?: Record<string, Runner>;
}

/** Everything one ThreadML process needs to run conversations: agents, runners, the graph, live servers. */
export class Engine {
  readonly graph: AutoMLGraph;
  readonly config: Config;
  readonly logger: Logger;
  /** Progress events, emitted as `event` with (threadId, ProgressEvent). */
  readonly events = new EventEmitter();
  private readonly runners: Record<string, Runner>;
  private readonly controllers = new Map<string, AbortController>();
  private readonly servers = new Map<string, ModelServer>();
  private readonly moduleCache = new Map<string, Promise<Record<string, boolean>>>();
  /** Resolves data paths typed in the terminal and CLI. */
  readonly cwd: string;

  constructor(options: EngineOptions) {
    this.config = options.config;
    this.logger = options.logger;
    this.cwd = options.cwd ?? process.cwd();
    if ((options.config.engine === "llm" && !options.agents) || (Object.keys(options.config.runners).length && !options.runners))
      throw new ConfigError("The LLM engine and configured runners load asynchronously: create the engine with createEngine().");
    const agents = options.agents ?? createOfflineAgents();
    this.runners = options.runners ?? {
      local: localRunnerFor(options.config, options.logger, resolve(this.cwd, options.config.dataDir)),
    };
    const deps: GraphDeps = {
      agents,
      retriever: createRetriever(options.config.llm.sources, {
        timeoutMs: options.config.llm.sourceTimeoutS * 1000,
        urls: options.config.llm.sourceUrls,
      }),
      config: options.config,
      logger: options.logger,
      cwd: this.cwd,
      runner: (name) => this.runner(name),
      emit: (threadId, event) => this.events.emit("event", threadId, event),
      jobSignal: (threadId) => this.controller(threadId).signal,
      keepServer: async (threadId, server) => {
        await this.stopServer(threadId);
        this.servers.set(threadId, server);
      },
      installedModules: (name) => this.installedModules(name),
    };
    this.graph = buildAutoMLGraph(deps, options.checkpointer ?? new MemorySaver());
  }


  runner(name: string): Runner {
    const runner = this.runners[name];
    if (!runner) throw new ConfigError(`Unknown runner "${name}". Configured runners: ${Object.keys(this.runners).join(", ")}.`);
    return runner;
  }

  // One controller per step of a thread: a cancel that comes before the first job of the step, or between
  // two jobs, still stops every job the step starts after it. Each advance() or resume() starts afresh.
  private controller(threadId: string): AbortController {
    let c = this.controllers.get(threadId);
    if (!c) {
      c = new AbortController();
      this.controllers.set(threadId, c);
    }
    return c;
  }

  /** Stops the thread's running job (if any); the graph then finishes as cancelled. */
  cancel(threadId: string): void {
    this.controller(threadId).abort(new Error("cancelled by the user"));
  }

  async stopServer(threadId: string): Promise<boolean> {
    const server = this.servers.get(threadId);
    if (!server) return false;
    this.servers.delete(threadId);
    await server.stop();
    return true;
  }

  private installedModules(name: string): Promise<Record<string, boolean>> {
    let cached = this.moduleCache.get(name);
    if (!cached) {
      const runner = this.runner(name);
      cached = runner.modules
        ? runner.modules(optionalModules()).catch((err) => {
            this.logger.warn({ err }, "could not probe optional Python modules");
            return {};
          })
        : Promise.resolve({});
      this.moduleCache.set(name, cached);
    }
    return cached;
  }

  /** Starts a conversation or resumes a paused one, and runs it until it pauses or ends. */
  async advance(threadId: string, input: StartInput | ResumeValue, options: AdvanceOptions = {}): Promise<Outcome> {
    const config = graphConfig(threadId, options);
    this.controllers.delete(threadId);
    return this.outcomeOf(
      await ("kind" in input
        ? this.graph.invoke(new Command({ resume: input }) as Parameters<AutoMLGraph["invoke"]>[0], config)
        : this.graph.invoke(this.startState(input), config)),
    );
  }

  private startState(input: StartInput) {
    const files = (input.files ?? []).map((f) => resolve(this.cwd, f));
    const base = { requester: input.requester ?? null, localPaths: input.localPaths ?? true };
    const seed = input.seed;
    if (!seed) return { ...base, messages: [input.text], files };
    // The earlier request with the change as its last message: parsing reads them together, the planner the change.
    return {
      ...base,
      messages: [...seed.messages, input.text],
      files: [...seed.files, ...files],
      answers: seed.answers,
      feedback: [...seed.feedback, input.text],
      earlier: seed.earlier,
      searchScale: seed.searchScale,
    };
  }

  /** The model server this engine keeps for a conversation, if any. */
  server(threadId: string): ModelServer | undefined {
    return this.servers.get(threadId);
  }

  /**
   * Serves a registered model again (after a restart): in its workspace when the runner still has it,
   * else in a fresh one made from the host-owned copies; kept like a deployment of `threadId`.
   */
  async serveAgain(o: { threadId: string; runner: string; workspace: Workspace; copies: Array<{ source: string; dest: string }> | null; options: ServeOptions }): Promise<ModelServer> {
    const runner = this.runner(o.runner);
    let server: ModelServer;
    try {
      server = await runner.serve(o.workspace, o.options);
    } catch (err) {
      if (!o.copies) throw err;
      // The workspace may be gone (retention) or the port taken: a fresh workspace on any free port.
      this.logger.info({ err: (err as Error).message, thread: o.threadId }, "serving from the kept copies instead");
      const ws = await runner.prepare({ runId: `${o.workspace.runId.slice(-80)}-serve`, files: o.copies, texts: {} });
      server = await runner.serve(ws, { ...o.options, port: undefined });
    }
    await this.stopServer(o.threadId);
    this.servers.set(o.threadId, server);
    return server;
  }

  /** Predictions for a file from a registered model (docs/architecture.md §9), run on the model's runner. */
  score(model: FollowUpModel & { runner: string }, file: string, threadId: string): Promise<FollowUpAnswer> {
    return scoreFile(this.followUpDeps(model.runner, threadId), model, file);
  }

  /** Permutation importance of a registered model on its validation rows. */
  explain(model: FollowUpModel & { runner: string }, threadId: string): Promise<FollowUpAnswer> {
    return explainModel(this.followUpDeps(model.runner, threadId), model);
  }

  private followUpDeps(runner: string, threadId: string) {
    this.controllers.delete(threadId);
    return { runner: this.runner(runner), config: this.config, logger: this.logger, cwd: this.cwd, signal: this.controller(threadId).signal };
  }

  /**
   * Where a conversation stands according to its checkpoint: null when the thread has none, else the
   * state, the question or plan card it waits on (if any), and whether nodes were left unfinished (a
   * process that died mid-step).
   */
  async snapshot(threadId: string): Promise<{ state: State; pending: InterruptPayload | null; unfinished: boolean } | null> {
    const snap = await this.graph.getState({ configurable: { thread_id: threadId } });
    if (!snap.config?.configurable?.checkpoint_id) return null;
    const pending = (snap.tasks.flatMap((t) => t.interrupts ?? [])[0]?.value as InterruptPayload | undefined) ?? null;
    return { state: snap.values as State, pending, unfinished: !pending && snap.next.length > 0 };
  }

  /** Runs a conversation on from its last checkpoint (after a restart), until it pauses or ends. */
  async resume(threadId: string, options: AdvanceOptions = {}): Promise<Outcome> {
    const config = graphConfig(threadId, options);
    this.controllers.delete(threadId);
    return this.outcomeOf(await this.graph.invoke(null, config));
  }

  private outcomeOf(raw: unknown): Outcome {
    const result = raw as State & { __interrupt__?: Array<{ value: InterruptPayload }> };
    const pending = result.__interrupt__?.[0];
    return pending ? { kind: "interrupt", payload: pending.value, state: result } : { kind: "done", state: result };
  }

  onEvent(listener: (threadId: string, event: ProgressEvent) => void): () => void {
    this.events.on("event", listener);
    return () => this.events.off("event", listener);
  }

  /**
   * Shutting down for a restart: model servers stop, but training jobs keep running detached so that the
   * process that takes over re-attaches to them. Unfinished steps are left to that process.
   */
  async detach(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((id) => this.stopServer(id)));
    await Promise.all(Object.values(this.runners).map((r) => (r.detach ? r.detach() : r.close())));
  }

  async close(): Promise<void> {
    for (const c of this.controllers.values()) c.abort(new Error("shutting down"));
    await Promise.all([...this.servers.keys()].map((id) => this.stopServer(id)));
    await Promise.all(Object.values(this.runners).map((r) => r.close()));
  }
}

/**
 * Builds an Engine for the configured engine kind. The LLM modules (and their client libraries) are
 * loaded only when the LLM engine is chosen, which keeps the offline start-up fast.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  if (!options.runners && Object.keys(options.config.runners).length)
    options = { ...options, runners: await createRunners(options.config, options.logger, options.cwd ?? process.cwd()) };
  if (options.config.engine !== "llm" || options.agents) return new Engine(options);
  const { llm } = options.config;
  const [{ LlmClient }, { createLlmAgents }] = await Promise.all([import("./llm/client.js"), import("../graphs/automl/agents/llm/index.js")]);
  let client;
  try {
    // Checks every role's provider:model and that its provider has a key or URL.
    client = new LlmClient(llm, options.logger);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return new Engine({ ...options, agents: createLlmAgents(client, { plans: options.config.planning.plans, codeAttempts: llm.codeAttempts }) });
}
