import throttle from "lodash-es/throttle.js";
import PQueue from "p-queue";
import { threadKey, type ChatAdapter, type Inbound, type MessageRef, type Outbound, type ThreadRef } from "../../adapters/types.js";
import type { Plan } from "../../graphs/automl/agents/types.js";
import type { ProgressEvent } from "../../graphs/automl/deps.js";
import type { InterruptPayload, ResumeValue } from "../../graphs/automl/state.js";
import type { Engine, Outcome } from "../engine.js";
import type { Logger } from "../logger.js";
import { MemoryStore } from "../store/memory.js";
import { StaleLeaseError, type ConversationStore, type Lease, type ThreadMeta, type ThreadStatus } from "../store/types.js";
import { StatusTracker } from "./status.js";
import { followUpHelp, readFollowUp, UNDEPLOY, type FollowUp } from "./followups.js";
import { asEarlier, Registry, registryTable } from "./registry.js";
import { FOLLOW_UP_ACTIONS, type FollowUpAction } from "../../adapters/types.js";
import type { ModelEntry } from "../store/types.js";
import type { FollowUpAnswer } from "../../graphs/automl/followup/job.js";
import { basename, resolve as resolvePath } from "node:path";

const CANCEL = /^\s*(cancel|stop|abort)\b(?!\s+serving)/i;
/** Platforms whose users may name files on this machine (typed paths are read): the terminal and the CLI. */
const LOCAL_PLATFORMS = ["shell", "cli"];
/** A retrain asking for "more time" doubles the search budget, up to this factor. */
const MAX_SEARCH_SCALE = 8;
// Platforms retry for minutes and replay for hours at most; a day covers both.
const EVENT_TTL_S = 24 * 3600;
const LEASE_WAIT_MS = 250;

/** Each new conversation in one chat thread gets its own graph thread: `<key>`, `<key>#1`, `<key>#2`… */
const graphThreadIdOf = (key: string, generation: number) => (generation ? `${key}#${generation}` : key);

/** What the plan card says after a decision: "approved plan 2 (Random forest)". */
function describeDecision(resume: ResumeValue, plans: Plan[]): string {
  switch (resume.kind) {
    case "approve": {
      const index = plans.findIndex((p) => p.id === resume.planId);
      return `approved ${index >= 0 ? `plan ${index + 1} (${plans[index].title})` : "the best plan after evaluation"}`;
    }
    case "revise":
      return `asked for a revision: “${resume.feedback}”`;
    case "cancel":
      return "cancelled";
    case "answer":
      return `replied: “${resume.text}”`;
  }
}

/** The plan card for an approval: the plans, with the reading of the request ("I read: …") and the data section when there are. */
function plansCard(p: Extract<InterruptPayload, { kind: "approval" }>): Extract<Outbound, { kind: "plans" }> {
  return {
    kind: "plans",
    plans: p.plans,
    recommended: p.recommended,
    notices: p.notices,
    ...(p.reading ? { reading: p.reading } : {}),
    ...(p.data?.length ? { data: p.data } : {}),
  };
}

interface ThreadInfo {
  adapter: ChatAdapter;
  ref: ThreadRef;
  graphThreadId: string;
  generation: number;
  requester: string;
  pending: InterruptPayload | null;
  pendingMessage: MessageRef | null;
  running: boolean;
  finished: boolean;
  status: StatusTracker;
  statusMessage: Promise<MessageRef> | null;
  flush: (() => void) & { cancel(): void; flush(): void };
  /** The runner the conversation was started with (kept so a resumed conversation trains on the same one). */
  runner: string;
  /** `updatedAt` of the stored metadata this process last wrote or read; another value means another process moved on. */
  savedAt: number;
  /** The lease under which this process currently works on the thread. */
  lease: Lease | null;
}

export interface ServiceOptions {
  approvers: string[];
  logger: Logger;
  /** Minimum gap between two edits of one status message (ms). */
  statusIntervalMs?: number;
  /** Where conversations, handled events and thread leases live (default: this process's memory). */
  store?: ConversationStore;
  /** How long a thread lease lasts without renewal; a crashed process's conversations resume after it (ms). */
  leaseTtlMs?: number;
  /** How often to look for conversations a dead process left running (ms; 0 turns the sweep off). */
  sweepIntervalMs?: number;
  /** Keep model servers running after their check (default true; the CLI without --serve stops them). */
  serve?: boolean;
  /** Serve the registry's models again at start (default true; a one-off CLI run leaves that to the bot). */
  restoreModels?: boolean;
  /** Resume every conversation left running at start (default true; a CLI run resumes only its own thread). */
  recoverOnStart?: boolean;
  /** The runner new conversations train on (the CLI's --runner); else the configured default or the thread's choice. */
  runner?: string;
}

/**
 * Runs conversations for chat adapters: one graph thread per chat thread, work serialized per thread,
 * duplicate deliveries dropped, replies and button clicks turned into graph resumes, and progress folded
 * into one status message edited in place.
 *
 * Durability: each thread's metadata lives in the store and every step runs under the thread's lease,
 * so several processes sharing Redis advance each conversation exactly once, and a conversation a dead
 * process left mid-step is resumed from its checkpoint by whichever process takes the lease next.
 */
export class ConversationService {
  private readonly threads = new Map<string, ThreadInfo>();
  private readonly byGraphThread = new Map<string, ThreadInfo>();
  private readonly queues = new Map<string, PQueue>();
  private readonly unsubscribe: () => void;
  private readonly store: ConversationStore;
  private readonly leaseTtlMs: number;
  /** The deployment registry: every model of every thread, in the conversation store. */
  readonly registry: Registry;
  private sweeper: NodeJS.Timeout | null = null;
  private stopping = false;

  constructor(
    private readonly engine: Engine,
    private readonly adapters: ChatAdapter[],
    private readonly options: ServiceOptions,
  ) {
    this.store = options.store ?? new MemoryStore();
    this.leaseTtlMs = options.leaseTtlMs ?? 15_000;
    this.registry = new Registry(this.store, engine, options.logger, this.leaseTtlMs, resolvePath(engine.cwd, engine.config.dataDir));
    this.unsubscribe = engine.onEvent((id, event) => this.onProgress(id, event));
  }

  async start(): Promise<void> {
    const hooks = { knows: (thread: ThreadRef) => this.knows(thread) };
    for (const adapter of this.adapters) await adapter.start((event) => this.handle(adapter, event), hooks);
    if (this.options.recoverOnStart ?? true) await this.recover();
    // Models that served when ThreadML last stopped serve again; a thread hears of one that cannot.
    if (this.options.restoreModels ?? true) await this.restoreModels();
    // A process's own memory dies with it: only a shared store has conversations left by others.
    const every = this.store.kind === "memory" ? 0 : (this.options.sweepIntervalMs ?? this.leaseTtlMs);
    if (every > 0) {
      this.sweeper = setInterval(() => {
        void this.recover();
        void this.registry.reconcile().catch((err) => this.options.logger.warn({ err }, "could not check the registry"));
        // a model another replica served until it died (its lease lapsed) is served here
        if (this.options.restoreModels ?? true) void this.restoreModels();
      }, every);
      this.sweeper.unref();
    }
  }

  /** Stops taking events; `drain` (default) waits for the work already queued. */
  async stop(options: { drain?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.unsubscribe();
    for (const adapter of this.adapters) await adapter.stop();
    if (options.drain ?? true) await Promise.all([...this.queues.values()].map((q) => q.onIdle()));
    await this.registry.release();
  }

  /** Whether a chat thread holds a conversation or a registered model (the store knows after a restart). */
  private async knows(thread: ThreadRef): Promise<boolean> {
    const key = threadKey(thread);
    if (this.threads.has(key) || (await this.store.getThread(key))) return true;
    return (await this.registry.list(key)).length > 0;
  }

  private restoring: Promise<void> | null = null;

  /** Serves the registry's "serving" models that no process serves (one pass at a time). */
  private restoreModels(): Promise<void> {
    this.restoring ??= this.registry
      .restore((entry, reason) => this.tellThread(entry, `ThreadML restarted, but ${entry.name} could not be served again: ${reason}. Retrain it, or ask \`models\` for the others.`))
      .finally(() => (this.restoring = null));
    return this.restoring;
  }

  /** A line in a registered model's thread, from outside any conversation step. */
  private async tellThread(entry: ModelEntry, text: string): Promise<void> {
    const adapter = this.adapters.find((a) => a.platform === entry.platform);
    if (adapter) await adapter.post({ platform: entry.platform, channel: entry.channel, thread: entry.threadId }, { kind: "text", text });
  }

  /** Resolves when no thread has queued work. */
  async idle(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.onIdle()));
  }

  private queue(key: string): PQueue {
    let q = this.queues.get(key);
    if (!q) {
      q = new PQueue({ concurrency: 1 });
      this.queues.set(key, q);
    }
    return q;
  }

  private allowed(requester: string, user: string): boolean {
    return user === requester || this.options.approvers.includes(user);
  }

  /** Entry point for every inbound event; returns at once, the work runs on the thread's queue. */
  async handle(adapter: ChatAdapter, event: Inbound): Promise<void> {
    if (!(await this.store.claimEvent(event.eventId, EVENT_TTL_S))) return;
    const key = threadKey(event.thread);
    const info = this.threads.get(key);

    // Cancellation must not wait behind the training it is meant to stop.
    // "stop the server" names the model server, not the running job.
    const wantsCancel = event.kind === "action" ? event.action === "cancel" : CANCEL.test(event.text) && !UNDEPLOY.test(event.text);
    if (info && wantsCancel && info.running && !info.pending) {
      if (!this.allowed(info.requester, event.user)) return this.refuse(adapter, event.thread, event.user);
      this.engine.cancel(info.graphThreadId);
      await adapter.post(event.thread, { kind: "text", text: "Cancelling the running job…" });
      return;
    }
    if (event.kind === "message" && !event.mention && !info && !(await this.store.getThread(key))) return;
    void this.queue(key)
      .add(() => this.leased(key, (lease) => this.process(adapter, event, lease)))
      .catch((err) => this.options.logger.error({ err, thread: key }, "conversation step failed"));
  }

  /** Runs `work` while holding the thread's lease, waiting for another process to let go of it. */
  private async leased(key: string, work: (lease: Lease) => Promise<void>): Promise<void> {
    let lease = await this.store.acquireLease(key, this.leaseTtlMs);
    while (!lease) {
      if (this.stopping) return;
      await new Promise((r) => setTimeout(r, LEASE_WAIT_MS));
      lease = await this.store.acquireLease(key, this.leaseTtlMs);
    }
    try {
      await work(lease);
    } finally {
      const info = this.threads.get(key);
      if (info?.lease === lease) info.lease = null;
      await lease.release().catch((err) => this.options.logger.warn({ err, thread: key }, "could not release the thread lease"));
    }
  }

  private async process(adapter: ChatAdapter, event: Inbound, lease?: Lease): Promise<void> {
    const key = threadKey(event.thread);
    let info = await this.load(key, adapter);
    if (info && lease) info.lease = lease;
    // Left mid-step by a process that died, and the start-up sweep skipped it because this event was
    // already queued: holding the lease, this process resumes it first, then reads the event against it.
    if (info && !info.finished && !info.pending && !info.running && (await this.store.getThread(key))?.status === "running") await this.resumeLeft(info);
    if (await this.followUp(adapter, event, info, lease)) return;
    if (!info || info.finished) {
      if (event.kind !== "message") return;
      // A cancel that arrives after the end is not a new request.
      if (info && CANCEL.test(event.text)) {
        await adapter.post(info.ref, { kind: "text", text: "Nothing is running to cancel." });
        return;
      }
      info = this.newThread(adapter, event.thread, event.user, info ? info.generation + 1 : 0);
      if (lease) info.lease = lease;
      await this.step(info, { text: event.text, files: event.files, requester: event.user, localPaths: LOCAL_PLATFORMS.includes(adapter.platform) });
      return;
    }
    if (!this.allowed(info.requester, event.user)) return this.refuse(adapter, event.thread, event.user);
    // A click on an earlier card (a double click, a card answered already) must not answer the current one.
    if (event.kind === "action" && event.message && info.pendingMessage && event.message.id !== info.pendingMessage.id && event.action !== "cancel") {
      const text = "That card was already answered; use the latest one in this thread.";
      if (adapter.notify) await adapter.notify(event.thread, event.user, text);
      return;
    }
    const resume = this.toResume(info, event);
    if (!resume) {
      if (!info.pending && event.kind === "message")
        await adapter.post(info.ref, { kind: "text", text: "I'm working on it; reply `cancel` to stop the current job." });
      return;
    }
    if (info.pending?.kind === "approval" && info.pendingMessage) {
      const plans = info.pending;
      const text = describeDecision(resume, plans.plans);
      await adapter.update(info.pendingMessage, { ...plansCard(plans), decided: { by: event.user, text } }).catch((err) =>
        this.options.logger.warn({ err }, "could not update the plan card"),
      );
    }
    await this.step(info, resume);
  }

  /**
   * Messages about the thread's models rather than a conversation step (docs/architecture.md §9): the
   * registry ("models") and "undeploy" at any time; once the thread's last conversation has finished
   * with a model, scoring files, explaining it, comparing, and a change to retrain with. False: the
   * event is not a follow-up and goes its usual way.
   */
  private async followUp(adapter: ChatAdapter, event: Inbound, info: ThreadInfo | null, lease?: Lease): Promise<boolean> {
    const click = event.kind === "action" && event.action === "followup";
    if (event.kind === "action" && !click) return false;
    const key = threadKey(event.thread);
    const ref = info?.ref ?? event.thread;
    let models: ModelEntry[];
    try {
      models = await this.registry.list(key);
    } catch (err) {
      this.options.logger.warn({ err, thread: key }, "could not read the thread's models");
      // a message goes its usual way; a button must not act on a guess
      if (!click) return false;
      await adapter.post(ref, { kind: "text", text: "I could not read this thread's models just now; try again in a moment." });
      return true;
    }
    // a report's button acts on that report's model; typed follow-ups on the thread's latest
    const clicked = event.kind === "action" && event.message ? models.find((m) => m.reportMessageId === event.message!.id) : undefined;
    const latest = clicked ?? models.at(-1) ?? null;
    const localPaths = LOCAL_PLATFORMS.includes(adapter.platform);
    const finished = !info || info.finished;
    let intent: FollowUp;
    if (event.kind === "action") {
      if (!FOLLOW_UP_ACTIONS.includes(event.value as FollowUpAction)) return true;
      if (!latest) {
        await adapter.post(ref, { kind: "text", text: "No model is registered in this thread." });
        return true;
      }
      intent = event.value === "undeploy" ? { kind: "undeploy", name: latest.name } : { kind: event.value as "explain" | "compare" };
    } else if (!latest || !finished) {
      // Before a model exists only the registry and undeploy are follow-ups; the rest is the conversation's.
      intent = readFollowUp(event.text, [], { columns: [], names: models.map((m) => m.name), localPaths: false });
      if (intent.kind !== "models" && intent.kind !== "undeploy") return false;
      if (intent.kind === "undeploy" && !info) return false;
    } else {
      const profile = latest.context.profile as { columns?: Array<{ name: string }> } | undefined;
      intent = readFollowUp(event.text, event.files, { columns: profile?.columns?.map((c) => c.name) ?? [], names: models.map((m) => m.name), localPaths, target: latest.target });
    }

    if (intent.kind === "models") {
      // a chat channel sees its own channel's models; the terminal and the CLI see this machine's registry
      const all = (await this.registry.list().catch(() => [] as ModelEntry[])).filter((m) => localPaths || (m.platform === ref.platform && m.channel === ref.channel));
      if (!all.length) await adapter.post(ref, { kind: "text", text: "No models are registered yet." });
      else await adapter.post(ref, { kind: "table", title: `Registered models (${all.length})`, ...registryTable(all, { all: true }), notes: ["`undeploy <name>` in a model's thread stops serving it."] });
      return true;
    }
    if (intent.kind === "new") return this.startNew(adapter, event, info, intent.text, lease);
    if (!latest) {
      // undeploy in a thread without registered models: the conversations' own servers, if any
      if (!info) return false;
      if (!this.allowed(info.requester, event.user)) return this.refused(adapter, event);
      const ids = Array.from({ length: info.generation + 1 }, (_, g) => graphThreadIdOf(key, g));
      const stopped = (await Promise.all(ids.map((id) => this.engine.stopServer(id)))).some(Boolean);
      await adapter.post(ref, { kind: "text", text: stopped ? "The model server is stopped." : "No model server is running for this conversation." });
      return true;
    }
    if (intent.kind === "compare") {
      const notes = models.length < 2 ? ["Only one model so far: ask for a change (`try again without <column>`) to train another."] : [];
      await adapter.post(ref, { kind: "table", title: `Models of this thread (${models.length})`, ...registryTable(models, { all: false }), notes });
      return true;
    }
    if (intent.kind === "help") {
      await adapter.post(ref, { kind: "text", text: followUpHelp(latest.name, localPaths) });
      return true;
    }
    // Everything else spends compute or changes what serves: the call of whoever trained the model, or an approver.
    if (intent.kind === "undeploy") {
      const chosen = intent.name ? models.filter((m) => m.name === intent.name) : models.filter((m) => m.status === "serving");
      if (chosen.some((m) => !this.allowed(m.createdBy, event.user))) return this.refused(adapter, event);
      const stopped: string[] = [];
      for (const m of chosen) if ((await this.registry.stop(m)) && m.status === "serving") stopped.push(m.name);
      const text = stopped.length ? `Stopped serving ${stopped.join(", ")}.` : intent.name ? `${intent.name} is not serving.` : "No model of this thread is serving.";
      await adapter.post(ref, { kind: "text", text });
      return true;
    }
    if (!this.allowed(latest.createdBy, event.user)) return this.refused(adapter, event);
    const refused = this.registry.untrusted(latest);
    if (refused) {
      await adapter.post(ref, { kind: "text", text: `${refused}, so I will not load it.` });
      return true;
    }
    switch (intent.kind) {
      case "explain":
        await this.busy(info, latest, adapter, ref, `Measuring which columns matter to ${latest.name}…`, (id) => this.engine.explain(latest, id));
        return true;
      case "score": {
        const files = [...intent.files, ...intent.paths.map((p) => resolvePath(this.engine.cwd, p))];
        for (const file of files)
          await this.busy(info, latest, adapter, ref, `Scoring ${basename(file)} with ${latest.name}…`, (id) => this.engine.score(latest, file, id));
        return true;
      }
      case "retrain":
        return this.retrain(adapter, event, info, models, intent, lease);
    }
  }

  /** Runs one follow-up job with the thread marked busy (so `cancel` stops it) and posts its answer. */
  private async busy(info: ThreadInfo | null, model: ModelEntry, adapter: ChatAdapter, ref: ThreadRef, opening: string, job: (threadId: string) => Promise<FollowUpAnswer>): Promise<void> {
    await adapter.post(ref, { kind: "text", text: opening });
    const threadId = info?.graphThreadId ?? model.graphThreadId;
    if (info) info.running = true;
    let answer: FollowUpAnswer;
    try {
      answer = await job(threadId);
    } catch (err) {
      this.options.logger.error({ err, thread: threadId }, "follow-up failed");
      answer = { ok: false, lines: [`That did not work: ${(err as Error).message}`] };
    } finally {
      if (info) info.running = false;
    }
    if (answer.ok && answer.file) await adapter.post(ref, { kind: "file", path: answer.file.path, name: answer.file.name, lines: answer.lines });
    else await adapter.post(ref, { kind: "text", text: answer.lines.join("\n") });
  }

  /** A change to the thread's last request: a new conversation that keeps its data, words and answers, and compares with its models. */
  private async retrain(adapter: ChatAdapter, event: Inbound, info: ThreadInfo | null, models: ModelEntry[], intent: Extract<FollowUp, { kind: "retrain" }>, lease?: Lease): Promise<boolean> {
    const latest = models.at(-1)!;
    const ctx = latest.context;
    const scale = ctx.searchScale ?? 1;
    const generation = Math.max(info?.generation ?? 0, ...models.map((m) => m.generation)) + 1;
    const fresh = this.newThread(adapter, info?.ref ?? event.thread, event.user, generation);
    if (lease) fresh.lease = lease;
    fresh.runner = latest.runner;
    await adapter.post(fresh.ref, { kind: "text", text: `Planning again from ${latest.name}'s request and data, with your change: “${intent.change}”.` });
    await this.step(fresh, {
      text: intent.change,
      files: [],
      requester: event.user,
      // only where this platform may read typed paths, whatever the stored entry says
      localPaths: LOCAL_PLATFORMS.includes(adapter.platform) && ctx.localPaths,
      seed: {
        messages: ctx.messages,
        files: ctx.files,
        answers: ctx.answers,
        feedback: ctx.feedback ?? [],
        earlier: models.map(asEarlier),
        searchScale: intent.moreTime ? Math.min(MAX_SEARCH_SCALE, scale * 2) : scale,
      },
    });
    return true;
  }

  /** "new: …" after a model: a conversation of its own, with the files of this message only. */
  private async startNew(adapter: ChatAdapter, event: Inbound, info: ThreadInfo | null, text: string, lease?: Lease): Promise<boolean> {
    if (event.kind !== "message") return true;
    if (info && !info.finished) return false;
    const fresh = this.newThread(adapter, event.thread, event.user, info ? info.generation + 1 : 0);
    if (lease) fresh.lease = lease;
    await this.step(fresh, { text, files: event.files, requester: event.user, localPaths: LOCAL_PLATFORMS.includes(adapter.platform) });
    return true;
  }

  private async refused(adapter: ChatAdapter, event: Inbound): Promise<true> {
    await this.refuse(adapter, event.thread, event.user);
    return true;
  }

  /**
   * The thread as this process knows it, refreshed from the store when another process (or an earlier
   * life of this one) wrote since: the graph checkpoint then says what the conversation waits for.
   */
  private async load(key: string, adapter: ChatAdapter | null): Promise<ThreadInfo | null> {
    const cached = this.threads.get(key);
    const meta = await this.store.getThread(key);
    if (!meta) return cached && this.store.kind === "memory" ? cached : null;
    if (cached && cached.savedAt === meta.updatedAt && cached.graphThreadId === meta.graphThreadId) return cached;
    const owner = adapter ?? this.adapters.find((a) => a.platform === meta.platform);
    if (!owner) return null;
    const info = this.newThread(owner, { platform: meta.platform, channel: meta.channel, thread: meta.thread }, meta.requester, meta.generation, meta);
    info.finished = meta.status === "finished";
    if (meta.status === "waiting") {
      const snap = await this.engine.snapshot(meta.graphThreadId);
      info.pending = snap?.pending ?? null;
      if (info.pending && meta.pendingMessageId) info.pendingMessage = { thread: info.ref, id: meta.pendingMessageId };
    }
    return info;
  }

  /** Writes the thread's metadata, fenced by its lease so a process that lost the lease cannot overwrite. */
  private async save(info: ThreadInfo, status: ThreadStatus, extra: Partial<ThreadMeta> = {}): Promise<void> {
    const statusMessage = info.statusMessage ? await info.statusMessage.catch(() => null) : null;
    try {
      const meta = await this.store.putThread(
        threadKey(info.ref),
        {
          key: threadKey(info.ref),
          platform: info.ref.platform,
          channel: info.ref.channel,
          thread: info.ref.thread,
          graphThreadId: info.graphThreadId,
          generation: info.generation,
          requester: info.requester,
          status,
          runner: info.runner,
          ...(info.pendingMessage ? { pendingMessageId: info.pendingMessage.id } : {}),
          ...(statusMessage ? { statusMessageId: statusMessage.id } : {}),
          ...extra,
        },
        info.lease ? { fence: info.lease.token } : {},
      );
      info.savedAt = meta.updatedAt;
    } catch (err) {
      this.options.logger.warn({ err, thread: info.graphThreadId }, "could not store the conversation's state");
    }
  }

  /**
   * Picks up conversations that a process left mid-step (it crashed, or was killed): each is resumed
   * from its last checkpoint by whoever takes its lease first. Runs at start and then periodically.
   */
  async recover(only?: string): Promise<void> {
    let metas: ThreadMeta[];
    try {
      metas = await this.store.listThreads({ active: true });
    } catch (err) {
      this.options.logger.warn({ err }, "could not list conversations to recover");
      return;
    }
    for (const meta of metas) {
      if (meta.status !== "running" || this.stopping || (only !== undefined && meta.key !== only)) continue;
      const local = this.threads.get(meta.key);
      if (local?.running || this.queue(meta.key).size + this.queue(meta.key).pending > 0) continue;
      const adapter = this.adapters.find((a) => a.platform === meta.platform);
      if (!adapter) continue;
      const lease = await this.store.acquireLease(meta.key, this.leaseTtlMs).catch(() => null);
      if (!lease) continue;
      void this.queue(meta.key)
        .add(async () => {
          try {
            const info = await this.load(meta.key, adapter);
            if (!info || info.finished || info.pending) return;
            info.lease = lease;
            await this.resumeLeft(info);
          } finally {
            await lease.release().catch(() => {});
          }
        })
        .catch((err) => this.options.logger.error({ err, thread: meta.key }, "resuming a conversation failed"));
    }
  }

  /** Runs a conversation a dead process left mid-step on from its checkpoint, saying so in the thread. */
  private async resumeLeft(info: ThreadInfo): Promise<void> {
    this.options.logger.info({ thread: info.graphThreadId }, "resuming a conversation left running");
    await info.adapter.post(info.ref, { kind: "text", text: "ThreadML restarted; picking this conversation up where it stopped." }).catch(() => {});
    await this.step(info, null);
  }

  private toResume(info: ThreadInfo, event: Inbound): ResumeValue | null {
    if (!info.pending) return null;
    if (event.kind === "message") {
      if (CANCEL.test(event.text)) return { kind: "cancel", user: event.user };
      return { kind: "answer", text: event.text, files: event.files, user: event.user };
    }
    switch (event.action) {
      case "approve":
        return { kind: "approve", planId: event.value || "best", user: event.user };
      case "revise":
        return event.value.trim() ? { kind: "revise", feedback: event.value, user: event.user } : null;
      case "cancel":
        return { kind: "cancel", user: event.user };
      case "answer":
        return { kind: "answer", text: event.value, files: [], user: event.user };
      case "followup":
        return null;
    }
  }

  private async refuse(adapter: ChatAdapter, thread: ThreadRef, user: string): Promise<void> {
    const text = "Only the person who started this conversation (or a configured approver) can answer or decide here.";
    if (adapter.notify) await adapter.notify(thread, user, text);
    else await adapter.post(thread, { kind: "text", text });
  }

  private newThread(adapter: ChatAdapter, ref: ThreadRef, requester: string, generation: number, meta?: ThreadMeta): ThreadInfo {
    const key = threadKey(ref);
    const graphThreadId = meta?.graphThreadId ?? graphThreadIdOf(key, generation);
    const info: ThreadInfo = {
      adapter,
      ref,
      graphThreadId,
      generation,
      requester,
      pending: null,
      pendingMessage: null,
      running: false,
      finished: false,
      status: new StatusTracker(),
      statusMessage: meta?.statusMessageId ? Promise.resolve({ thread: ref, id: meta.statusMessageId }) : null,
      flush: throttle(() => void this.pushStatus(info), this.options.statusIntervalMs ?? 1000, { leading: true, trailing: true }),
      runner: meta?.runner ?? this.options.runner ?? "",
      savedAt: meta?.updatedAt ?? 0,
      lease: null,
    };
    const old = this.threads.get(key);
    if (old) this.byGraphThread.delete(old.graphThreadId);
    this.threads.set(key, info);
    this.byGraphThread.set(graphThreadId, info);
    return info;
  }

  /** Advances the conversation (`null`: runs it on from its checkpoint) and posts what it stops at. */
  private async step(info: ThreadInfo, input: Parameters<Engine["advance"]>[1] | null): Promise<void> {
    info.pending = null;
    info.pendingMessage = null;
    info.running = true;
    await this.save(info, "running");
    // A process that lost the lease must not keep training beside the one that took it over.
    const onLost = () => this.engine.cancel(info.graphThreadId);
    info.lease?.lost.addEventListener("abort", onLost);
    let outcome: Outcome;
    try {
      const options = {
        serve: this.options.serve ?? true,
        ...(info.runner ? { runner: info.runner } : {}),
        ...(info.lease ? { fence: { key: threadKey(info.ref), token: info.lease.token } } : {}),
      };
      outcome = input === null ? await this.engine.resume(info.graphThreadId, options) : await this.engine.advance(info.graphThreadId, input, options);
    } catch (err) {
      info.running = false;
      if (err instanceof StaleLeaseError) {
        // Another process took the conversation over while this one stalled; it carries on from here.
        this.options.logger.warn({ thread: info.graphThreadId }, "lost the conversation to another process");
        this.threads.delete(threadKey(info.ref));
        return;
      }
      info.finished = true;
      this.options.logger.error({ err, thread: info.graphThreadId }, "conversation failed");
      await this.save(info, "finished");
      await info.adapter.post(info.ref, { kind: "text", text: `Something went wrong and this conversation stopped: ${(err as Error).message}` });
      return;
    } finally {
      info.running = false;
      info.lease?.lost.removeEventListener("abort", onLost);
    }
    info.flush.flush();
    if (outcome.kind === "interrupt") {
      info.pending = outcome.payload;
      const p = outcome.payload;
      info.pendingMessage = await info.adapter.post(
        info.ref,
        p.kind === "question" ? { kind: "question", question: p.question } : plansCard(p),
      );
      await this.save(info, "waiting");
      return;
    }
    info.finished = true;
    info.flush.cancel();
    if (info.statusMessage) await this.pushStatus(info);
    const report = outcome.state.report;
    const model = await this.register(info, outcome.state);
    if (report) {
      const followUps: FollowUpAction[] = model ? ["explain", "compare", ...(model.status === "serving" ? (["undeploy"] as const) : [])] : [];
      const posted = await info.adapter.post(info.ref, { kind: "report", report, ...(model ? { model: model.name, followUps } : {}) });
      // the report's buttons act on its own model, also after later models in the thread
      if (model) await this.registry.noteReport(model.name, posted.id).catch((err) => this.options.logger.warn({ err }, "could not note the report"));
    }
    else await info.adapter.post(info.ref, { kind: "text", text: outcome.state.error ?? "Done." });
    await this.save(info, "finished");
    await this.store.expireCheckpoints(info.graphThreadId).catch((err) => this.options.logger.warn({ err }, "could not set the finished conversation's expiry"));
  }

  /** The runner a conversation trained on when it was not given one: the one chosen in the thread, else the default. */
  private runnerChosen(answer: string | undefined): string {
    const config = this.engine.config;
    return answer && (answer === "local" || answer in config.runners) ? answer : config.defaultRunner;
  }

  /** Puts the model a finished conversation trained into the registry (never fails the conversation). */
  private async register(info: ThreadInfo, state: Outcome["state"]): Promise<ModelEntry | null> {
    if (!state.best) return null;
    try {
      return await this.registry.record({
        ref: info.ref,
        key: threadKey(info.ref),
        graphThreadId: info.graphThreadId,
        generation: info.generation,
        requester: info.requester,
        runner: info.runner || this.runnerChosen(state.answers.runner),
        state,
        seed: this.engine.config.seed,
      });
    } catch (err) {
      this.options.logger.warn({ err, thread: info.graphThreadId }, "could not register the model");
      return null;
    }
  }

  private onProgress(graphThreadId: string, event: ProgressEvent): void {
    const info = this.byGraphThread.get(graphThreadId);
    if (!info) return;
    info.status.apply(event);
    // Stages before the approval are quick; the status message starts once real work does.
    if (info.statusMessage || (event.type === "stage" && ["decompose", "execute"].includes(event.stage)) || event.type === "progress") info.flush();
  }

  private async pushStatus(info: ThreadInfo): Promise<void> {
    const message = { kind: "status" as const, status: info.status.view() };
    try {
      if (!info.statusMessage) {
        info.statusMessage = info.adapter.post(info.ref, message);
        await info.statusMessage;
        // Remember it, so a resumed conversation edits the same message.
        if (info.running) await this.save(info, "running");
      } else await info.adapter.update(await info.statusMessage, message);
    } catch (err) {
      this.options.logger.warn({ err }, "could not update the status message");
    }
  }
}
