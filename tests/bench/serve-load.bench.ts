// Model server load benchmark: trains a small model (the harness, directly), starts it through
// LocalRunner.serve() (launcher + bubblewrap where available, as in production), then
//   (i)   BENCH_CONCURRENT (200) POST /predict at once, each on its own connection;
//   (ii)  BENCH_IDLE (1,000) idle TCP connections held open, then one normal request;
//   (iii) the concurrent burst again while those idle connections are still held.
// Counts answered, HTTP errors and resets, with p50/p95 latency. Traffic goes to 127.0.0.1 only and
// the run stops by itself. Run with `npm run bench:serve`; Markdown on stdout, progress on stderr.

import { readFileSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LocalRunner } from "../../runners/local/index.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { harnessWorkspace, runHarness } from "../helpers/harness.js";

const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 200);
const IDLE = Number(process.env.BENCH_IDLE ?? 1000);
const REQUEST_TIMEOUT_MS = 30_000;
const EXAMPLE = readFileSync(fileURLToPath(new URL("../../runners/python/solution_example.py", import.meta.url)), "utf8");

const log = (msg: string) => process.stderr.write(`${msg}\n`);

interface Outcome {
  status: number | null;
  error: string | null;
  ms: number;
}

/** One POST on a fresh connection (no agent), so every request also goes through accept(). */
function post(port: number, body: string): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      { host: "127.0.0.1", port, path: "/predict", method: "POST", agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" }, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? null, error: null, ms: performance.now() - t0 }));
        res.on("error", (err: NodeJS.ErrnoException) => resolve({ status: null, error: err.code ?? err.message, ms: performance.now() - t0 }));
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ status: null, error: err.code ?? err.message, ms: performance.now() - t0 }));
    req.end(body);
  });
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Summary {
  label: string;
  sent: number;
  ok: number;
  httpErrors: number;
  resets: number;
  otherErrors: number;
  p50: number;
  p95: number;
  max: number;
  wallMs: number;
}

async function burst(label: string, port: number, body: string, n: number): Promise<Summary> {
  const t0 = performance.now();
  const outcomes = await Promise.all(Array.from({ length: n }, () => post(port, body)));
  const wallMs = performance.now() - t0;
  const ok = outcomes.filter((o) => o.status === 200);
  const lat = ok.map((o) => o.ms).sort((a, b) => a - b);
  const errors = outcomes.filter((o) => o.error);
  const summary: Summary = {
    label,
    sent: n,
    ok: ok.length,
    httpErrors: outcomes.filter((o) => o.status !== null && o.status !== 200).length,
    resets: errors.filter((o) => o.error === "ECONNRESET" || o.error === "EPIPE" || o.error === "ECONNREFUSED").length,
    otherErrors: errors.filter((o) => !["ECONNRESET", "EPIPE", "ECONNREFUSED"].includes(o.error!)).length,
    p50: pct(lat, 50),
    p95: pct(lat, 95),
    max: lat[lat.length - 1] ?? NaN,
    wallMs,
  };
  const other = [...new Set(errors.map((o) => o.error))].join(", ");
  log(`${label}: ${summary.ok}/${n} ok, ${summary.httpErrors} HTTP errors, ${summary.resets} resets, ${summary.otherErrors} other${other ? ` (${other})` : ""}; p50 ${summary.p50.toFixed(1)} ms, p95 ${summary.p95.toFixed(1)} ms`);
  return summary;
}

/** Opens n idle connections (nothing sent); resolves once each has connected or failed. */
async function openIdle(port: number, n: number): Promise<{ sockets: net.Socket[]; failed: number; closedByServer: () => number }> {
  const sockets: net.Socket[] = [];
  let failed = 0;
  let closed = 0;
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const sock = net.connect(port, "127.0.0.1");
          sock.on("connect", () => {
            sockets.push(sock);
            resolve();
          });
          sock.on("error", () => {
            failed++;
            resolve();
          });
          sock.on("close", () => closed++);
        }),
    ),
  );
  return { sockets, failed, closedByServer: () => closed };
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), "threadml-serve-bench-"));
  const runner = new LocalRunner({ dataDir: path.join(root, "data") });
  try {
    const ws = path.join(root, "ws");
    const data = writeClassificationCsv(path.join(root, "data.csv"), { rows: 400, seed: 7 });
    harnessWorkspace(ws, EXAMPLE, { "data.csv": data.file });
    log("training a small model…");
    const run = await runHarness(ws, { mode: "train", task: "classification", data: "data.csv", target: data.target, metric: "accuracy" });
    if (run.code !== 0) throw new Error(`training failed: ${run.stderr.slice(-2000)}`);
    const check = await runner.check();
    const server = await runner.serve({ runId: "bench", dir: ws, localDir: ws });
    log(`serving at ${server.url} (sandbox: ${check.sandbox})`);
    const body = JSON.stringify({ rows: run.result.sample!.rows.slice(0, 1) });

    const first = await burst(`(i) ${CONCURRENT} concurrent`, server.port, body, CONCURRENT);

    log(`opening ${IDLE} idle connections…`);
    const idle = await openIdle(server.port, IDLE);
    const single = await burst(`(ii) 1 request with ${idle.sockets.length} idle connections open`, server.port, body, 1);
    const heldBefore = idle.sockets.length - idle.closedByServer();
    const third = await burst(`(iii) ${CONCURRENT} concurrent with idle connections held`, server.port, body, CONCURRENT);
    const heldAfter = idle.sockets.length - idle.closedByServer();
    for (const s of idle.sockets) s.destroy();

    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
    const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
    const lines = [
      `Model server load (\`npm run bench:serve\`), ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${cpu}), Node ${process.version}, sandbox: ${check.sandbox}.`,
      "",
      "| phase | sent | answered 200 | HTTP errors | resets/refused | other errors | p50 ms | p95 ms | max ms | wall ms |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...[first, single, third].map((s) => `| ${s.label} | ${s.sent} | ${s.ok} | ${s.httpErrors} | ${s.resets} | ${s.otherErrors} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.max)} | ${fmt(s.wallMs)} |`),
      "",
      `Idle connections: ${idle.sockets.length} of ${IDLE} connected (${idle.failed} failed); still open before (iii): ${heldBefore}, after (iii): ${heldAfter} (the server drops connections idle for 5 s).`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
    await server.stop();
  } finally {
    await runner.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
