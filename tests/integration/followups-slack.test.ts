import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlackAdapter } from "../../adapters/slack/index.js";
import { loadConfig } from "../../src/config.js";
import { ConversationService } from "../../src/conversation/service.js";
import { createEngine, type Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { createStore } from "../../src/store/index.js";
import type { ConversationStore } from "../../src/store/types.js";
import { requirePython } from "../helpers/cli.js";
import { APP_TOKEN, BOT_TOKEN, BOT_USER, FakeSlack, blockText, elements, type FakeMessage } from "../helpers/fake-slack.js";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/tmp.js";

// After a deployment in a Slack thread (real Bolt against the fake Slack, conversations and the model
// registry in a real redis-server): a file attached in the thread comes back scored, "what matters?"
// names the features that drive the model, "try again without X" plans again on the same data and the
// new report compares with the first model, someone else may not retrain, a file without the model's
// columns is explained, and after a restart of ThreadML the registry still lists the model and its
// endpoint answers.

const CH = "CFOLLOW001";
const ALICE = "UALICE0001";
const MALLORY = "UMALLORY01";

const tmp = tempDir("threadml-followups-");
let redis: RedisServer;

/** Churn is driven by tenure (strongly) and plan (a little); noise is noise. */
function churnCsv(rows: number, seed: number, drop: string[] = []): Buffer {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const header = ["tenure", "plan", "monthly", "noise", "churn"].filter((c) => !drop.includes(c));
  const lines = [header.join(",")];
  for (let i = 0; i < rows; i++) {
    const tenure = Math.floor(rand() * 72);
    const plan = ["basic", "plus", "pro"][Math.floor(rand() * 3)];
    const monthly = (20 + rand() * 80).toFixed(2);
    const noise = rand().toFixed(3);
    const churn = tenure + (plan === "basic" ? -8 : 0) + rand() * 16 < 30 ? "yes" : "no";
    const row: Record<string, string> = { tenure: String(tenure), plan, monthly, noise, churn };
    lines.push(header.map((c) => row[c]).join(","));
  }
  return Buffer.from(`${lines.join("\n")}\n`);
}

interface Stack {
  fake: FakeSlack;
  engine: Engine;
  service: ConversationService;
  store: ConversationStore;
}

async function startStack(fake: FakeSlack): Promise<Stack> {
  const config = loadConfig(
    {},
    {
      dataDir: join(tmp.dir, ".threadml"),
      search: { budgetS: 2, trialsPerFamily: 2, sampleRows: 400, cvFolds: 3 },
      redis: { url: redis.url, prefix: "followups", leaseTtlS: 2 },
      slack: { botToken: BOT_TOKEN, appToken: APP_TOKEN, apiUrl: fake.apiUrl },
    },
  );
  const logger = createLogger("silent");
  const store = await createStore(config, logger);
  const engine = await createEngine({ config, logger, cwd: tmp.dir, checkpointer: store.checkpointer });
  const adapter = new SlackAdapter({ config, logger, uploadsDir: join(tmp.dir, "uploads") }, { retryConfig: { retries: 3, minTimeout: 10, maxTimeout: 50 } });
  const service = new ConversationService(engine, [adapter], { approvers: [], logger, store, statusIntervalMs: 300, leaseTtlMs: 2000 });
  await service.start();
  await fake.socketReady();
  return { fake, engine, service, store };
}

/** A restart: the chat stops, servers stop and jobs detach, as `threadml start` does on SIGTERM with Redis. */
async function stopStack(stack: Stack): Promise<void> {
  await stack.service.stop({ drain: false });
  await stack.engine.detach();
  await stack.store.close();
}

let stack: Stack;
let fake: FakeSlack;

const waitFor = (thread: string, match: (m: FakeMessage) => boolean, what: string, timeoutMs = 120_000) => fake.waitForMessage(CH, thread, match, what, timeoutMs);
const isPlanCard = (m: FakeMessage) => /^I have \d plans/.test(m.text);
const isReport = (m: FakeMessage) => m.blocks[0]?.type === "header";
const text = (m: FakeMessage) => `${m.text}\n${blockText(m.blocks)}`;
const uploadsIn = (thread: string) => [...fake.uploads.values()].filter((u) => u.completed?.thread_ts === thread);

/** Files go up after the message about them: waits for the upload to complete in the thread. */
async function uploaded(thread: string, match: RegExp, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = uploadsIn(thread).find((u) => match.test(u.filename));
    if (found) return found;
    if (Date.now() > until) throw new Error(`no upload matching ${match} in the thread; uploads: ${uploadsIn(thread).map((u) => u.filename).join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function say(thread: string | null, words: string, options: { user?: string; file?: { name: string; bytes: Buffer } } = {}): Promise<string> {
  const files = options.file ? [fake.addFile(options.file.name, options.file.bytes)] : undefined;
  const p = fake.post({ user: options.user ?? ALICE, text: `<@${BOT_USER}> ${words}`, channel: CH, files, ...(thread ? { thread_ts: thread } : {}) });
  await Promise.all([fake.deliver("events_api", p.mention!), fake.deliver("events_api", p.message)]);
  return thread ?? p.ts;
}

beforeAll(async () => {
  requirePython();
  redis = await startRedisServer();
  fake = await FakeSlack.start("socket");
  stack = await startStack(fake);
}, 60_000);

afterAll(async () => {
  if (stack) await stopStack(stack).catch(() => {});
  await fake?.close();
  await redis?.stop();
});

describe("follow-ups in a Slack thread after a deployment", () => {
  let thread: string;
  let endpoint: string;

  it("deploys a model and offers the follow-ups on the report", async () => {
    thread = await say(null, "predict churn from customers.csv", { file: { name: "customers.csv", bytes: churnCsv(500, 3) } });
    const card = await waitFor(thread, isPlanCard, "the plan card");
    await fake.deliver("interactive", fake.click(card, ALICE, "threadml.approve.best"));
    const report = await waitFor(thread, isReport, "the report", 180_000);
    expect(text(report)).toMatch(/Model deployed/);
    expect(text(report)).toMatch(/Registered as\W+churn\b/);
    const buttons = elements(report.blocks).map((e) => e.value ?? "");
    expect(buttons).toEqual(expect.arrayContaining(["explain", "compare", "undeploy"]));
    const models = await stack.service.registry.list();
    expect(models.map((m) => [m.name, m.status])).toEqual([["churn", "serving"]]);
    endpoint = models[0].url!;
    // every report carries the portable bundle
    expect((await uploaded(thread, /^churn-model\.zip$/)).bytes?.length).toBeGreaterThan(1000);
  }, 240_000);

  it("scores a file attached in the thread and posts the predictions back", async () => {
    const fresh = churnCsv(40, 99, ["churn"]);
    await say(thread, "score this please", { file: { name: "march.csv", bytes: fresh } });
    const done = await waitFor(thread, (m) => /^Scored 40 rows of march\.csv/m.test(text(m)), "the scoring answer");
    expect(text(done)).toMatch(/Predicted churn: (yes|no): \d+/);
    const upload = await uploaded(thread, /^march-predictions\.csv$/);
    const lines = upload!.bytes!.toString("utf8").trim().split("\n");
    expect(lines).toHaveLength(41);
    expect(lines[0]).toMatch(/^tenure,plan,monthly,noise,prediction/);
    expect(lines.slice(1).every((l) => /,(yes|no)(,|$)/.test(l))).toBe(true);
  }, 120_000);

  it("explains a file whose columns do not match instead of scoring it", async () => {
    await say(thread, "and these?", { file: { name: "april.csv", bytes: churnCsv(20, 5, ["tenure", "churn"]) } });
    const answer = await waitFor(thread, (m) => /april\.csv lacks/.test(text(m)), "the mismatch message");
    expect(text(answer)).toMatch(/"tenure"/);
    expect(uploadsIn(thread).some((u) => u.filename === "april-predictions.csv")).toBe(false);
  }, 60_000);

  it("names the features that matter, with the importance plot", async () => {
    await say(thread, "what matters most?");
    const answer = await waitFor(thread, (m) => /^What matters most to churn/m.test(text(m)), "the explanation");
    expect(text(answer)).toMatch(/1\. tenure/);
    expect((await uploaded(thread, /^importance\.png$/)).bytes?.subarray(1, 4).toString()).toBe("PNG");
  }, 120_000);

  it("does not let someone else retrain or stop the model", async () => {
    await say(thread, "try again without plan", { user: MALLORY });
    await waitFor(thread, () => false, "nothing", 1500).catch(() => {});
    const refusal = fake.ephemerals.find((e) => e.user === MALLORY && /Only the person who started/.test(e.text));
    expect(refusal).toBeTruthy();
    expect((await stack.service.registry.list()).map((m) => m.name)).toEqual(["churn"]);
  }, 30_000);

  it("re-plans on the same data without the column and compares the new model with the first", async () => {
    const seen = new Set(fake.messages.keys());
    await say(thread, "try again without tenure");
    const card = await waitFor(thread, (m) => isPlanCard(m) && !seen.has(m.ts), "the new plan card");
    expect(blockText(card.blocks)).toMatch(/leaving out[^\n]*tenure/);
    await fake.deliver("interactive", fake.click(card, ALICE, "threadml.approve.best"));
    const report = await waitFor(thread, (m) => isReport(m) && /Compared with churn/.test(text(m)), "the second report", 180_000);
    expect(text(report)).toMatch(/Registered as\W+churn-2\b/);
    expect(text(report)).toMatch(/accuracy [\d.]+ → [\d.]+/);
    const models = await stack.service.registry.list(`slack:${CH}:${thread}`);
    expect(models.map((m) => m.name)).toEqual(["churn", "churn-2"]);
    // the second model really was trained without the column
    expect((models[1].context.requirements as { drop_columns: string[] }).drop_columns).toContain("tenure");
    await say(thread, "compare the models");
    const table = await waitFor(thread, (m) => /Models of this thread \(2\)/.test(text(m)), "the comparison table");
    expect(text(table)).toMatch(/churn-2/);
  }, 300_000);

  it("keeps the registry across a restart, serves the model again and its endpoint answers", async () => {
    await stopStack(stack);
    // the server stopped with the process
    await expect(fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    stack = await startStack(fake);
    const models = await stack.service.registry.list();
    expect(models.map((m) => [m.name, m.status])).toEqual([
      ["churn", "serving"],
      ["churn-2", "serving"],
    ]);
    const churn = models[0];
    // served again at the same address: clients need no new URL
    expect(churn.url).toBe(endpoint);
    const health = await fetch(`${churn.url}/health`, { headers: churn.token ? { authorization: `Bearer ${churn.token}` } : {} });
    expect(health.status).toBe(200);
    const rows = [{ tenure: 2, plan: "basic", monthly: 70, noise: 0.5 }];
    const res = await fetch(`${churn.url}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ rows }) });
    expect(((await res.json()) as { predictions: string[] }).predictions).toEqual(["yes"]);

    // the thread still knows its models: a follow-up after the restart
    await say(thread, "models");
    const listed = await waitFor(thread, (m) => /Registered models \(2\)/.test(text(m)), "the registry listing");
    expect(text(listed)).toMatch(/churn-2/);
    // a reply without a mention, with a file: after the restart this process learns the thread from the store
    const file = fake.addFile("april-full.csv", churnCsv(15, 21, ["churn"]));
    const p = fake.post({ user: ALICE, text: "and these?", channel: CH, thread_ts: thread, files: [file] });
    await fake.deliver("events_api", p.message);
    await waitFor(thread, (m) => /^Scored 15 rows of april-full\.csv with churn-2/m.test(text(m)), "the scoring after the restart");

    await say(thread, "undeploy churn");
    await waitFor(thread, (m) => /Stopped serving churn\b/.test(text(m)), "the undeploy answer");
    expect((await stack.service.registry.get("churn"))?.status).toBe("stopped");
    await expect(fetch(`${churn.url}/health`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  }, 180_000);
});
