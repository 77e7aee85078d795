import { Annotation, Command, END, START, StateGraph, interrupt } from "@langchain/langgraph";
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CorruptEntryError, FileSaver, FileStore } from "../../src/store/index.js";
import { tempDir } from "../helpers/tmp.js";

// Every "process" here is a new FileSaver on the same folder: nothing but the files carries over.

const tmp = tempDir("threadml-file-saver-");
let folders = 0;
const freshDir = () => join(tmp.dir, `cp-${++folders}`);

interface StoredFile {
  threadId: string;
  expiresAt?: number;
  checkpoints: Array<{ ns: string; id: string }>;
  writes: Array<{ ns: string; id: string; writes: Array<[string, number, string, string, string]> }>;
}
const readStored = (saver: FileSaver, threadId: string) => JSON.parse(readFileSync(saver.fileOf(threadId), "utf8")) as StoredFile;

const State = Annotation.Root({
  request: Annotation<string>(),
  plan: Annotation<string>(),
  decision: Annotation<string>(),
  ran: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

// profile → planner → approve (waits for the user) → train → report
function conversation(saver: FileSaver) {
  return new StateGraph(State)
    .addNode("profile", () => ({ ran: ["profile"] }))
    .addNode("planner", (s) => ({ plan: `plan for ${s.request}: ${"detail ".repeat(200)}`, ran: ["planner"] }))
    .addNode("approve", () => ({ decision: interrupt({ kind: "plans", question: "approve?" }) as string, ran: ["approve"] }))
    .addNode("train", (s) => ({ ran: [`train:${s.decision}`] }))
    .addNode("report", () => ({ ran: ["report"] }))
    .addEdge(START, "profile")
    .addEdge("profile", "planner")
    .addEdge("planner", "approve")
    .addEdge("approve", "train")
    .addEdge("train", "report")
    .addEdge("report", END)
    .compile({ checkpointer: saver });
}

describe("FileSaver", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("resumes a conversation paused at an interrupt in another process, without re-running earlier nodes", async () => {
    const dir = freshDir();
    const config = { configurable: { thread_id: "slack:T1:C1:1700000000.000100#0" } };
    const first = new FileSaver(dir);
    const paused = await conversation(first).invoke({ request: "predict quality" }, config);
    expect(paused.ran).toEqual(["profile", "planner"]);

    const second = new FileSaver(dir);
    const graph = conversation(second);
    const state = await graph.getState(config);
    expect(state.next).toEqual(["approve"]);
    expect(state.tasks[0]?.interrupts[0]?.value).toEqual({ kind: "plans", question: "approve?" });
    expect(state.values.plan).toMatch(/^plan for predict quality/);

    const done = await graph.invoke(new Command({ resume: "approved" }), config);
    expect(done.decision).toBe("approved");
    expect(done.ran).toEqual(["profile", "planner", "approve", "train:approved", "report"]);
    expect((await new FileSaver(dir).getTuple(config))?.checkpoint.channel_values.decision).toBe("approved");
    expect((await conversation(new FileSaver(dir)).getState(config)).next).toEqual([]);
  });

  it("keeps one checkpoint per namespace in the file, with the pending writes of the latest", async () => {
    const dir = freshDir();
    const saver = new FileSaver(dir);
    const config = { configurable: { thread_id: "many-steps" } };
    await conversation(saver).invoke({ request: "r" }, config);
    const paused = readStored(saver, "many-steps");
    expect(paused.checkpoints.map((c) => c.ns)).toEqual([""]);
    // The interrupt, against the latest checkpoint only.
    expect(paused.writes.map((w) => w.id)).toEqual([paused.checkpoints[0].id]);
    expect(paused.writes[0].writes.map((w) => w[2])).toContain("__interrupt__");
    const history = [];
    for await (const tuple of saver.list(config)) history.push(tuple);
    expect(history).toHaveLength(1);

    await conversation(saver).invoke(new Command({ resume: "ok" }), config);
    const finished = readStored(saver, "many-steps");
    expect(finished.checkpoints.map((c) => c.ns)).toEqual([""]);
    expect(finished.checkpoints[0].id > paused.checkpoints[0].id).toBe(true);
    expect(finished.writes.every((w) => w.id >= finished.checkpoints[0].id)).toBe(true);
    expect(readdirSync(dir)).toEqual([`${encodeURIComponent("many-steps")}.json`]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(saver.fileOf("many-steps")).mode & 0o777).toBe(0o600);
  });

  it("resumes an interrupt inside a subgraph from the latest checkpoint of each namespace", async () => {
    const Inner = Annotation.Root({ question: Annotation<string>(), answer: Annotation<string>() });
    const inner = new StateGraph(Inner)
      .addNode("prepare", (s) => ({ question: `which target for ${s.question}?` }))
      .addNode("ask", (s) => ({ answer: interrupt({ kind: "question", text: s.question }) as string }))
      .addEdge(START, "prepare")
      .addEdge("prepare", "ask")
      .addEdge("ask", END)
      .compile();
    const Outer = Annotation.Root({ question: Annotation<string>(), answer: Annotation<string>(), outcome: Annotation<string>() });
    const build = (saver: FileSaver) =>
      new StateGraph(Outer)
        .addNode("read", inner)
        .addNode("conclude", (s) => ({ outcome: `target is ${s.answer}` }))
        .addEdge(START, "read")
        .addEdge("read", "conclude")
        .addEdge("conclude", END)
        .compile({ checkpointer: saver });
    const dir = freshDir();
    const config = { configurable: { thread_id: "nested" } };
    await build(new FileSaver(dir)).invoke({ question: "wine.csv" }, config);
    const stored = readStored(new FileSaver(dir), "nested");
    expect(stored.checkpoints.length).toBe(2);
    expect(new Set(stored.checkpoints.map((c) => c.ns)).size).toBe(2);

    const graph = build(new FileSaver(dir));
    const state = await graph.getState(config, { subgraphs: true });
    expect(state.tasks[0]?.interrupts[0]?.value).toEqual({ kind: "question", text: "which target for wine.csv?" });
    const done = await graph.invoke(new Command({ resume: "quality" }), config);
    expect(done).toMatchObject({ answer: "quality", outcome: "target is quality" });
  });

  it("round-trips binary values in checkpoints and pending writes", async () => {
    const dir = freshDir();
    const bytes = new Uint8Array([0, 1, 2, 10, 13, 200, 255]);
    const text = "naïve “quotes”\n\u0000 and 🚀";
    const config = { configurable: { thread_id: "bin", checkpoint_ns: "" } };
    const checkpoint = { ...emptyCheckpoint(), id: uuid6(-1), channel_values: { bytes, text }, channel_versions: { bytes: 1, text: 1 } };
    const saved = await new FileSaver(dir).put(config, checkpoint, { source: "input", step: -1, parents: {} });
    await new FileSaver(dir).putWrites(saved, [["bytes", bytes], ["text", text]], "task-1");

    const tuple = await new FileSaver(dir).getTuple({ configurable: { thread_id: "bin" } });
    expect(tuple?.checkpoint.id).toBe(checkpoint.id);
    expect(tuple?.checkpoint.channel_values.text).toBe(text);
    expect(Buffer.from(tuple?.checkpoint.channel_values.bytes as Uint8Array)).toEqual(Buffer.from(bytes));
    expect(tuple?.pendingWrites?.map(([task, channel]) => [task, channel])).toEqual([
      ["task-1", "bytes"],
      ["task-1", "text"],
    ]);
    expect(Buffer.from(tuple?.pendingWrites?.[0][2] as Uint8Array)).toEqual(Buffer.from(bytes));
    expect(tuple?.metadata).toMatchObject({ source: "input", step: -1 });
  });

  it("keeps writes saved before the checkpoint they belong to (LangGraph puts checkpoints in the background)", async () => {
    const dir = freshDir();
    const config = { configurable: { thread_id: "early", checkpoint_ns: "" } };
    const one = { ...emptyCheckpoint(), id: uuid6(-1) };
    const two = { ...emptyCheckpoint(), id: uuid6(-1) };
    await new FileSaver(dir).put(config, one, { source: "input", step: -1, parents: {} });
    await new FileSaver(dir).putWrites({ configurable: { ...config.configurable, checkpoint_id: one.id } }, [["a", 1]], "t1");
    await new FileSaver(dir).putWrites({ configurable: { ...config.configurable, checkpoint_id: two.id } }, [["b", 2]], "t2");
    await new FileSaver(dir).put({ configurable: { ...config.configurable, checkpoint_id: one.id } }, two, { source: "loop", step: 0, parents: {} });
    const saver = new FileSaver(dir);
    const tuple = await saver.getTuple({ configurable: { thread_id: "early" } });
    expect(tuple?.checkpoint.id).toBe(two.id);
    expect(tuple?.pendingWrites).toEqual([["t2", "b", 2]]);
    // The writes against `one` were consumed by `two`, and `one` itself is gone.
    expect(readStored(saver, "early").writes.map((w) => w.id)).toEqual([two.id]);
    expect(await saver.getTuple({ configurable: { thread_id: "early", checkpoint_id: one.id } })).toBeUndefined();
  });

  it("has every one of many concurrent writes on disk once each resolves", async () => {
    const dir = freshDir();
    const saver = new FileSaver(dir);
    const config = { configurable: { thread_id: "busy", checkpoint_ns: "" } };
    const saved = await saver.put(config, { ...emptyCheckpoint(), id: uuid6(-1) }, { source: "input", step: -1, parents: {} });
    const earlier = Array.from({ length: 24 }, (_, i) => saver.putWrites(saved, [["out", i]], `task-${i}`));
    await saver.putWrites(saved, [["out", 24]], "task-24"); // the last one alone: all 25 must be on disk now
    const tuple = await new FileSaver(dir).getTuple({ configurable: { thread_id: "busy" } });
    expect(tuple?.pendingWrites?.map(([, , value]) => value as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    await Promise.all(earlier);
  });

  it("sees what another process wrote or deleted since it last read the thread", async () => {
    const dir = freshDir();
    const config = { configurable: { thread_id: "shared" } };
    const a = new FileSaver(dir);
    const b = new FileSaver(dir);
    const one = { ...emptyCheckpoint(), id: uuid6(-1) };
    await a.put(config, one, { source: "input", step: -1, parents: {} });
    expect((await b.getTuple(config))?.checkpoint.id).toBe(one.id);
    const two = { ...emptyCheckpoint(), id: uuid6(-1) };
    await b.put({ configurable: { ...config.configurable, checkpoint_id: one.id } }, two, { source: "loop", step: 0, parents: {} });
    const seen = await a.getTuple(config);
    expect(seen?.checkpoint.id).toBe(two.id);
    expect(seen?.parentConfig?.configurable?.checkpoint_id).toBe(one.id);

    await b.deleteThread("shared");
    expect(existsSync(a.fileOf("shared"))).toBe(false);
    expect(await a.getTuple(config)).toBeUndefined();
    expect(await new FileSaver(dir).getTuple(config)).toBeUndefined();
  });

  it("removes a thread's file once its expiry passed, unless it was written again", async () => {
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const dir = freshDir();
    const saver = new FileSaver(dir);
    const put = (threadId: string) => saver.put({ configurable: { thread_id: threadId } }, { ...emptyCheckpoint(), id: uuid6(-1) }, { source: "input", step: -1, parents: {} });
    for (const id of ["expires", "written-again", "swept"]) {
      await put(id);
      await saver.expireThread(id, 60);
    }
    expect(readStored(saver, "expires").expiresAt).toBe(start + 60_000);
    await put("written-again");
    expect(readStored(saver, "written-again").expiresAt).toBeUndefined();

    vi.setSystemTime(start + 61_000);
    expect(await saver.getTuple({ configurable: { thread_id: "expires" } })).toBeUndefined();
    expect(existsSync(saver.fileOf("expires"))).toBe(false);
    expect(await new FileSaver(dir).getTuple({ configurable: { thread_id: "written-again" } })).toBeDefined();
    // The sweep reads only files not written for the given time (file times are real, written at `start`).
    expect(await new FileSaver(dir).sweepExpired(120_000)).toBe(0);
    expect(await new FileSaver(dir).sweepExpired(30_000)).toBe(1);
    expect(readdirSync(dir)).toEqual(["written-again.json"]);
  });

  it("lets the file store expire a finished conversation's checkpoints", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: 1_700_000_000_000 });
    const dir = freshDir();
    const store = new FileStore(dir, { finishedTtlS: 3600 });
    const saver = store.checkpointer as FileSaver;
    await saver.put({ configurable: { thread_id: "g-1" } }, { ...emptyCheckpoint(), id: uuid6(-1) }, { source: "input", step: -1, parents: {} });
    await store.expireCheckpoints("g-1");
    expect(readStored(saver, "g-1").expiresAt).toBe(1_700_000_000_000 + 3600_000);
    vi.setSystemTime(1_700_000_000_000 + 3601_000);
    expect(await new FileStore(dir, { finishedTtlS: 3600 }).checkpointer.getTuple({ configurable: { thread_id: "g-1" } })).toBeUndefined();
    await new FileStore(dir).expireCheckpoints("g-2"); // a TTL of 0 keeps them: nothing to do
  });

  it("names the thread when its file is unreadable", async () => {
    const dir = freshDir();
    const saver = new FileSaver(dir);
    await saver.put({ configurable: { thread_id: "ok" } }, { ...emptyCheckpoint(), id: uuid6(-1) }, { source: "input", step: -1, parents: {} });
    writeFileSync(saver.fileOf("broken"), "{not json");
    writeFileSync(saver.fileOf("moved"), readFileSync(saver.fileOf("ok")));
    const read = new FileSaver(dir).getTuple({ configurable: { thread_id: "broken" } });
    await expect(read).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(new FileSaver(dir).getTuple({ configurable: { thread_id: "broken" } })).rejects.toThrow(/graph thread broken is unreadable: not JSON/);
    await expect(new FileSaver(dir).getTuple({ configurable: { thread_id: "moved" } })).rejects.toThrow(/the file is for ok/);
    await expect(saver.getTuple({ configurable: { thread_id: "__proto__" } })).rejects.toThrow(/reserved/);
  });
});
