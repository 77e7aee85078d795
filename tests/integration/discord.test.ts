import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscordAdapter } from "../../adapters/discord/index.js";
import { loadConfig } from "../../src/config.js";
import { ConversationService } from "../../src/conversation/service.js";
import { Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { FakeDiscord, type FakeMessage } from "../helpers/fake-discord.js";
import { tempDir } from "../helpers/tmp.js";

// Whole conversations on Discord: real discord.js against a fake Discord on loopback, the real conversation
// service and graph with the offline engine, and real training in the sandbox for the one flow that approves.

const tmp = tempDir("threadml-discord-");
const csvPath = join(tmp.dir, "bananas.csv");
let csv: Buffer;
let fake: FakeDiscord;
let engine: Engine;
let service: ConversationService;

type Component = { type: number; custom_id?: string; label?: string; components?: Component[] };
const controls = (m: FakeMessage): Component[] => (m.components as Component[]).flatMap((row) => row.components ?? []);
const control = (m: FakeMessage, label: string | RegExp): string => {
  const found = controls(m).find((c) => (typeof label === "string" ? c.label === label : label.test(c.label ?? "")));
  if (!found?.custom_id) throw new Error(`no control ${label} on message: ${JSON.stringify(m.components)}`);
  return found.custom_id;
};
const embedTitles = (m: FakeMessage) => m.embeds.map((e) => String(e.title ?? ""));
const csvAttachment = () => ({ name: "bananas.csv", data: csv, contentType: "text/csv; charset=utf-8" });

/** The first message in `thread` (posted after `after` messages) that satisfies `test`. */
const next = (thread: string, test: (m: FakeMessage) => boolean, what: string, timeoutMs?: number) =>
  fake.waitFor(() => fake.channelMessages(thread).find(test), what, timeoutMs);

async function mention(text: string, author = fake.users.alice, attach = true): Promise<{ message: FakeMessage; thread: string }> {
  const message = fake.userMessage(author, `<@${fake.bot.id}> ${text}`, { attachments: attach ? [csvAttachment()] : [] });
  const thread = await fake.waitFor(() => fake.threads.get(message.id), "the conversation's thread");
  return { message, thread: String(thread.id) };
}

beforeAll(async () => {
  requirePython();
  writeClassificationCsv(csvPath, { rows: 300, seed: 7 });
  csv = readFileSync(csvPath);
  fake = await FakeDiscord.start();
  const config = loadConfig(
    {},
    {
      dataDir: join(tmp.dir, ".threadml"),
      search: { budgetS: 1, trialsPerFamily: 2, sampleRows: 300, cvFolds: 2 },
      smokeRows: 100,
      discord: { token: fake.token, apiUrl: fake.api },
      approvers: [fake.users.carol.id],
    },
  );
  const logger = createLogger("silent");
  engine = new Engine({ config, logger, cwd: tmp.dir });
  const adapter = new DiscordAdapter({ config, logger, uploadsDir: join(tmp.dir, ".threadml", "uploads", "discord") });
  service = new ConversationService(engine, [adapter], { approvers: config.approvers, logger });
  await service.start();
});

afterAll(async () => {
  await service?.stop();
  await engine?.close();
  await fake?.close();
});

describe("ThreadML on Discord", () => {
  it("takes a mention with a CSV through question, plan card, approval and live progress to a report with endpoint and plots", async () => {
    const { message, thread } = await mention("Build me a classifier for this data");
    expect(fake.threads.get(thread)?.parent_id).toBe(fake.channelId);

    const question = await next(thread, (m) => /Which column of bananas\.csv/.test(m.content), "the target question");
    expect(existsSync(join(tmp.dir, ".threadml", "uploads", "discord", thread, message.id, "bananas.csv"))).toBe(true);
    expect(controls(question).map((c) => c.label)).toEqual(expect.arrayContaining(["Quality", "Type an answer…", "Cancel"]));
    const answer = fake.click(fake.users.alice, question, control(question, "Quality"));

    const plans = await next(thread, (m) => embedTitles(m).some((t) => t.startsWith("Plan 1 —")), "the plan card");
    expect(controls(plans).map((c) => c.label)).toEqual(expect.arrayContaining(["Build plan 1", "Approve (build the best)", "Revise…", "Cancel"]));
    // The reading comes first on the card, before anything trains.
    expect(plans.content).toMatch(/^I read: predict Quality\b/);
    // The answered question keeps its text but loses its buttons.
    await fake.waitFor(() => question.components.length === 0, "the question card to lose its buttons");

    // Progress edits meet a rate limit on the way; discord.js waits it out and the card still ends current.
    fake.rateLimit((method, path) => method === "PATCH" && /\/messages\/\d+$/.test(path), 2, 0.3);
    const approve = fake.click(fake.users.alice, plans, control(plans, "Approve (build the best)"));
    await fake.waitFor(() => /^Decision: <@\d+> approved the best plan/m.test(plans.content) && plans.components.length === 0, "the decided plan card");

    const report = await next(thread, (m) => m.embeds.some((e) => e.title === "Model deployed"), "the report", 150_000);
    const [main, tryIt] = report.embeds as Array<{ title?: string; description?: string; fields?: Array<{ name: string; value: string }>; image?: { url: string } }>;
    const field = (name: string) => main.fields?.find((f) => f.name === name)?.value ?? "";
    expect(field("Test-split metrics")).toMatch(/accuracy\s+0\.\d+/);
    const url = field("Endpoint").match(/http:\/\/127\.0\.0\.1:\d+/)?.[0];
    expect(url).toBeTruthy();
    expect(tryIt.title).toBe("Try it");
    expect(tryIt.description).toContain(`curl -s -X POST ${url}/predict`);
    const pngs = report.attachments.filter((a) => a.filename.endsWith(".png"));
    expect(pngs.length).toBeGreaterThan(0);
    expect(main.image?.url).toBe(`attachment://${pngs[0].filename}`);
    const png = Buffer.from(await (await fetch(pngs[0].url)).arrayBuffer());
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(report.attachments.some((a) => a.filename === "report.md")).toBe(true);
    expect((await fetch(`${url}/health`)).status).toBe(200);

    // One progress message, edited in place, ending without its Cancel button.
    const statuses = fake.channelMessages(thread).filter((m) => m.embeds.length === 1 && m !== report && !embedTitles(m)[0].startsWith("Plan"));
    expect(statuses).toHaveLength(1);
    expect(statuses[0].edits).toBeGreaterThan(0);
    expect(statuses[0].components).toEqual([]);
    // While the job ran, the progress message offered Cancel job.
    expect(fake.calls.some((c) => c.method === "PATCH" && c.path.endsWith(`/messages/${statuses[0].id}`) && JSON.stringify(c.body?.components).includes("tml:stop"))).toBe(true);
    // The gateway session stayed up through the run: heartbeats were sent and acknowledged.
    expect(fake.heartbeats).toBeGreaterThan(0);
    expect(fake.calls.filter((c) => c.status === 429).length).toBe(2);

    // Both clicks were acknowledged (deferUpdate, type 6), and nothing went through a token before its acknowledgement.
    for (const id of [answer, approve]) expect(fake.callbacks.find((c) => c.interaction === id)).toMatchObject({ type: 6, status: 204 });
    const webhookCalls = fake.calls.filter((c) => c.path.startsWith(`/webhooks/${fake.applicationId}/`));
    expect(webhookCalls.filter((c) => c.interaction === approve && c.method === "POST").length).toBeGreaterThan(0);
    for (const c of webhookCalls) expect(fake.callbacks.find((cb) => cb.interaction === c.interaction)!.seq).toBeLessThan(c.seq);
    const followUps = webhookCalls.filter((c) => c.method === "POST");
    // The report's files went up as a multipart follow-up.
    expect(followUps.some((c) => c.files.some((f) => f.name === pngs[0].filename))).toBe(true);
  });

  it("refuses a decision from someone else, lets an approver revise through a modal, and ignores stale cards", async () => {
    const { thread } = await mention("Predict Quality in this file");
    const first = await next(thread, (m) => embedTitles(m).some((t) => t.startsWith("Plan 1 —")), "the plan card");

    const intruder = fake.click(fake.users.bob, first, control(first, "Approve (build the best)"));
    const refusal = await fake.waitFor(
      () => [...fake.messages.values()].find((m) => m.ephemeral && m.channel_id === thread && /Only the person who started/.test(m.content)),
      "the ephemeral refusal",
    );
    expect(refusal.flags & 64).toBe(64);
    expect(fake.callbacks.find((c) => c.interaction === intruder)).toMatchObject({ type: 6, status: 204 });
    expect(first.components.length).toBeGreaterThan(0);
    expect(first.content).not.toMatch(/Decision/);

    // An approver opens the Revise modal: the modal is the first (and only) response to that click.
    const open = fake.click(fake.users.carol, first, control(first, "Revise…"));
    const modal = await fake.waitFor(() => fake.callbacks.find((c) => c.interaction === open), "the modal");
    expect(modal.type).toBe(9);
    expect(String(modal.data?.title).length).toBeLessThanOrEqual(45);
    fake.submitModal(fake.users.carol, first, String(modal.data?.custom_id), "try extra trees please");
    await fake.waitFor(() => /asked for a revision: “try extra trees please”/.test(first.content), "the revision decision on the card");
    const second = await next(thread, (m) => m !== first && embedTitles(m).some((t) => t.startsWith("Plan 1 —")), "the revised plan card");
    expect(JSON.stringify(second.embeds)).toMatch(/Extra trees/i);

    // The first card is decided; a click on it that slipped through is told so and changes nothing.
    const stale = fake.click(fake.users.alice, first, "tml:approve=best");
    await fake.waitFor(() => [...fake.messages.values()].find((m) => m.ephemeral && m.channel_id === thread && /no longer active/.test(m.content)), "the stale-card note");
    expect(fake.callbacks.find((c) => c.interaction === stale)?.type).toBe(6);

    fake.click(fake.users.alice, second, control(second, "Cancel"));
    await fake.waitFor(() => /^Decision: <@\d+> cancelled/m.test(second.content) && second.components.length === 0, "the cancelled card");
  });

  it("reads plain replies in the thread: a file for the dataset question, then the target typed as text", async () => {
    const { thread } = await mention("I need a model", fake.users.alice, false);
    await next(thread, (m) => /Which dataset should I use\?/.test(m.content), "the dataset question");
    fake.userMessage(fake.users.alice, "here it is", { channelId: thread, attachments: [csvAttachment()] });
    await next(thread, (m) => /Which column of bananas\.csv/.test(m.content), "the target question");
    // Someone else's reply is not taken as the answer.
    fake.userMessage(fake.users.bob, "Size", { channelId: thread });
    await fake.waitFor(() => fake.channelMessages(thread).find((m) => /<@\d+> Only the person who started/.test(m.content)), "the refusal in the thread");
    fake.userMessage(fake.users.alice, "Quality", { channelId: thread });
    const plans = await next(thread, (m) => embedTitles(m).some((t) => t.startsWith("Plan 1 —")), "the plan card");
    expect(JSON.stringify(plans.embeds)).toMatch(/Quality/);
    // A typed decision reaches the plan card as the reply it was.
    fake.userMessage(fake.users.alice, "c", { channelId: thread });
    await fake.waitFor(() => /^Decision: <@\d+> replied: “c”/m.test(plans.content) && plans.components.length === 0, "the decided card");
    await fake.waitFor(() => fake.channelMessages(thread).find((m) => m.embeds.some((e) => e.title === "Conversation cancelled")), "the cancellation report");
  });

  it("drops duplicate deliveries of a message and of an interaction", async () => {
    const threadsBefore = fake.threads.size;
    const { message, thread } = await mention("Build me a classifier for this data");
    fake.redeliver(message);
    const question = await next(thread, (m) => /Which column/.test(m.content), "the target question");
    const id = fake.click(fake.users.alice, question, control(question, "Cancel"));
    fake.redeliverInteraction(fake.users.alice, question, control(question, "Cancel"), id);
    await fake.waitFor(() => fake.channelMessages(thread).find((m) => m.embeds.some((e) => e.title === "Conversation cancelled")), "the cancellation report");
    await service.idle();
    expect(fake.threads.size).toBe(threadsBefore + 1);
    expect(fake.channelMessages(thread).filter((m) => /Which column/.test(m.content))).toHaveLength(1);
    expect(fake.callbacks.filter((c) => c.interaction === id)).toHaveLength(1);
  });
});
