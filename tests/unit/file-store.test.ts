import { mkdirSync, readdirSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Config } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { CorruptEntryError, FileSaver, FileStore, MemoryStore, StaleLeaseError, createLocalStore } from "../../src/store/index.js";
import type { ThreadMetaInput } from "../../src/store/types.js";
import { modelEntry, registryCases, threadMeta as meta } from "../helpers/store.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("threadml-file-store-");
let folders = 0;
const freshDir = () => join(tmp.dir, `store-${++folders}`);

function recordingLogger() {
  const warnings: unknown[] = [];
  const logger = createLogger("silent");
  logger.warn = ((obj: unknown) => warnings.push(obj)) as typeof logger.warn;
  return { logger, warnings };
}

describe.each([
  // One process: every handle is the same store.
  ["memory", () => {
    const store = new MemoryStore();
    return async () => store;
  }],
  // Every handle is a new FileStore on the same folder, as another process would open it.
  ["file", () => {
    const dir = freshDir();
    return async () => new FileStore(dir);
  }],
] as const)("model registry (%s store)", (_kind, open) => {
  it.each(registryCases)("%s", async (_name, run) => {
    await run(open());
  });
});

describe("FileStore", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps conversations across instances on one folder (as separate processes would)", async () => {
    const dir = freshDir();
    const a = new FileStore(dir);
    const pending = { kind: "plans", plans: [{ id: "p1", title: "Random forest" }], note: "multi\nline “quoted”" };
    const stored = await a.putThread("slack:T1:C1:1", meta("slack:T1:C1:1", { status: "waiting", pending, futureField: 3 } as ThreadMetaInput));
    await a.putThread("slack:T1:C1:2", meta("slack:T1:C1:2"));
    await a.putThread("discord:G:C:3", meta("discord:G:C:3", { status: "finished" }));
    await a.close();

    const b = new FileStore(dir);
    expect(await b.getThread("slack:T1:C1:1")).toEqual(stored);
    expect(await b.getThread("slack:T1:C1:9")).toBeNull();
    expect((await b.listThreads()).map((m) => m.key)).toEqual(["discord:G:C:3", "slack:T1:C1:1", "slack:T1:C1:2"]);
    expect((await b.listThreads({ active: true })).map((m) => m.key)).toEqual(["slack:T1:C1:1", "slack:T1:C1:2"]);

    // A write by one instance is what the other reads next: nothing is cached.
    await b.putThread("slack:T1:C1:2", meta("slack:T1:C1:2", { status: "finished", generation: 1 }));
    expect(await a.getThread("slack:T1:C1:2")).toMatchObject({ status: "finished", generation: 1 });
    await a.deleteThread("slack:T1:C1:1");
    expect(await b.getThread("slack:T1:C1:1")).toBeNull();
    expect((await b.listThreads({ active: true })).map((m) => m.key)).toEqual([]);
    await a.deleteThread("slack:T1:C1:1");
  });

  it("lays files out privately, by encoded key, with no temporary files left behind", async () => {
    const dir = freshDir();
    const store = new FileStore(dir);
    const key = "../../escape/..\\x";
    await store.putThread(key, meta(key));
    await store.putThread(key, meta(key, { status: "waiting" }));
    await store.putModel(modelEntry({ name: "wine-rf" }));
    expect(readdirSync(dir).sort()).toEqual(["models", "threads"]);
    expect(readdirSync(join(dir, "threads"))).toEqual([`${encodeURIComponent(key)}.json`]);
    expect(readdirSync(join(dir, "models"))).toEqual(["wine-rf.json"]);
    expect(existsSync(join(tmp.dir, "escape"))).toBe(false);
    for (const sub of ["", "threads", "models"]) expect(statSync(join(dir, sub)).mode & 0o777, sub).toBe(0o700);
    expect(statSync(join(dir, "threads", `${encodeURIComponent(key)}.json`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "models", "wine-rf.json")).mode & 0o777).toBe(0o600);
    expect(await store.getThread(key)).toMatchObject({ key, status: "waiting" });
  });

  it("lets exactly one of two instances register a new name", async () => {
    const dir = freshDir();
    const [a, b] = [new FileStore(dir), new FileStore(dir)];
    const input = modelEntry();
    const results = await Promise.all([a.putModel({ ...input, createdBy: "A" }, { onlyNew: true }), b.putModel({ ...input, createdBy: "B" }, { onlyNew: true })]);
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    const winner = results.find((r) => r !== null)!;
    expect(await b.getModel(input.name)).toEqual(winner);
    expect(readdirSync(join(dir, "models"))).toEqual([`${input.name}.json`]);
  });

  it("skips unreadable files in listings with a warning, and names them when read", async () => {
    const dir = freshDir();
    const { logger, warnings } = recordingLogger();
    const store = new FileStore(dir, { logger });
    await store.putThread("good", meta("good"));
    const entry = modelEntry({ name: "good-model" });
    await store.putModel(entry);
    writeFileSync(join(dir, "threads", "bad.json"), "{not json");
    writeFileSync(join(dir, "threads", "other.json"), JSON.stringify({ ...meta("someone-else"), updatedAt: 1 }));
    writeFileSync(join(dir, "threads", "%E0%A4%A.json"), "{}");
    writeFileSync(join(dir, "models", "bad-model.json"), JSON.stringify({ ...entry, name: "bad-model", status: "paused", updatedAt: 1 }));
    writeFileSync(join(dir, "models", "not json.json"), "{}");

    expect((await store.listThreads()).map((m) => m.key)).toEqual(["good"]);
    expect((await store.listModels()).map((m) => m.name)).toEqual(["good-model"]);
    expect(warnings).toHaveLength(4); // bad, other, the undecodable name, bad-model; "not json" is not a model name

    await expect(store.getThread("bad")).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(store.getThread("bad")).rejects.toThrow(/conversation bad is unreadable: not JSON/);
    await expect(store.getThread("other")).rejects.toThrow(/metadata is for someone-else/);
    await expect(store.getModel("bad-model")).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(store.getModel("bad-model")).rejects.toThrow(/model bad-model.*status/);
  });

  it("forgets finished conversations after the finished TTL, removing their files", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: 1_700_000_000_000 });
    const dir = freshDir();
    const store = new FileStore(dir, { finishedTtlS: 60 });
    const keeps = new FileStore(dir, { finishedTtlS: 0 });
    await store.putThread("done", meta("done", { status: "finished" }));
    await store.putThread("reopened", meta("reopened", { status: "finished" }));
    await store.putThread("reopened", meta("reopened", { status: "running", generation: 1 }));
    await store.putThread("waiting", meta("waiting", { status: "waiting" }));

    vi.setSystemTime(1_700_000_000_000 + 59_000);
    expect(await store.getThread("done")).not.toBeNull();
    vi.setSystemTime(1_700_000_000_000 + 61_000);
    expect(await keeps.getThread("done")).not.toBeNull(); // a TTL of 0 keeps them
    expect((await store.listThreads()).map((m) => m.key)).toEqual(["reopened", "waiting"]);
    expect(await store.getThread("done")).toBeNull();
    expect(readdirSync(join(dir, "threads")).sort()).toEqual(["reopened.json", "waiting.json"]);
  });

  it("keeps event claims, leases and fences in the process, refusing a stale fenced write", async () => {
    const store = new FileStore(freshDir());
    expect(await store.claimEvent("evt-1", 60)).toBe(true);
    expect(await store.claimEvent("evt-1", 60)).toBe(false);
    const lease = await store.acquireLease("k", 10_000, { autoRenew: false });
    expect(await store.acquireLease("k", 10_000)).toBeNull();
    await store.putThread("k", meta("k"), { fence: lease!.token });
    await lease!.release();
    const next = await store.acquireLease("k", 10_000, { autoRenew: false });
    expect(next!.token).toBeGreaterThan(lease!.token);
    await expect(store.putThread("k", meta("k", { status: "finished" }), { fence: lease!.token })).rejects.toBeInstanceOf(StaleLeaseError);
    expect(await store.getThread("k")).toMatchObject({ status: "running" });
    await next!.release();
  });

  it("refuses a key too long for a file name with a message that says so", async () => {
    const store = new FileStore(freshDir());
    const key = "k".repeat(300);
    await expect(store.putThread(key, meta(key))).rejects.toThrow(/conversation key k+… is too long to be kept in a file/);
  });

  it("createLocalStore keeps state under <dataDir>/state with a file checkpointer", async () => {
    const cwd = freshDir();
    mkdirSync(cwd);
    const store = createLocalStore(Config.parse({ dataDir: "data" }), createLogger("silent"), cwd);
    expect(store.kind).toBe("file");
    expect(store.dir).toBe(join(cwd, "data", "state"));
    expect(store.checkpointer).toBeInstanceOf(FileSaver);
    expect((store.checkpointer as FileSaver).dir).toBe(join(cwd, "data", "state", "checkpoints"));
    await store.putModel(modelEntry({ name: "local-one" }));
    expect(readdirSync(join(cwd, "data", "state", "models"))).toEqual(["local-one.json"]);
  });
});
