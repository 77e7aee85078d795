import type { Redis } from "ioredis";

// Lua scripts: each one runs atomically on the server, so a crash between two commands cannot leave a
// half-written checkpoint or lease. They touch only the keys they are given, plus (for whole-thread
// operations) the keys listed in the thread's key set; that needs a single Redis, not Redis Cluster.

/** Reply error text of a write refused by the fencing check. */
export const FENCED_REPLY = "THREADML_FENCED";

// ARGV fence token "" means the write is not fenced; otherwise the fence key must hold exactly that token.
const FENCE_CHECK = (keyIndex: number, argIndex: number) => `
if ARGV[${argIndex}] ~= '' and redis.call('GET', KEYS[${keyIndex}]) ~= ARGV[${argIndex}] then
  return redis.error_reply('${FENCED_REPLY} lease token ' .. ARGV[${argIndex}] .. ' is stale')
end`;

// A thread that was given a TTL when it finished and is written again is live again: drop the TTLs.
const REVIVE = (keysIndex: number) => `
if redis.call('PTTL', KEYS[${keysIndex}]) > 0 then
  for _, k in ipairs(redis.call('SMEMBERS', KEYS[${keysIndex}])) do redis.call('PERSIST', k) end
  redis.call('PERSIST', KEYS[${keysIndex}])
end`;

const DEFINITIONS = {
  // KEYS: threads index, thread key set, namespace set, ids, checkpoint hash, blobs hash, fence
  // ARGV: thread id, ns, checkpoint id, fence token, checkpoint, metadata, parent id or "", blob fields
  //       read by this checkpoint ("\n"-separated), then blob field/value pairs to store
  cpPut: {
    keys: 7,
    lua: `${FENCE_CHECK(7, 4)}
redis.call('SADD', KEYS[1], ARGV[1])
${REVIVE(2)}
redis.call('SADD', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], 0, ARGV[3])
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], 'checkpoint', ARGV[5], 'metadata', ARGV[6], 'blobs', ARGV[8])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[5], 'parent', ARGV[7]) end
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]) end
return 1`,
  },
  // KEYS: thread key set, writes hash, fence
  // ARGV: fence token, then triples field, value, mode ("keep": do not overwrite, "set": overwrite)
  cpPutWrites: {
    keys: 3,
    lua: `${FENCE_CHECK(3, 1)}
${REVIVE(1)}
redis.call('SADD', KEYS[1], KEYS[2])
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] == 'keep' then redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1`,
  },
  // KEYS: checkpoint hash, writes hash, blobs hash
  // Returns false, or {checkpoint, metadata, parent, blob fields, {blob values}, {write field, value, …}}.
  cpGet: {
    keys: 3,
    lua: `
local cp = redis.call('HMGET', KEYS[1], 'checkpoint', 'metadata', 'parent', 'blobs')
if not cp[1] then return false end
local fields = {}
if cp[4] then for f in string.gmatch(cp[4], '[^\\n]+') do fields[#fields + 1] = f end end
local blobs = {}
if #fields > 0 then blobs = redis.call('HMGET', KEYS[3], unpack(fields)) end
return {cp[1], cp[2], cp[3] or '', cp[4] or '', blobs, redis.call('HGETALL', KEYS[2])}`,
  },
  // KEYS: threads index, thread key set. ARGV: thread id. Returns how many keys were deleted.
  cpDeleteThread: {
    keys: 2,
    lua: `
local keys = redis.call('SMEMBERS', KEYS[2])
for i = 1, #keys, 500 do redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys))) end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
return #keys`,
  },
  // KEYS: thread key set. ARGV: seconds.
  cpExpireThread: {
    keys: 1,
    lua: `
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('EXPIRE', k, ARGV[1]) end
return redis.call('EXPIRE', KEYS[1], ARGV[1])`,
  },
  // KEYS: index set, the key the member stands for. ARGV: member. Drops index entries whose key expired.
  forgetIfMissing: {
    keys: 2,
    lua: `
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], ARGV[1]) end
return 0`,
  },
  // KEYS: model entry, models index. ARGV: name, JSON, only new ("1"/"0").
  // 1 when written, 0 when only new was asked and the name is taken. Plain SET drops any TTL: entries
  // never expire.
  modelPut: {
    keys: 2,
    lua: `
if ARGV[3] == '1' then
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX') then return 0 end
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1`,
  },
  // KEYS: lease, fence. ARGV: owner id, ttl ms, fence ttl s ("0": none).
  // Returns the new fencing token, or false when the lease is held. A fence counter that is new (or
  // expired) starts at the server's clock in microseconds (16 digits, exact in a double), so tokens
  // keep rising even after expiry, also for a counter re-created within the same millisecond.
  leaseAcquire: {
    keys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token
if redis.call('EXISTS', KEYS[2]) == 1 then
  token = redis.call('INCR', KEYS[2])
else
  local t = redis.call('TIME')
  token = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', KEYS[2], token)
end
if ARGV[3] ~= '0' then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return token`,
  },
  // KEYS: lease. ARGV: owner id, ttl ms. 1 when still the owner (and extended), else 0.
  leaseRenew: {
    keys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
  },
  // KEYS: lease. ARGV: owner id. Deletes only the owner's lease.
  leaseRelease: {
    keys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  },
  // KEYS: thread meta, all index, active index, fence.
  // ARGV: key, JSON, ttl s ("0": none), active ("1"/"0"), fence token ("" when not fenced).
  threadPut: {
    keys: 4,
    lua: `${FENCE_CHECK(4, 5)}
if ARGV[3] ~= '0' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) else redis.call('SET', KEYS[1], ARGV[2]) end
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) else redis.call('SREM', KEYS[3], ARGV[1]) end
return 1`,
  },
} as const;

type Arg = string | Buffer | number;
export type ScriptName = keyof typeof DEFINITIONS;
/** A script bound to a client: keys first, then arguments; replies keep binary strings as Buffers. */
export type Scripts = Record<ScriptName, (...args: Arg[]) => Promise<unknown>>;

const bound = new WeakMap<Redis, Scripts>();

/** The scripts, defined once per client (ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT). */
export function scriptsFor(client: Redis): Scripts {
  const known = bound.get(client);
  if (known) return known;
  const commands = client as unknown as Record<string, (...args: Arg[]) => Promise<unknown>>;
  const scripts = {} as Scripts;
  for (const [name, { keys, lua }] of Object.entries(DEFINITIONS) as Array<[ScriptName, { keys: number; lua: string }]>) {
    const command = `threadml_${name}`;
    client.defineCommand(command, { numberOfKeys: keys, lua });
    const call = commands[`${command}Buffer`];
    scripts[name] = (...args) => call.apply(client, args);
  }
  bound.set(client, scripts);
  return scripts;
}

/** True for the reply error of a fenced write. */
export const isFencedReply = (err: unknown) => err instanceof Error && err.message.includes(FENCED_REPLY);
