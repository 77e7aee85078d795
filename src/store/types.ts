import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { z } from "zod";

// What a ThreadML process keeps about its conversations so that another process (a restart, or a
// second replica sharing Redis) can carry on: which graph thread a chat thread maps to, who asked,
// what the conversation waits for, and which events were already handled.

export const ThreadStatus = z.enum(["running", "waiting", "finished"]);
export type ThreadStatus = z.infer<typeof ThreadStatus>;

/**
 * One conversation (one chat thread). Unknown fields are kept, so a replica running an older
 * version does not drop what a newer one wrote; extend it with `ThreadMeta.extend({...})`.
 */
export const ThreadMeta = z
  .object({
    /** The chat thread's key (adapters/types.ts `threadKey`). */
    key: z.string().min(1),
    platform: z.string().min(1),
    channel: z.string(),
    thread: z.string(),
    /** The LangGraph thread id of the current conversation in this chat thread. */
    graphThreadId: z.string().min(1),
    /** How many conversations this chat thread had before the current one. */
    generation: z.number().int().min(0),
    requester: z.string(),
    status: ThreadStatus,
    /** The interrupt payload the conversation waits on (a question or a plan card). */
    pending: z.unknown().optional(),
    pendingMessageId: z.string().optional(),
    statusMessageId: z.string().optional(),
    /** The runner job of the running training, if any. */
    runner: z.string().optional(),
    /** The conversation's workspace folder (uploads, runs, artifacts). */
    workspace: z.string().optional(),
    /** Milliseconds since the epoch; set by the store on every write. */
    updatedAt: z.number().int(),
  })
  .loose();
export type ThreadMeta = z.infer<typeof ThreadMeta>;
/** What `putThread` takes: `updatedAt` is stamped by the store. */
export type ThreadMetaInput = Omit<ThreadMeta, "updatedAt"> & { updatedAt?: number };

/** Whether a registered model's server should be up: restarted when ThreadML starts while "serving". */
export const ModelStatus = z.enum(["serving", "stopped"]);
export type ModelStatus = z.infer<typeof ModelStatus>;

/** Registry names: lower case, digits and dashes, so they are safe in commands, URLs and file names. */
export const MODEL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * One trained model in the deployment registry: where it came from (thread, request, who), where it
 * lives (runner, workspace, host-owned artifacts, bundle), how it scored, and whether it is served. The
 * `context` keeps what a follow-up needs once the conversation's checkpoints have expired: the
 * request's messages, files and answers, and the requirements and data profile it was trained under.
 * Unknown fields are kept, like ThreadMeta's.
 */
const ModelEntryShape = z.object({
  name: z.string().regex(MODEL_NAME),
  /** The chat thread's key (adapters/types.ts `threadKey`) and its parts. */
  thread: z.string().min(1),
  platform: z.string().min(1),
  channel: z.string(),
  threadId: z.string(),
  graphThreadId: z.string().min(1),
  generation: z.number().int().min(0),
  runner: z.string().min(1),
  status: ModelStatus,
  /** The endpoint while serving (and the last one it had). */
  url: z.string().nullable(),
  token: z.string().optional(),
  port: z.number().int().min(1).max(65535).nullable(),
  /** Process id of a local model server, so another ThreadML process (`threadml models stop`) can end it. */
  pid: z.number().int().positive().optional(),
  /** "<boot id>:<start time>" of that process: a pid recorded earlier names it only while both match. */
  pidStart: z.string().optional(),
  /** The report's chat message: its buttons act on this model. */
  reportMessageId: z.string().optional(),
  /** A few held-out rows and their predictions (the deploy check, repeated when the model is served again). */
  sample: z.unknown().optional(),
  runId: z.string().min(1),
  /** The run's workspace on the runner's machine, and where it is readable here. */
  runnerDir: z.string(),
  workspace: z.string(),
  /** Host-owned copies of the model, its meta and code (runners/intake.ts), in the workspace's layout. */
  artifactsDir: z.string().nullable(),
  bundle: z.string().nullable().default(null),
  /** "Random forest (n_estimators=300)". */
  description: z.string(),
  task: z.string(),
  target: z.string().nullable(),
  metric: z.object({ name: z.string(), direction: z.enum(["max", "min"]) }),
  metrics: z.record(z.string(), z.number()),
  constraints: z.array(z.object({ name: z.string(), op: z.string(), target: z.number(), actual: z.number().nullable(), met: z.boolean().nullable() })).default([]),
  /** Milliseconds since the epoch. */
  createdAt: z.number().int(),
  createdBy: z.string(),
  stoppedAt: z.number().int().optional(),
  context: z
    .object({
      messages: z.array(z.string()),
      files: z.array(z.string()),
      answers: z.record(z.string(), z.string()),
      feedback: z.array(z.string()).default([]),
      localPaths: z.boolean().default(false),
      requirements: z.unknown(),
      profile: z.unknown(),
      /** The search budget multiplier and the seed it was trained with. */
      searchScale: z.number().optional(),
      seed: z.number().int().optional(),
    })
    .loose(),
  /** Set by the store on every write. */
  updatedAt: z.number().int(),
});
export const ModelEntry = ModelEntryShape.loose();
export type ModelEntry = z.infer<typeof ModelEntry>;
// From the closed shape: Omit over the loose type's index signature would drop every known field.
export type ModelEntryInput = Omit<z.input<typeof ModelEntryShape>, "updatedAt"> & { updatedAt?: number; [extra: string]: unknown };

/** Parses a registry entry, with a message that names the model and every problem. */
export function parseModelEntry(name: string, entry: unknown): ModelEntry {
  const parsed = ModelEntry.safeParse(entry);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new CorruptEntryError(`model ${name}`, issues);
  }
  if (parsed.data.name !== name) throw new CorruptEntryError(`model ${name}`, `the entry is for ${parsed.data.name}`);
  return parsed.data;
}

/** An exclusive, expiring hold on one key (a conversation), renewed in the background while held. */
export interface Lease {
  readonly key: string;
  /** Fencing token: larger than the token of every earlier holder of this key. */
  readonly token: number;
  /** Extends the lease by its TTL; false (and `lost` aborts) when it has expired or changed hands. */
  renew(): Promise<boolean>;
  /** Gives the lease up if this holder still owns it; stops the renewal. */
  release(): Promise<void>;
  /** Aborts when the lease is lost: taken by another holder, or not renewed within its TTL. */
  readonly lost: AbortSignal;
}

export interface LeaseOptions {
  /** Renew every ttl/3 while held (default true). */
  autoRenew?: boolean;
}

export interface PutThreadOptions {
  /** Token of a lease on the same key: the write is refused (StaleLeaseError) once a newer holder exists. */
  fence?: number;
}

/** Conversation state shared by every process that serves the same chat platforms. */
export interface ConversationStore {
  /** memory: this process only; file: this machine's processes, under the data folder; redis: every replica. */
  readonly kind: "memory" | "file" | "redis";
  /** The LangGraph checkpointer that keeps graph state beside this store. */
  readonly checkpointer: BaseCheckpointSaver;
  /** True only for the first claim of an event id within `ttlS` seconds (platform retries and duplicates). */
  claimEvent(eventId: string, ttlS: number): Promise<boolean>;
  getThread(key: string): Promise<ThreadMeta | null>;
  /** Validates and stores the conversation; finished ones expire after the store's finished TTL. */
  putThread(key: string, meta: ThreadMetaInput, options?: PutThreadOptions): Promise<ThreadMeta>;
  /** Every stored conversation, or (`active: true`) those running or waiting. */
  listThreads(filter?: { active?: boolean }): Promise<ThreadMeta[]>;
  deleteThread(key: string): Promise<void>;
  /**
   * Lets the checkpoints of a finished conversation's graph thread expire after the finished TTL
   * (a later write to that graph thread cancels it). The memory store keeps them for the process's life.
   */
  expireCheckpoints(graphThreadId: string): Promise<void>;
  /**
   * Writes a registry entry (the store stamps `updatedAt`). With `onlyNew`, a name already taken is
   * left alone and null returned, so two processes never register the same name. Entries never expire.
   */
  putModel(entry: ModelEntryInput, options?: { onlyNew?: boolean }): Promise<ModelEntry | null>;
  getModel(name: string): Promise<ModelEntry | null>;
  /** Every registered model (or one chat thread's), oldest first. */
  listModels(filter?: { thread?: string }): Promise<ModelEntry[]>;
  deleteModel(name: string): Promise<void>;
  /** The lease on `key`, or null while another holder has it. */
  acquireLease(key: string, ttlMs: number, options?: LeaseOptions): Promise<Lease | null>;
  /** True while `token` is the latest token handed out for `key` (no newer holder exists). */
  checkFence(key: string, token: number): Promise<boolean>;
  close(): Promise<void>;
}

/** A write made with a lease token that a newer holder has superseded. */
export class StaleLeaseError extends Error {
  constructor(
    readonly key: string,
    readonly token: number,
  ) {
    super(`the lease on ${key} with token ${token} is stale: another holder has taken it since`);
    this.name = "StaleLeaseError";
  }
}

/** Stored data that does not have the expected shape (written by another version, or damaged). */
export class CorruptEntryError extends Error {
  constructor(where: string, detail: string) {
    super(`stored entry ${where} is unreadable: ${detail}`);
    this.name = "CorruptEntryError";
  }
}

export const EventTtl = z.number().int().positive();
export const LeaseTtl = z.number().int().min(30, "a lease TTL below 30 ms cannot be renewed in time");

/** Parses `meta` for `key`, with a message that names the key and every problem. */
export function parseThreadMeta(key: string, meta: unknown): ThreadMeta {
  const parsed = ThreadMeta.safeParse(meta);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`conversation ${key}: invalid metadata: ${issues}`);
  }
  if (parsed.data.key !== key) throw new Error(`conversation ${key}: metadata is for ${parsed.data.key}`);
  return parsed.data;
}
