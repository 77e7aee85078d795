import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { DiscordAdapter } from "../../adapters/discord/index.js";
import type { Inbound, Outbound, ThreadRef } from "../../adapters/types.js";
import type { ConfigInput } from "../../config/schema.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { FakeDiscord, type User } from "../helpers/fake-discord.js";
import { tempDir } from "../helpers/tmp.js";

// The Discord adapter on its own, driven by a scripted handler: real discord.js against the fake Discord.
// Acknowledgement order, the 15-minute token window, edits under rate limits, file limits and the
// fallback without the Message Content intent.

const tmp = tempDir("threadml-discord-adapter-");
const stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  while (stops.length) await stops.pop()!();
});
afterAll(async () => {
  while (stops.length) await stops.pop()!();
});

interface Harness {
  fake: FakeDiscord;
  adapter: DiscordAdapter;
  events: Inbound[];
  handle(fn: (e: Inbound) => Promise<void>): void;
}

async function harness(fakeOptions: Parameters<typeof FakeDiscord.start>[0] = {}, config: ConfigInput = {}): Promise<Harness> {
  const fake = await FakeDiscord.start(fakeOptions);
  stops.push(() => fake.close());
  const events: Inbound[] = [];
  let handler: (e: Inbound) => Promise<void> = async () => {};
  const adapter = new DiscordAdapter({
    config: loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), discord: { token: fake.token, apiUrl: fake.api }, ...config }),
    logger: createLogger("silent"),
    uploadsDir: join(tmp.dir, "uploads"),
  });
  await adapter.start(async (e) => {
    events.push(e);
    await handler(e);
  });
  stops.push(() => adapter.stop());
  return { fake, adapter, events, handle: (fn) => (handler = fn) };
}

/** Mentions the bot in the channel and returns the conversation's thread as the handler saw it. */
async function conversation(h: Harness, text = "hello", author: User = h.fake.users.alice): Promise<ThreadRef> {
  const before = h.events.length;
  h.fake.userMessage(author, `<@${h.fake.bot.id}> ${text}`);
  const event = await h.fake.waitFor(() => h.events.slice(before).find((e) => e.kind === "message"), "the mention event");
  return event.thread;
}

const question = (choices: string[], allowFreeText = true): Outbound => ({
  kind: "question",
  question: { slot: "target", text: "Which column should I predict?", choices: choices.map((c) => ({ label: c, value: c })), allowFreeText },
});

const status = (done: number): Outbound => ({
  kind: "status",
  status: { stages: [{ stage: "train", state: "running" }], current: "train", progress: { label: "fit", done, total: 10 }, metrics: { valid_accuracy: 0.9 }, notices: [] },
});

describe("Discord adapter", () => {
  it("acknowledges a click at once, while the conversation step behind it is still running", async () => {
    const h = await harness();
    const thread = await conversation(h);
    const card = await h.adapter.post(thread, question(["Size", "Quality"]));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    h.handle(async (e) => {
      if (e.kind !== "action") return;
      started = true;
      await gate;
      await h.adapter.post(e.thread, { kind: "text", text: "Working on Quality." });
    });

    const id = h.fake.click(h.fake.users.alice, h.fake.messages.get(card.id)!, "tml:answer=Quality");
    const ack = await h.fake.waitFor(() => h.fake.callbacks.find((c) => c.interaction === id), "the acknowledgement", 10_000);
    expect(ack).toMatchObject({ type: 6, status: 204 });
    await h.fake.waitFor(() => started, "the handler to start");
    expect(h.fake.calls.some((c) => c.interaction === id && c.path.startsWith("/webhooks"))).toBe(false);

    release();
    const followUp = await h.fake.waitFor(() => h.fake.calls.find((c) => c.interaction === id && c.method === "POST" && c.path.startsWith("/webhooks")), "the follow-up");
    expect(followUp.seq).toBeGreaterThan(ack.seq);
    expect(followUp.body?.content).toBe("Working on Quality.");
    expect(h.events.at(-1)).toMatchObject({ kind: "action", action: "answer", value: "Quality", user: h.fake.users.alice.id, message: { id: card.id }, thread });
  });

  it("answers through the interaction within its 15 minutes and through channel messages after", async () => {
    const h = await harness();
    const thread = await conversation(h);
    const first = await h.adapter.post(thread, question(["Size", "Quality"]));

    // A click whose token is already 16 minutes old: acknowledged, but nothing else goes through its token.
    const old = h.fake.click(h.fake.users.alice, h.fake.messages.get(first.id)!, "tml:answer=Size", { createdAt: Date.now() - 16 * 60_000 });
    await h.fake.waitFor(() => h.events.find((e) => e.kind === "action"), "the old click");
    const second = await h.adapter.post(thread, question(["Size", "Quality"]));
    await h.adapter.update(second, question(["Size", "Quality", "Weight"]));
    expect(h.fake.calls.filter((c) => c.interaction === old).map((c) => c.path)).toEqual([expect.stringMatching(/^\/interactions\/.*\/callback$/)]);
    expect(h.fake.calls.some((c) => c.method === "POST" && c.path === `/channels/${thread.thread}/messages` && c.body?.content === h.fake.messages.get(second.id)!.content)).toBe(true);
    expect(h.fake.calls.some((c) => c.method === "PATCH" && c.path === `/channels/${thread.thread}/messages/${second.id}`)).toBe(true);

    // A fresh click: the next post is its follow-up, and the card it sits on is edited as its @original.
    const fresh = h.fake.click(h.fake.users.alice, h.fake.messages.get(second.id)!, "tml:answer=Weight");
    await h.fake.waitFor(() => h.events.filter((e) => e.kind === "action").length === 2, "the fresh click");
    const third = await h.adapter.post(thread, { kind: "text", text: "Thanks." });
    expect(h.fake.calls.find((c) => c.interaction === fresh && c.method === "POST" && c.path.startsWith("/webhooks"))?.body?.content).toBe("Thanks.");
    await h.fake.waitFor(() => h.fake.messages.get(second.id)!.components.length === 0, "the answered card to lose its buttons");
    expect(h.fake.calls.some((c) => c.interaction === fresh && c.method === "PATCH" && c.path.endsWith("/messages/@original"))).toBe(true);
    await h.adapter.update(third, { kind: "text", text: "Thanks!" });
    expect(h.fake.calls.some((c) => c.interaction === fresh && c.method === "PATCH" && c.path.endsWith(`/messages/${third.id}`))).toBe(true);

    // Discord ends a token early: the adapter falls back to the channel and loses nothing.
    h.fake.expire(fresh);
    const fourth = await h.adapter.post(thread, { kind: "text", text: "Still here." });
    expect(h.fake.calls.some((c) => c.interaction === fresh && c.status === 401)).toBe(true);
    expect(h.fake.messages.get(fourth.id)).toMatchObject({ content: "Still here.", channel_id: thread.thread });
    expect(h.fake.messages.get(fourth.id)!.webhook_id).toBeUndefined();
  });

  it("edits one message one request at a time, keeps only the newest waiting edit, and waits out 429s", async () => {
    const h = await harness();
    const thread = await conversation(h);
    const ref = await h.adapter.post(thread, status(0));
    h.fake.rateLimit((method, path) => method === "PATCH" && path.endsWith(`/messages/${ref.id}`), 2, 0.2);
    await Promise.all(Array.from({ length: 10 }, (_, i) => h.adapter.update(ref, status(i + 1))));

    const patches = h.fake.calls.filter((c) => c.method === "PATCH" && c.path.endsWith(`/messages/${ref.id}`));
    expect(patches.map((c) => c.status).slice(0, 3)).toEqual([429, 429, 200]);
    // The first edit (waiting out the 429s) and the newest one; the eight in between were superseded.
    expect(patches.filter((c) => c.status === 200)).toHaveLength(2);
    const embed = h.fake.messages.get(ref.id)!.embeds[0] as { description: string; fields: Array<{ name: string; value: string }> };
    expect(embed.description).toContain("10/10");
    expect(h.fake.messages.get(ref.id)!.components).toHaveLength(1);
  });

  it("downloads data files within the size and type limits, with their signed URLs, and names what it left out", async () => {
    const h = await harness({}, { limits: { maxUploadMb: 0.01 } });
    const row = "a,b,label\n1,2,x\n";
    const good = row + "3,4,y\n".repeat(50);
    const mention = h.fake.userMessage(h.fake.users.alice, `<@${h.fake.bot.id}> train on these`, {
      attachments: [
        { name: "my data (1).csv", data: good, contentType: "text/csv; charset=utf-8" },
        { name: "big.csv", data: row, declaredSize: 50_000 },
        { name: "liar.csv", data: row.repeat(2_000), declaredSize: 100, contentType: "text/csv", chunked: true },
        { name: "sheet.xlsx", data: "PK", contentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
        { name: "slides.pptx", data: "PK", contentType: "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
        { name: "photo.csv", data: "\x89PNG", contentType: "image/png" },
      ],
    });
    const event = await h.fake.waitFor(() => h.events.find((e) => e.kind === "message"), "the mention");
    if (event.kind !== "message") throw new Error("expected a message");
    expect(event.text).toBe("train on these");
    // a workbook is data now; the reader (not the adapter) judges what is inside
    expect(event.files).toEqual([join(tmp.dir, "uploads", event.thread.thread, mention.id, "my_data_1.csv"), join(tmp.dir, "uploads", event.thread.thread, mention.id, "sheet.xlsx")]);
    expect(readFileSync(event.files[0], "utf8")).toBe(good);
    const note = h.fake.channelMessages(event.thread.thread).find((m) => /I left out some files/.test(m.content));
    expect(note?.content).toMatch(/big\.csv is 0\.05 MB, over the 0\.01 MB limit/);
    expect(note?.content).toMatch(/liar\.csv is over the 0\.01 MB limit/);
    expect(note?.content).not.toMatch(/sheet\.xlsx/);
    expect(note?.content).toMatch(/slides\.pptx is not a data file I can read \(send CSV .*Excel \(\.xlsx\), JSON, JSON lines or Parquet/);
    expect(note?.content).toMatch(/photo\.csv is image\/png/);
  });

  it("works without the Message Content intent: reconnects without it, hints once, and takes answers by mention and modal", async () => {
    const h = await harness({ grantMessageContent: false });
    expect(h.fake.closeCodes).toEqual([4014]);
    expect(h.fake.identifies.map((i) => (i.intents & (1 << 15)) !== 0)).toEqual([true, false]);
    expect(h.adapter.readsThreadReplies).toBe(false);

    const thread = await conversation(h, "Build a model");
    const card = await h.adapter.post(thread, question(["Size", "Quality"]));
    const cardMessage = h.fake.messages.get(card.id)!;
    expect(cardMessage.content).toMatch(/reply with a mention of me/);

    // Plain replies arrive empty: one hint, however many replies.
    const count = h.events.length;
    h.fake.userMessage(h.fake.users.alice, "Quality", { channelId: thread.thread });
    await h.fake.waitFor(() => h.fake.channelMessages(thread.thread).find((m) => /Message Content intent/.test(m.content)), "the hint");
    h.fake.userMessage(h.fake.users.alice, "Quality please", { channelId: thread.thread });
    h.fake.userMessage(h.fake.users.alice, `<@${h.fake.bot.id}> Quality`, { channelId: thread.thread });
    const byMention = await h.fake.waitFor(() => h.events.slice(count).find((e) => e.kind === "message"), "the reply with a mention");
    expect(byMention).toMatchObject({ text: "Quality", mention: true, thread });
    expect(h.events).toHaveLength(count + 1);
    expect(h.fake.channelMessages(thread.thread).filter((m) => /Message Content intent/.test(m.content))).toHaveLength(1);

    // Free text through the modal.
    const open = h.fake.click(h.fake.users.alice, cardMessage, "tml:free");
    const modal = await h.fake.waitFor(() => h.fake.callbacks.find((c) => c.interaction === open), "the modal");
    expect(modal).toMatchObject({ type: 9, data: { custom_id: "tml:modal:answer", title: "Your answer" } });
    h.fake.submitModal(h.fake.users.alice, cardMessage, "tml:modal:answer", "  Weight ");
    const answer = await h.fake.waitFor(() => h.events.find((e) => e.kind === "action"), "the modal answer");
    expect(answer).toMatchObject({ action: "answer", value: "Weight", user: h.fake.users.alice.id });
  });

  it("offers a select menu past 20 choices and maps the pick back to its value", async () => {
    const h = await harness();
    const thread = await conversation(h);
    const names = Array.from({ length: 25 }, (_, i) => `column_${i}`);
    const card = await h.adapter.post(thread, question(names));
    const message = h.fake.messages.get(card.id)!;
    const rows = message.components as Array<{ components: Array<{ type: number; options?: unknown[] }> }>;
    expect(rows[0].components[0]).toMatchObject({ type: 3 });
    expect(rows[0].components[0].options).toHaveLength(25);
    h.fake.click(h.fake.users.alice, message, "tml:pick", { values: ["=column_24"] });
    expect(await h.fake.waitFor(() => h.events.find((e) => e.kind === "action"), "the pick")).toMatchObject({ action: "answer", value: "column_24" });
  });

  it("ignores bots, its own posts and chatter outside its threads; takes a mention inside an existing thread there", async () => {
    const h = await harness();
    const robot: User = { id: h.fake.snowflake(), username: "otherbot", global_name: null, discriminator: "0", avatar: null, bot: true };
    h.fake.userMessage(robot, `<@${h.fake.bot.id}> build a model`);
    h.fake.userMessage(h.fake.users.bob, "just chatting");
    const existing = h.fake.userThread(h.fake.users.bob);
    h.fake.userMessage(h.fake.users.bob, "plain talk in a thread", { channelId: existing });
    const thread = await conversation(h, "Predict price", h.fake.users.bob);
    await h.adapter.post(thread, { kind: "text", text: "On it." });
    h.fake.userMessage(h.fake.users.carol, `<@${h.fake.bot.id}> here too`, { channelId: existing });
    const inThread = await h.fake.waitFor(() => h.events.find((e) => e.kind === "message" && e.thread.thread === existing), "the mention in a thread");
    expect(inThread).toMatchObject({ text: "here too", mention: true, thread: { platform: "discord", channel: h.fake.channelId, thread: existing } });
    expect(h.events.map((e) => (e.kind === "message" ? e.text : e.action))).toEqual(["Predict price", "here too"]);
    // The mention in the existing thread got no thread of its own.
    expect([...h.fake.threads.keys()].filter((id) => id !== existing && id !== thread.thread)).toEqual([]);
  });

  it("keeps working after a restart: cards carry their values, and its own threads are recognised", async () => {
    const h = await harness();
    const thread = await conversation(h);
    const long = "y".repeat(120);
    const card = await h.adapter.post(thread, question(["Quality", long]));
    await h.adapter.stop();

    const events: Inbound[] = [];
    const again = new DiscordAdapter({
      config: loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), discord: { token: h.fake.token, apiUrl: h.fake.api } }),
      logger: createLogger("silent"),
      uploadsDir: join(tmp.dir, "uploads"),
    });
    await again.start(async (e) => void events.push(e));
    stops.push(() => again.stop());

    const message = h.fake.messages.get(card.id)!;
    h.fake.click(h.fake.users.alice, message, "tml:answer=Quality");
    expect(await h.fake.waitFor(() => events.find((e) => e.kind === "action"), "the click")).toMatchObject({ action: "answer", value: "Quality", thread });
    // A value too long for a custom id went as an index, which only the process that posted the card can read.
    h.fake.click(h.fake.users.alice, message, "tml:answer#1");
    await h.fake.waitFor(() => [...h.fake.messages.values()].find((m) => m.ephemeral && /can't read this choice any more/.test(m.content)), "the note");
    h.fake.userMessage(h.fake.users.alice, "a plain reply", { channelId: thread.thread });
    expect(await h.fake.waitFor(() => events.find((e) => e.kind === "message"), "the reply")).toMatchObject({ text: "a plain reply", mention: false, thread });
  });

  it("says plainly when the token is refused", async () => {
    const fake = await FakeDiscord.start();
    stops.push(() => fake.close());
    const adapter = new DiscordAdapter({
      config: loadConfig({}, { discord: { token: "not-the-token", apiUrl: fake.api } }),
      logger: createLogger("silent"),
      uploadsDir: join(tmp.dir, "uploads"),
    });
    await expect(adapter.start(async () => {})).rejects.toThrow(/Discord rejected the bot token \(DISCORD_TOKEN\)/);
  });
});
