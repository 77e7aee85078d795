import { Annotation, Command, END, START, StateGraph, interrupt, type Checkpoint } from "@langchain/langgraph";
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FENCE_CONFIGURABLE, RedisSaver } from "../../src/store/redis-checkpointer.js";
import { RedisStore } from "../../src/store/redis.js";
import { CorruptEntryError, StaleLeaseError } from "../../src/store/types.js";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.js";
import { eventually } from "./wait.js";

// RedisSaver beyond the validation suite: state outlives the connection that wrote it, a real graph
// resumes from an interrupt on another connection, no command scans the keyspace, and deleting or
// expiring a thread touches exactly that thread's keys.

let server: RedisServer;
const clients: Redis[] = [];
const connect = () => {
  const client = new Redis(server.url);
  clients.push(client);
  return client;
};

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const client of clients) if (client.status === "ready") await client.quit();
  await server.stop();
});

const meta = (step: number) => ({ source: "loop" as const, step, parents: {} });

function checkpoint(values: Record<string, unknown>, versions: Record<string, number>): Checkpoint {
  return { ...emptyCheckpoint(), id: uuid6(-1), channel_values: values, channel_versions: versions };
}

/** A few checkpoints in two namespaces, with writes, the way a graph run leaves them. */
async function fillThread(saver: RedisSaver, threadId: string): Promise<void> {
  for (const ns of ["", "train:1"]) {
    let config = { configurable: { thread_id: threadId, checkpoint_ns: ns } };
    for (let step = 0; step < 3; step += 1) {
      const values = { plan: `plan ${step}`, profile: { rows: 100 * step, note: "x".repeat(200) } };
      config = (await saver.put(config, checkpoint(values, { plan: step + 1, profile: 1 }), meta(step), step === 0 ? { plan: 1, profile: 1 } : { plan: step + 1 })) as typeof config;
      await saver.putWrites(config, [["plan", `next ${step}`], ["log", step]], `task-${step}`, `~__pregel_pull, node${step}`);
    }
  }
}

/** Every key in the database (SCAN; the saver itself never scans). */
async function allKeys(client: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, "COUNT", 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys.sort();
}

describe("RedisSaver", () => {
  it("reads back, on a new connection, what another connection wrote", async () => {
    const writer = connect();
    const saver = new RedisSaver(writer, { prefix: "survive" });
    const threadId = "slack:T1:C1:1700000000.0001";
    await fillThread(saver, threadId);
    const latest = await saver.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: "" } });
    const history = [];
    for await (const tuple of saver.list({ configurable: { thread_id: threadId } })) history.push(tuple);
    await writer.quit();

    const other = new RedisSaver(connect(), { prefix: "survive" });
    expect(await other.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: "" } })).toEqual(latest);
    const again = [];
    for await (const tuple of other.list({ configurable: { thread_id: threadId } })) again.push(tuple);
    expect(again).toEqual(history);
    expect(again).toHaveLength(6);
    expect(latest?.checkpoint.channel_values).toEqual({ plan: "plan 2", profile: { rows: 0, note: "x".repeat(200) } });
    expect(latest?.pendingWrites).toEqual([
      ["task-2", "plan", "next 2"],
      ["task-2", "log", 2],
    ]);
  });

  it("keeps binary values and odd text intact", async () => {
    const saver = new RedisSaver(connect(), { prefix: "binary" });
    const bytes = new Uint8Array([0, 10, 13, 255, 0, 10]);
    const text = "line one\nline two\r\n\u0000 “quotes” 🚀";
    const config = await saver.put({ configurable: { thread_id: "t\n:{1}" } }, checkpoint({ bytes, text }, { bytes: 1, text: 1 }), meta(0), { bytes: 1, text: 1 });
    await saver.putWrites(config, [["bytes", bytes]], "task\n1");
    const tuple = await saver.getTuple(config);
    expect(tuple?.checkpoint.channel_values.text).toBe(text);
    expect(Buffer.from(tuple?.checkpoint.channel_values.bytes as Uint8Array)).toEqual(Buffer.from(bytes));
    expect(Buffer.from(tuple?.pendingWrites?.[0][2] as Uint8Array)).toEqual(Buffer.from(bytes));
  });

  it("resumes a real graph from its interrupt on another connection, without re-running earlier nodes", async () => {
    const State = Annotation.Root({
      request: Annotation<string>(),
      plan: Annotation<string>(),
      decision: Annotation<string>(),
      ran: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
    });
    const build = (saver: RedisSaver) =>
      new StateGraph(State)
        .addNode("planner", (s) => ({ plan: `plan for ${s.request}: ${"detail ".repeat(300)}`, ran: ["planner"] }))
        .addNode("approve", () => ({ decision: interrupt({ kind: "plans", question: "approve?" }) as string, ran: ["approve"] }))
        .addNode("train", (s) => ({ ran: [`train:${s.decision}`] }))
        .addEdge(START, "planner")
        .addEdge("planner", "approve")
        .addEdge("approve", "train")
        .addEdge("train", END)
        .compile({ checkpointer: saver });
    const config = { configurable: { thread_id: "graph-1" } };

    const first = build(new RedisSaver(connect(), { prefix: "graph" }));
    await first.invoke({ request: "predict quality" }, config);

    const second = build(new RedisSaver(connect(), { prefix: "graph" }));
    const state = await second.getState(config);
    expect(state.next).toEqual(["approve"]);
    expect(state.tasks[0]?.interrupts[0]?.value).toEqual({ kind: "plans", question: "approve?" });
    const done = await second.invoke(new Command({ resume: "approved" }), config);
    expect(done.decision).toBe("approved");
    expect(done.ran).toEqual(["planner", "approve", "train:approved"]);
    expect((await second.getState(config)).next).toEqual([]);
  });

  it("never scans the keyspace: no KEYS or SCAN in the command statistics", async () => {
    const client = connect();
    await client.config("RESETSTAT");
    const saver = new RedisSaver(client, { prefix: "stats" });
    await fillThread(saver, "a");
    await fillThread(saver, "b");
    await saver.getTuple({ configurable: { thread_id: "a" } });
    for await (const _ of saver.list({}, { limit: 5, filter: { source: "loop" } })) void _;
    for await (const _ of saver.list({ configurable: { thread_id: "b", checkpoint_ns: "train:1" } }, { before: { configurable: { checkpoint_id: uuid6(-1) } } })) void _;
    await saver.expireThread("a", 3600);
    await saver.deleteThread("a");
    await saver.deleteThread("b");

    const stats = await client.info("commandstats");
    const commands = [...stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => m[1]);
    // Commands run inside the Lua scripts are counted too (HSET is only ever called from a script).
    expect(commands).toEqual(expect.arrayContaining(["evalsha", "hset", "zrevrangebylex"]));
    expect(commands).not.toContain("keys");
    expect(commands).not.toContain("scan");
  });

  it("deletes every key of a thread and nothing else", async () => {
    const client = connect();
    await client.flushdb();
    const saver = new RedisSaver(client, { prefix: "del" });
    // Thread ids that share prefixes with the deleted one.
    await fillThread(saver, "conv:1:x");
    await fillThread(saver, "conv:1#1");
    const others = await allKeys(client);
    await fillThread(saver, "conv:1");
    expect((await allKeys(client)).length).toBeGreaterThan(others.length);

    await saver.deleteThread("conv:1");
    expect(await allKeys(client)).toEqual(others);
    expect(await saver.getTuple({ configurable: { thread_id: "conv:1" } })).toBeUndefined();
    expect(await saver.getTuple({ configurable: { thread_id: "conv:1:x" } })).toBeDefined();
    const threads = new Set<string>();
    for await (const tuple of saver.list({})) threads.add(tuple.config.configurable?.thread_id);
    expect([...threads].sort()).toEqual(["conv:1#1", "conv:1:x"]);
  });

  it("expires a finished thread's keys, and a new write makes it live again", async () => {
    const client = connect();
    await client.flushdb();
    const saver = new RedisSaver(client, { prefix: "ttl" });
    await fillThread(saver, "live");
    const live = await allKeys(client);
    await fillThread(saver, "done");
    await saver.expireThread("done", 3600);
    for (const key of await allKeys(client)) {
      const ttl = await client.ttl(key);
      if (key.startsWith("ttl:cp:done:")) expect(ttl, key).toBeGreaterThan(0);
      else expect(ttl, key).toBe(-1);
    }
    await fillThread(saver, "done");
    for (const key of await allKeys(client)) expect(await client.ttl(key), key).toBe(-1);

    await saver.expireThread("done", 1);
    await eventually(() => saver.getTuple({ configurable: { thread_id: "done" } }), (t) => t === undefined, "the thread to expire");
    const threads = new Set<string>();
    for await (const tuple of saver.list({})) threads.add(tuple.config.configurable?.thread_id);
    expect([...threads]).toEqual(["live"]);
    // Listing dropped the expired thread from the index: only the live thread's keys remain.
    expect(await allKeys(client)).toEqual(live);
  });

  it("refuses writes fenced with a lease token that a newer holder superseded", async () => {
    const client = connect();
    const store = new RedisStore(client, { prefix: "fence" });
    const saver = store.checkpointer;
    const old = await store.acquireLease("slack:T1:C1:9", 200, { autoRenew: false });
    const fenced = (token: number) => ({ configurable: { thread_id: "g-9", checkpoint_ns: "", [FENCE_CONFIGURABLE]: { key: "slack:T1:C1:9", token } } });
    const saved = await saver.put(fenced(old!.token), checkpoint({ plan: "a" }, { plan: 1 }), meta(0), { plan: 1 });
    const next = await eventually(() => store.acquireLease("slack:T1:C1:9", 10_000), (l) => l !== null, "the lease to expire");

    const stale = { configurable: { ...fenced(old!.token).configurable, checkpoint_id: saved.configurable?.checkpoint_id } };
    await expect(saver.put(stale, checkpoint({ plan: "b" }, { plan: 2 }), meta(1), { plan: 2 })).rejects.toBeInstanceOf(StaleLeaseError);
    await expect(saver.putWrites(stale, [["plan", "c"]], "t1")).rejects.toBeInstanceOf(StaleLeaseError);
    const latest = await saver.getTuple({ configurable: { thread_id: "g-9" } });
    expect(latest?.checkpoint.channel_values).toEqual({ plan: "a" });
    expect(latest?.pendingWrites).toEqual([]);

    await saver.put({ configurable: { ...fenced(next!.token).configurable, checkpoint_id: saved.configurable?.checkpoint_id } }, checkpoint({ plan: "b" }, { plan: 2 }), meta(1), { plan: 2 });
    expect((await saver.getTuple({ configurable: { thread_id: "g-9" } }))?.checkpoint.channel_values).toEqual({ plan: "b" });
    await next!.release();
    await expect(saver.put({ configurable: { thread_id: "g-9", [FENCE_CONFIGURABLE]: { key: "x" } } }, checkpoint({}, {}), meta(2), {})).rejects.toThrow(/threadml_fence/);
  });

  it("reports a damaged entry with its place instead of returning garbage", async () => {
    const client = connect();
    const saver = new RedisSaver(client, { prefix: "corrupt" });
    const config = await saver.put({ configurable: { thread_id: "t1" } }, checkpoint({}, {}), meta(0), {});
    await client.hset(`corrupt:cp:t1::c:${config.configurable?.checkpoint_id}`, "metadata", "no header line");
    const read = saver.getTuple(config);
    await expect(read).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(read).rejects.toThrow(/t1\/\/.* metadata is unreadable: no header line/);
  });
});
