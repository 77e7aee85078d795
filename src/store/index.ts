import { Redis } from "ioredis";
import { resolve } from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { FileStore } from "./file.js";
import { MemoryStore } from "./memory.js";
import { RedisStore } from "./redis.js";
import type { ConversationStore } from "./types.js";

export { FileSaver } from "./file-checkpointer.js";
export { FileStore } from "./file.js";
export { MemoryStore } from "./memory.js";
export { RedisStore } from "./redis.js";
export { FENCE_CONFIGURABLE, RedisSaver } from "./redis-checkpointer.js";
export * from "./types.js";

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable Redis URL)";
  }
}

/**
 * The conversation store the configuration asks for: Redis (with its checkpointer) when
 * `redis.url` is set, else in memory. A Redis that cannot be reached fails here, with its address,
 * rather than on the first conversation.
 */
export async function createStore(config: Pick<Config, "redis">, logger: Logger): Promise<ConversationStore> {
  const { url, prefix, finishedTtlS } = config.redis;
  if (!url) return new MemoryStore({ finishedTtlS });
  const shown = redactRedisUrl(url);
  const client = new Redis(url, { lazyConnect: true });
  client.on("error", (err: Error) => logger.warn({ redis: shown, err: err.message }, "redis connection error"));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    throw new Error(`Redis at ${shown} (REDIS_URL) is not reachable: ${(err as Error).message}`);
  }
  logger.info({ redis: shown, prefix }, "conversations are kept in Redis");
  return new RedisStore(client, { prefix, finishedTtlS, ownsClient: true, logger });
}

/**
 * The store of one machine without Redis: files under `<dataDir>/state` (relative to `cwd`), with a
 * FileSaver keeping the conversations' checkpoints there, so a conversation paused in one process can
 * be resumed by the next and deployments are remembered across restarts.
 */
export function createLocalStore(config: Pick<Config, "dataDir" | "redis">, logger: Logger, cwd = process.cwd()): FileStore {
  const dir = resolve(cwd, config.dataDir, "state");
  logger.debug({ dir }, "conversations are kept in files");
  return new FileStore(dir, { finishedTtlS: config.redis.finishedTtlS, logger });
}
