import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlackAdapter } from "../../adapters/slack/index.js";
import { loadConfig } from "../../src/config.js";
import { ConversationService } from "../../src/conversation/service.js";
import { Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { customerRows, writeExcelWorkbook } from "../helpers/realworld.js";
import { APP_TOKEN, BOT_TOKEN, BOT_USER, FakeSlack, blockText, elements, type FakeMessage, type ServedFile } from "../helpers/fake-slack.js";
import { tempDir } from "../helpers/tmp.js";

// Real Bolt in Socket Mode against a fake Slack on loopback, driving the real conversation service and
// engine (offline agents, local runner): every Slack flow from the @mention to the report.

const CH = "CML0000001";
const ALICE = "UALICE0001";
const BOB = "UBOB000001";
const APPROVER = "UAPPROV001";

const tmp = tempDir("threadml-slack-");
const csv = (name: string, rows: number, seed = 7) => readFileSync(writeClassificationCsv(join(tmp.dir, name), { rows, seed }).file);
const uploadsDir = join(tmp.dir, "uploads");

interface Stack {
  fake: FakeSlack;
  engine: Engine;
  service: ConversationService;
}

/** Fake Slack, engine, adapter and conversation service, wired as `threadml start` wires them. */
async function startStack(search: { budgetS: number; trialsPerFamily: number }): Promise<Stack> {
  const fake = await FakeSlack.start("socket");
  const config = loadConfig(
    {},
    {
      dataDir: join(tmp.dir, ".threadml"),
      search: { ...search, sampleRows: 400, cvFolds: 3 },
      approvers: [APPROVER],
      limits: { maxUploadMb: 0.1 },
      slack: { botToken: BOT_TOKEN, appToken: APP_TOKEN, apiUrl: fake.apiUrl },
    },
  );
  const logger = createLogger("silent");
  const engine = new Engine({ config, logger, cwd: tmp.dir });
  const adapter = new SlackAdapter({ config, logger, uploadsDir }, { retryConfig: { retries: 3, minTimeout: 10, maxTimeout: 50 } });
  const service = new ConversationService(engine, [adapter], { approvers: config.approvers, logger, statusIntervalMs: 300 });
  await service.start();
  await fake.socketReady();
  return { fake, engine, service };
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  await stack?.service.stop();
  await stack?.engine.close();
  await stack?.fake.close();
}

let stack: Stack;
let fake: FakeSlack;

beforeAll(() => requirePython());

/** A user's post mentioning the bot, delivered as Slack does: `app_mention` and `message`, each acknowledged. */
async function mention(text: string, options: { user?: string; files?: ServedFile[]; thread?: string } = {}): Promise<string> {
  const p = fake.post({ user: options.user ?? ALICE, text: `<@${BOT_USER}> ${text}`, channel: CH, files: options.files, thread_ts: options.thread });
  const acks = await Promise.all([fake.deliver("events_api", p.mention!), fake.deliver("events_api", p.message)]);
  expect(acks.map((a) => a.status)).toEqual([200, 200]);
  return options.thread ?? p.ts;
}

/** A reply in a thread without a mention (only the `message` event). */
async function reply(thread: string, text: string, options: { user?: string; files?: ServedFile[] } = {}): Promise<void> {
  const p = fake.post({ user: options.user ?? ALICE, text, channel: CH, thread_ts: thread, files: options.files });
  await fake.deliver("events_api", p.message);
}

const click = (m: FakeMessage, match: string | RegExp, user = ALICE) => fake.deliver("interactive", fake.click(m, user, match));
const waitFor = (thread: string, match: (m: FakeMessage) => boolean, what: string, timeoutMs?: number) => fake.waitForMessage(CH, thread, match, what, timeoutMs);
const has = (m: FakeMessage, actionPrefix: string) => elements(m.blocks).some((e) => e.action_id?.startsWith(actionPrefix));
const isPlanCard = (m: FakeMessage) => /^I have \d plans/.test(m.text);
const isStatus = (m: FakeMessage) => /Evaluate plans|Decompose plans/.test(blockText(m.blocks));
const isReport = (m: FakeMessage) => m.blocks[0]?.type === "header";

describe("Slack adapter in Socket Mode", () => {
  beforeAll(async () => {
    stack = await startStack({ budgetS: 2, trialsPerFamily: 2 });
    fake = stack.fake;
  });
  afterAll(() => stopStack(stack));

  it("takes a mention with a CSV through question, revision, approval, live status and report with plots", async () => {
    const data = fake.addFile("bananas.csv", csv("bananas.csv", 300));
    const thread = await mention("build me a classifier", { files: [data] });
    // A retry of the mention (same event id, retry_attempt 1) must not start a second conversation.
    const retry = fake.post({ user: ALICE, text: `<@${BOT_USER}> build me a classifier`, channel: CH, ts: thread, files: [data] });
    (retry.mention as { event_id: string }).event_id = "EvRetried01";
    await fake.deliver("events_api", retry.mention!);
    await fake.deliver("events_api", retry.mention!, { retryNum: 1 });

    const question = await waitFor(thread, (m) => /Which column of bananas\.csv/.test(m.text), "the target question");
    expect(has(question, "threadml.answer")).toBe(true);
    expect(fake.downloads.filter((d) => d.fileId === data.id)).toEqual([{ fileId: data.id, auth: `Bearer ${BOT_TOKEN}`, status: 200 }]);

    await click(question, "Quality");
    const card = await waitFor(thread, isPlanCard, "the plan card");
    expect(has(card, "threadml.approve.best") && has(card, "threadml.revise") && has(card, "threadml.cancel")).toBe(true);
    // The reading is the card's first block, before anything trains.
    expect(card.blocks[0]).toMatchObject({ type: "section", text: { type: "plain_text", text: expect.stringMatching(/^I read: predict Quality\b/) } });
    await waitFor(thread, (m) => m.ts === question.ts && /Answered/.test(blockText(m.blocks)), "the question closed");
    expect(has(fake.messages.get(question.ts)!, "threadml.answer")).toBe(false);

    // Revise opens a modal; its submission re-plans with the feedback.
    const opened = fake.callsOf("views.open").length;
    await click(card, "threadml.revise");
    const view = await fake.waitForCall((c) => c.method === "views.open", "the revise modal", { from: fake.calls.length - 5 });
    expect(fake.callsOf("views.open").length).toBe(opened + 1);
    const viewId = [...fake.views.keys()].pop()!;
    expect(JSON.parse(view.args.view).callback_id).toBe("threadml.revise");
    await fake.deliver("interactive", fake.submit(viewId, ALICE, { feedback: "try extra trees please" }));
    const decided = await waitFor(thread, (m) => m.ts === card.ts && /Decision/.test(blockText(m.blocks)), "the decided plan card");
    expect(blockText(decided.blocks)).toMatch(new RegExp(`<@${ALICE}> asked for a revision`));
    expect(has(decided, "threadml.approve")).toBe(false);
    const revised = await waitFor(thread, (m) => isPlanCard(m) && m.ts !== card.ts, "the revised plan card");
    expect(blockText(revised.blocks)).toMatch(/Extra trees/);
    // Feedback about models re-plans without changing the reading.
    expect(blockText(revised.blocks)).toMatch(/^I read: predict Quality\b/);

    // One 429 on the card's edit is waited out, not lost.
    fake.rateLimit("chat.update", 1, 1);
    await click(revised, "threadml.approve.best");
    await waitFor(thread, (m) => m.ts === revised.ts && /approved/.test(blockText(m.blocks)), "the approved card", 30_000);
    const limited = fake.callsOf("chat.update").filter((c) => c.args.ts === revised.ts);
    expect(limited[0].status).toBe(429);
    expect(limited[1].status).toBe(200);
    expect(limited[1].at - limited[0].at).toBeGreaterThanOrEqual(1000);

    const report = await waitFor(thread, isReport, "the report", 150_000);
    const text = blockText(report.blocks);
    expect(text).toMatch(/Model deployed/);
    expect(text).toMatch(/Try it:[\s\S]*curl -s -X POST/);
    const status = fake.thread(CH, thread).find(isStatus)!;
    expect(status.edits).toBeGreaterThan(0);
    expect(blockText(status.blocks)).toMatch(/✅ Train/);
    expect(has(status, "threadml.cancel")).toBe(false);

    // Plots went up the files.uploadV2 way: upload URL, bytes, then completion in the thread.
    await fake.waitForCall((c) => c.method === "files.completeUploadExternal", "the plot upload");
    const plots = [...fake.uploads.values()].filter((u) => u.completed?.thread_ts === thread);
    expect(plots.length).toBeGreaterThan(0);
    expect(plots[0].bytes!.subarray(1, 4).toString()).toBe("PNG");

    const url = text.match(/Endpoint:\* (http:\/\/[\d.:]+)/)![1];
    expect((await fetch(`${url}/health`)).status).toBe(200);
    await reply(thread, "undeploy");
    await waitFor(thread, (m) => /Stopped serving \w+\./.test(m.text), "the undeploy answer");
    // The bot's own posts came back as message events (echoBotPosts) and were ignored, and the retries started nothing.
    expect(fake.ephemerals.filter((e) => e.user === BOT_USER)).toEqual([]);
    expect(fake.thread(CH, thread).filter((m) => /Which column/.test(m.text))).toHaveLength(1);
    expect(fake.thread(CH, thread).filter(isReport)).toHaveLength(1);
  });

  it("lets only the requester and approvers decide; others get an ephemeral message", async () => {
    const thread = await mention("predict Quality in this file", { files: [fake.addFile("b2.csv", csv("b2.csv", 250, 8))] });
    const card = await waitFor(thread, isPlanCard, "the plan card");
    const stale = fake.click(card, APPROVER, "threadml.cancel");

    await click(card, "threadml.approve.best", BOB);
    await fake.waitForCall(() => fake.ephemerals.some((e) => e.user === BOB), "the refusal to Bob");
    expect(fake.ephemerals.find((e) => e.user === BOB)?.text).toMatch(/Only the person who started this conversation/);
    expect(fake.messages.get(card.ts)!.edits).toBe(0);

    await click(card, "threadml.cancel", APPROVER);
    const decided = await waitFor(thread, (m) => m.ts === card.ts && /Decision/.test(blockText(m.blocks)), "the cancelled card");
    expect(blockText(decided.blocks)).toMatch(new RegExp(`<@${APPROVER}> cancelled`));
    expect(has(decided, "threadml.")).toBe(false);
    await waitFor(thread, (m) => isReport(m) && /cancelled/.test(blockText(m.blocks)), "the cancelled report");

    // A click that was on its way before the decision lands on a closed card.
    await fake.deliver("interactive", stale);
    await fake.waitForCall(() => fake.ephemerals.some((e) => e.user === APPROVER), "the already-decided note");
    expect(fake.ephemerals.find((e) => e.user === APPROVER)?.text).toMatch(/already been answered or decided/);
  });

  it("downloads attachments with the bot token, refuses unsupported and oversized ones, and keeps the rest", async () => {
    const thread = await mention("build me a classifier");
    await waitFor(thread, (m) => /Which dataset should I use/.test(m.text), "the dataset question");
    const good = csv("good data.csv", 220, 9);
    const files = [
      fake.addFile("report.pdf", "%PDF-1.4 not data"),
      fake.addFile("big.csv", csv("big.csv", 2500, 10)),
      fake.addFile("liar.csv", csv("liar.csv", 2500, 11), { size: 100 }),
      fake.addFile("../../good data.csv", good),
    ];
    await reply(thread, "here it is", { files });
    const refused = await waitFor(thread, (m) => /can't use/.test(m.text), "the refused files note");
    expect(refused.text).toMatch(/“report\.pdf”: I read tables with a header row as CSV .*Excel \(\.xlsx\), JSON, JSON lines or Parquet, or a \.zip archive/);
    expect(refused.text).toMatch(/“big\.csv”: it is \d+ KB and the limit is 102 KB/);
    expect(refused.text).toMatch(/“liar\.csv”: it is larger than the limit/);
    await waitFor(thread, (m) => /Which column of good_data\.csv/.test(m.text), "the target question about the kept file");

    const folder = readdirSync(uploadsDir).find((d) => d.includes(thread.replace(".", "_")))!;
    const stored = readdirSync(join(uploadsDir, folder));
    expect(stored).toEqual(["good_data.csv"]);
    expect(readFileSync(join(uploadsDir, folder, "good_data.csv")).equals(good)).toBe(true);
    expect(fake.downloads.filter((d) => d.auth !== `Bearer ${BOT_TOKEN}`)).toEqual([]);
    expect(fake.downloads.map((d) => d.fileId)).not.toContain(files[0].id);
    expect(fake.downloads.map((d) => d.fileId)).not.toContain(files[1].id);
  });

  it("takes an Excel workbook with a leaked column: the card says how it read the file and what it left out, and the model deploys", async () => {
    const { header, rows } = customerRows({ rows: 200, seed: 41 });
    // the answer written a second way beside it: it must be named and left out
    const leaky = rows.map((r) => [...r, r[r.length - 1] === "yes" ? "CHURNED" : "ACTIVE"]);
    const book = writeExcelWorkbook(join(tmp.dir, "Kunden Übersicht.xlsx"), [{ name: "Kunden", header: [...header, "account_state"], rows: leaky, dateColumns: ["SignupDate"] }]);
    const thread = await mention("predict Churn", { files: [fake.addFile("Kunden Übersicht.xlsx", readFileSync(book))] });
    const card = await waitFor(thread, isPlanCard, "the plan card", 60_000);
    const text = blockText(card.blocks);
    // the upload is stored under a safe name (files.ts); the columns keep their own names
    expect(text).toMatch(/Data: Kunden_Ubersicht\.xlsx · 200 rows × 8 columns · read as Excel, sheet "Kunden"/);
    expect(text).toMatch(/dates SignupDate → calendar features/);
    expect(text).toMatch(/account_state \(predicts the target\)/);
    expect(text).toMatch(/Left out "account_state"/);
    await click(card, "threadml.approve.best");
    const report = await waitFor(thread, isReport, "the report", 150_000);
    expect(blockText(report.blocks)).toMatch(/Model deployed/);
    await reply(thread, "undeploy");
    await waitFor(thread, (m) => /Stopped serving \w+\./.test(m.text), "the undeploy answer");
  });

  it("waits out a 429 on chat.postMessage as Retry-After says", async () => {
    fake.rateLimit("chat.postMessage", 1, 1);
    const from = fake.calls.length;
    const thread = await mention("predict Quality", { files: [fake.addFile("r.csv", csv("r.csv", 200, 30))] });
    await waitFor(thread, isPlanCard, "the plan card after a 429", 30_000);
    const posts = fake.calls.slice(from).filter((c) => c.method === "chat.postMessage");
    expect(posts[0].status).toBe(429);
    expect(posts[1].status).toBe(200);
    expect(posts[1].at - posts[0].at).toBeGreaterThanOrEqual(1000);
  });
});

describe("cancelling a running job in Slack", () => {
  // A search budget far longer than the test: only a cancel ends these conversations.
  beforeAll(async () => {
    stack = await startStack({ budgetS: 120, trialsPerFamily: 500 });
    fake = stack.fake;
  });
  afterAll(() => stopStack(stack));

  it("cancels a running job from the status message's button, an ❌ reaction or a cancel reply", async () => {
    const threads: string[] = [];
    for (const [i, name] of ["c1.csv", "c2.csv", "c3.csv"].entries())
      threads.push(await mention("predict Quality, accuracy at least 0.8", { files: [fake.addFile(name, csv(name, 300, 20 + i))] }));
    for (const t of threads) await click(await waitFor(t, isPlanCard, "a plan card"), "threadml.approve.best");
    // The harness reports progress once the job runs: that is when a cancel has a job to stop.
    const running = (m: FakeMessage) => isStatus(m) && has(m, "threadml.cancel") && /\[#*-*\] \d+\/\d+/.test(blockText(m.blocks));
    const statuses = await Promise.all(threads.map((t) => waitFor(t, running, "a status message of a running job", 90_000)));

    await click(statuses[0], "threadml.cancel");
    await fake.deliver("events_api", fake.reaction(ALICE, "x", CH, statuses[1].ts));
    await reply(threads[2], "cancel");

    for (const t of threads) {
      await waitFor(t, (m) => /Cancelling the running job/.test(m.text), "the cancel acknowledgement");
      const end = await waitFor(t, isReport, "the end of the conversation", 60_000);
      expect(blockText(end.blocks)).toMatch(/Conversation cancelled/);
    }
  });
});
