import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FrontReceiver } from "../../adapters/slack/front.js";
import { SlackAdapter } from "../../adapters/slack/index.js";
import type { Inbound } from "../../adapters/types.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { APP_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER, FakeSlack } from "../helpers/fake-slack.js";
import { tempDir } from "../helpers/tmp.js";

// The adapter on its own, in Socket Mode: what reaches the conversation service (a recorder here) for
// each kind of Slack delivery, and how the connection thread survives reconnects and crashes.

const CH = "CCONN00001";
const tmp = tempDir("threadml-slack-conn-");
let fake: FakeSlack;
let adapter: SlackAdapter;
const received: Inbound[] = [];

beforeAll(async () => {
  fake = await FakeSlack.start("socket");
  const config = loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), slack: { botToken: BOT_TOKEN, appToken: APP_TOKEN, apiUrl: fake.apiUrl } });
  adapter = new SlackAdapter({ config, logger: createLogger("silent"), uploadsDir: join(tmp.dir, "uploads") });
  await adapter.start(async (event) => void received.push(event));
  await fake.socketReady();
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.close();
});

/** Resolves once the recorder holds an event matching `match`. */
async function arrival(match: (e: Inbound) => boolean, what: string): Promise<Inbound> {
  for (let i = 0; i < 400; i++) {
    const found = received.find(match);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${what}; received: ${JSON.stringify(received)}`);
}

const mentionOf = (p: { ts: string }) => (e: Inbound) => e.kind === "message" && e.eventId === `${CH}:${p.ts}`;

describe("Slack adapter deliveries", () => {
  it("passes mentions and thread replies on, and drops the bot's own posts and channel chatter", async () => {
    const start = fake.post({ user: "UALICE0001", text: `<@${BOT_USER}> predict &lt;price&gt; &amp; more`, channel: CH });
    await fake.deliver("events_api", start.mention!);
    const mention = await arrival(mentionOf(start), "mention");
    expect(mention).toMatchObject({ kind: "message", user: "UALICE0001", text: "predict <price> & more", mention: true, files: [], thread: { platform: "slack", channel: CH, thread: start.ts } });

    const chatter = fake.post({ user: "UALICE0001", text: "lunch?", channel: CH });
    const own = fake.callback({ type: "message", user: BOT_USER, bot_id: BOT_ID, text: "I have 3 plans", ts: fake.ts(), thread_ts: start.ts, channel: CH, channel_type: "channel" });
    const edit = fake.callback({ type: "message", subtype: "message_changed", channel: CH, ts: fake.ts(), message: { text: "x" } });
    const reply = fake.post({ user: "UBOB000001", text: "target is price", channel: CH, thread_ts: start.ts });
    for (const body of [chatter.message, own, edit, reply.message]) await fake.deliver("events_api", body);
    await arrival(mentionOf(reply), "thread reply");
    expect(received.map((e) => e.eventId)).toEqual([`${CH}:${start.ts}`, `${CH}:${reply.ts}`]);
    expect(received[1]).toMatchObject({ user: "UBOB000001", mention: false, text: "target is price" });
  });

  it("keeps receiving after Slack recycles the connection and after the connection thread dies", async () => {
    const opened = fake.callsOf("apps.connections.open").length;
    await fake.requestReconnect();
    const afterReconnect = fake.post({ user: "UALICE0001", text: `<@${BOT_USER}> again`, channel: CH });
    expect((await fake.deliver("events_api", afterReconnect.mention!)).status).toBe(200);
    await arrival(mentionOf(afterReconnect), "mention after a reconnect");

    // Kill the worker the way a crash would; the receiver starts a new one and Slack's next delivery arrives.
    const front = (adapter as unknown as { receiver: FrontReceiver }).receiver;
    const reconnected = fake.nextConnection();
    await (front as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await reconnected;
    const afterCrash = fake.post({ user: "UALICE0001", text: `<@${BOT_USER}> once more`, channel: CH });
    expect((await fake.deliver("events_api", afterCrash.mention!)).status).toBe(200);
    await arrival(mentionOf(afterCrash), "mention after the thread restarted");
    expect(fake.callsOf("apps.connections.open").length).toBeGreaterThanOrEqual(opened + 2);
  });
});
