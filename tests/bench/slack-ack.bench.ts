// Slack acknowledgement benchmark: how fast events are acknowledged while 200 conversations run, for
// ThreadML (`threadml start`, Socket Mode and HTTP mode) and, in the same run, a bare Bolt app that only
// acknowledges (rounds alternate the two). The fake Slack (tests/helpers/fake-slack.ts) runs in this process and times each ack:
// the Socket Mode ack message, or the HTTP response. The apps run in child processes, so their load does
// not skew the clock. Run with `npm run bench:slack` (BENCH_CONVERSATIONS, BENCH_RATE, BENCH_RUNS, BENCH_MODES
// change the load, the rounds and the transports; BENCH_RENICE=N lowers the priority of ThreadML's main
// thread by N, to show how much of the gap is CPU contention).
// The Markdown result goes to stdout, progress to stderr.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { App, HTTPReceiver, LogLevel, SocketModeReceiver } from "@slack/bolt";
import { ROOT } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { APP_TOKEN, BOT_TOKEN, BOT_USER, FakeSlack, SIGNING_SECRET, type Ack, type FakeMessage, type Mode } from "../helpers/fake-slack.js";

const CONVERSATIONS = Number(process.env.BENCH_CONVERSATIONS ?? 200);
/** New conversations per second while the load builds up. */
const RATE = Number(process.env.BENCH_RATE ?? 100);
const WARMUP = 20;
const RENICE = Number(process.env.BENCH_RENICE ?? 0);
const CH = "CBENCH0001";

// ----------------------------------------------------------------------------- the bare app

/** A Bolt app that only acknowledges: the floor ThreadML is compared with. */
async function bareApp(mode: Mode): Promise<void> {
  const slackApiUrl = process.env.SLACK_API_URL!;
  const receiver =
    mode === "socket"
      ? new SocketModeReceiver({ appToken: APP_TOKEN, logLevel: LogLevel.ERROR, installerOptions: { clientOptions: { slackApiUrl } } })
      : new HTTPReceiver({ signingSecret: SIGNING_SECRET, port: Number(process.env.PORT), logLevel: LogLevel.ERROR });
  const app = new App({ token: BOT_TOKEN, receiver, logLevel: LogLevel.ERROR, clientOptions: { slackApiUrl } });
  app.event("app_mention", async () => {});
  app.event("message", async () => {});
  app.action(/.*/, async ({ ack }) => ack());
  await app.start();
  process.stderr.write("bare app ready\n");
  await new Promise<void>((resolve) => process.once("SIGTERM", resolve));
  await app.stop();
  process.exit(0);
}

// ----------------------------------------------------------------------------- driving one app

interface Result {
  app: string;
  mode: Mode;
  acks: number[];
  mentionAcks: number[];
  clickAcks: number[];
  burstPerS: number;
  conversationsPerS: number | null;
  duplicates: number | null;
  rssMb: number;
  peakRssMb: number;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

function memory(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
  return { rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024 };
}

function startChild(kind: "threadml" | "bare", mode: Mode, fake: FakeSlack, port: number, dataDir: string): { child: ChildProcess; ready: Promise<void> } {
  const env: Record<string, string> = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLACK_|PORT$|DISCORD_)/.test(k))) as Record<string, string>,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_API_URL: fake.apiUrl,
    THREADML_DATA_DIR: dataDir,
    LOG_LEVEL: "error",
    ...(mode === "socket" ? { SLACK_APP_TOKEN: APP_TOKEN } : { SLACK_SIGNING_SECRET: SIGNING_SECRET, PORT: String(port) }),
  };
  // Both apps start through the same TypeScript loader, so neither gains from a compiled build.
  const args = [join(ROOT, "bin/run-ts.mjs"), join(ROOT, "tests/bench/slack-ack.bench.ts"), kind === "threadml" ? "--threadml" : "--bare", mode];
  const child = spawn(process.execPath, args, { cwd: dataDir, env, stdio: ["ignore", "ignore", "pipe"] });
  // If the bench itself fails, the app must not outlive it.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  child.once("exit", () => process.off("exit", reap));
  let stderr = "";
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      stderr += d;
      if (/listening on slack|bare app ready/.test(stderr)) resolve();
    });
    child.on("exit", (code) => reject(new Error(`${kind} exited (${code}) before it was ready:\n${stderr}`)));
  });
  return { child, ready };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A mention with a CSV (as `app_mention` and its `message` twin); every tenth is also retried by Slack. */
async function openConversation(fake: FakeSlack, csv: Buffer, i: number, acks: number[]): Promise<string> {
  const file = fake.addFile(`data-${i}.csv`, csv);
  // Half leave out the target (a question with buttons follows), half name it (straight to the plan card).
  const text = i % 2 ? `<@${BOT_USER}> build me a classifier` : `<@${BOT_USER}> predict Quality`;
  const p = fake.post({ user: `UUSER${String(i).padStart(5, "0")}`, text, channel: CH, files: [file] });
  const sends: Array<Promise<Ack>> = [fake.deliver("events_api", p.mention!), fake.deliver("events_api", p.message)];
  if (i % 10 === 0) sends.push(fake.deliver("events_api", p.mention!, { retryNum: 1 }));
  for (const a of await Promise.all(sends)) acks.push(a.ms);
  return p.ts;
}

const isQuestion = (m: FakeMessage) => /^Which column/.test(m.text);
const isCard = (m: FakeMessage) => /^I have \d plans/.test(m.text);

async function drive(kind: "threadml" | "bare", mode: Mode, csv: Buffer): Promise<Result> {
  const fake = await FakeSlack.start(mode);
  fake.echoBotPosts = false;
  const dataDir = mkdtempSync(join(os.tmpdir(), "threadml-slack-bench-"));
  const port = await freePort();
  const { child, ready } = startChild(kind, mode, fake, port, dataDir);
  try {
    await ready;
    // Diagnosis aid: lower the priority of ThreadML's main thread only (Linux: a thread id is a pid here),
    // leaving its Slack connection thread as it is.
    if (kind === "threadml" && RENICE) os.setPriority(child.pid!, RENICE);
    if (mode === "socket") await fake.socketReady();
    else fake.eventsUrl = `http://127.0.0.1:${port}/slack/events`;

    // Warm-up: the first conversations load modules and compile hot paths in both apps.
    const warm: number[] = [];
    const warmThreads = await Promise.all(Array.from({ length: WARMUP }, (_, i) => openConversation(fake, csv, 100_000 + i, warm)));
    if (kind === "threadml") await Promise.all(warmThreads.map((t) => fake.waitForMessage(CH, t, (m) => isQuestion(m) || isCard(m), "a warm-up reply", 120_000)));

    // Load: CONVERSATIONS conversations opened at RATE per second; each question is answered with a click.
    const mentionAcks: number[] = [];
    const clickAcks: number[] = [];
    const started = performance.now();
    const threads: string[] = [];
    const clicks: Array<Promise<void>> = [];
    const opened: Array<Promise<void>> = [];
    for (let i = 0; i < CONVERSATIONS; i++) {
      opened.push(
        openConversation(fake, csv, i, mentionAcks).then(async (ts) => {
          threads[i] = ts;
          if (i % 2 === 0) return;
          // The bare app posts nothing: it gets the same click on a question message of our making.
          const question =
            kind === "threadml"
              ? await fake.waitForMessage(CH, ts, isQuestion, "a question", 300_000)
              : { channel: CH, ts: fake.ts(), thread_ts: ts, text: "Which column?", edits: 0, blocks: [{ type: "actions", block_id: "b1", elements: [{ type: "button", action_id: "threadml.answer.0", text: { type: "plain_text", text: "Quality" }, value: "Quality" }] }] };
          clicks.push(fake.deliver("interactive", fake.click(question, `UUSER${String(i).padStart(5, "0")}`, "threadml.answer.0")).then((a) => void clickAcks.push(a.ms)));
        }),
      );
      await sleep(1000 / RATE);
    }
    await Promise.all(opened);
    await Promise.all(clicks);
    let conversationsPerS: number | null = null;
    let duplicates: number | null = null;
    if (kind === "threadml") {
      await Promise.all(threads.map((t) => fake.waitForMessage(CH, t, isCard, "a plan card", 300_000)));
      conversationsPerS = CONVERSATIONS / ((performance.now() - started) / 1000);
      // Every conversation: exactly one question (or none) and exactly one plan card, whatever was retried.
      duplicates = threads.reduce((n, t) => n + Math.max(0, fake.thread(CH, t).filter(isCard).length - 1) + Math.max(0, fake.thread(CH, t).filter(isQuestion).length - 1), 0);
    }
    const mem = memory(child.pid!);

    // Throughput: a burst of deliveries sent at once (the twin events of posts already taken in, so no new work).
    const burst = threads.slice(0, 100).map((t) => fake.callback({ type: "message", user: "UBURST0001", text: "burst", ts: t, channel: CH, event_ts: t, channel_type: "channel" }));
    const burstStart = performance.now();
    await Promise.all(burst.map((b) => fake.deliver("events_api", b)));
    const burstPerS = burst.length / ((performance.now() - burstStart) / 1000);

    return { app: kind === "threadml" ? "ThreadML" : "bare Bolt (ack only)", mode, acks: [...mentionAcks, ...clickAcks], mentionAcks, clickAcks, burstPerS, conversationsPerS, duplicates, ...mem };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode === null ? child.once("exit", r) : r(null)));
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------------------------- report

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const ms = (x: number) => x.toFixed(1);

/** One row per mode and app: the acks of every round pooled, throughput averaged, memory at its largest. */
function pool(results: Result[]): Result[] {
  const rows = new Map<string, Result>();
  for (const r of results) {
    const key = `${r.mode}/${r.app}`;
    const row = rows.get(key);
    if (!row) rows.set(key, { ...r, burstPerS: r.burstPerS / runsOf(results, r), conversationsPerS: r.conversationsPerS === null ? null : r.conversationsPerS / runsOf(results, r) });
    else {
      row.acks = [...row.acks, ...r.acks];
      row.mentionAcks = [...row.mentionAcks, ...r.mentionAcks];
      row.clickAcks = [...row.clickAcks, ...r.clickAcks];
      row.burstPerS += r.burstPerS / runsOf(results, r);
      if (row.conversationsPerS !== null && r.conversationsPerS !== null) row.conversationsPerS += r.conversationsPerS / runsOf(results, r);
      if (row.duplicates !== null && r.duplicates !== null) row.duplicates += r.duplicates;
      row.rssMb = Math.max(row.rssMb, r.rssMb);
      row.peakRssMb = Math.max(row.peakRssMb, r.peakRssMb);
    }
  }
  return [...rows.values()];
}

const runsOf = (results: Result[], r: Result) => results.filter((x) => x.mode === r.mode && x.app === r.app).length;

function table(rows: Result[]): string {
  const lines = [
    "| mode | app | acks | p50 ms | p99 ms | max ms | mention p99 ms | click p99 ms | burst acks/s | conversations/s to plan card | duplicate runs | RSS MB (peak) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows)
    lines.push(
      `| ${r.mode} | ${r.app} | ${r.acks.length} | ${ms(percentile(r.acks, 50))} | ${ms(percentile(r.acks, 99))} | ${ms(Math.max(...r.acks))} | ${ms(percentile(r.mentionAcks, 99))} | ${ms(percentile(r.clickAcks, 99))} | ${r.burstPerS.toFixed(0)} | ${r.conversationsPerS?.toFixed(1) ?? "—"} | ${r.duplicates ?? "—"} | ${r.rssMb.toFixed(0)} (${r.peakRssMb.toFixed(0)}) |`,
    );
  return lines.join("\n");
}

const median = (xs: number[]) => percentile(xs, 50);

function verdicts(rows: Result[], results: Result[]): string {
  const lines: string[] = [];
  for (const mode of ["socket", "http"] as const) {
    const ours = rows.find((r) => r.mode === mode && r.app === "ThreadML");
    const bare = rows.find((r) => r.mode === mode && r.app !== "ThreadML");
    if (!ours || !bare) continue;
    const p99 = percentile(ours.acks, 99);
    const per = (app: string) => results.filter((r) => r.mode === mode && r.app === app).map((r) => percentile(r.acks, 99));
    const [oursRounds, bareRounds] = [per(ours.app), per(bare.app)];
    // Each round's ratio compares the two apps under the same machine load; the median is robust to a noisy round.
    const ratio = median(oursRounds.map((x, i) => x / bareRounds[i]));
    lines.push(
      `- ${mode}: ThreadML ack p99 ${ms(p99)} ms over all rounds (${p99 <= 20 ? "≤" : ">"} 20 ms); per round ${oursRounds.map(ms).join(" / ")} ms against the bare app's ${bareRounds.map(ms).join(" / ")} ms, a median ratio of ${ratio.toFixed(2)}× (${ratio <= 1.2 ? "≤" : ">"} 1.2×); duplicate runs: ${ours.duplicates}.`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const modes = (process.env.BENCH_MODES ?? "socket,http").split(",") as Mode[];
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const dir = mkdtempSync(join(os.tmpdir(), "threadml-slack-bench-data-"));
  const csv = readFileSync(writeClassificationCsv(join(dir, "data.csv"), { rows: 300, seed: 5 }).file);
  rmSync(dir, { recursive: true, force: true });
  const results: Result[] = [];
  const load0 = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  // Rounds alternate the two apps, so both see the machine in the same state.
  for (let round = 1; round <= runs; round++)
    for (const mode of modes)
      for (const kind of ["bare", "threadml"] as const) {
        process.stderr.write(`· round ${round}/${runs}, ${mode} / ${kind}: ${CONVERSATIONS} conversations at ${RATE}/s\n`);
        results.push(await drive(kind, mode, csv));
      }
  const rows = pool(results);
  const cpus = os.cpus();
  const machine = `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; load average ${load0} at the start, ${os.loadavg().map((x) => x.toFixed(2)).join(" ")} at the end`;
  process.stdout.write(
    `Machine: ${machine}.${RENICE ? ` ThreadML's main thread reniced by +${RENICE}.` : ""}\n${runs} round(s); in each, ${CONVERSATIONS} conversations opened at ${RATE}/s (a mention with a 300-row CSV, delivered as app_mention and message, every tenth also retried), half of them answered with a button click, after ${WARMUP} warm-up conversations.\n\n${table(rows)}\n\n${verdicts(rows, results)}\n`,
  );
}

if (process.argv[2] === "--bare") await bareApp(process.argv[3] as Mode);
// `threadml start`, configured by the environment like any deployment.
else if (process.argv[2] === "--threadml") await (await import("../../src/cli.js")).main([process.argv[0], "threadml", "start"]);
else await main();
