import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { join } from "node:path";
import type { Logger } from "../logger.js";
import { decodeModel, decodeThread, isModelName, modelsOf, stampModel } from "./entries.js";
import { FileSaver } from "./file-checkpointer.js";
import { createExclusive, jsonFileIds, jsonFileName, readFileState, removeFile, removeIfUnchanged, writeAtomic } from "./files.js";
import { MemoryStore } from "./memory.js";
import {
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

export interface FileStoreOptions {
  /** Finished conversations are forgotten after this many seconds (0 keeps them). */
  finishedTtlS?: number;
  /** Defaults to a FileSaver on `<dir>/checkpoints`. */
  checkpointer?: BaseCheckpointSaver;
  /** Told about files skipped in listings because they cannot be read. */
  logger?: Logger;
}

/**
 * The conversation store of one machine without Redis, kept under a folder that several ThreadML
 * processes may share (a bot and a `threadml models stop`, consecutive CLI runs):
 * `threads/<encodeURIComponent(key)>.json`, `models/<name>.json`, `checkpoints/` (the FileSaver's).
 * Every read goes to the disk, since another process may have written; every write replaces the file
 * in one step. Event claims, leases and fences stay in this process's memory: one chat adapter runs in
 * one process, so only that process ever claims its events or leases its conversations.
 */
export class FileStore implements ConversationStore {
  readonly kind = "file";
  readonly checkpointer: BaseCheckpointSaver;
  private readonly local: MemoryStore;
  private readonly finishedTtlMs: number;
  private readonly threadsDir: string;
  private readonly modelsDir: string;

  constructor(
    readonly dir: string,
    private readonly options: FileStoreOptions = {},
  ) {
    this.finishedTtlMs = (options.finishedTtlS ?? 0) * 1000;
    this.threadsDir = join(dir, "threads");
    this.modelsDir = join(dir, "models");
    this.checkpointer = options.checkpointer ?? new FileSaver(join(dir, "checkpoints"));
    this.local = new MemoryStore({ checkpointer: this.checkpointer });
  }

  claimEvent(eventId: string, ttlS: number): Promise<boolean> {
    return this.local.claimEvent(eventId, ttlS);
  }

  acquireLease(key: string, ttlMs: number, options?: LeaseOptions): Promise<Lease | null> {
    return this.local.acquireLease(key, ttlMs, options);
  }

  checkFence(key: string, token: number): Promise<boolean> {
    return this.local.checkFence(key, token);
  }

  // ------------------------------------------------------------------------------ conversations

  async getThread(key: string): Promise<ThreadMeta | null> {
    const path = this.threadFile(key);
    const state = await readFileState(path);
    if (state === null) return null;
    const meta = decodeThread(key, state.text!);
    if (this.expired(meta)) {
      await removeIfUnchanged(path, state.signature);
      return null;
    }
    return meta;
  }

  async putThread(key: string, meta: ThreadMetaInput, options: PutThreadOptions = {}): Promise<ThreadMeta> {
    const parsed = parseThreadMeta(key, { ...meta, updatedAt: Date.now() });
    if (options.fence !== undefined && !(await this.checkFence(key, options.fence))) throw new StaleLeaseError(key, options.fence);
    await writeAtomic(this.threadFile(key), JSON.stringify(parsed));
    return parsed;
  }

  async listThreads(filter: { active?: boolean } = {}): Promise<ThreadMeta[]> {
    const skipped = (file: string) => this.options.logger?.warn({ file }, "skipping a conversation file this store did not write");
    const result: ThreadMeta[] = [];
    for (const key of await jsonFileIds(this.threadsDir, skipped)) {
      try {
        const meta = await this.getThread(key);
        if (meta && (!filter.active || meta.status !== "finished")) result.push(meta);
      } catch (err) {
        this.options.logger?.warn({ thread: key, err }, "skipping unreadable conversation metadata");
      }
    }
    return result;
  }

  async deleteThread(key: string): Promise<void> {
    await removeFile(this.threadFile(key));
  }

  async expireCheckpoints(graphThreadId: string): Promise<void> {
    if (this.finishedTtlMs <= 0 || !(this.checkpointer instanceof FileSaver)) return;
    await this.checkpointer.expireThread(graphThreadId, this.finishedTtlMs / 1000);
    // Finished conversations are rare enough to sweep the other expired ones on each.
    await this.checkpointer.sweepExpired(this.finishedTtlMs);
  }

  // ------------------------------------------------------------------------------ model registry

  async putModel(entry: ModelEntryInput, options: { onlyNew?: boolean } = {}): Promise<ModelEntry | null> {
    const parsed = stampModel(entry);
    const path = this.modelFile(parsed.name);
    const text = JSON.stringify(parsed);
    if (options.onlyNew) return (await createExclusive(path, text)) ? parsed : null;
    await writeAtomic(path, text);
    return parsed;
  }

  async getModel(name: string): Promise<ModelEntry | null> {
    if (!isModelName(name)) return null;
    const state = await readFileState(this.modelFile(name));
    return state === null ? null : decodeModel(name, state.text!);
  }

  async listModels(filter: { thread?: string } = {}): Promise<ModelEntry[]> {
    const result: ModelEntry[] = [];
    for (const name of await jsonFileIds(this.modelsDir)) {
      if (!isModelName(name)) continue;
      try {
        const entry = await this.getModel(name);
        if (entry) result.push(entry);
      } catch (err) {
        this.options.logger?.warn({ model: name, err }, "skipping an unreadable registry entry");
      }
    }
    return modelsOf(result, filter);
  }

  async deleteModel(name: string): Promise<void> {
    if (isModelName(name)) await removeFile(this.modelFile(name));
  }

  /** Every write is on disk before its promise resolves; this only waits for checkpoints still being saved. */
  async close(): Promise<void> {
    if (this.checkpointer instanceof FileSaver) await this.checkpointer.flush();
  }

  // ------------------------------------------------------------------------------------ internals

  private expired(meta: ThreadMeta): boolean {
    return meta.status === "finished" && this.finishedTtlMs > 0 && meta.updatedAt + this.finishedTtlMs <= Date.now();
  }

  private threadFile(key: string): string {
    return join(this.threadsDir, jsonFileName("conversation key", key));
  }

  // Only called with names that match MODEL_NAME (lower case, digits, dashes).
  private modelFile(name: string): string {
    return join(this.modelsDir, `${name}.json`);
  }
}
