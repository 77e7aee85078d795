// Follow-ups benchmark (docs/architecture.md §9, §10): what a thread costs after its model is deployed.
//   1. One conversation to `deployed` through `threadml run --thread NAME --yes --json`: wall time, the
//      finish step (which builds the portable bundle) against the other stages, and the bundle's size.
//   2. Follow-ups on that thread, each its own `threadml run --thread NAME "..."` process, as a script
//      runs them: scoring 1,000 / 10,000 / 100,000 rows, "what matters?", "compare", and
//      `threadml models list --json`.
//   3. Serving again after a restart, in process: a conversation deployed through the conversation
//      service over the file store; then the service stops and the engine detaches (servers stop) and a
//      fresh store, engine and service start until the model answers GET /health at its old URL.
// Run with `npm run bench:followups` (`--runs N` or BENCH_RUNS=N; default 3). Progress goes to stderr;
// the Markdown result goes to stdout and to tests/bench/last-run-followups.md.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { CliAdapter } from "../../adapters/cli/index.js";
import type { Inbound } from "../../adapters/types.js";
import { loadConfig } from "../../src/config.js";
import { ConversationService } from "../../src/conversation/service.js";
import { createEngine, type Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { createLocalStore } from "../../src/store/index.js";
import type { ModelEntry } from "../../src/store/types.js";
import { BIN, ROOT, requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { cliCodePath, commandSeconds, machineLine, median, runsFromArgs } from "./common.js";

const DATA = "banana.csv";
const ROWS = 2000;
const REQUEST = "Build a model that predicts Quality in banana.csv, accuracy at least 0.9";
const THREAD = "bench";
const SCORE_ROWS = [1_000, 10_000, 100_000];
const scoreFile = (rows: number) => `new-${rows}.csv`;
const OUT = "tests/bench/last-run-followups.md";

// ----------------------------------------------------------------------------- small helpers

// The 1-minute load average on every line: on a shared 2-core machine it tells a slow run from a disturbed one.
const log = (msg: string) => process.stderr.write(`[bench] ${msg} (load ${os.loadavg()[0].toFixed(2)})\n`);
const now = () => performance.now();
const secs = (ms: number) => ms / 1000;
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const int = (x: number) => Math.round(x).toLocaleString("en-US");

/** "median (min–max)" of seconds, or n/a when nothing was measured. */
function spread(xs: number[], fmt = f2): string {
  if (!xs.length) return "n/a";
  return xs.length === 1 ? fmt(xs[0]) : `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

/** New rows to score: a fresh draw of the training table's generator, without the label column. */
function writeScoringFile(path: string, rows: number): void {
  writeClassificationCsv(path, { rows, seed: 700 + rows });
  const lines = readFileSync(path, "utf8").trimEnd().split("\n");
  writeFileSync(path, `${lines.map((l) => l.slice(0, l.lastIndexOf(","))).join("\n")}\n`);
}

/** A user's folder: the training table and the files to score, nothing else. */
function freshDir(root: string, prefix: string, files: string[]): string {
  const dir = mkdtempSync(join(root, prefix));
  for (const f of files) copyFileSync(join(root, f), join(dir, f));
  return dir;
}

// ----------------------------------------------------------------------------- 1 + 2. the CLI on one thread

interface ConversationSample {
  seconds: number;
  status: string;
  model: string | null;
  bundleBytes: number | null;
  timings: Record<string, number>;
  error?: string;
}

interface FollowUpSample {
  name: string;
  rows: number | null;
  seconds: number;
  ok: boolean;
  note: string;
}

const envFor = (dir: string) => ({ THREADML_DATA_DIR: join(dir, ".threadml"), LOG_LEVEL: "warn" });

async function conversation(dir: string): Promise<ConversationSample> {
  const started = now();
  const { result } = await runCli(["--thread", THREAD, "--yes", "--data", DATA, REQUEST], { cwd: dir, env: envFor(dir), timeoutMs: 600_000 });
  const seconds = secs(now() - started);
  const bundle = result.artifacts.bundle;
  return { seconds, status: result.status, model: result.model ?? null, bundleBytes: bundle ? statSync(bundle).size : null, timings: result.timings, error: result.error };
}

/** One follow-up as its own CLI process; `check` says whether the answer is the one asked for. */
async function followUp(dir: string, name: string, text: string, rows: number | null, check: (r: Awaited<ReturnType<typeof runCli>>["result"]) => string | null): Promise<FollowUpSample> {
  const started = now();
  const { result } = await runCli(["--thread", THREAD, text], { cwd: dir, env: envFor(dir), timeoutMs: 600_000 });
  const seconds = secs(now() - started);
  const problem = result.error ?? check(result);
  return { name, rows, seconds, ok: problem === null, note: problem ?? (result.followup?.lines[0] ?? "") };
}

/** `threadml models list --json` in the thread's folder (same store). */
async function modelsList(dir: string): Promise<FollowUpSample> {
  const started = now();
  const child = spawn(process.execPath, [BIN, "models", "list", "--json"], { cwd: dir, env: { ...process.env, ...envFor(dir) }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  child.stdout.on("data", (d) => (stdout += d));
  const code = await new Promise<number | null>((done) => child.on("close", done));
  const seconds = secs(now() - started);
  let listed: Array<{ name: string }> = [];
  try {
    listed = (JSON.parse(stdout.trim().split("\n").pop() ?? "null") as { models: Array<{ name: string }> }).models;
  } catch {
    /* reported below */
  }
  const ok = code === 0 && listed.length > 0;
  return { name: "models list --json", rows: null, seconds, ok, note: ok ? `${listed.length} model(s): ${listed.map((m) => m.name).join(", ")}` : `exit ${code}, stdout ${stdout.slice(0, 200)}` };
}

async function cliRun(root: string, run: number, runs: number): Promise<{ conversation: ConversationSample; followUps: FollowUpSample[] }> {
  const dir = freshDir(root, "thread-", [DATA, ...SCORE_ROWS.map(scoreFile)]);
  const conv = await conversation(dir);
  log(`run ${run}/${runs}: conversation ${f1(conv.seconds)} s, ${conv.status}, finish ${f2(conv.timings.finish ?? NaN)} s, bundle ${conv.bundleBytes ?? "none"} bytes${conv.error ? ` (${conv.error})` : ""}`);
  const followUps: FollowUpSample[] = [];
  if (conv.status !== "deployed") return { conversation: conv, followUps };
  const record = (s: FollowUpSample) => {
    followUps.push(s);
    log(`run ${run}/${runs}: ${s.name} ${f2(s.seconds)} s${s.ok ? "" : ` FAILED: ${s.note}`}`);
  };
  for (const rows of SCORE_ROWS) {
    record(
      await followUp(dir, `score ${int(rows)} rows`, `score ${scoreFile(rows)}`, rows, (r) => {
        const f = r.followup;
        if (f?.kind !== "file" || !f.file) return `no predictions file (${JSON.stringify(f?.lines ?? [])})`;
        const lines = readFileSync(f.file, "utf8").trimEnd().split("\n").length - 1;
        return lines === rows ? null : `predictions file has ${lines} rows, not ${rows}`;
      }),
    );
  }
  record(await followUp(dir, "what matters? (explain)", "what matters?", null, (r) => (r.followup?.file?.endsWith("importance.png") ? null : `no importance plot (${JSON.stringify(r.followup?.lines ?? [])})`)));
  record(await followUp(dir, "compare", "compare", null, (r) => (r.followup?.kind === "table" && r.followup.table?.rows.length ? null : "no table of the thread's models")));
  record(await modelsList(dir));
  return { conversation: conv, followUps };
}

// ----------------------------------------------------------------------------- 3. serving again after a restart

interface RestartSample {
  deployed: boolean;
  /** Opening the file store, creating the engine and the service. */
  openS: number;
  /** `service.start()`: the registry's restore, which serves the model again and checks its endpoint. */
  startS: number;
  /** Of which `Engine.serveAgain`: a fresh server process until it listens. */
  serveAgainS: number;
  /** From the start of the restart until GET /health at the old URL answers 200. */
  totalS: number;
  sameUrl: boolean;
  error?: string;
}

async function restartRun(root: string): Promise<RestartSample> {
  const dir = freshDir(root, "restart-", [DATA]);
  const config = loadConfig({ ...process.env, THREADML_DATA_DIR: join(dir, ".threadml"), LOG_LEVEL: "silent" });
  const logger = createLogger("silent");

  const open = async () => {
    const store = createLocalStore(config, logger, dir);
    const engine = await createEngine({ config, logger, cwd: dir, checkpointer: store.checkpointer });
    const adapter = new CliAdapter();
    const service = new ConversationService(engine, [adapter], { store, approvers: [], logger });
    return { store, engine, adapter, service };
  };
  const close = async (s: Awaited<ReturnType<typeof open>>, o: { restart: boolean }) => {
    await s.service.stop({ drain: false });
    // A restart detaches (servers stop, jobs keep running); the end of the bench closes.
    await (o.restart ? s.engine.detach() : s.engine.close());
    await s.store.close();
  };
  const health = async (entry: ModelEntry) => {
    try {
      const res = await fetch(`${entry.url}/health`, { headers: entry.token ? { authorization: `Bearer ${entry.token}` } : {}, signal: AbortSignal.timeout(3000) });
      return res.ok;
    } catch {
      return false;
    }
  };

  const failed = (error: string, deployed = false): RestartSample => ({ deployed, openS: NaN, startS: NaN, serveAgainS: NaN, totalS: NaN, sameUrl: false, error });

  const first = await open();
  let before: ModelEntry | null = null;
  let problem = "";
  try {
    await first.service.start();
    const base = { thread: CliAdapter.thread("restart"), user: "bench" };
    await first.adapter.send({ kind: "message", eventId: randomUUID(), ...base, text: REQUEST, files: [join(dir, DATA)], mention: true } satisfies Inbound);
    await first.service.idle();
    const card = first.adapter.posted.find((p) => p.message.kind === "plans");
    if (card) {
      await first.adapter.send({ kind: "action", eventId: randomUUID(), ...base, action: "approve", value: "best", message: card.ref });
      await first.service.idle();
      const entry = (await first.service.registry.list()).at(-1);
      if (entry?.status === "serving" && entry.url && (await health(entry))) before = entry;
      else problem = `no serving model (${entry?.status ?? "none registered"})`;
    } else problem = "no plan card was posted";
  } finally {
    // A restart detaches (servers stop, jobs keep running); a run that deployed nothing just closes.
    await close(first, { restart: before !== null });
  }
  if (!before) return failed(problem);
  if (await health(before)) return failed("the server still answered after the stop", true);

  const started = now();
  const second = await open();
  try {
    // Time the server start inside the restore: the rest of start() is the store, leases and the endpoint check.
    let serveAgainMs = 0;
    const serveAgain = second.engine.serveAgain.bind(second.engine);
    (second.engine as { serveAgain: Engine["serveAgain"] }).serveAgain = async (o) => {
      const t = now();
      try {
        return await serveAgain(o);
      } finally {
        serveAgainMs += now() - t;
      }
    };
    const opened = now();
    await second.service.start();
    const startedUp = now();
    let answered = await health(before);
    while (!answered && now() - started < 60_000) {
      await new Promise((r) => setTimeout(r, 50));
      answered = await health(before);
    }
    const totalS = secs(now() - started);
    const after = await second.service.registry.get(before.name);
    return {
      deployed: true,
      openS: secs(opened - started),
      startS: secs(startedUp - opened),
      serveAgainS: secs(serveAgainMs),
      totalS,
      sameUrl: after?.url === before.url,
      ...(answered ? {} : { error: "the model did not answer at its old URL within 60 s" }),
    };
  } finally {
    await close(second, { restart: false });
  }
}

// ----------------------------------------------------------------------------- report

const STAGES = ["ingest", "verify_request", "plan", "execute", "smoke", "train", "deploy", "finish"];

function conversationTables(samples: ConversationSample[]): string[] {
  const t = samples.map((s) => s.seconds);
  const sizes = samples.map((s) => s.bundleBytes).filter((b): b is number => b !== null);
  const lines = [
    "| runs | wall s, median (min–max) | status per run | bundle size per run | finish s, median (min–max) | finish share of `timings.total` |",
    "|---:|---|---|---|---|---:|",
    `| ${samples.length} | ${spread(t, f1)} | ${samples.map((s) => s.status).join(", ")} | ${sizes.map((b) => `${f1(b / 1024)} KiB`).join(" / ") || "none"} | ${spread(samples.map((s) => s.timings.finish ?? NaN).filter(Number.isFinite))} | ${(100 * median(samples.map((s) => (s.timings.finish ?? 0) / (s.timings.total || 1)))).toFixed(1)}% |`,
    "",
    "Median seconds per stage, from the CLI's own `timings` (finish = report, registry entry and bundle):",
    "",
    `| ${STAGES.join(" | ")} | other | total |`,
    `|${STAGES.map(() => "---:").join("|")}|---:|---:|`,
  ];
  const med = (key: string) => median(samples.map((s) => s.timings[key] ?? 0));
  const other = median(samples.map((s) => (s.timings.total ?? 0) - STAGES.reduce((sum, k) => sum + (s.timings[k] ?? 0), 0)));
  lines.push(`| ${STAGES.map((k) => f2(med(k))).join(" | ")} | ${f2(other)} | ${f2(med("total"))} |`);
  return lines;
}

function followUpTable(samples: FollowUpSample[][]): string[] {
  const lines = ["| follow-up | runs | ok | wall s, median (min–max) | rows/s, median | first line of the answer (run 1) |", "|---|---:|---:|---|---:|---|"];
  const names = [...new Set(samples.flat().map((s) => s.name))];
  for (const name of names) {
    const of = samples.flat().filter((s) => s.name === name);
    const rows = of[0].rows;
    const rate = rows === null ? "—" : int(median(of.map((s) => rows / s.seconds)));
    const note = of[0].note.replace(/\|/g, "\\|").slice(0, 160);
    lines.push(`| ${name} | ${of.length} | ${of.filter((s) => s.ok).length} | ${spread(of.map((s) => s.seconds))} | ${rate} | ${note} |`);
  }
  return lines;
}

function restartTable(samples: RestartSample[]): string[] {
  const ok = samples.filter((s) => s.deployed && !s.error);
  const col = (f: (s: RestartSample) => number) => spread(ok.map(f));
  return [
    "| runs | answered at the old URL | open store + engine + service s | `service.start()` s | of which `serveAgain` s | restart → GET /health 200 s |",
    "|---:|---:|---|---|---|---|",
    `| ${samples.length} | ${ok.filter((s) => s.sameUrl).length} | ${col((s) => s.openS)} | ${col((s) => s.startS)} | ${col((s) => s.serveAgainS)} | ${col((s) => s.totalS)} |`,
    ...samples.flatMap((s, i) => (s.error ? ["", `Run ${i + 1}: ${s.error}.`] : [])),
  ];
}

// ----------------------------------------------------------------------------- main

async function main(): Promise<void> {
  requirePython();
  const runs = runsFromArgs();
  const loadStart = os.loadavg();
  const root = mkdtempSync(join(os.tmpdir(), "threadml-bench-followups-"));
  try {
    writeClassificationCsv(join(root, DATA), { rows: ROWS, seed: 101 });
    for (const rows of SCORE_ROWS) writeScoringFile(join(root, scoreFile(rows)), rows);
    const codeAtStart = cliCodePath();
    log(`data in ${root}; ${runs} run(s); CLI runs ${codeAtStart}`);
    if (!codeAtStart.startsWith("compiled")) log("start-up is slower through tsx than for an installed package; run `npm run build` first to measure that");
    const cliStartS = commandSeconds(process.execPath, [BIN, "--help"]);
    const pythonStartS = commandSeconds("/usr/bin/python3", ["-c", "import pandas, sklearn.ensemble, sklearn.inspection"], 3);
    log(`CLI start-up ${f2(cliStartS)} s; Python with pandas and scikit-learn ${f2(pythonStartS)} s`);

    const conversations: ConversationSample[] = [];
    const followUps: FollowUpSample[][] = [];
    for (let i = 1; i <= runs; i++) {
      const r = await cliRun(root, i, runs);
      conversations.push(r.conversation);
      followUps.push(r.followUps);
    }
    const restarts: RestartSample[] = [];
    for (let i = 1; i <= runs; i++) {
      const s = await restartRun(root);
      log(`restart ${i}/${runs}: ${s.error ?? `${f2(s.totalS)} s to /health (start ${f2(s.startS)} s, serveAgain ${f2(s.serveAgainS)} s), same URL ${s.sameUrl}`}`);
      restarts.push(s);
    }

    const md = [
      `## Results (${runs} run${runs === 1 ? "" : "s"})`,
      "",
      machineLine(loadStart, codeAtStart === cliCodePath() ? codeAtStart : `${codeAtStart} at the start, ${cliCodePath()} at the end`),
      "",
      `Start-up alone, for reference: \`threadml --help\` ${f2(cliStartS)} s (median of 5); \`python3 -c "import pandas, sklearn.ensemble, sklearn.inspection"\` ${f2(pythonStartS)} s (median of 3).`,
      "",
      `### 1. Conversation to deployed (\`threadml run --thread ${THREAD} --yes --json\`, ${int(ROWS)}-row classification)`,
      "",
      ...conversationTables(conversations),
      "",
      "### 2. Follow-ups, each its own CLI process on the same thread",
      "",
      ...followUpTable(followUps),
      "",
      "### 3. Serving again after a restart (in process, file store)",
      "",
      ...restartTable(restarts),
      "",
    ].join("\n");
    writeFileSync(join(ROOT, OUT), md);
    process.stdout.write(md);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
