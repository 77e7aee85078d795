import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlackAdapter } from "../../adapters/slack/index.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { ConversationService } from "../../src/conversation/service.js";
import { Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { BOT_TOKEN, BOT_USER, FakeSlack, SIGNING_SECRET, blockText, elements, type FakeMessage } from "../helpers/fake-slack.js";
import { tempDir } from "../helpers/tmp.js";

// Real Bolt in HTTP mode: signed requests to its HTTPReceiver on a random port, the Web API on a fake
// Slack. These flows stop at the plan card, so no Python runs.

const CH = "CHTTP00001";
const ALICE = "UALICE0001";
const tmp = tempDir("threadml-slack-http-");
const logger = createLogger("silent");
let fake: FakeSlack;
let engine: Engine;
let service: ConversationService;
let adapter: SlackAdapter;

const configFor = (slack: Record<string, string>) => loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), slack });

beforeAll(async () => {
  fake = await FakeSlack.start("http");
  const config = configFor({ botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET, apiUrl: fake.apiUrl });
  engine = new Engine({ config, logger, cwd: tmp.dir });
  adapter = new SlackAdapter({ config, logger, uploadsDir: join(tmp.dir, "uploads") }, { port: 0 });
  service = new ConversationService(engine, [adapter], { approvers: [], logger });
  await service.start();
  fake.eventsUrl = `http://127.0.0.1:${adapter.port}/slack/events`;
});

afterAll(async () => {
  await service?.stop();
  await engine?.close();
  await fake?.close();
});

const waitFor = (thread: string, match: (m: FakeMessage) => boolean, what: string) => fake.waitForMessage(CH, thread, match, what);
const file = (name: string, seed: number) => fake.addFile(name, readFileSync(writeClassificationCsv(join(tmp.dir, name), { rows: 200, seed }).file));

describe("Slack adapter in HTTP mode", () => {
  it("checks the token with auth.test, listens on the port and answers Slack's URL check", async () => {
    expect(adapter.mode).toBe("http");
    expect(fake.callsOf("auth.test")[0].auth).toBe(`Bearer ${BOT_TOKEN}`);
    expect(fake.callsOf("apps.connections.open")).toEqual([]);
    expect((await fetch(`http://127.0.0.1:${adapter.port}/health`)).status).toBe(200);
    const check = await fake.deliver("events_api", { token: "t", challenge: "c-123", type: "url_verification" });
    expect(check).toMatchObject({ status: 200, payload: { challenge: "c-123" } });
  });

  it("refuses requests that are not signed with the signing secret, or are stale", async () => {
    const forged = fake.post({ user: ALICE, text: `<@${BOT_USER}> predict Quality`, channel: CH });
    expect((await fake.deliver("events_api", forged.mention!, { badSignature: true })).status).toBe(401);
    expect((await fake.deliver("events_api", forged.mention!, { timestamp: Math.floor(Date.now() / 1000) - 600 })).status).toBe(401);
    const posts = fake.callsOf("chat.postMessage").length;
    // A correctly signed request right after shows the forged ones were dropped, not queued.
    const real = fake.post({ user: ALICE, text: `<@${BOT_USER}> predict Quality`, channel: CH, files: [file("h0.csv", 1)] });
    expect((await fake.deliver("events_api", real.mention!)).status).toBe(200);
    await waitFor(real.ts, (m) => /^I have \d plans/.test(m.text), "the plan card");
    expect(fake.thread(CH, forged.ts)).toEqual([]);
    expect(fake.callsOf("chat.postMessage").length).toBeGreaterThan(posts);
  });

  it("acknowledges every delivery and starts one conversation for a post, its twin event and Slack's retries", async () => {
    const data = file("h1.csv", 2);
    const p = fake.post({ user: ALICE, text: `<@${BOT_USER}> build me a classifier`, channel: CH, files: [data] });
    const acks = await Promise.all([
      fake.deliver("events_api", p.mention!),
      fake.deliver("events_api", p.message),
      fake.deliver("events_api", p.mention!, { retryNum: 1 }),
      fake.deliver("events_api", p.message, { retryNum: 2 }),
    ]);
    expect(acks.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    const question = await waitFor(p.ts, (m) => /Which column of h1\.csv/.test(m.text), "the target question");
    // A late retry after the conversation started still starts nothing.
    await fake.deliver("events_api", p.mention!, { retryNum: 3 });

    const click = await fake.deliver("interactive", fake.click(question, ALICE, "Quality"));
    expect(click.status).toBe(200);
    const card = await waitFor(p.ts, (m) => /^I have \d plans/.test(m.text), "the plan card");
    expect(fake.thread(CH, p.ts).filter((m) => /Which column/.test(m.text))).toHaveLength(1);
    // Duplicates stop in the adapter, before their attachments are fetched again.
    expect(fake.downloads.filter((d) => d.fileId === data.id)).toEqual([{ fileId: data.id, auth: `Bearer ${BOT_TOKEN}`, status: 200 }]);

    // Revise through a modal, over signed form posts.
    expect((await fake.deliver("interactive", fake.click(card, ALICE, "threadml.revise"))).status).toBe(200);
    await fake.waitForCall((c) => c.method === "views.open", "the revise modal");
    const viewId = [...fake.views.keys()].pop()!;
    expect((await fake.deliver("interactive", fake.submit(viewId, ALICE, { feedback: "only logistic regression" }))).status).toBe(200);
    const revised = await waitFor(p.ts, (m) => /^I have \d plans/.test(m.text) && m.ts !== card.ts, "the revised plan card");
    expect(blockText(fake.messages.get(card.ts)!.blocks)).toMatch(/asked for a revision: “only logistic regression”/);

    await fake.deliver("interactive", fake.click(revised, ALICE, "threadml.cancel"));
    const decided = await waitFor(p.ts, (m) => m.ts === revised.ts && /cancelled/.test(blockText(m.blocks)), "the cancelled card");
    expect(elements(decided.blocks)).toEqual([]);
  });
});

describe("Slack start-up errors", () => {
  it("says what is missing when neither an app token nor a signing secret is set", async () => {
    const lone = new SlackAdapter({ config: configFor({ botToken: BOT_TOKEN, apiUrl: fake.apiUrl }), logger, uploadsDir: tmp.dir });
    await expect(lone.start(async () => {})).rejects.toThrow(ConfigError);
    await expect(lone.start(async () => {})).rejects.toThrow(/SLACK_APP_TOKEN .*SLACK_SIGNING_SECRET/);
  });

  it("reports an app token Slack rejects, and a port already taken", async () => {
    const socket = new SlackAdapter({ config: configFor({ botToken: BOT_TOKEN, appToken: "xapp-wrong", apiUrl: fake.apiUrl }), logger, uploadsDir: tmp.dir });
    await expect(socket.start(async () => {})).rejects.toThrow(/Slack rejected SLACK_APP_TOKEN \(invalid_auth\)/);
    const taken = new SlackAdapter({ config: configFor({ botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET, apiUrl: fake.apiUrl }), logger, uploadsDir: tmp.dir }, { port: adapter.port! });
    await expect(taken.start(async () => {})).rejects.toThrow(new RegExp(`PORT ${adapter.port} is in use`));
  });

  it("reports a bot token Slack rejects", async () => {
    const wrong = new SlackAdapter({ config: configFor({ botToken: "xoxb-wrong", signingSecret: SIGNING_SECRET, apiUrl: fake.apiUrl }), logger, uploadsDir: tmp.dir }, { port: 0 });
    await expect(wrong.start(async () => {})).rejects.toThrow(/Slack rejected SLACK_BOT_TOKEN \(invalid_auth\)/);
  });
});
