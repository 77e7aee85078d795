import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { APP_TOKEN, BOT_TOKEN, BOT_USER, FakeSlack } from "../helpers/fake-slack.js";
import { tempDir } from "../helpers/tmp.js";

// `threadml start` (what `npm start` runs) with Slack configured by environment variables only.

const tmp = tempDir("threadml-slack-start-");
let fake: FakeSlack;

beforeAll(async () => {
  fake = await FakeSlack.start("socket");
});
afterAll(() => fake?.close());

function start(env: Record<string, string>) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLACK_|PORT$|DISCORD_)/.test(k)));
  const child = spawn(process.execPath, [BIN, "start"], {
    cwd: tmp.dir,
    env: { ...base, THREADML_DATA_DIR: join(tmp.dir, ".threadml"), LOG_LEVEL: "warn", SLACK_API_URL: fake.apiUrl, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const tick = setInterval(() => {
        if (pattern.test(stderr)) done(resolve);
        else if (child.exitCode !== null) done(() => reject(new Error(`threadml exited (${child.exitCode}) before ${pattern}:\n${stderr}`)));
      }, 50);
      const done = (f: () => void) => {
        clearInterval(tick);
        f();
      };
    });
  return { child, exited, waitFor, stderr: () => stderr };
}

describe("threadml start with Slack configured", () => {
  it("connects in Socket Mode and answers a mention in its thread", async () => {
    const bot = start({ SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: APP_TOKEN });
    try {
      await bot.waitFor(/listening on slack/);
      await fake.socketReady();
      const data = fake.addFile("bananas.csv", readFileSync(writeClassificationCsv(join(tmp.dir, "b.csv"), { rows: 200, seed: 3 }).file));
      const p = fake.post({ user: "UALICE0001", text: `<@${BOT_USER}> predict Quality`, channel: "CSTART0001", files: [data] });
      await fake.deliver("events_api", p.mention!);
      await fake.waitForMessage("CSTART0001", p.ts, (m) => /^I have \d plans/.test(m.text), "the plan card");
      bot.child.kill("SIGTERM");
      expect(await bot.exited).toBe(0);
    } finally {
      if (bot.child.exitCode === null) bot.child.kill("SIGKILL");
    }
  });

  it("stops with a clear message when Slack has no way to deliver events", async () => {
    const bot = start({ SLACK_BOT_TOKEN: BOT_TOKEN });
    const code = await bot.exited;
    expect(code).toBe(1);
    expect(bot.stderr()).toMatch(/SLACK_APP_TOKEN .*SLACK_SIGNING_SECRET/);
  });
});
