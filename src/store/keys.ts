// Every Redis key ThreadML writes, in one place. Caller-supplied parts (thread ids, namespaces, event
// ids) are URI-encoded, so they never contain ":" and two different inputs never share a key.

const part = (value: string) => encodeURIComponent(value);

export class RedisKeys {
  constructor(readonly prefix: string) {}

  // ---- checkpointer: per thread, a set of all its keys, so deleting or expiring a thread needs no scan

  /** Set of every thread id that has checkpoints (for `list` without a thread id). */
  get cpThreads(): string {
    return `${this.prefix}:cp-threads`;
  }

  private cpBase(threadId: string): string {
    return `${this.prefix}:cp:${part(threadId)}`;
  }

  /** Set of every key that belongs to the thread. */
  cpKeys(threadId: string): string {
    return `${this.cpBase(threadId)}:keys`;
  }

  /** Set of the thread's checkpoint namespaces. */
  cpNamespaces(threadId: string): string {
    return `${this.cpBase(threadId)}:ns`;
  }

  /** Sorted set (all scores 0, so ordered by id) of the checkpoint ids in one namespace. */
  cpIds(threadId: string, ns: string): string {
    return `${this.cpBase(threadId)}:${part(ns)}:ids`;
  }

  /** Hash of one checkpoint: checkpoint, metadata, parent, blobs (the blob fields it reads). */
  cpCheckpoint(threadId: string, ns: string, checkpointId: string): string {
    return `${this.cpBase(threadId)}:${part(ns)}:c:${part(checkpointId)}`;
  }

  /** Hash of the pending writes against one checkpoint. */
  cpWrites(threadId: string, ns: string, checkpointId: string): string {
    return `${this.cpBase(threadId)}:${part(ns)}:w:${part(checkpointId)}`;
  }

  /** Hash of channel values, one field per channel version, shared by the namespace's checkpoints. */
  cpBlobs(threadId: string, ns: string): string {
    return `${this.cpBase(threadId)}:${part(ns)}:blobs`;
  }

  // ---- conversation store

  event(eventId: string): string {
    return `${this.prefix}:event:${part(eventId)}`;
  }

  thread(key: string): string {
    return `${this.prefix}:conv:${part(key)}`;
  }

  /** Set of every conversation key. */
  get threadsAll(): string {
    return `${this.prefix}:conv-all`;
  }

  /** Set of the keys of conversations that are not finished. */
  get threadsActive(): string {
    return `${this.prefix}:conv-active`;
  }

  // ---- model registry: entries never expire; the set lists them so listing needs no scan

  model(name: string): string {
    return `${this.prefix}:model:${part(name)}`;
  }

  /** Set of every registered model name. */
  get models(): string {
    return `${this.prefix}:models`;
  }

  lease(key: string): string {
    return `${this.prefix}:lease:${part(key)}`;
  }

  /** The last fencing token handed out for a key's lease. */
  fence(key: string): string {
    return `${this.prefix}:fence:${part(key)}`;
  }
}

/** Hash field of a channel value at one version. */
export const blobField = (channel: string, version: string | number) => `${part(channel)}:${String(version)}`;

export const channelOfBlobField = (field: string) => decodeURIComponent(field.slice(0, field.indexOf(":")));

/** Hash field of one pending write: task id and write index. */
export const writeField = (taskId: string, idx: number) => `${part(taskId)}:${idx}`;
