import type { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import type { Logger } from "../logger.js";
import { decodeModel, decodeThread, isModelName, modelsOf, stampModel } from "./entries.js";
import { RedisKeys } from "./keys.js";
import { HeldLease } from "./lease.js";
import { RedisSaver } from "./redis-checkpointer.js";
import { isFencedReply, scriptsFor, type Scripts } from "./scripts.js";
import {
  EventTtl,
  LeaseTtl,
  StaleLeaseError,
  parseThreadMeta,
  type ConversationStore,
  type Lease,
  type LeaseOptions,
  type ModelEntry,
  type ModelEntryInput,
  type PutThreadOptions,
  type ThreadMeta,
  type ThreadMetaInput,
} from "./types.js";

export interface RedisStoreOptions {
  /** Prefix of every key (config.redis.prefix). */
  prefix?: string;
  /** Finished conversations expire after this many seconds (0 keeps them). */
  finishedTtlS?: number;
  /** Close the client with the store (true when the store made it). */
  ownsClient?: boolean;
  logger?: Logger;
}

// Fence counters outlive leases by far; this only bounds how long a forgotten key's counter stays.
const MIN_FENCE_TTL_S = 24 * 3600;
const MGET_BATCH = 200;

/** Conversation state in Redis, shared by every replica that connects to the same server and prefix. */
export class RedisStore implements ConversationStore {
  readonly kind = "redis";
  readonly checkpointer: RedisSaver;
  private readonly keys: RedisKeys;
  private readonly scripts: Scripts;
  private readonly finishedTtlS: number;

  constructor(
    readonly client: Redis,
    private readonly options: RedisStoreOptions = {},
  ) {
    this.keys = new RedisKeys(options.prefix ?? "threadml");
    this.scripts = scriptsFor(client);
    this.finishedTtlS = options.finishedTtlS ?? 0;
    this.checkpointer = new RedisSaver(client, { prefix: this.keys.prefix });
  }

  async claimEvent(eventId: string, ttlS: number): Promise<boolean> {
    EventTtl.parse(ttlS);
    return (await this.client.set(this.keys.event(eventId), "1", "EX", ttlS, "NX")) === "OK";
  }

  async getThread(key: string): Promise<ThreadMeta | null> {
    const text = await this.client.get(this.keys.thread(key));
    return text === null ? null : decodeThread(key, text);
  }

  async putThread(key: string, meta: ThreadMetaInput, options: PutThreadOptions = {}): Promise<ThreadMeta> {
    const parsed = parseThreadMeta(key, { ...meta, updatedAt: Date.now() });
    const finished = parsed.status === "finished";
    try {
      await this.scripts.threadPut(
        this.keys.thread(key),
        this.keys.threadsAll,
        this.keys.threadsActive,
        this.keys.fence(key),
        key,
        JSON.stringify(parsed),
        finished ? this.finishedTtlS : 0,
        finished ? "0" : "1",
        options.fence === undefined ? "" : String(options.fence),
      );
    } catch (err) {
      if (isFencedReply(err) && options.fence !== undefined) throw new StaleLeaseError(key, options.fence);
      throw err;
    }
    return parsed;
  }

  async listThreads(filter: { active?: boolean } = {}): Promise<ThreadMeta[]> {
    const index = filter.active ? this.keys.threadsActive : this.keys.threadsAll;
    const result: ThreadMeta[] = [];
    // A missing one expired (a finished conversation's TTL).
    for await (const [key, text] of this.indexed(index, (k) => this.keys.thread(k))) {
      try {
        const meta = decodeThread(key, text);
        if (!filter.active || meta.status !== "finished") result.push(meta);
      } catch (err) {
        this.options.logger?.warn({ thread: key, err }, "skipping unreadable conversation metadata");
      }
    }
    return result;
  }

  async deleteThread(key: string): Promise<void> {
    await this.client
      .multi()
      .del(this.keys.thread(key))
      .srem(this.keys.threadsAll, key)
      .srem(this.keys.threadsActive, key)
      .exec();
  }

  async expireCheckpoints(graphThreadId: string): Promise<void> {
    if (this.finishedTtlS > 0) await this.checkpointer.expireThread(graphThreadId, this.finishedTtlS);
  }

  async putModel(entry: ModelEntryInput, options: { onlyNew?: boolean } = {}): Promise<ModelEntry | null> {
    const parsed = stampModel(entry);
    const written = await this.scripts.modelPut(this.keys.model(parsed.name), this.keys.models, parsed.name, JSON.stringify(parsed), options.onlyNew ? "1" : "0");
    return written === 1 ? parsed : null;
  }

  async getModel(name: string): Promise<ModelEntry | null> {
    if (!isModelName(name)) return null;
    const text = await this.client.get(this.keys.model(name));
    return text === null ? null : decodeModel(name, text);
  }

  async listModels(filter: { thread?: string } = {}): Promise<ModelEntry[]> {
    const result: ModelEntry[] = [];
    // A missing one was deleted since the index was read, or removed by hand.
    for await (const [name, text] of this.indexed(this.keys.models, (n) => this.keys.model(n))) {
      try {
        result.push(decodeModel(name, text));
      } catch (err) {
        this.options.logger?.warn({ model: name, err }, "skipping an unreadable registry entry");
      }
    }
    return modelsOf(result, filter);
  }

  async deleteModel(name: string): Promise<void> {
    await this.client.multi().del(this.keys.model(name)).srem(this.keys.models, name).exec();
  }

  async acquireLease(key: string, ttlMs: number, options: LeaseOptions = {}): Promise<Lease | null> {
    LeaseTtl.parse(ttlMs);
    const owner = randomUUID();
    const leaseKey = this.keys.lease(key);
    const fenceTtlS = this.finishedTtlS > 0 ? Math.max(this.finishedTtlS, MIN_FENCE_TTL_S) : 0;
    const reply = await this.scripts.leaseAcquire(leaseKey, this.keys.fence(key), owner, ttlMs, fenceTtlS);
    if (reply === null) return null;
    const token = Number(String(reply));
    return new HeldLease(
      key,
      token,
      ttlMs,
      {
        renew: async () => (await this.scripts.leaseRenew(leaseKey, owner, ttlMs)) === 1,
        release: async () => {
          await this.scripts.leaseRelease(leaseKey, owner);
        },
      },
      options.autoRenew ?? true,
    );
  }

  async checkFence(key: string, token: number): Promise<boolean> {
    return (await this.client.get(this.keys.fence(key))) === String(token);
  }

  /**
   * The members of an index set with their stored text, read in MGET batches. Members whose key is
   * gone are dropped from the index (unless the key came back meanwhile) and skipped.
   */
  private async *indexed(index: string, keyOf: (member: string) => string): AsyncGenerator<[string, string]> {
    const members = (await this.client.smembers(index)).sort();
    for (let i = 0; i < members.length; i += MGET_BATCH) {
      const batch = members.slice(i, i + MGET_BATCH);
      const texts = await this.client.mget(batch.map(keyOf));
      for (const [j, text] of texts.entries()) {
        if (text !== null) yield [batch[j], text];
        else {
          this.options.logger?.debug({ index, member: batch[j] }, "skipping an index entry whose key is gone");
          await this.scripts.forgetIfMissing(index, keyOf(batch[j]), batch[j]);
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.options.ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }
}
