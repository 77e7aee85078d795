import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { FakeDiscord } from "../helpers/fake-discord.js";
import { tempDir } from "../helpers/tmp.js";

// `npm start` with DISCORD_TOKEN set: the process connects to Discord (here the fake, through
// DISCORD_API_URL) instead of reading the terminal, answers a mention, and stops cleanly on SIGTERM.

const tmp = tempDir("threadml-discord-start-");
let fake: FakeDiscord;
let child: ChildProcessWithoutNullStreams;
let stderr = "";

beforeAll(async () => {
  fake = await FakeDiscord.start();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLACK_|DISCORD_|THREADML_|REDIS_URL|PORT$)/.test(k)));
  child = spawn(process.execPath, [BIN, "start"], {
    cwd: tmp.dir,
    env: { ...env, DISCORD_TOKEN: fake.token, DISCORD_API_URL: fake.api, THREADML_DATA_DIR: join(tmp.dir, ".threadml"), LOG_LEVEL: "warn" },
  });
  child.stderr.on("data", (d) => (stderr += d));
  await fake.waitFor(() => /ThreadML is listening on discord/.test(stderr) || child.exitCode !== null, "ThreadML to start", 60_000);
  if (child.exitCode !== null) throw new Error(`ThreadML exited (${child.exitCode}):\n${stderr}`);
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await fake?.close();
});

describe("npm start with DISCORD_TOKEN", () => {
  it("serves Discord until SIGTERM", async () => {
    expect(fake.identifies).toHaveLength(1);
    writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 200, seed: 3 });
    const mention = fake.userMessage(fake.users.alice, `<@${fake.bot.id}> Predict Quality, accuracy at least 0.8`, {
      attachments: [{ name: "bananas.csv", data: readFileSync(join(tmp.dir, "bananas.csv")), contentType: "text/csv" }],
    });
    const thread = await fake.waitFor(() => fake.threads.get(mention.id), "the thread");
    const card = await fake.waitFor(
      () => fake.channelMessages(String(thread.id)).find((m) => m.embeds.some((e) => String(e.title).startsWith("Plan 1 —"))),
      `the plan card\n${stderr}`,
    );
    fake.click(fake.users.alice, card, "tml:cancel");
    await fake.waitFor(() => fake.channelMessages(String(thread.id)).find((m) => m.embeds.some((e) => e.title === "Conversation cancelled")), "the cancellation");

    child.kill("SIGTERM");
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/error/i);
  });
});
