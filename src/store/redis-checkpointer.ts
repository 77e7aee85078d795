import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  compareWritesSortKeys,
  getCheckpointId,
  maxChannelVersion,
  writesSortKey,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { Redis } from "ioredis";
import isEqual from "lodash-es/isEqual.js";
import { z } from "zod";
import { RedisKeys, blobField, channelOfBlobField, writeField } from "./keys.js";
import { isFencedReply, scriptsFor, type Scripts } from "./scripts.js";
import { CorruptEntryError, StaleLeaseError } from "./types.js";

/**
 * `configurable` entry that fences this saver's writes: `{ key, token }` of the conversation lease
 * the caller holds (ConversationStore.acquireLease on the same Redis and prefix). A put or putWrites
 * made after a newer holder took the lease fails with StaleLeaseError, so a paused replica cannot
 * overwrite the conversation another replica carried on.
 */
export const FENCE_CONFIGURABLE = "threadml_fence";
const Fence = z.object({ key: z.string().min(1), token: z.number().int() });

export interface RedisSaverOptions {
  /** Key prefix (config.redis.prefix); checkpoint keys live under `<prefix>:cp…`. */
  prefix?: string;
  serde?: SerializerProtocol;
}

// Stored values are a one-line JSON header and the serializer's bytes: `{"t":"json",…}\n<bytes>`.
const TypedHeader = z.object({ t: z.string() });
const WriteHeader = z.object({ t: z.string(), c: z.string(), k: z.string(), i: z.number().int(), p: z.string() });
const EMPTY = "empty";
const NEWLINE = 0x0a;
const PAGE = 32;

function pack(header: object, data: Uint8Array = new Uint8Array()): Buffer {
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), data]);
}

function unpack<T>(schema: z.ZodType<T>, raw: Buffer, where: string): { header: T; data: Buffer } {
  const nl = raw.indexOf(NEWLINE);
  if (nl < 0) throw new CorruptEntryError(where, "no header line");
  let json: unknown;
  try {
    json = JSON.parse(raw.subarray(0, nl).toString("utf8"));
  } catch (err) {
    throw new CorruptEntryError(where, `header is not JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new CorruptEntryError(where, parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  return { header: parsed.data, data: raw.subarray(nl + 1) };
}

const str = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString("utf8") : String(value ?? ""));

type Reply = [Buffer, Buffer, Buffer, Buffer, Array<Buffer | null>, Buffer[]];

interface StoredWrite {
  taskId: string;
  channel: string;
  type: string;
  data: Buffer;
  sortKey: ReturnType<typeof writesSortKey>;
}

function threadIdOf(config: RunnableConfig): string | undefined {
  const id: unknown = config.configurable?.thread_id;
  if (id === undefined || id === null || id === "") return undefined;
  if (typeof id !== "string" && typeof id !== "number") throw new Error(`thread_id must be a string, got ${typeof id}`);
  return String(id);
}

/**
 * LangGraph checkpoint saver on plain Redis (6 or newer; no modules). Per thread: a sorted set of
 * checkpoint ids per namespace, one hash per checkpoint and per checkpoint's writes, channel values
 * stored once per version, and a set naming every key of the thread, so that listing, deleting and
 * expiring never scan the keyspace. Every write is one Lua script, so it lands whole or not at all.
 */
export class RedisSaver extends BaseCheckpointSaver {
  readonly keys: RedisKeys;
  private readonly scripts: Scripts;

  constructor(
    readonly client: Redis,
    options: RedisSaverOptions = {},
  ) {
    super(options.serde);
    this.keys = new RedisKeys(options.prefix ?? "threadml");
    this.scripts = scriptsFor(client);
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) return undefined;
    const ns: string = config.configurable?.checkpoint_ns ?? "";
    let checkpointId = getCheckpointId(config);
    if (!checkpointId) {
      const [latest] = await this.client.zrevrangebylex(this.keys.cpIds(threadId, ns), "+", "-", "LIMIT", 0, 1);
      if (latest === undefined) return undefined;
      checkpointId = latest;
    }
    return this.load(threadId, ns, checkpointId);
  }

  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const { before, filter } = options;
    let remaining = options.limit ?? Infinity;
    if (remaining <= 0) return;
    const beforeId: string | undefined = before?.configurable?.checkpoint_id;
    const onlyId: string | undefined = config.configurable?.checkpoint_id;
    const ns: string | undefined = config.configurable?.checkpoint_ns;
    const given = threadIdOf(config);
    const threadIds = given !== undefined ? [given] : (await this.client.smembers(this.keys.cpThreads)).sort();

    for (const threadId of threadIds) {
      if (given === undefined && (await this.scripts.forgetIfMissing(this.keys.cpThreads, this.keys.cpKeys(threadId), threadId)) === 1) continue;
      const namespaces = ns !== undefined ? [ns] : await this.client.smembers(this.keys.cpNamespaces(threadId));
      const ids = this.newestFirst(threadId, namespaces, beforeId, onlyId);
      // Load a page at a time (pipelined); without a filter, never more than the limit still wants.
      for (;;) {
        const page: Array<{ ns: string; id: string }> = [];
        const want = filter ? PAGE : Math.min(PAGE, remaining);
        while (page.length < want) {
          const next = await ids.next();
          if (next.done) break;
          page.push(next.value);
        }
        if (page.length === 0) break;
        const tuples = await Promise.all(page.map(({ ns: n, id }) => this.load(threadId, n, id)));
        for (const tuple of tuples) {
          if (!tuple) continue; // deleted or expired since the ids were read
          if (filter && !Object.entries(filter).every(([k, v]) => isEqual((tuple.metadata as Record<string, unknown> | undefined)?.[k], v))) continue;
          yield tuple;
          remaining -= 1;
          if (remaining <= 0) return;
        }
      }
    }
  }

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) throw new Error('RedisSaver.put: config.configurable.thread_id is required');
    const ns: string = config.configurable?.checkpoint_ns ?? "";
    const parentId: string = config.configurable?.checkpoint_id ?? "";
    // Channel values are stored once per version beside the checkpoint, not inside it.
    const { channel_values, ...rest } = checkpoint;
    const values: Record<string, unknown> = channel_values ?? {};
    const [[cpType, cpData], [metaType, metaData]] = await Promise.all([
      this.serde.dumpsTyped({ ...rest, channel_values: {} }),
      this.serde.dumpsTyped(metadata),
    ]);
    const blobArgs: Buffer[] = [];
    for (const [channel, version] of Object.entries(newVersions)) {
      const value = values[channel];
      let packed = pack({ t: EMPTY });
      if (value !== undefined) {
        const [type, data] = await this.serde.dumpsTyped(value);
        packed = pack({ t: type }, data);
      }
      blobArgs.push(Buffer.from(blobField(channel, version)), packed);
    }
    const reads = Object.entries(checkpoint.channel_versions).map(([channel, version]) => blobField(channel, version));
    const fence = this.fence(config);
    await this.fenced(fence, () =>
      this.scripts.cpPut(
        this.keys.cpThreads,
        this.keys.cpKeys(threadId),
        this.keys.cpNamespaces(threadId),
        this.keys.cpIds(threadId, ns),
        this.keys.cpCheckpoint(threadId, ns, checkpoint.id),
        this.keys.cpBlobs(threadId, ns),
        this.keys.fence(fence?.key ?? threadId),
        threadId,
        ns,
        checkpoint.id,
        fence ? String(fence.token) : "",
        pack({ t: cpType }, cpData),
        pack({ t: metaType }, metaData),
        parentId,
        reads.join("\n"),
        ...blobArgs,
      ),
    );
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) throw new Error("RedisSaver.putWrites: config.configurable.thread_id is required");
    const checkpointId: string | undefined = config.configurable?.checkpoint_id;
    if (!checkpointId) throw new Error("RedisSaver.putWrites: config.configurable.checkpoint_id is required");
    const ns: string = config.configurable?.checkpoint_ns ?? "";
    const args: Buffer[] = [];
    for (const [idx, [channel, value]] of writes.entries()) {
      // Special channels (errors, interrupts…) have fixed negative indexes and replace earlier ones;
      // ordinary writes keep the first value stored, so a retried task does not change history.
      const i = channel in WRITES_IDX_MAP ? WRITES_IDX_MAP[channel] : idx;
      const [type, data] = await this.serde.dumpsTyped(value);
      args.push(
        Buffer.from(writeField(taskId, i)),
        pack({ t: type, c: channel, k: taskId, i, p: taskPath ?? "" }, data),
        Buffer.from(i >= 0 ? "keep" : "set"),
      );
    }
    if (args.length === 0) return;
    const fence = this.fence(config);
    await this.fenced(fence, () =>
      this.scripts.cpPutWrites(
        this.keys.cpKeys(threadId),
        this.keys.cpWrites(threadId, ns, checkpointId),
        this.keys.fence(fence?.key ?? threadId),
        fence ? String(fence.token) : "",
        ...args,
      ),
    );
  }

  async deleteThread(threadId: string): Promise<void> {
    await this.scripts.cpDeleteThread(this.keys.cpThreads, this.keys.cpKeys(threadId), threadId);
  }

  /**
   * Lets every key of the thread expire after `ttlS` seconds (for finished conversations). Writing
   * to the thread again before then removes the expiry.
   */
  async expireThread(threadId: string, ttlS: number): Promise<void> {
    if (!Number.isInteger(ttlS) || ttlS <= 0) throw new Error(`expireThread: ttlS must be a positive whole number of seconds, got ${ttlS}`);
    await this.scripts.cpExpireThread(this.keys.cpKeys(threadId), ttlS);
  }

  // ---------------------------------------------------------------------------------------------

  private fence(config: RunnableConfig): z.infer<typeof Fence> | undefined {
    const raw: unknown = config.configurable?.[FENCE_CONFIGURABLE];
    if (raw === undefined) return undefined;
    const parsed = Fence.safeParse(raw);
    if (!parsed.success) throw new Error(`configurable.${FENCE_CONFIGURABLE} must be { key: string, token: integer }`);
    return parsed.data;
  }

  private async fenced(fence: z.infer<typeof Fence> | undefined, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (fence && isFencedReply(err)) throw new StaleLeaseError(fence.key, fence.token);
      throw err;
    }
  }

  /** Checkpoint ids of the thread's namespaces, merged newest first, read a page at a time. */
  private async *newestFirst(threadId: string, namespaces: string[], beforeId?: string, onlyId?: string): AsyncGenerator<{ ns: string; id: string }> {
    const cursors = namespaces.map((ns) => ({ ns, max: beforeId === undefined ? "+" : `(${beforeId}`, buffer: [] as string[], done: false }));
    const fill = async (cursor: (typeof cursors)[number]) => {
      if (cursor.buffer.length > 0 || cursor.done) return;
      const key = this.keys.cpIds(threadId, cursor.ns);
      if (onlyId !== undefined) {
        cursor.done = true;
        const inRange = beforeId === undefined || onlyId < beforeId;
        if (inRange && (await this.client.zscore(key, onlyId)) !== null) cursor.buffer.push(onlyId);
        return;
      }
      const ids = await this.client.zrevrangebylex(key, cursor.max, "-", "LIMIT", 0, PAGE);
      if (ids.length < PAGE) cursor.done = true;
      if (ids.length > 0) cursor.max = `(${ids[ids.length - 1]}`;
      cursor.buffer.push(...ids);
    };
    for (;;) {
      await Promise.all(cursors.map(fill));
      let best: (typeof cursors)[number] | undefined;
      for (const cursor of cursors) if (cursor.buffer.length > 0 && (!best || cursor.buffer[0] > best.buffer[0])) best = cursor;
      if (!best) return;
      yield { ns: best.ns, id: best.buffer.shift() as string };
    }
  }

  /** One checkpoint with its channel values and pending writes, read in one script call. */
  private async load(threadId: string, ns: string, checkpointId: string): Promise<CheckpointTuple | undefined> {
    const where = `${threadId}/${ns}/${checkpointId}`;
    const reply = (await this.scripts.cpGet(
      this.keys.cpCheckpoint(threadId, ns, checkpointId),
      this.keys.cpWrites(threadId, ns, checkpointId),
      this.keys.cpBlobs(threadId, ns),
    )) as Reply | null;
    if (!reply) return undefined;
    const [rawCheckpoint, rawMetadata, rawParent, rawFields, blobs, rawWrites] = reply;
    const cp = unpack(TypedHeader, rawCheckpoint, `${where} checkpoint`);
    const meta = unpack(TypedHeader, rawMetadata, `${where} metadata`);
    const checkpoint = (await this.serde.loadsTyped(cp.header.t, cp.data)) as Checkpoint;
    const metadata = (await this.serde.loadsTyped(meta.header.t, meta.data)) as CheckpointMetadata;

    const values: Record<string, unknown> = {};
    const fields = str(rawFields).split("\n").filter(Boolean);
    for (const [i, field] of fields.entries()) {
      const blob = blobs[i];
      if (!blob) continue;
      const { header, data } = unpack(TypedHeader, blob, `${where} value ${field}`);
      if (header.t !== EMPTY) values[channelOfBlobField(field)] = await this.serde.loadsTyped(header.t, data);
    }
    checkpoint.channel_values = values;

    const parentId = str(rawParent);
    if (checkpoint.v < 4 && parentId) await this.migratePendingSends(checkpoint, threadId, ns, parentId);

    const pendingWrites: CheckpointPendingWrite[] = await Promise.all(
      this.sortWrites(rawWrites, where).map(async (w) => [w.taskId, w.channel, await this.serde.loadsTyped(w.type, w.data)] as CheckpointPendingWrite),
    );
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpointId } },
      checkpoint,
      metadata,
      pendingWrites,
    };
    if (parentId) tuple.parentConfig = { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: parentId } };
    return tuple;
  }

  /** HGETALL reply of a writes hash, in the order live execution applies them. */
  private sortWrites(flat: Buffer[], where: string): StoredWrite[] {
    const writes: StoredWrite[] = [];
    for (let i = 1; i < flat.length; i += 2) {
      const { header, data } = unpack(WriteHeader, flat[i], `${where} write ${str(flat[i - 1])}`);
      writes.push({ taskId: header.k, channel: header.c, type: header.t, data, sortKey: writesSortKey(header.p, header.k, header.i) });
    }
    return writes.sort((a, b) => compareWritesSortKeys(a.sortKey, b.sortKey));
  }

  // Checkpoints before format 4 kept pending sends as writes on their parent; newer code reads them
  // from the TASKS channel.
  private async migratePendingSends(checkpoint: Checkpoint, threadId: string, ns: string, parentId: string): Promise<void> {
    const flat = await this.client.hgetallBuffer(this.keys.cpWrites(threadId, ns, parentId));
    const pairs = Object.entries(flat).flatMap(([field, value]) => [Buffer.from(field), value]);
    const sends = this.sortWrites(pairs, `${threadId}/${ns}/${parentId}`).filter((w) => w.channel === TASKS);
    const values = checkpoint.channel_values as Record<string, unknown>;
    values[TASKS] = await Promise.all(sends.map((w) => this.serde.loadsTyped(w.type, w.data)));
    const versions = Object.values(checkpoint.channel_versions);
    (checkpoint.channel_versions as ChannelVersions)[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }
}
