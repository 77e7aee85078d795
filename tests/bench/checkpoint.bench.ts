// Checkpoint benchmark: put and get latency (p50/p99) and throughput of RedisSaver (against a real
// redis-server on loopback) and MemorySaver, in the same run, on the same conversation-sized states.
// Run with `npm run bench:checkpoint` (`--threads N --steps N --concurrency N`). Markdown on stdout.

import { MemorySaver, type BaseCheckpointSaver, type Checkpoint } from "@langchain/langgraph";
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { Redis } from "ioredis";
import os from "node:os";
import { parseArgs } from "node:util";
import { RedisSaver } from "../../src/store/redis-checkpointer.js";
import { startRedisServer } from "../helpers/redis-server.js";

const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: "40" },
    steps: { type: "string", default: "12" },
    concurrency: { type: "string", default: "16" },
  },
});
const THREADS = Number(args.threads);
const STEPS = Number(args.steps);
const CONCURRENCY = Number(args.concurrency);

// ------------------------------------------------------------------------------ realistic state

const words = (n: number, seed: number) => Array.from({ length: n }, (_, i) => `w${(seed * 31 + i * 7) % 997}`).join(" ");

/** Channel values of a conversation after `step` graph steps: a data profile, requirements, plans… */
function channelValues(step: number): Record<string, unknown> {
  const columns = Array.from({ length: 20 }, (_, i) => ({
    name: `feature_${i}`,
    dtype: i % 4 ? "float64" : "object",
    missing: i % 3,
    unique: 100 + i,
    stats: { mean: i * 1.5, std: 0.3 * i, min: -i, max: i * 10, top: [`a${i}`, `b${i}`, `c${i}`] },
    sample: [1.2 * i, 3.4, 5.6, 7.8, 9.1],
  }));
  const plans = Array.from({ length: 3 }, (_, i) => ({
    id: `plan-${i + 1}`,
    title: ["Histogram gradient boosting", "Logistic regression", "Random forest"][i],
    data: words(40, i),
    model: words(40, i + 10),
    training: words(30, i + 20),
    expected: { accuracy: 0.9 + i / 100 },
  }));
  return {
    messages: ["Build a model that predicts Quality in banana.csv, accuracy at least 0.95", "a"].slice(0, 1 + (step > 6 ? 1 : 0)),
    files: ["/data/uploads/banana.csv"],
    profile: step >= 1 ? { rows: 8000, columns, target: "Quality" } : null,
    requirements: step >= 2 ? { problem: { area: "tabular data analysis", task: "classification", description: words(60, 3) }, metric: { name: "accuracy", value: 0.95 } } : null,
    knowledge: step >= 3 ? Array.from({ length: 5 }, (_, i) => ({ source: "local", title: `recipe ${i}`, text: words(45, i + 40) })) : [],
    plans: step >= 4 ? plans : [],
    approvedPlan: step >= 7 ? "best" : null,
    runs: Array.from({ length: Math.max(0, step - 7) }, (_, i) => ({ id: `run-${i}`, metrics: { valid_accuracy: 0.9 + i / 100 }, log: words(30, i + 60) })),
    status: step >= STEPS - 1 ? "deployed" : "running",
  };
}

// The channels each step changes (what LangGraph passes to put as newVersions).
const CHANGED: Record<number, string[]> = { 0: ["messages", "files", "status"], 1: ["profile"], 2: ["requirements"], 3: ["knowledge"], 4: ["plans"], 7: ["messages", "approvedPlan"] };
const changedAt = (step: number) => CHANGED[step] ?? (step > 7 ? ["runs", "status"] : ["status"]);

interface Step {
  checkpoint: Checkpoint;
  newVersions: Record<string, number>;
  writes: Array<[string, unknown]>;
}

function stepsOf(): Step[] {
  const versions: Record<string, number> = {};
  return Array.from({ length: STEPS }, (_, step) => {
    const values = channelValues(step);
    const changed = changedAt(step);
    for (const channel of changed) versions[channel] = (versions[channel] ?? 0) + 1;
    if (step === 0) for (const channel of Object.keys(values)) versions[channel] ??= 1;
    const newVersions = Object.fromEntries((step === 0 ? Object.keys(values) : changed).map((c) => [c, versions[c]]));
    const checkpoint: Checkpoint = { ...emptyCheckpoint(), id: uuid6(-1), channel_values: values, channel_versions: { ...versions } };
    return { checkpoint, newVersions, writes: changed.map((c) => [c, values[c]] as [string, unknown]) };
  });
}

// ------------------------------------------------------------------------------------ measuring

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

interface Row {
  saver: string;
  op: string;
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

function row(saver: string, op: string, samples: number[]): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  return { saver, op, n: samples.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

interface Throughput {
  saver: string;
  concurrency: number;
  ops: number;
  steps: number;
  wallMs: number;
}

async function timed<T>(samples: number[], fn: () => Promise<T>): Promise<T> {
  const started = nowMs();
  const result = await fn();
  samples.push(nowMs() - started);
  return result;
}

/** One conversation: each step a put and its writes, then the reads a resumed conversation makes. */
async function conversation(saver: BaseCheckpointSaver, threadId: string, steps: Step[], s: Record<string, number[]>): Promise<void> {
  let config = { configurable: { thread_id: threadId, checkpoint_ns: "" } } as { configurable: Record<string, unknown> };
  const ids: string[] = [];
  for (const [i, step] of steps.entries()) {
    const checkpoint = { ...step.checkpoint, id: uuid6(-1) };
    config = (await timed(s.put, () => saver.put(config, checkpoint, { source: "loop", step: i, parents: {} }, step.newVersions))) as typeof config;
    ids.push(checkpoint.id);
    await timed(s.putWrites, () => saver.putWrites(config, step.writes, `task-${i}`, `~__pregel_pull, node${i}`));
  }
  await timed(s.getLatest, () => saver.getTuple({ configurable: { thread_id: threadId } }));
  await timed(s.getById, () => saver.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: "", checkpoint_id: ids[Math.floor(ids.length / 2)] } }));
  await timed(s.list10, async () => {
    let n = 0;
    for await (const _ of saver.list({ configurable: { thread_id: threadId } }, { limit: 10 })) n += 1;
    return n;
  });
}

const OPERATIONS: Record<string, string> = { getLatest: "getTuple (latest)", getById: "getTuple (by id)", list10: "list (limit 10)" };

async function measure(name: string, saver: BaseCheckpointSaver, steps: Step[], concurrency: number): Promise<{ rows: Row[]; throughput: Throughput }> {
  const samples: Record<string, number[]> = { put: [], putWrites: [], getLatest: [], getById: [], list10: [] };
  const run = `${name}-${concurrency}-${Date.now()}`;
  // Warm-up (JIT, connection, script cache), not measured.
  for (let i = 0; i < 3; i += 1) await conversation(saver, `${run}-warm-${i}`, steps, { put: [], putWrites: [], getLatest: [], getById: [], list10: [] });
  const started = nowMs();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < THREADS) await conversation(saver, `${run}-${next++}`, steps, samples);
    }),
  );
  const wallMs = nowMs() - started;
  const label = concurrency === 1 ? name : `${name}, ${concurrency} at once`;
  const ops = Object.values(samples).reduce((n, list) => n + list.length, 0);
  return {
    rows: Object.entries(samples).map(([op, list]) => row(label, OPERATIONS[op] ?? op, list)),
    throughput: { saver: name, concurrency, ops, steps: samples.put.length, wallMs },
  };
}

// ------------------------------------------------------------------------------------------ main

const steps = stepsOf();
const checkpointBytes = Buffer.byteLength(JSON.stringify(steps[steps.length - 1].checkpoint));
const server = await startRedisServer();
const client = new Redis(server.url);
try {
  const rows: Row[] = [];
  const throughputs: Throughput[] = [];
  for (const concurrency of [1, CONCURRENCY]) {
    for (const [name, saver] of [["MemorySaver", new MemorySaver()], ["RedisSaver", new RedisSaver(client, { prefix: "bench" })]] as const) {
      const result = await measure(name, saver, steps, concurrency);
      rows.push(...result.rows);
      throughputs.push(result.throughput);
    }
    process.stderr.write(`concurrency ${concurrency} done\n`);
  }
  const used = (await client.info("memory")).match(/used_memory_human:(\S+)/)?.[1] ?? "?";
  const lines = [
    `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" / ")} at the end.`,
    `Workload: ${THREADS} conversations × ${STEPS} steps; each step a put (the state is ~${(checkpointBytes / 1024).toFixed(1)} KB of JSON at the last step; 1–3 channels change per step) and putWrites of the changed channels; then getTuple (latest), getTuple (by id) and list (limit 10) per conversation. Redis held ${used} at the end.`,
    "",
    "| saver | operation | n | p50 ms | p99 ms | mean ms |",
    "|---|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.saver} | ${r.op} | ${r.n} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.mean.toFixed(3)} |`),
    "",
    "| saver | conversations at once | operations/s | graph steps/s (put + putWrites) |",
    "|---|---:|---:|---:|",
    ...throughputs.map((t) => `| ${t.saver} | ${t.concurrency} | ${Math.round((t.ops / t.wallMs) * 1000)} | ${Math.round((t.steps / t.wallMs) * 1000)} |`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await client.quit();
  await server.stop();
}
