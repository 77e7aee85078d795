import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { strToU8, unzipSync, zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscordAdapter } from "../../adapters/discord/index.js";
import type { Inbound, ThreadRef } from "../../adapters/types.js";
import type { Report } from "../../graphs/automl/state.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { FakeDiscord } from "../helpers/fake-discord.js";
import { tempDir } from "../helpers/tmp.js";

// The Discord adapter's follow-up shapes against real discord.js and a fake Discord, driven directly: a file
// posted into a thread, a table, a report with follow-up buttons and its bundle attached, and clicks on them.

const tmp = tempDir("threadml-discord-followups-");
const out = join(tmp.dir, "out");
mkdirSync(out, { recursive: true });

let fake: FakeDiscord;
let adapter: DiscordAdapter;
const events: Inbound[] = [];

beforeAll(async () => {
  fake = await FakeDiscord.start();
  adapter = new DiscordAdapter({
    config: loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), discord: { token: fake.token, apiUrl: fake.api } }),
    logger: createLogger("silent"),
    uploadsDir: join(tmp.dir, "uploads"),
  });
  await adapter.start(async (e) => {
    events.push(e);
  });
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.close();
});

/** A conversation's thread, started by a mention as a user would. */
async function conversation(text: string): Promise<ThreadRef> {
  const before = events.length;
  fake.userMessage(fake.users.alice, `<@${fake.bot.id}> ${text}`);
  const event = await fake.waitFor(() => events.slice(before).find((e) => e.kind === "message"), "the mention event");
  return event.thread;
}

/** The multipart files of the bot's post that created message `id`. */
const filesOf = (thread: ThreadRef, id: string) => {
  const m = fake.messages.get(id)!;
  const call = fake.calls.find((c) => c.method === "POST" && c.path === `/channels/${thread.thread}/messages` && c.files.length && c.body?.content === m.content);
  return call?.files ?? [];
};

const report = (bundle: string): Report => ({
  status: "deployed",
  title: "Model deployed",
  summary: ["Gradient boosting predicts Loan_Status."],
  metrics: { accuracy: 0.935 },
  constraints: [],
  endpoint: { url: "http://127.0.0.1:4200", check: { ok: true, prediction: ["Y"] }, serving: true },
  curl: null,
  artifacts: { model: null, code: null, report: null, plots: [], bundle },
  comparison: { header: ["model", "accuracy", "status"], rows: [["loans-2 (this one)", "0.935", "serving"], ["loans-1 @everyone", "0.910", "stopped"]] },
  notices: [],
  llm: null,
});

describe("Discord follow-ups", () => {
  it("posts a file into the thread with its lines as the message", async () => {
    const thread = await conversation("score this");
    const path = join(out, "scored.csv");
    writeFileSync(path, ["id,prediction", ...Array.from({ length: 300 }, (_, i) => `${i},${i % 2 ? "Y" : "N"}`)].join("\n"));
    const ref = await adapter.post(thread, { kind: "file", path, name: "new loans-predictions.csv", lines: ["Scored 300 rows of new_loans.csv with loans-1.", "Predicted: Y 150, N 150."] });

    const message = fake.messages.get(ref.id)!;
    expect(message.channel_id).toBe(thread.thread);
    expect(message.content).toBe("**Scored 300 rows of new\\_loans.csv with loans-1.**\nPredicted: Y 150, N 150.");
    expect(message.attachments.map((a) => a.filename)).toEqual(["new_loans-predictions.csv"]);
    const [sent] = filesOf(thread, ref.id);
    expect(sent.bytes.equals(readFileSync(path))).toBe(true);
  });

  it("posts a table as a code block", async () => {
    const thread = await conversation("models");
    const ref = await adapter.post(thread, { kind: "table", title: "This thread's models", header: ["name", "status"], rows: [["loans-1", "stopped"], ["loans-2 ```", "serving"]] });
    expect(fake.messages.get(ref.id)!.content).toBe(`**This thread's models**\n\`\`\`\n${"name".padEnd(13)}status\n${"loans-1".padEnd(13)}stopped\nloans-2 \`\u200b\`\`  serving\n\`\`\``);
  });

  it("renders the report's buttons, attaches its bundle, and forwards clicks even after a newer card", async () => {
    const thread = await conversation("build a model");
    const bundle = join(out, "loan_status-model.zip");
    writeFileSync(bundle, zipSync({ "loan_status-model/model.joblib": strToU8("model bytes"), "loan_status-model/model_card.md": strToU8("# Model card\n") }));
    const ref = await adapter.post(thread, { kind: "report", report: report(bundle), model: "loans-2", followUps: ["explain", "compare", "undeploy"] });

    const message = fake.messages.get(ref.id)!;
    const buttons = message.components.flatMap((r) => r.components as Array<{ custom_id: string; label: string }>);
    expect(buttons.map((b) => [b.custom_id, b.label])).toEqual([
      ["tml:followup:explain", "What matters?"],
      ["tml:followup:compare", "Compare models"],
      ["tml:followup:undeploy", "Stop serving"],
    ]);
    const fields = (message.embeds[0].fields as Array<{ name: string; value: string }>).map((f) => [f.name, f.value]);
    expect(fields).toContainEqual(["Registered as", "`loans-2`"]);
    expect(message.attachments.map((a) => a.filename)).toEqual(["loan_status-model.zip"]);
    const [zip] = filesOf(thread, ref.id);
    expect(zip.bytes.equals(readFileSync(bundle))).toBe(true);
    expect(Object.keys(unzipSync(new Uint8Array(zip.bytes))).sort()).toEqual(["loan_status-model/model.joblib", "loan_status-model/model_card.md"]);

    fake.click(fake.users.alice, message, "tml:followup:explain");
    const explain = await fake.waitFor(() => events.find((e) => e.kind === "action"), "the explain click");
    expect(explain).toMatchObject({ kind: "action", action: "followup", value: "explain", user: fake.users.alice.id, thread, message: { thread, id: ref.id } });

    // A question posted later is the thread's card; the report's buttons still count.
    await adapter.post(thread, { kind: "question", question: { slot: "target", text: "Which column?", choices: [{ label: "A", value: "A" }], allowFreeText: false } });
    fake.click(fake.users.alice, message, "tml:followup:compare");
    // A custom id that only looks like a follow-up is answered as unknown and never reaches the handler.
    const bogus = fake.click(fake.users.alice, message, "tml:followup:drop");
    await fake.waitFor(() => fake.callbacks.find((c) => c.interaction === bogus), "the answer to the unknown control");
    const compare = await fake.waitFor(() => events.find((e) => e.kind === "action" && e.value === "compare"), "the compare click");
    expect(compare).toMatchObject({ action: "followup", thread });
    expect(events.filter((e) => e.kind === "action").map((e) => (e.kind === "action" ? `${e.action}:${e.value}` : ""))).toEqual(["followup:explain", "followup:compare"]);
    expect(fake.callbacks.find((c) => c.interaction === bogus)?.data).toMatchObject({ content: "I don't know this control." });
  });
});
