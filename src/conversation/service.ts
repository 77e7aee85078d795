import throttle from "lodash-es/throttle.js";
import PQueue from "p-queue";
import { threadKey, type ChatAdapter, type Inbound, type MessageRef, type ThreadRef } from "../../adapters/types.js";
import type { Plan } from "../../graphs/automl/agents/types.js";
import type { ProgressEvent } from "../../graphs/automl/deps.js";
import type { InterruptPayload, ResumeValue } from "../../graphs/automl/state.js";
import type { Engine, Outcome } from "../engine.js";
import type { Logger } from "../logger.js";
import { StatusTracker } from "./status.js";

const CANCEL = /^\s*(cancel|stop|abort)\b(?!\s+serving)/i;
const UNDEPLOY = /^\s*(undeploy|stop serving|stop the (model )?server)\b/i;
const DEDUPE_LIMIT = 10_000;

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
}

export interface ServiceOptions {
  approvers: string[];
  logger: Logger;
  /** Minimum gap between two edits of one status message (ms). */
  statusIntervalMs?: number;
}

/**
 * Runs conversations for chat adapters: one graph thread per chat thread, work serialized per thread,
 * duplicate deliveries dropped, replies and button clicks turned into graph resumes, and progress folded
 * into one status message edited in place.
 */
export class ConversationService {
  private readonly threads = new Map<string, ThreadInfo>();
  private readonly byGraphThread = new Map<string, ThreadInfo>();
  private readonly queues = new Map<string, PQueue>();
  private readonly seen = new Set<string>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly engine: Engine,
    private readonly adapters: ChatAdapter[],
    private readonly options: ServiceOptions,
  ) {
    this.unsubscribe = engine.onEvent((id, event) => this.onProgress(id, event));
  }

  async start(): Promise<void> {
    for (const adapter of this.adapters) await adapter.start((event) => this.handle(adapter, event));
  }

  async stop(): Promise<void> {
    this.unsubscribe();
    for (const adapter of this.adapters) await adapter.stop();
    await Promise.all([...this.queues.values()].map((q) => q.onIdle()));
  }

  /** Resolves when no thread has queued work. */
  async idle(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.onIdle()));
  }

  private duplicate(eventId: string): boolean {
    if (this.seen.has(eventId)) return true;
    this.seen.add(eventId);
    if (this.seen.size > DEDUPE_LIMIT) this.seen.delete(this.seen.values().next().value as string);
    return false;
  }

  private queue(key: string): PQueue {
    let q = this.queues.get(key);
    if (!q) {
      q = new PQueue({ concurrency: 1 });
      this.queues.set(key, q);
    }
    return q;
  }

  private allowed(info: ThreadInfo, user: string): boolean {
    return user === info.requester || this.options.approvers.includes(user);
  }

  /** Entry point for every inbound event; returns at once, the work runs on the thread's queue. */
  async handle(adapter: ChatAdapter, event: Inbound): Promise<void> {
    if (this.duplicate(event.eventId)) return;
    const key = threadKey(event.thread);
    const info = this.threads.get(key);

    // Cancellation must not wait behind the training it is meant to stop.
    // "stop the server" names the model server, not the running job.
    const wantsCancel = event.kind === "action" ? event.action === "cancel" : CANCEL.test(event.text) && !UNDEPLOY.test(event.text);
    if (info && wantsCancel && info.running && !info.pending) {
      if (!this.allowed(info, event.user)) return this.refuse(info, event.user);
      this.engine.cancel(info.graphThreadId);
      await adapter.post(event.thread, { kind: "text", text: "Cancelling the running job…" });
      return;
    }
    if (event.kind === "message" && !info && !event.mention) return;
    void this.queue(key)
      .add(() => this.process(adapter, event))
      .catch((err) => this.options.logger.error({ err, thread: key }, "conversation step failed"));
  }

  private async process(adapter: ChatAdapter, event: Inbound): Promise<void> {
    const key = threadKey(event.thread);
    let info = this.threads.get(key);
    if (info && event.kind === "message" && UNDEPLOY.test(event.text)) {
      if (!this.allowed(info, event.user)) return this.refuse(info, event.user);
      // Earlier conversations in this chat thread ran under their own graph thread ids and may still serve.
      const ids = Array.from({ length: info.generation + 1 }, (_, g) => graphThreadIdOf(key, g));
      const stopped = (await Promise.all(ids.map((id) => this.engine.stopServer(id)))).some(Boolean);
      await adapter.post(info.ref, { kind: "text", text: stopped ? "The model server is stopped." : "No model server is running for this conversation." });
      return;
    }
    if (!info || info.finished) {
      if (event.kind !== "message") return;
      // A cancel that arrives after the end is not a new request.
      if (info && CANCEL.test(event.text)) {
        await adapter.post(info.ref, { kind: "text", text: "Nothing is running to cancel." });
        return;
      }
      info = this.newThread(adapter, event.thread, event.user, info ? info.generation + 1 : 0);
      await this.step(info, { text: event.text, files: event.files, requester: event.user });
      return;
    }
    if (!this.allowed(info, event.user)) return this.refuse(info, event.user);
    const resume = this.toResume(info, event);
    if (!resume) {
      if (!info.pending && event.kind === "message")
        await adapter.post(info.ref, { kind: "text", text: "I'm working on it; reply `cancel` to stop the current job." });
      return;
    }
    if (info.pending?.kind === "approval" && info.pendingMessage) {
      const plans = info.pending;
      const text = describeDecision(resume, plans.plans);
      await adapter.update(info.pendingMessage, { kind: "plans", plans: plans.plans, recommended: plans.recommended, notices: plans.notices, decided: { by: event.user, text } }).catch((err) =>
        this.options.logger.warn({ err }, "could not update the plan card"),
      );
    }
    await this.step(info, resume);
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
    }
  }

  private async refuse(info: ThreadInfo, user: string): Promise<void> {
    const text = "Only the person who started this conversation (or a configured approver) can answer or decide here.";
    if (info.adapter.notify) await info.adapter.notify(info.ref, user, text);
    else await info.adapter.post(info.ref, { kind: "text", text });
  }

  private newThread(adapter: ChatAdapter, ref: ThreadRef, requester: string, generation: number): ThreadInfo {
    const key = threadKey(ref);
    const graphThreadId = graphThreadIdOf(key, generation);
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
      statusMessage: null,
      flush: throttle(() => void this.pushStatus(info), this.options.statusIntervalMs ?? 1000, { leading: true, trailing: true }),
    };
    const old = this.threads.get(key);
    if (old) this.byGraphThread.delete(old.graphThreadId);
    this.threads.set(key, info);
    this.byGraphThread.set(graphThreadId, info);
    return info;
  }

  private async step(info: ThreadInfo, input: Parameters<Engine["advance"]>[1]): Promise<void> {
    info.pending = null;
    info.pendingMessage = null;
    info.running = true;
    let outcome: Outcome;
    try {
      outcome = await this.engine.advance(info.graphThreadId, input);
    } catch (err) {
      info.running = false;
      info.finished = true;
      this.options.logger.error({ err, thread: info.graphThreadId }, "conversation failed");
      await info.adapter.post(info.ref, { kind: "text", text: `Something went wrong and this conversation stopped: ${(err as Error).message}` });
      return;
    } finally {
      info.running = false;
    }
    info.flush.flush();
    if (outcome.kind === "interrupt") {
      info.pending = outcome.payload;
      const p = outcome.payload;
      info.pendingMessage = await info.adapter.post(
        info.ref,
        p.kind === "question" ? { kind: "question", question: p.question } : { kind: "plans", plans: p.plans, recommended: p.recommended, notices: p.notices },
      );
      return;
    }
    info.finished = true;
    info.flush.cancel();
    if (info.statusMessage) await this.pushStatus(info);
    const report = outcome.state.report;
    if (report) await info.adapter.post(info.ref, { kind: "report", report });
    else await info.adapter.post(info.ref, { kind: "text", text: outcome.state.error ?? "Done." });
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
      } else await info.adapter.update(await info.statusMessage, message);
    } catch (err) {
      this.options.logger.warn({ err }, "could not update the status message");
    }
  }
}
