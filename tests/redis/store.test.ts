import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Config } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { CorruptEntryError, createStore, MemoryStore, RedisSaver, RedisStore, StaleLeaseError } from "../../src/store/index.js";
import type { ConversationStore, Lease, ThreadMetaInput } from "../../src/store/types.js";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.js";
import { modelEntry, registryCases, threadMeta as meta } from "../helpers/store.js";
import { eventually, sleep } from "./wait.js";

// One behavioural suite, run against the in-memory store and against the Redis store (two real
// ioredis connections to a real redis-server, standing in for two replicas).

const FINISHED_TTL_S = 1;

interface Backend {
  /** A new connection to the same shared state ("another replica"). */
  connect(): Promise<ConversationStore>;
}

function storeSuite(name: string, setup: () => Promise<Backend>, teardown: () => Promise<void>) {
  describe(`ConversationStore (${name})`, () => {
    let backend: Backend;
    const opened: ConversationStore[] = [];
    const leases: Lease[] = [];
    const connect = async () => {
      const store = await backend.connect();
      opened.push(store);
      return store;
    };
    const acquire = async (store: ConversationStore, ...args: Parameters<ConversationStore["acquireLease"]>) => {
      const lease = await store.acquireLease(...args);
      if (lease) leases.push(lease);
      return lease;
    };

    beforeAll(async () => {
      backend = await setup();
    });
    afterEach(async () => {
      for (const lease of leases.splice(0)) await lease.release();
      for (const store of opened.splice(0)) await store.close();
    });
    afterAll(teardown);

    it("lets exactly one of many concurrent claims of an event win", async () => {
      const [a, b] = [await connect(), await connect()];
      const id = `evt-${randomUUID()}`;
      const claims = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).claimEvent(id, 60)));
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await a.claimEvent(`evt-${randomUUID()}`, 60)).toBe(true);
      await expect(a.claimEvent(id, 0)).rejects.toThrow();
    });

    it("lets an event be claimed again once its claim expired", async () => {
      const a = await connect();
      const id = `evt-${randomUUID()}`;
      expect(await a.claimEvent(id, 1)).toBe(true);
      expect(await a.claimEvent(id, 1)).toBe(false);
      await eventually(() => a.claimEvent(id, 1), Boolean, "the claim to expire");
    });

    it("gives a lease to one holder at a time, with a larger token for the next", async () => {
      const [a, b] = [await connect(), await connect()];
      const key = `slack:T1:C1:${randomUUID()}`;
      const first = await acquire(a, key, 10_000);
      expect(first).not.toBeNull();
      expect(await acquire(b, key, 10_000)).toBeNull();
      expect(await acquire(a, key, 10_000)).toBeNull();
      await first!.release();
      const second = await acquire(b, key, 10_000);
      expect(second).not.toBeNull();
      expect(second!.token).toBeGreaterThan(first!.token);
      expect(await b.checkFence(key, second!.token)).toBe(true);
      expect(await b.checkFence(key, first!.token)).toBe(false);
    });

    it("keeps a renewed lease well past its TTL", async () => {
      const [a, b] = [await connect(), await connect()];
      const key = `lease-${randomUUID()}`;
      const ttlMs = 900;
      const lease = await acquire(a, key, ttlMs);
      expect(lease).not.toBeNull();
      const until = Date.now() + 3 * ttlMs;
      while (Date.now() < until) {
        expect(await acquire(b, key, ttlMs)).toBeNull();
        await sleep(100);
      }
      expect(lease!.lost.aborted).toBe(false);
      expect(await lease!.renew()).toBe(true);
    });

    it("lets another holder take an expired lease, with a higher token, and tells the old one", async () => {
      const [a, b] = [await connect(), await connect()];
      const key = `lease-${randomUUID()}`;
      const old = await acquire(a, key, 200, { autoRenew: false });
      expect(old).not.toBeNull();
      const lost = new Promise((resolve) => old!.lost.addEventListener("abort", resolve, { once: true }));
      const next = await eventually(() => acquire(b, key, 10_000), (l) => l !== null, "the lease to expire");
      expect(next!.token).toBeGreaterThan(old!.token);
      await lost;
      expect(await old!.renew()).toBe(false);
    });

    it("refuses a write fenced with a stale token and keeps the newer holder's", async () => {
      const [a, b] = [await connect(), await connect()];
      const key = `slack:T1:C1:${randomUUID()}`;
      const old = await acquire(a, key, 200, { autoRenew: false });
      await a.putThread(key, meta(key, { requester: "U1" }), { fence: old!.token });
      const next = await eventually(() => acquire(b, key, 10_000), (l) => l !== null, "the lease to expire");
      await b.putThread(key, meta(key, { requester: "U2", status: "waiting" }), { fence: next!.token });

      const refused = a.putThread(key, meta(key, { requester: "U1", status: "finished" }), { fence: old!.token });
      await expect(refused).rejects.toBeInstanceOf(StaleLeaseError);
      await expect(refused).rejects.toThrow(/stale/);
      expect(await a.checkFence(key, old!.token)).toBe(false);
      expect(await a.getThread(key)).toMatchObject({ requester: "U2", status: "waiting" });
    });

    it("ignores a release by a holder that no longer owns the lease", async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      const key = `lease-${randomUUID()}`;
      const old = await acquire(a, key, 200, { autoRenew: false });
      const next = await eventually(() => acquire(b, key, 10_000), (l) => l !== null, "the lease to expire");
      await old!.release();
      expect(await acquire(c, key, 10_000)).toBeNull();
      expect(await next!.renew()).toBe(true);
      expect(next!.lost.aborted).toBe(false);
    });

    it("round-trips conversation metadata and indexes the active ones", async () => {
      const [a, b] = [await connect(), await connect()];
      const run = `k-${randomUUID()}`;
      const running = `${run}-running`;
      const waiting = `${run}-waiting`;
      const done = `${run}-done`;
      const pending = { kind: "plans", plans: [{ id: "p1", title: "Random forest" }], note: "multi\nline “quoted”" };
      const stored = await a.putThread(
        waiting,
        meta(waiting, { status: "waiting", pending, pendingMessageId: "m-1", statusMessageId: "m-2", runner: "gpu1:job-7", futureField: 3 } as ThreadMetaInput),
      );
      expect(stored.updatedAt).toBeTypeOf("number");
      await a.putThread(running, meta(running));
      await a.putThread(done, meta(done, { status: "finished" }));

      const read = await b.getThread(waiting);
      expect(read).toEqual(stored);
      expect(read).toMatchObject({ pending, runner: "gpu1:job-7", futureField: 3 });
      expect(await b.getThread(`${run}-unknown`)).toBeNull();

      const mine = (list: Array<{ key: string }>) => list.map((m) => m.key).filter((k) => k.startsWith(run)).sort();
      expect(mine(await b.listThreads({ active: true }))).toEqual([running, waiting].sort());
      expect(mine(await b.listThreads())).toEqual([done, running, waiting].sort());

      await b.putThread(running, meta(running, { status: "finished", generation: 1 }));
      expect(mine(await a.listThreads({ active: true }))).toEqual([waiting]);
      expect(await a.getThread(running)).toMatchObject({ status: "finished", generation: 1 });
    });

    it("rejects metadata that does not validate, naming the problem", async () => {
      const a = await connect();
      const key = `k-${randomUUID()}`;
      await expect(a.putThread(key, { ...meta(key), status: "paused" } as unknown as ThreadMetaInput)).rejects.toThrow(/status/);
      await expect(a.putThread(key, meta(`${key}-other`))).rejects.toThrow(/is for/);
      expect(await a.getThread(key)).toBeNull();
    });

    it("forgets finished conversations after the finished TTL", async () => {
      const [a, b] = [await connect(), await connect()];
      const key = `k-${randomUUID()}`;
      const kept = `${key}-reopened`;
      await a.putThread(key, meta(key, { status: "finished" }));
      await a.putThread(kept, meta(kept, { status: "finished" }));
      await a.putThread(kept, meta(kept, { status: "running", generation: 1 }));
      expect(await b.getThread(key)).not.toBeNull();
      await eventually(() => b.getThread(key), (m) => m === null, "the finished conversation to expire");
      expect((await b.listThreads()).map((m) => m.key)).not.toContain(key);
      // Written again as running after it finished: no longer expires.
      await sleep(FINISHED_TTL_S * 1000 + 200);
      expect(await b.getThread(kept)).toMatchObject({ status: "running", generation: 1 });
    });

    it.each(registryCases)("model registry: %s", async (_name, run) => {
      await run(connect);
    });

    it("deletes a conversation from storage and indexes", async () => {
      const [a, b] = [await connect(), await connect()];
      const key = `k-${randomUUID()}`;
      await a.putThread(key, meta(key));
      await b.deleteThread(key);
      expect(await a.getThread(key)).toBeNull();
      expect((await a.listThreads()).map((m) => m.key)).not.toContain(key);
      expect((await a.listThreads({ active: true })).map((m) => m.key)).not.toContain(key);
    });
  });
}

// ------------------------------------------------------------------------------------ memory

let memory: MemoryStore | undefined;
storeSuite(
  "memory",
  async () => ({
    // One process: every "connection" is the same store.
    connect: async () => (memory ??= new MemoryStore({ finishedTtlS: FINISHED_TTL_S })),
  }),
  async () => {
    memory = undefined;
  },
);

// ------------------------------------------------------------------------------------- redis

let server: RedisServer;
const prefix = `store-${randomUUID().slice(0, 8)}`;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server.stop();
});

storeSuite(
  "redis",
  async () => ({ connect: async () => new RedisStore(new Redis(server.url), { prefix, finishedTtlS: FINISHED_TTL_S, ownsClient: true }) }),
  async () => {},
);

describe("RedisStore specifics", () => {
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(server.url);
    clients.push(c);
    return c;
  };
  afterAll(async () => {
    for (const c of clients) await c.quit();
  });

  it("keeps fencing tokens rising after the fence counter itself expired", async () => {
    const redis = client();
    const store = new RedisStore(redis, { prefix });
    const key = `k-${randomUUID()}`;
    const first = await store.acquireLease(key, 10_000);
    await first!.release();
    await redis.del(`${prefix}:fence:${encodeURIComponent(key)}`);
    const second = await store.acquireLease(key, 10_000);
    expect(second!.token).toBeGreaterThan(first!.token);
    await second!.release();
  });

  it("tells the holder its lease is lost when Redis stops answering", async () => {
    const own = await startRedisServer();
    const redis = new Redis(own.url, { maxRetriesPerRequest: 1 });
    redis.on("error", () => {});
    try {
      const store = new RedisStore(redis, { prefix });
      const lease = await store.acquireLease("k-down", 300);
      const lost = new Promise<unknown>((resolve) => lease!.lost.addEventListener("abort", () => resolve(lease!.lost.reason), { once: true }));
      await own.kill();
      expect(String(await lost)).toMatch(/not renewed within 300 ms/);
    } finally {
      redis.disconnect();
      await own.stop();
    }
  });

  it("stores finished conversations with a TTL and drops it when they run again", async () => {
    const redis = client();
    const store = new RedisStore(redis, { prefix, finishedTtlS: 3600 });
    const key = `k-${randomUUID()}`;
    await store.putThread(key, meta(key, { status: "finished" }));
    const ttl = await redis.ttl(`${prefix}:conv:${encodeURIComponent(key)}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3600);
    await store.putThread(key, meta(key, { status: "waiting" }));
    expect(await redis.ttl(`${prefix}:conv:${encodeURIComponent(key)}`)).toBe(-1);
  });

  it("lets a finished conversation's checkpoints expire with the finished TTL", async () => {
    const redis = client();
    const store = new RedisStore(redis, { prefix: `${prefix}-cp`, finishedTtlS: 3600 });
    const graphThreadId = `g-${randomUUID()}`;
    await store.checkpointer.put({ configurable: { thread_id: graphThreadId } }, { ...emptyCheckpoint(), id: uuid6(-1) }, { source: "input", step: -1, parents: {} }, {});
    await store.expireCheckpoints(graphThreadId);
    const keys = await redis.smembers(`${prefix}-cp:cp:${graphThreadId}:keys`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of [...keys, `${prefix}-cp:cp:${graphThreadId}:keys`]) {
      const ttl = await redis.ttl(key);
      if (ttl === -2) continue; // listed but never written (this checkpoint has no channel values)
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(3600);
    }
  });

  it("skips unreadable metadata in listings and names the conversation when reading it", async () => {
    const redis = client();
    const logs: unknown[] = [];
    const logger = createLogger("silent");
    logger.warn = ((obj: unknown) => logs.push(obj)) as typeof logger.warn;
    const store = new RedisStore(redis, { prefix: `${prefix}-corrupt`, logger });
    await store.putThread("good", meta("good"));
    await redis.set(`${prefix}-corrupt:conv:bad`, "{not json");
    await redis.sadd(`${prefix}-corrupt:conv-all`, "bad");
    expect((await store.listThreads()).map((m) => m.key)).toEqual(["good"]);
    expect(logs).toHaveLength(1);
    await expect(store.getThread("bad")).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(store.getThread("bad")).rejects.toThrow(/conversation bad is unreadable: not JSON/);
  });

  it("skips unreadable and vanished registry entries in listings, and names the model when reading it", async () => {
    const redis = client();
    const logs: unknown[] = [];
    const logger = createLogger("silent");
    logger.warn = ((obj: unknown) => logs.push(obj)) as typeof logger.warn;
    const p = `${prefix}-corrupt-models`;
    const store = new RedisStore(redis, { prefix: p, logger });
    const good = modelEntry({ name: "good-model" });
    await store.putModel(good);
    await redis.set(`${p}:model:bad-model`, "{not json");
    await redis.set(`${p}:model:wrong-name`, JSON.stringify({ ...good, updatedAt: 1 }));
    await redis.sadd(`${p}:models`, "bad-model", "wrong-name", "gone-model");
    expect((await store.listModels()).map((m) => m.name)).toEqual(["good-model"]);
    expect(logs).toHaveLength(2);
    expect(await redis.smembers(`${p}:models`)).not.toContain("gone-model");
    await expect(store.getModel("bad-model")).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(store.getModel("bad-model")).rejects.toThrow(/model bad-model is unreadable: not JSON/);
    await expect(store.getModel("wrong-name")).rejects.toThrow(/the entry is for good-model/);
  });

  it("keeps registry entries without expiry, whatever the finished TTL", async () => {
    const redis = client();
    const p = `${prefix}-models-ttl`;
    const store = new RedisStore(redis, { prefix: p, finishedTtlS: 1 });
    const entry = modelEntry({ status: "stopped" });
    await store.putModel(entry);
    expect(await redis.ttl(`${p}:model:${entry.name}`)).toBe(-1);
    expect(await redis.smembers(`${p}:models`)).toEqual([entry.name]);
    await store.deleteModel(entry.name);
    expect(await redis.exists(`${p}:model:${entry.name}`, `${p}:models`)).toBe(0);
  });

  it("createStore picks memory without a URL and Redis with one", async () => {
    const logger = createLogger("silent");
    const mem = await createStore(Config.parse({}), logger);
    expect(mem.kind).toBe("memory");
    await mem.close();
    const red = await createStore(Config.parse({ redis: { url: server.url, prefix } }), logger);
    expect(red.kind).toBe("redis");
    expect(red.checkpointer).toBeInstanceOf(RedisSaver);
    const key = `k-${randomUUID()}`;
    expect(await red.claimEvent(key, 5)).toBe(true);
    await red.close();
  });

  it("createStore fails with the address (password hidden) when Redis is unreachable", async () => {
    const logger = createLogger("silent");
    const down = await startRedisServer();
    const url = `redis://:s3cret@127.0.0.1:${down.port}`;
    await down.stop();
    const error = await createStore(Config.parse({ redis: { url, prefix } }), logger).then(
      () => new Error("createStore succeeded"),
      (err: Error) => err,
    );
    expect(error.message).toMatch(/not reachable/);
    expect(error.message).toContain(`127.0.0.1:${down.port}`);
    expect(error.message).not.toContain("s3cret");
  });
});
