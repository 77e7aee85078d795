import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { BOT_TOKEN, BOT_USER, FakeSlack, SIGNING_SECRET } from "../helpers/fake-slack.js";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/tmp.js";
import { freePort } from "../helpers/ports.js";

// Two ThreadML processes behind one Slack app (HTTP mode, as behind a load balancer) sharing a real
// redis-server: Slack's retries and duplicate deliveries reach both, and a conversation one process
// started is carried on by the other. Every event must be handled once, every step run once.

const tmp = tempDir("threadml-replicas-");
let redis: RedisServer;
let fake: FakeSlack;
const replicas: Array<{ child: ChildProcess; port: number; stderr: () => string }> = [];


async function replica(): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const port = await freePort();
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLACK_|PORT$|DISCORD_|THREADML_|REDIS_URL)/.test(k)));
  const child = spawn(process.execPath, [BIN, "start"], {
    cwd: tmp.dir,
    env: {
      ...base,
      // Replicas share the data folder (on several hosts: a shared volume), as they share Redis.
      THREADML_DATA_DIR: join(tmp.dir, ".threadml"),
      THREADML_SEARCH_BUDGET_S: "2",
      LOG_LEVEL: "warn",
      REDIS_URL: redis.url,
      SLACK_API_URL: fake.apiUrl,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const r = { child, port, stderr: () => stderr };
  replicas.push(r);
  await new Promise<void>((resolve, reject) => {
    const tick = setInterval(() => {
      if (/listening on slack/.test(stderr)) done(resolve);
      else if (child.exitCode !== null) done(() => reject(new Error(`replica exited (${child.exitCode}):\n${stderr}`)));
    }, 50);
    const done = (f: () => void) => {
      clearInterval(tick);
      f();
    };
  });
  return r;
}

/** Delivers one event (same payload, same ids) to each replica in turn, as Slack's retries can. */
async function toEach(targets: Array<{ port: number }>, type: "events_api" | "interactive", payload: unknown): Promise<number[]> {
  const statuses: number[] = [];
  for (const [i, t] of targets.entries()) {
    fake.eventsUrl = `http://127.0.0.1:${t.port}/slack/events`;
    statuses.push((await fake.deliver(type, payload, i ? { retryNum: i } : {})).status);
  }
  return statuses;
}

beforeAll(async () => {
  requirePython();
  redis = await startRedisServer();
  fake = await FakeSlack.start("http");
});

afterAll(async () => {
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGTERM");
  await Promise.all(replicas.map((r) => (r.child.exitCode === null && r.child.signalCode === null ? new Promise((res) => r.child.once("exit", res)) : null)));
  await fake?.close();
  await redis?.stop();
}, 60_000);

describe("two ThreadML replicas sharing Redis", () => {
  it("handle each delivery once and carry one conversation across both, training once", async () => {
    const [a, b] = [await replica(), await replica()];
    const data = fake.addFile("bananas.csv", readFileSync(writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 400, seed: 5 }).file));
    const p = fake.post({ user: "UALICE0001", text: `<@${BOT_USER}> predict Quality, accuracy at least 0.8`, channel: "CREPL00001", files: [data] });

    // Slack sends app_mention and message for the post; both go to both replicas.
    expect(await toEach([a, b], "events_api", p.mention!)).toEqual([200, 200]);
    expect(await toEach([b, a], "events_api", p.message)).toEqual([200, 200]);
    const card = await fake.waitForMessage("CREPL00001", p.ts, (m) => /^I have \d plans/.test(m.text), "the plan card");

    // The approval reaches the other replica first, then the first one as a duplicate.
    const click = fake.click(card, "UALICE0001", /approve/i);
    await toEach([b, a], "interactive", click);
    await fake.waitForMessage("CREPL00001", p.ts, (m) => /Model deployed/i.test(m.text + JSON.stringify(m.blocks ?? [])), "the report", 240_000);

    const posted = fake.callsOf("chat.postMessage").map((c) => JSON.stringify(c.args));
    expect(posted.filter((t) => /I have \d plans/.test(t))).toHaveLength(1);
    expect(posted.filter((t) => /Model deployed/i.test(t))).toHaveLength(1);
    // One decision on the card, and one run of each kind.
    expect(fake.callsOf("chat.update").filter((c) => JSON.stringify(c.args).includes("approved"))).toHaveLength(1);
    const jobs = join(tmp.dir, ".threadml", "jobs");
    const full = existsSync(jobs) ? readdirSync(jobs).filter((d) => /-full-\d+$/.test(d)) : [];
    expect(full).toHaveLength(1);
    for (const r of [a, b]) expect(r.stderr()).not.toMatch(/"level":50/);
  }, 400_000);
});
