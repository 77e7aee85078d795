import { describe, expect, it, vi } from "vitest";
import type { ChatAdapter, Inbound, MessageRef, Outbound, ThreadRef } from "../../adapters/types.js";
import type { Plan } from "../../graphs/automl/agents/types.js";
import type { ProgressEvent } from "../../graphs/automl/deps.js";
import type { InterruptPayload, Report, State } from "../../graphs/automl/state.js";
import { ConversationService } from "../../src/conversation/service.js";
import type { Engine, Outcome } from "../../src/engine.js";
import type { Logger } from "../../src/logger.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { ConversationStore } from "../../src/store/types.js";

// The service is exercised against a scripted engine and a recording adapter, so that ordering,
// permissions and throttling can be checked without running a graph.

type Input = Parameters<Engine["advance"]>[1];

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const plan = (id: string, title: string): Plan => ({
  id,
  title,
  approach: "tree ensemble",
  summary: `${title} summary`,
  preprocessing: [],
  models: [{ family: "random_forest", label: "Random forest", estimator: "RandomForestClassifier" }],
  training: "5-fold CV",
  inference: "batch",
  rationale: "works on tabular data",
  notices: [],
});

const PLANS = [plan("p1", "Forest"), plan("p2", "Boosting")];
const approval: InterruptPayload = { kind: "approval", plans: PLANS, recommended: "best", notices: [] };
const question: InterruptPayload = {
  kind: "question",
  question: { slot: "target", text: "Which column should I predict?", choices: [{ label: "quality", value: "quality" }], allowFreeText: true },
};

const report: Report = {
  status: "deployed",
  llm: null,
  title: "Banana quality",
  summary: ["Done."],
  metrics: { accuracy: 0.97 },
  constraints: [],
  endpoint: null,
  curl: null,
  artifacts: { model: null, code: null, report: null, plots: [] },
  notices: [],
};

const interrupt = (payload: InterruptPayload): Outcome => ({ kind: "interrupt", payload, state: { report: null, error: null } as unknown as State });
const done = (r: Report | null = report, error: string | null = null): Outcome => ({ kind: "done", state: { report: r, error } as unknown as State });

type Step = (threadId: string, input: Input) => Outcome | Promise<Outcome>;

/** A scripted engine: `next` answers each advance; default is "ask for approval". */
class FakeEngine {
  /** What the service reads of the configuration (the registry's data folder, the seed, runner names). */
  readonly config = { dataDir: ".threadml", seed: 42, runners: {}, defaultRunner: "local" };
  readonly cwd = process.cwd();
  calls: Array<{ threadId: string; input: Input }> = [];
  cancelled: string[] = [];
  stopRequests: string[] = [];
  /** Graph thread ids that have a live model server. */
  servers = new Set<string>();
  steps: Step[] = [];
  fallback: Step = () => interrupt(approval);
  private listener: ((threadId: string, event: ProgressEvent) => void) | null = null;

  /** What a checkpoint would say each graph thread waits on (shared by "processes" in the durability tests). */
  waiting = new Map<string, InterruptPayload>();
  resumed: string[] = [];

  async advance(threadId: string, input: Input): Promise<Outcome> {
    this.calls.push({ threadId, input });
    const step = this.steps.shift() ?? this.fallback;
    const outcome = await step(threadId, input);
    if (outcome.kind === "interrupt") this.waiting.set(threadId, outcome.payload);
    else this.waiting.delete(threadId);
    return outcome;
  }

  async resume(threadId: string): Promise<Outcome> {
    this.resumed.push(threadId);
    return done();
  }

  async snapshot(threadId: string) {
    const pending = this.waiting.get(threadId) ?? null;
    return { state: {} as State, pending, unfinished: false };
  }

  onEvent(listener: (threadId: string, event: ProgressEvent) => void): () => void {
    this.listener = listener;
    return () => (this.listener = null);
  }

  cancel(threadId: string): void {
    this.cancelled.push(threadId);
  }

  async stopServer(threadId: string): Promise<boolean> {
    this.stopRequests.push(threadId);
    return this.servers.delete(threadId);
  }

  emit(threadId: string, event: ProgressEvent): void {
    this.listener?.(threadId, event);
  }
}

class FakeAdapter implements ChatAdapter {
  readonly platform = "test";
  posts: Array<{ thread: ThreadRef; message: Outbound; ref: MessageRef }> = [];
  updates: Array<{ ref: MessageRef; message: Outbound }> = [];
  notes: Array<{ thread: ThreadRef; user: string; text: string }> = [];
  notify?: ChatAdapter["notify"];
  private next = 0;

  constructor(withNotify = true) {
    if (withNotify)
      this.notify = async (thread, user, text) => {
        this.notes.push({ thread, user, text });
      };
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async post(thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    const ref = { thread, id: `m${++this.next}` };
    this.posts.push({ thread, message, ref });
    return ref;
  }

  async update(ref: MessageRef, message: Outbound): Promise<void> {
    this.updates.push({ ref, message });
  }

  texts(): string[] {
    return this.posts.flatMap((p) => (p.message.kind === "text" ? [p.message.text] : []));
  }

  kinds(): string[] {
    return this.posts.map((p) => p.message.kind);
  }
}

const ref = (thread = "t1"): ThreadRef => ({ platform: "test", channel: "C1", thread });
const keyOf = (thread = "t1") => `test:C1:${thread}`;

let ids = 0;
const message = (text: string, opts: { user?: string; thread?: string; mention?: boolean; files?: string[]; eventId?: string } = {}): Inbound => ({
  kind: "message",
  eventId: opts.eventId ?? `e${++ids}`,
  thread: ref(opts.thread),
  user: opts.user ?? "alice",
  text,
  files: opts.files ?? [],
  mention: opts.mention ?? false,
});
const action = (kind: "answer" | "approve" | "revise" | "cancel", value: string, opts: { user?: string; thread?: string; message?: MessageRef } = {}): Inbound => ({
  kind: "action",
  eventId: `e${++ids}`,
  thread: ref(opts.thread),
  user: opts.user ?? "alice",
  action: kind,
  value,
  ...(opts.message ? { message: opts.message } : {}),
});

function setup(options: { approvers?: string[]; statusIntervalMs?: number; notify?: boolean; store?: ConversationStore; engine?: FakeEngine } = {}) {
  const engine = options.engine ?? new FakeEngine();
  const adapter = new FakeAdapter(options.notify ?? true);
  const logger = { error: vi.fn(), warn: vi.fn(), info: vi.fn(), debug: vi.fn() } as unknown as Logger;
  const service = new ConversationService(engine as unknown as Engine, [adapter], {
    approvers: options.approvers ?? [],
    logger,
    statusIntervalMs: options.statusIntervalMs ?? 20,
    store: options.store,
    leaseTtlMs: 200,
    sweepIntervalMs: 0,
  });
  const send = async (event: Inbound) => {
    await service.handle(adapter, event);
    await service.idle();
  };
  return { engine, adapter, service, logger, send };
}

async function until(cond: () => boolean, what = "condition", timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ConversationService: starting and routing", () => {
  it("starts a conversation on a mention and posts the plans", async () => {
    const { engine, adapter, send } = setup();
    await send(message("predict quality in bananas.csv", { mention: true, files: ["/data/bananas.csv"] }));
    expect(engine.calls).toEqual([{ threadId: keyOf(), input: { text: "predict quality in bananas.csv", files: ["/data/bananas.csv"], requester: "alice", localPaths: false } }]);
    expect(adapter.posts).toHaveLength(1);
    expect(adapter.posts[0].thread).toEqual(ref());
    expect(adapter.posts[0].message).toEqual({ kind: "plans", plans: PLANS, recommended: "best", notices: [] });
  });

  it("posts a question interrupt as a question and turns the reply into an answer", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => interrupt(question));
    await send(message("build a model", { mention: true }));
    expect(adapter.posts[0].message).toEqual({ kind: "question", question: (question as Extract<InterruptPayload, { kind: "question" }>).question });
    // A thread reply does not need a mention once the conversation exists.
    await send(message("quality"));
    expect(engine.calls[1].input).toEqual({ kind: "answer", text: "quality", files: [], user: "alice" });
  });

  it("handles an event delivered twice only once", async () => {
    const { engine, service, adapter, send } = setup();
    const event = message("build a model", { mention: true, eventId: "dup" });
    await service.handle(adapter, event);
    await send(event);
    expect(engine.calls).toHaveLength(1);
    expect(adapter.posts).toHaveLength(1);
  });

  it("ignores chatter in an unknown thread and starts on a mention", async () => {
    const { engine, adapter, send } = setup();
    await send(message("hello everyone"));
    expect(engine.calls).toHaveLength(0);
    expect(adapter.posts).toHaveLength(0);
    await send(message("build a model", { mention: true }));
    expect(engine.calls).toHaveLength(1);
  });

  it("ignores a button click in a thread it does not know", async () => {
    const { engine, adapter, send } = setup();
    await send(action("approve", "best"));
    expect(engine.calls).toHaveLength(0);
    expect(adapter.posts).toHaveLength(0);
  });
});

describe("ConversationService: permissions and decisions", () => {
  it("refuses a decision from someone else privately and does not resume", async () => {
    const { engine, adapter, send } = setup();
    await send(message("build a model", { mention: true }));
    await send(action("approve", "best", { user: "mallory" }));
    expect(engine.calls).toHaveLength(1);
    expect(adapter.notes).toHaveLength(1);
    expect(adapter.notes[0].user).toBe("mallory");
    expect(adapter.notes[0].text).toMatch(/Only the person who started/);
    // Nothing public, and the plan card is untouched.
    expect(adapter.posts).toHaveLength(1);
    expect(adapter.updates).toHaveLength(0);
    // The conversation still waits for its requester.
    await send(action("approve", "p2"));
    expect(engine.calls[1].input).toEqual({ kind: "approve", planId: "p2", user: "alice" });
  });

  it("refuses with a thread post when the adapter has no private messages", async () => {
    const { engine, adapter, send } = setup({ notify: false });
    await send(message("build a model", { mention: true }));
    await send(message("approve", { user: "mallory" }));
    expect(engine.calls).toHaveLength(1);
    expect(adapter.texts().at(-1)).toMatch(/Only the person who started/);
  });

  it("lets the requester approve", async () => {
    const { engine, send } = setup();
    engine.steps.push(() => interrupt(approval), () => done());
    await send(message("build a model", { mention: true }));
    await send(action("approve", "p1"));
    expect(engine.calls[1]).toEqual({ threadId: keyOf(), input: { kind: "approve", planId: "p1", user: "alice" } });
  });

  it("lets a configured approver decide", async () => {
    const { engine, adapter, send } = setup({ approvers: ["boss"] });
    engine.steps.push(() => interrupt(approval), () => done());
    await send(message("build a model", { mention: true }));
    await send(action("approve", "", { user: "boss" }));
    expect(engine.calls[1].input).toEqual({ kind: "approve", planId: "best", user: "boss" });
    expect(adapter.notes).toHaveLength(0);
  });

  it("updates the plan card with who decided and what", async () => {
    const { engine, adapter, send } = setup({ approvers: ["boss"] });
    engine.steps.push(() => interrupt(approval), () => interrupt(approval), () => done());
    await send(message("build a model", { mention: true }));
    const card = adapter.posts[0].ref;
    await send(action("revise", "use fewer features", { user: "boss" }));
    expect(adapter.updates).toHaveLength(1);
    expect(adapter.updates[0].ref).toEqual(card);
    expect(adapter.updates[0].message).toMatchObject({ kind: "plans", plans: PLANS, decided: { by: "boss", text: "asked for a revision: “use fewer features”" } });

    // The revised plans are a new card; approving updates that one.
    const second = adapter.posts[1].ref;
    expect(second.id).not.toBe(card.id);
    await send(action("approve", "best"));
    expect(adapter.updates[1].ref).toEqual(second);
    expect(adapter.updates[1].message).toMatchObject({ decided: { by: "alice", text: "approved the best plan after evaluation" } });
  });

  it("carries the reading and the data section onto the plan card, and keeps them when the card is decided", async () => {
    const { engine, adapter, send } = setup();
    const reading = "I read: predict quality · judged by accuracy";
    const data = ["Data: wine.csv · 100 rows × 3 columns", "Columns: numbers a · target quality"];
    engine.steps.push(() => interrupt({ ...approval, reading, data }), () => done());
    await send(message("build a model", { mention: true }));
    expect(adapter.posts[0].message).toEqual({ kind: "plans", plans: PLANS, recommended: "best", notices: [], reading, data });
    await send(action("approve", "best"));
    expect(adapter.updates[0].message).toMatchObject({ kind: "plans", reading, data, decided: { text: "approved the best plan after evaluation" } });
  });

  it("ignores an empty revision instead of resuming", async () => {
    const { engine, adapter, send } = setup();
    await send(message("build a model", { mention: true }));
    await send(action("revise", "   "));
    expect(engine.calls).toHaveLength(1);
    expect(adapter.updates).toHaveLength(0);
  });
});

describe("ConversationService: ordering and cancellation", () => {
  it("cancels a running job at once instead of queueing behind it", async () => {
    const { engine, adapter, service, send } = setup();
    const job = deferred<Outcome>();
    engine.steps.push(() => interrupt(approval), () => job.promise, () => done(null, "Cancelled by the user."));
    await send(message("build a model", { mention: true }));
    await service.handle(adapter, action("approve", "best"));
    await until(() => engine.calls.length === 2, "the approved job to start");

    // handle() returns while the job is still running, so the cancel did not wait for the queue.
    await service.handle(adapter, message("cancel"));
    expect(engine.cancelled).toEqual([keyOf()]);
    expect(adapter.texts()).toContain("Cancelling the running job…");
    expect(engine.calls).toHaveLength(2);

    job.resolve(done(null, "Cancelled by the user."));
    await service.idle();
    expect(adapter.texts().at(-1)).toBe("Cancelled by the user.");
  });

  it("refuses a cancel from someone else while a job runs", async () => {
    const { engine, adapter, service, send } = setup();
    const job = deferred<Outcome>();
    engine.steps.push(() => interrupt(approval), () => job.promise);
    await send(message("build a model", { mention: true }));
    await service.handle(adapter, action("approve", "best"));
    await until(() => engine.calls.length === 2, "the job to start");
    await service.handle(adapter, action("cancel", "", { user: "mallory" }));
    expect(engine.cancelled).toEqual([]);
    expect(adapter.notes.map((n) => n.user)).toEqual(["mallory"]);
    job.resolve(done());
    await service.idle();
  });

  it("treats 'stop the server' during a job as an undeploy, not a cancel", async () => {
    const { engine, adapter, service, send } = setup();
    const job = deferred<Outcome>();
    engine.steps.push(() => interrupt(approval), () => job.promise);
    await send(message("build a model", { mention: true }));
    await service.handle(adapter, action("approve", "best"));
    await until(() => engine.calls.length === 2, "the job to start");
    await service.handle(adapter, message("stop the server"));
    expect(engine.cancelled).toEqual([]);
    job.resolve(done());
    await service.idle();
    expect(engine.stopRequests).toEqual([keyOf()]);
  });

  it("processes one thread's messages in order, one at a time", async () => {
    const { engine, adapter, service, send } = setup();
    const first = deferred<Outcome>();
    engine.steps.push(() => interrupt(question), () => first.promise, () => interrupt(question));
    await send(message("build a model", { mention: true }));

    await service.handle(adapter, message("answer one"));
    await service.handle(adapter, message("answer two"));
    await until(() => engine.calls.length === 2, "the first reply");
    await sleep(20);
    // The second reply waits for the first advance to finish.
    expect(engine.calls).toHaveLength(2);
    first.resolve(interrupt(question));
    await service.idle();
    expect(engine.calls.map((c) => ("kind" in c.input && c.input.kind === "answer" ? c.input.text : null))).toEqual([null, "answer one", "answer two"]);
  });

  it("runs different threads concurrently", async () => {
    const { engine, adapter, service } = setup();
    const a = deferred<Outcome>();
    const b = deferred<Outcome>();
    engine.steps.push(() => a.promise, () => b.promise);
    await service.handle(adapter, message("model A", { mention: true, thread: "A" }));
    await service.handle(adapter, message("model B", { mention: true, thread: "B" }));
    // Both started although neither finished.
    await until(() => engine.calls.length === 2, "both threads to start");
    expect(engine.calls.map((c) => c.threadId).sort()).toEqual([keyOf("A"), keyOf("B")]);
    b.resolve(done());
    a.resolve(done());
    await service.idle();
    expect(adapter.kinds()).toEqual(["report", "report"]);
  });
});

describe("ConversationService: status messages", () => {
  it("posts one status message and edits it, coalescing bursts of events", async () => {
    const { engine, adapter, service, send } = setup({ statusIntervalMs: 50 });
    const job = deferred<Outcome>();
    engine.steps.push(() => interrupt(approval), () => job.promise);
    await send(message("build a model", { mention: true }));
    await service.handle(adapter, action("approve", "best"));
    await until(() => engine.calls.length === 2, "the job to start");

    const id = keyOf();
    let events = 0;
    const emit = (event: ProgressEvent) => {
      events++;
      engine.emit(id, event);
    };
    emit({ type: "stage", stage: "execute", state: "start" });
    for (let burst = 0; burst < 4; burst++) {
      for (let i = 0; i < 25; i++) emit({ type: "progress", stage: "execute", done: burst * 25 + i + 1, total: 100, label: "trials" });
      await sleep(30);
    }
    emit({ type: "metric", name: "accuracy", value: 0.91, split: "valid" });
    await sleep(120);

    const statusPosts = adapter.posts.filter((p) => p.message.kind === "status");
    const statusUpdates = adapter.updates.filter((u) => u.message.kind === "status");
    expect(statusPosts).toHaveLength(1);
    expect(statusUpdates.length).toBeGreaterThan(0);
    expect(statusUpdates.length).toBeLessThanOrEqual(events / 2);
    expect(statusUpdates.every((u) => u.ref.id === statusPosts[0].ref.id)).toBe(true);
    const last = statusUpdates.at(-1)!.message;
    if (last.kind !== "status") throw new Error("not a status");
    expect(last.status.progress).toEqual({ label: "trials", done: 100, total: 100 });
    expect(last.status.metrics).toEqual({ valid_accuracy: 0.91 });
    expect(last.status.current).toBe("execute");

    job.resolve(done());
    await service.idle();
    expect(adapter.kinds().at(-1)).toBe("report");
  });

  it("does not post a status for the quick stages before approval", async () => {
    const { engine, adapter, service } = setup();
    const job = deferred<Outcome>();
    engine.steps.push(() => job.promise);
    await service.handle(adapter, message("build a model", { mention: true }));
    await until(() => engine.calls.length === 1, "the first step");
    engine.emit(keyOf(), { type: "stage", stage: "verify_request", state: "start" });
    engine.emit(keyOf(), { type: "stage", stage: "plan", state: "start" });
    job.resolve(interrupt(approval));
    await service.idle();
    await sleep(50);
    expect(adapter.kinds()).toEqual(["plans"]);
  });

  it("ignores events for graph threads it does not run", async () => {
    const { engine, adapter } = setup();
    engine.emit("test:C1:nobody", { type: "progress", stage: "train", done: 1, total: 2 });
    await sleep(30);
    expect(adapter.posts).toHaveLength(0);
  });
});

describe("ConversationService: finishing, new conversations and undeploy", () => {
  it("posts the report and starts a new graph thread on the next mention", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => interrupt(approval), () => done(), () => interrupt(approval), () => done(), () => interrupt(approval));
    await send(message("build a model", { mention: true }));
    await send(action("approve", "best"));
    expect(adapter.posts.at(-1)!.message).toEqual({ kind: "report", report });

    await send(message("now predict ripeness", { mention: true }));
    expect(engine.calls[2]).toEqual({ threadId: `${keyOf()}#1`, input: { text: "now predict ripeness", files: [], requester: "alice", localPaths: false } });
    await send(action("approve", "best"));
    expect(engine.calls[3].threadId).toBe(`${keyOf()}#1`);

    await send(message("and one more", { mention: true }));
    expect(engine.calls[4].threadId).toBe(`${keyOf()}#2`);
  });

  it("posts the error text when a conversation ends without a report", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => done(null, "The request is not about machine learning."));
    await send(message("write me a poem", { mention: true }));
    expect(adapter.texts()).toEqual(["The request is not about machine learning."]);
  });

  it("makes the person who starts the next conversation its requester", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => done(), () => interrupt(approval));
    await send(message("build a model", { mention: true }));
    await send(message("build another", { mention: true, user: "bob" }));
    expect(engine.calls[1].input).toMatchObject({ requester: "bob" });
    await send(action("approve", "best"));
    expect(engine.calls).toHaveLength(2);
    expect(adapter.notes.map((n) => n.user)).toEqual(["alice"]);
  });

  it("stops the model server on undeploy and says so", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => interrupt(approval), () => done());
    await send(message("build a model", { mention: true }));
    await send(action("approve", "best"));
    engine.servers.add(keyOf());
    await send(message("undeploy"));
    expect(engine.stopRequests).toEqual([keyOf()]);
    expect(adapter.texts().at(-1)).toBe("The model server is stopped.");
    // A second undeploy finds nothing and does not start a new conversation.
    await send(message("undeploy"));
    expect(adapter.texts().at(-1)).toBe("No model server is running for this conversation.");
    expect(engine.calls).toHaveLength(2);
  });

  it("refuses undeploy from someone else", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => done());
    await send(message("build a model", { mention: true }));
    engine.servers.add(keyOf());
    await send(message("undeploy", { user: "mallory" }));
    expect(engine.stopRequests).toEqual([]);
    expect(adapter.notes.map((n) => n.user)).toEqual(["mallory"]);
  });

  it("undeploy also stops a server left by an earlier conversation in the thread", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => done(), () => interrupt(approval));
    await send(message("build a model", { mention: true }));
    engine.servers.add(keyOf());
    // A second request in the same thread gets a new graph thread while the first model still serves.
    await send(message("build another", { mention: true }));
    await send(message("undeploy"));
    expect(engine.stopRequests).toContain(keyOf());
    expect(engine.servers.size).toBe(0);
    expect(adapter.texts().at(-1)).toBe("The model server is stopped.");
  });

  it("does not start a new conversation from a late 'cancel'", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => done());
    await send(message("build a model", { mention: true }));
    await send(message("cancel"));
    expect(engine.calls).toHaveLength(1);
    expect(adapter.texts().at(-1)).toMatch(/Nothing is running/);
  });
});

describe("ConversationService: failures", () => {
  it("reports a failed step in the thread and keeps serving other threads", async () => {
    const { engine, adapter, logger, send } = setup();
    engine.steps.push(() => {
      throw new Error("runner exploded");
    });
    await send(message("build a model", { mention: true, thread: "A" }));
    const failure = adapter.posts.at(-1)!;
    expect(failure.thread).toEqual(ref("A"));
    expect(failure.message).toEqual({ kind: "text", text: "Something went wrong and this conversation stopped: runner exploded" });
    expect(logger.error).toHaveBeenCalled();

    await send(message("build a model", { mention: true, thread: "B" }));
    expect(engine.calls.at(-1)!.threadId).toBe(keyOf("B"));
    expect(adapter.posts.at(-1)!.message.kind).toBe("plans");

    // The failed thread can start over with a new mention.
    await send(message("try again", { mention: true, thread: "A" }));
    expect(engine.calls.at(-1)!.threadId).toBe(`${keyOf("A")}#1`);
  });

  it("survives an adapter that cannot post", async () => {
    const { engine, adapter, logger, send } = setup();
    const post = adapter.post.bind(adapter);
    adapter.post = async () => {
      throw new Error("rate limited");
    };
    await send(message("build a model", { mention: true }));
    expect(logger.error).toHaveBeenCalled();
    adapter.post = post;
    await send(message("build a model", { mention: true, thread: "B" }));
    expect(engine.calls).toHaveLength(2);
    expect(adapter.posts).toHaveLength(1);
  });
});

describe("ConversationService: stale cards", () => {
  it("refuses a click on a card that is no longer the one waiting", async () => {
    const { engine, adapter, send } = setup();
    engine.steps.push(() => interrupt(question));
    await send(message("build a model", { mention: true }));
    const questionCard = adapter.posts[0].ref;
    await send(action("answer", "quality", { message: questionCard }));
    expect(adapter.kinds()).toEqual(["question", "plans"]);
    // A second click on the question card arrives after the plan card was posted.
    await send(action("answer", "quality", { message: questionCard }));
    expect(engine.calls).toHaveLength(2);
    expect(adapter.notes.at(-1)!.text).toMatch(/already answered/);
    await send(action("approve", "p1", { message: adapter.posts[1].ref }));
    expect(engine.calls).toHaveLength(3);
  });
});

describe("ConversationService: several processes sharing one store", () => {
  /** Two "processes": their own service, adapter and engine object, one store and one graph state between them. */
  function pair() {
    const store = new MemoryStore();
    const engine = new FakeEngine();
    return { store, engine, a: setup({ store, engine }), b: setup({ store, engine }) };
  }

  it("handles an event delivered to both processes once", async () => {
    const { engine, a, b } = pair();
    const event = message("build a model", { mention: true, eventId: "Ev-shared" });
    await Promise.all([a.send(event), b.send(event)]);
    expect(engine.calls).toHaveLength(1);
    expect(a.adapter.posts.length + b.adapter.posts.length).toBe(1);
  });

  it("lets the other process take the answer to a question the first one asked", async () => {
    const { engine, a, b } = pair();
    engine.steps.push(() => interrupt(question));
    await a.send(message("build a model", { mention: true }));
    expect(a.adapter.kinds()).toEqual(["question"]);
    await b.send(action("answer", "quality"));
    expect(engine.calls.at(-1)!.input).toEqual({ kind: "answer", text: "quality", files: [], user: "alice" });
    expect(b.adapter.kinds()).toEqual(["plans"]);
    // Permissions come from the stored requester, not from the process that started the conversation.
    await b.send(action("approve", "p1", { user: "mallory" }));
    expect(b.adapter.notes.map((n) => n.user)).toEqual(["mallory"]);
    expect(engine.calls).toHaveLength(2);
  });

  it("updates the plan card posted by the other process after a decision", async () => {
    const { a, b } = pair();
    await a.send(message("build a model", { mention: true }));
    const card = a.adapter.posts[0].ref;
    await b.send(action("approve", "p2"));
    expect(b.adapter.updates[0].ref).toEqual(card);
    expect(b.adapter.updates[0].message).toMatchObject({ kind: "plans", decided: { by: "alice", text: "approved plan 2 (Boosting)" } });
  });

  it("resumes a conversation that a dead process left running, once", async () => {
    const { store, engine, b } = pair();
    await store.putThread(keyOf(), {
      key: keyOf(),
      platform: "test",
      channel: "C1",
      thread: "t1",
      graphThreadId: keyOf(),
      generation: 0,
      requester: "alice",
      status: "running",
      runner: "local",
    });
    await Promise.all([b.service.recover(), b.service.recover()]);
    await b.service.idle();
    expect(engine.resumed).toEqual([keyOf()]);
    expect(b.adapter.texts()[0]).toContain("picking this conversation up where it stopped");
    expect(b.adapter.kinds().at(-1)).toBe("report");
    expect((await store.getThread(keyOf()))!.status).toBe("finished");
  });

  it("does not resume a conversation whose process still holds the lease", async () => {
    const { store, engine, a, b } = pair();
    const gate = deferred<Outcome>();
    engine.steps.push(() => gate.promise);
    void a.service.handle(a.adapter, message("build a model", { mention: true }));
    await until(() => engine.calls.length === 1, "the first step");
    expect((await store.getThread(keyOf()))!.status).toBe("running");
    await b.service.recover();
    await b.service.idle();
    expect(engine.resumed).toEqual([]);
    gate.resolve(interrupt(approval));
    await a.service.idle();
    expect((await store.getThread(keyOf()))!.status).toBe("waiting");
  });

  it("queues a reply behind the other process's step instead of running beside it", async () => {
    const { engine, a, b } = pair();
    const gate = deferred<Outcome>();
    engine.steps.push(() => interrupt(question));
    await a.send(message("build a model", { mention: true }));
    engine.steps.push(() => gate.promise);
    void a.service.handle(a.adapter, action("answer", "quality"));
    await until(() => engine.calls.length === 2, "the answer step");
    const late = b.service.handle(b.adapter, message("also use the id column"));
    await late;
    await sleep(30);
    expect(engine.calls).toHaveLength(2);
    gate.resolve(interrupt(approval));
    await a.service.idle();
    await b.service.idle();
    // Once the first process let go, the second saw the plan card the conversation now waits on.
    expect(engine.calls).toHaveLength(3);
    expect(engine.calls[2].input).toMatchObject({ kind: "answer", text: "also use the id column" });
  });
});
