import { MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph";
import { randomUUID } from "node:crypto";
import { isModelName, modelsOf, stampModel } from "./entries.js";
import { HeldLease } from "./lease.js";
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

export interface MemoryStoreOptions {
  /** Finished conversations are forgotten after this many seconds (0 keeps them). */
  finishedTtlS?: number;
  checkpointer?: BaseCheckpointSaver;
}

/**
 * The conversation store of a single process (the default without Redis): the same semantics as the
 * Redis store, with nothing surviving a restart.
 */
export class MemoryStore implements ConversationStore {
  readonly kind = "memory";
  readonly checkpointer: BaseCheckpointSaver;
  private readonly finishedTtlMs: number;
  // Insertion order is expiry order for events claimed with the same TTL, so pruning stops early.
  private readonly events = new Map<string, number>();
  private readonly threads = new Map<string, { meta: ThreadMeta; expiresAt: number }>();
  private readonly leases = new Map<string, { owner: string; expiresAt: number }>();
  private readonly fences = new Map<string, number>();
  private readonly models = new Map<string, ModelEntry>();

  constructor(options: MemoryStoreOptions = {}) {
    this.finishedTtlMs = (options.finishedTtlS ?? 0) * 1000;
    this.checkpointer = options.checkpointer ?? new MemorySaver();
  }

  async claimEvent(eventId: string, ttlS: number): Promise<boolean> {
    EventTtl.parse(ttlS);
    const now = Date.now();
    for (const [id, expiresAt] of this.events) {
      if (expiresAt > now) break;
      this.events.delete(id);
    }
    const expiresAt = this.events.get(eventId);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.events.delete(eventId);
    this.events.set(eventId, now + ttlS * 1000);
    return true;
  }

  async getThread(key: string): Promise<ThreadMeta | null> {
    const entry = this.threads.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= Date.now()) {
      this.threads.delete(key);
      return null;
    }
    return structuredClone(entry.meta);
  }

  async putThread(key: string, meta: ThreadMetaInput, options: PutThreadOptions = {}): Promise<ThreadMeta> {
    const parsed = parseThreadMeta(key, { ...meta, updatedAt: Date.now() });
    if (options.fence !== undefined && !(await this.checkFence(key, options.fence))) throw new StaleLeaseError(key, options.fence);
    const expiresAt = parsed.status === "finished" && this.finishedTtlMs > 0 ? Date.now() + this.finishedTtlMs : Infinity;
    this.threads.set(key, { meta: structuredClone(parsed), expiresAt });
    return parsed;
  }

  async listThreads(filter: { active?: boolean } = {}): Promise<ThreadMeta[]> {
    const result: ThreadMeta[] = [];
    for (const key of [...this.threads.keys()]) {
      const meta = await this.getThread(key);
      if (meta && (!filter.active || meta.status !== "finished")) result.push(meta);
    }
    return result;
  }

  async deleteThread(key: string): Promise<void> {
    this.threads.delete(key);
  }

  async expireCheckpoints(): Promise<void> {}

  async putModel(entry: ModelEntryInput, options: { onlyNew?: boolean } = {}): Promise<ModelEntry | null> {
    const parsed = stampModel(entry);
    if (options.onlyNew && this.models.has(parsed.name)) return null;
    this.models.set(parsed.name, structuredClone(parsed));
    return parsed;
  }

  async getModel(name: string): Promise<ModelEntry | null> {
    const entry = isModelName(name) ? this.models.get(name) : undefined;
    return entry ? structuredClone(entry) : null;
  }

  async listModels(filter: { thread?: string } = {}): Promise<ModelEntry[]> {
    return modelsOf([...this.models.values()].map((e) => structuredClone(e)), filter);
  }

  async deleteModel(name: string): Promise<void> {
    this.models.delete(name);
  }

  async acquireLease(key: string, ttlMs: number, options: LeaseOptions = {}): Promise<Lease | null> {
    LeaseTtl.parse(ttlMs);
    const held = this.leases.get(key);
    if (held && held.expiresAt > Date.now()) return null;
    const owner = randomUUID();
    const token = (this.fences.get(key) ?? 0) + 1;
    this.fences.set(key, token);
    this.leases.set(key, { owner, expiresAt: Date.now() + ttlMs });
    const owns = () => {
      const current = this.leases.get(key);
      return current !== undefined && current.owner === owner && current.expiresAt > Date.now();
    };
    return new HeldLease(
      key,
      token,
      ttlMs,
      {
        renew: async () => {
          if (!owns()) return false;
          this.leases.set(key, { owner, expiresAt: Date.now() + ttlMs });
          return true;
        },
        release: async () => {
          if (this.leases.get(key)?.owner === owner) this.leases.delete(key);
        },
      },
      options.autoRenew ?? true,
    );
  }

  async checkFence(key: string, token: number): Promise<boolean> {
    return this.fences.get(key) === token;
  }

  async close(): Promise<void> {}
}
