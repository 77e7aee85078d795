import type { CheckpointSaverTestInitializer } from "@langchain/langgraph-checkpoint-validation";
import { Redis } from "ioredis";
import { RedisSaver } from "../../src/store/redis-checkpointer.js";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.js";

// For @langchain/langgraph-checkpoint-validation: one redis-server for the whole suite, a fresh key
// prefix per checkpointer, and the database emptied when a checkpointer is destroyed, so no
// checkpointer sees another's state.

let server: RedisServer | undefined;
let client: Redis | undefined;
let instances = 0;

const initializer: CheckpointSaverTestInitializer<RedisSaver> = {
  checkpointerName: "RedisSaver",
  beforeAllTimeout: 30_000,
  async beforeAll() {
    server = await startRedisServer();
    client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  },
  async afterAll() {
    await client?.quit();
    await server?.stop();
  },
  createCheckpointer() {
    if (!client) throw new Error("the validation initializer's beforeAll has not started redis-server");
    instances += 1;
    return new RedisSaver(client, { prefix: `validation-${instances}` });
  },
  async destroyCheckpointer() {
    await client?.flushdb();
  },
};

export default initializer;
