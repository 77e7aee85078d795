import { JsonPlusSerializer, MemorySaver, type CheckpointListOptions, type CheckpointTuple, type SerializerProtocol } from "@langchain/langgraph-checkpoint";
import type { Checkpoint, CheckpointMetadata, PendingWrite } from "@langchain/langgraph-checkpoint";
import type { RunnableConfig } from "@langchain/core/runnables";
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { jsonFileIds, jsonFileName, readFileState, removeFile, removeIfUnchanged, writeAtomic } from "./files.js";
import { CorruptEntryError } from "./types.js";

// One file per graph thread: `<dir>/<encodeURIComponent(threadId)>.json`. It holds, per checkpoint
// namespace, only the LATEST checkpoint and the pending writes made against it. That is all a later
// process needs: resuming (`invoke(new Command({ resume }))`) and `getState` read the latest
// checkpoint of each namespace and its pending writes (the interrupt, and what finished tasks of the
// interrupted step wrote); older checkpoints only serve history and time travel, which ThreadML does
// not use. The file stays one checkpoint per namespace however long the conversation runs.
// LangGraph may save a step's writes before the checkpoint they belong to (checkpoints are put in the
// background), so writes against a checkpoint newer than the latest one are kept too.

const StoredWrite = z.tuple([z.string(), z.number().int(), z.string(), z.string(), z.string()]); // task, idx, channel, value, path
const StoredFile = z.object({
  v: z.literal(1),
  threadId: z.string(),
  /** Milliseconds since the epoch after which the file is removed (a finished conversation's). */
  expiresAt: z.number().int().optional(),
  /** The latest checkpoint of each namespace; values are the serializer's bytes, base64. */
  checkpoints: z.array(z.object({ ns: z.string(), id: z.string().min(1), parent: z.string().optional(), checkpoint: z.string(), metadata: z.string() })),
  /** Pending writes, by the checkpoint they were made against. */
  writes: z.array(z.object({ ns: z.string(), id: z.string().min(1), writes: z.array(StoredWrite) })),
});
type StoredFile = z.infer<typeof StoredFile>;
type StoredWrite = z.infer<typeof StoredWrite>;
// Keys MemorySaver refuses (they would reach Object.prototype); such ids are left to it to reject.
const RESERVED = new Set(["__proto__", "constructor", "prototype"]);
const usableId = (id: unknown): id is string => typeof id === "string" && id !== "" && !RESERVED.has(id);

// Stored values never change once saved, and a thread's file is rewritten on every step: encode each once.
const encoded = new WeakMap<Uint8Array, string>();
function b64(value: Uint8Array): string {
  let text = encoded.get(value);
  if (text === undefined) encoded.set(value, (text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64")));
  return text;
}
function bytes(text: string): Uint8Array {
  const value = new Uint8Array(Buffer.from(text, "base64"));
  encoded.set(value, text);
  return value;
}
// MemorySaver's key of the writes against one checkpoint.
const writesKey = (threadId: string, ns: string, id: string) => JSON.stringify([threadId, ns, id]);

// MemorySaver keeps only the serializer's bytes and reads every value back as "json", which breaks
// values the serializer types otherwise (a raw Uint8Array write is "bytes"). Those travel in a JSON
// envelope instead, so they come back as they went in.
const ENVELOPE = "threadml:typed";
const ENVELOPE_START = Buffer.from(`{"${ENVELOPE}":`);
const Envelope = z.object({ [ENVELOPE]: z.string(), data: z.string() });

class EnvelopeSerde implements SerializerProtocol {
  constructor(private readonly inner: SerializerProtocol) {}

  async dumpsTyped(data: unknown): Promise<[string, Uint8Array]> {
    const [type, raw] = await this.inner.dumpsTyped(data);
    if (type === "json") return [type, raw];
    return ["json", new Uint8Array(Buffer.from(JSON.stringify({ [ENVELOPE]: type, data: b64(raw) })))];
  }

  async loadsTyped(type: string, data: Uint8Array | string): Promise<unknown> {
    const raw = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (type !== "json" || !raw.subarray(0, ENVELOPE_START.length).equals(ENVELOPE_START)) return this.inner.loadsTyped(type, data);
    const envelope = Envelope.parse(JSON.parse(raw.toString("utf8")));
    return this.inner.loadsTyped(envelope[ENVELOPE], bytes(envelope.data));
  }
}

/**
 * A LangGraph checkpointer kept in files, so that a conversation paused at a question or a plan card
 * in one process is resumed by the next (consecutive CLI runs, a restarted bot). MemorySaver does the
 * checkpoint logic; this class loads a thread's file before touching that thread (again whenever
 * another process replaced it) and writes the thread back after every put and putWrites.
 */
export class FileSaver extends MemorySaver {
  // The signature of each thread's file as last read or written here; a different one means reload.
  private readonly seen = new Map<string, string>();
  private readonly expiry = new Map<string, number>();
  // Threads changed in memory and not yet written: never reloaded over, their pending save wins.
  private readonly dirty = new Set<string>();
  // Operations on one thread run one at a time, in call order: a load must not interleave with a write.
  private readonly queues = new Map<string, Promise<void>>();
  // A thread's save that is queued and not yet started; later changes join it rather than queue another.
  private readonly saves = new Map<string, Promise<void>>();

  constructor(
    readonly dir: string,
    serde?: SerializerProtocol,
  ) {
    super(new EnvelopeSerde(serde ?? new JsonPlusSerializer()));
  }

  fileOf(threadId: string): string {
    return join(this.dir, jsonFileName("graph thread id", threadId));
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    return this.withThread(config.configurable?.thread_id, () => super.getTuple(config));
  }

  override async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    const threadId: unknown = config.configurable?.thread_id;
    if (threadId !== undefined) await this.withThread(threadId, async () => {});
    else for (const id of await this.threadIds()) await this.withThread(id, async () => {});
    yield* super.list(config, options);
  }

  // Both resolve once the change is on disk. LangGraph issues them without waiting (a step's writes,
  // then checkpoints in the background), so changes queued together share one file write.
  override async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata): Promise<RunnableConfig> {
    const threadId: unknown = config.configurable?.thread_id;
    const result = await this.withThread(threadId, () => super.put(config, checkpoint, metadata));
    await this.changed(threadId as string, null);
    return result;
  }

  override async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const threadId: unknown = config.configurable?.thread_id;
    await this.withThread(threadId, () => super.putWrites(config, writes, taskId, taskPath));
    await this.changed(threadId as string, null);
  }

  override async deleteThread(threadId: string): Promise<void> {
    await this.exclusive(threadId, async () => {
      await super.deleteThread(threadId);
      this.forget(threadId);
      await removeFile(this.fileOf(threadId));
    });
  }

  /** Resolves once every change made so far is on disk (for a process about to exit). */
  async flush(): Promise<void> {
    await Promise.all([...this.queues.values()]);
  }

  /**
   * Delta channels rebuild their value from the chain of earlier checkpoints, which this saver does not
   * keep; ThreadML's graphs have none.
   */
  override async getDeltaChannelHistory(options: { config: RunnableConfig; channels: string[] }) {
    if (options.channels.length === 0) return {};
    throw new Error(`FileSaver keeps only the latest checkpoint, so it cannot replay the delta channels ${options.channels.join(", ")}`);
  }

  /** Removes the thread's file after `ttlS` seconds, unless a later write comes first. */
  async expireThread(threadId: string, ttlS: number): Promise<void> {
    const known = await this.withThread(threadId, async () => this.storage[threadId] !== undefined);
    if (known) await this.changed(threadId, Date.now() + ttlS * 1000);
  }

  /**
   * Deletes the files whose expiry has passed, reading only those not written for `olderThanMs` (an
   * expiring file was last written when its expiry was set, so younger ones cannot have expired yet if
   * every expiry is at least that long).
   */
  async sweepExpired(olderThanMs: number): Promise<number> {
    let removed = 0;
    for (const threadId of await this.threadIds()) {
      const path = this.fileOf(threadId);
      const info = await lstat(path).catch(() => null);
      if (!info?.isFile() || info.mtimeMs > Date.now() - olderThanMs) continue;
      await this.exclusive(threadId, async () => {
        const state = await readFileState(path);
        if (!state?.text) return;
        let expiresAt: number | undefined;
        try {
          expiresAt = this.parse(threadId, state.text).expiresAt;
        } catch {
          return; // unreadable: left for whoever reads the thread to report
        }
        if (expiresAt === undefined || expiresAt > Date.now()) return;
        await removeIfUnchanged(path, state.signature);
        removed += 1;
      });
    }
    return removed;
  }

  // ------------------------------------------------------------------------------------ internals

  /** Loads the thread (when it has a usable id) and runs `fn` in the thread's queue. */
  private withThread<T>(threadId: unknown, fn: () => Promise<T>): Promise<T> {
    if (!usableId(threadId)) return fn(); // MemorySaver raises its own error for a missing or unsafe id
    return this.exclusive(threadId, async () => {
      await this.load(threadId);
      return fn();
    });
  }

  private exclusive<T>(threadId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(threadId) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.queues.set(threadId, tail);
    void tail.then(() => {
      if (this.queues.get(threadId) === tail) this.queues.delete(threadId);
    });
    return run;
  }

  private async threadIds(): Promise<string[]> {
    return (await jsonFileIds(this.dir)).filter(usableId);
  }

  private forget(threadId: string): void {
    delete this.storage[threadId];
    for (const key of Object.keys(this.writes)) if ((JSON.parse(key) as string[])[0] === threadId) delete this.writes[key];
    this.seen.delete(threadId);
    this.expiry.delete(threadId);
    this.dirty.delete(threadId);
  }

  // Records a change made in memory (`expiresAt` null: a write, which cancels a pending expiry) and
  // resolves once a save that started after it is done.
  private changed(threadId: string, expiresAt: number | null): Promise<void> {
    if (expiresAt === null) this.expiry.delete(threadId);
    else this.expiry.set(threadId, expiresAt);
    this.dirty.add(threadId);
    const queued = this.saves.get(threadId);
    if (queued) return queued;
    const save = this.exclusive(threadId, async () => {
      this.saves.delete(threadId);
      if (this.dirty.has(threadId)) await this.save(threadId);
    });
    this.saves.set(threadId, save);
    return save;
  }

  private parse(threadId: string, text: string): StoredFile {
    const where = `checkpoints of graph thread ${threadId}`;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new CorruptEntryError(where, `not JSON (${(err as Error).message})`);
    }
    const parsed = StoredFile.safeParse(data);
    if (!parsed.success) throw new CorruptEntryError(where, parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; "));
    if (parsed.data.threadId !== threadId) throw new CorruptEntryError(where, `the file is for ${parsed.data.threadId}`);
    return parsed.data;
  }

  // Brings the thread in memory up to its file: unchanged since last seen → nothing; replaced or
  // removed by another process → reloaded or dropped; expired → removed.
  private async load(threadId: string): Promise<void> {
    if (this.dirty.has(threadId)) return;
    const path = this.fileOf(threadId);
    const state = await readFileState(path, this.seen.get(threadId));
    if (state === null) {
      if (this.seen.has(threadId)) this.forget(threadId);
      return;
    }
    if (state.text !== null) {
      const stored = this.parse(threadId, state.text);
      this.forget(threadId);
      const namespaces: MemorySaver["storage"][string] = Object.create(null);
      for (const c of stored.checkpoints) {
        namespaces[c.ns] ??= Object.create(null);
        namespaces[c.ns][c.id] = [bytes(c.checkpoint), bytes(c.metadata), c.parent];
      }
      this.storage[threadId] = namespaces;
      for (const group of stored.writes) {
        const writes: MemorySaver["writes"][string] = Object.create(null);
        for (const [task, idx, channel, value, taskPath] of group.writes) writes[`${task},${idx}`] = [task, channel, bytes(value), taskPath];
        this.writes[writesKey(threadId, group.ns, group.id)] = writes;
      }
      this.seen.set(threadId, state.signature);
      if (stored.expiresAt !== undefined) this.expiry.set(threadId, stored.expiresAt);
    }
    const expiresAt = this.expiry.get(threadId);
    if (expiresAt !== undefined && expiresAt <= Date.now()) {
      this.forget(threadId);
      await removeIfUnchanged(path, state.signature);
    }
  }

  // Keeps the latest checkpoint per namespace (in memory too, so this process sees what the next one
  // will) and writes the thread's file.
  private async save(threadId: string): Promise<void> {
    const file: StoredFile = { v: 1, threadId, checkpoints: [], writes: [] };
    const latest = new Map<string, string>();
    for (const [ns, checkpoints] of Object.entries(this.storage[threadId] ?? {})) {
      const ids = Object.keys(checkpoints).sort();
      const id = ids.pop();
      for (const older of ids) delete checkpoints[older];
      if (id === undefined) continue;
      latest.set(ns, id);
      const [checkpoint, metadata, parent] = checkpoints[id];
      file.checkpoints.push({ ns, id, ...(parent === undefined ? {} : { parent }), checkpoint: b64(checkpoint), metadata: b64(metadata) });
    }
    for (const key of Object.keys(this.writes)) {
      const [owner, ns, id] = JSON.parse(key) as [string, unknown, string];
      if (owner !== threadId) continue;
      const newest = typeof ns === "string" ? latest.get(ns) : undefined;
      // Writes against an older checkpoint were consumed by the one that followed; writes without a
      // namespace are never read back (MemorySaver looks them up under "").
      if (typeof ns !== "string" || (newest !== undefined && id < newest)) {
        delete this.writes[key];
        continue;
      }
      const writes = Object.entries(this.writes[key]).map(([inner, [task, channel, value, taskPath]]) => {
        const idx = Number(inner.slice(inner.lastIndexOf(",") + 1));
        return [task, idx, channel, b64(value), taskPath ?? ""] as StoredWrite;
      });
      file.writes.push({ ns, id, writes });
    }

    const expiresAt = this.expiry.get(threadId);
    if (expiresAt !== undefined) file.expiresAt = expiresAt;
    this.dirty.delete(threadId);
    try {
      this.seen.set(threadId, await writeAtomic(this.fileOf(threadId), JSON.stringify(file)));
    } catch (err) {
      this.dirty.add(threadId);
      throw err;
    }
  }
}
