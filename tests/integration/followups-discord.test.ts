import { readFileSync } from "node:fs";
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

// Follow-ups on Discord (real discord.js against the fake Discord): the report's buttons, a file
// attached in the thread scored and sent back, a decision refused to someone else, stop serving.

const tmp = tempDir("threadml-discord-followups-");
let fake: FakeDiscord;
let engine: Engine;
let service: ConversationService;

type Component = { type: number; custom_id?: string; label?: string; components?: Component[] };
const controls = (m: FakeMessage): Component[] => (m.components as Component[]).flatMap((row) => row.components ?? []);
const control = (m: FakeMessage, label: string): string => {
  const found = controls(m).find((c) => c.label === label);
  if (!found?.custom_id) throw new Error(`no control ${label} on message: ${JSON.stringify(m.components)}`);
  return found.custom_id;
};
const next = (thread: string, test: (m: FakeMessage) => boolean, what: string, timeoutMs?: number) => fake.waitFor(() => fake.channelMessages(thread).find(test), what, timeoutMs);

beforeAll(async () => {
  requirePython();
  fake = await FakeDiscord.start();
  const config = loadConfig(
    {},
    {
      dataDir: join(tmp.dir, ".threadml"),
      search: { budgetS: 1, trialsPerFamily: 2, sampleRows: 300, cvFolds: 2 },
      discord: { token: fake.token, apiUrl: fake.api },
    },
  );
  const logger = createLogger("silent");
  engine = new Engine({ config, logger, cwd: tmp.dir });
  const adapter = new DiscordAdapter({ config, logger, uploadsDir: join(tmp.dir, ".threadml", "uploads", "discord") });
  service = new ConversationService(engine, [adapter], { approvers: [], logger });
  await service.start();
});

afterAll(async () => {
  await service?.stop();
  await engine?.close();
  await fake?.close();
});

describe("follow-ups on Discord", () => {
  it("scores an attached file, explains from the report's button, and stops serving for the requester only", async () => {
    const data = readFileSync(writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 300, seed: 5 }).file);
    const message = fake.userMessage(fake.users.alice, `<@${fake.bot.id}> Predict Quality in this file`, { attachments: [{ name: "bananas.csv", data, contentType: "text/csv" }] });
    const thread = String((await fake.waitFor(() => fake.threads.get(message.id), "the thread")).id);
    const card = await next(thread, (m) => m.embeds.some((e) => String(e.title ?? "").startsWith("Plan 1 —")), "the plan card");
    fake.click(fake.users.alice, card, control(card, "Approve (build the best)"));
    const report = await next(thread, (m) => m.embeds.some((e) => e.title === "Model deployed"), "the report", 150_000);
    expect(controls(report).map((c) => c.label)).toEqual(expect.arrayContaining(["What matters?", "Compare models", "Stop serving"]));
    expect(report.attachments.some((a) => a.filename === "quality-model.zip")).toBe(true);

    // a file attached in the thread: the same columns without the label
    const fresh = Buffer.from(`${data.toString("utf8").trim().split("\n").slice(0, 26).map((l) => l.split(",").slice(0, 7).join(",")).join("\n")}\n`);
    fake.userMessage(fake.users.alice, `<@${fake.bot.id}> score these`, { channelId: thread, attachments: [{ name: "fresh.csv", data: fresh, contentType: "text/csv" }] });
    const scored = await next(thread, (m) => /Scored 25 rows of fresh\.csv/.test(m.content), "the predictions", 60_000);
    const file = scored.attachments.find((a) => a.filename === "fresh-predictions.csv");
    expect(file).toBeTruthy();
    const rows = (await (await fetch(file!.url)).text()).trim().split("\n");
    expect(rows).toHaveLength(26);
    expect(rows[0]).toMatch(/,prediction/);

    fake.click(fake.users.alice, report, control(report, "What matters?"));
    const explained = await next(thread, (m) => /What matters most to quality/.test(m.content), "the explanation", 60_000);
    expect(explained.attachments.some((a) => a.filename === "importance.png")).toBe(true);
    expect(explained.content).toMatch(/1\. (Size|Sweetness)/);

    fake.click(fake.users.bob, report, control(report, "Stop serving"));
    await fake.waitFor(() => [...fake.messages.values()].find((m) => m.ephemeral && m.channel_id === thread && /Only the person who started/.test(m.content)), "the refusal");
    expect((await service.registry.get("quality"))?.status).toBe("serving");

    fake.click(fake.users.alice, report, control(report, "Stop serving"));
    await next(thread, (m) => /Stopped serving quality/.test(m.content), "the undeploy answer");
    expect((await service.registry.get("quality"))?.status).toBe("stopped");
  }, 240_000);
});
