import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// `npm start` with no configuration: the shell adapter, a whole conversation typed at its prompt, its
// follow-ups, and a restart after which the registered model is served again at the same address.

const tmp = tempDir("threadml-shell-");
let child: ChildProcessWithoutNullStreams;
let out = "";

async function start(): Promise<void> {
  out = "";
  child = spawn(process.execPath, [BIN, "start"], {
    cwd: tmp.dir,
    env: { ...process.env, THREADML_DATA_DIR: join(tmp.dir, ".threadml"), THREADML_SEARCH_BUDGET_S: "2", LOG_LEVEL: "warn" },
  });
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  await waitFor(/ThreadML is ready/, 0);
}

async function answersWithin(url: string, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await fetch(url)).status;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function quit(): Promise<void> {
  child.stdin.write("/quit\n");
  const code = await new Promise((resolve) => child.on("exit", resolve));
  expect(code).toBe(0);
}

function waitFor(pattern: RegExp, from: number, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      const match = out.slice(from).match(pattern);
      if (match) return resolve(match[0]);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${pattern}; output so far:\n${out}`));
      if (child.exitCode !== null) return reject(new Error(`ThreadML exited (${child.exitCode}) before ${pattern}:\n${out}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

async function say(line: string, expect: RegExp): Promise<string> {
  const mark = out.length;
  child.stdin.write(`${line}\n`);
  return waitFor(expect, mark);
}

beforeAll(async () => {
  requirePython();
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 600, seed: 31 });
  const rows = readFileSync(join(tmp.dir, "bananas.csv"), "utf8").trim().split("\n").slice(0, 21);
  writeFileSync(join(tmp.dir, "fresh.csv"), `${rows.map((l) => l.split(",").slice(0, 7).join(",")).join("\n")}\n`);
  await start();
});

afterAll(() => {
  if (child.exitCode === null) child.kill("SIGKILL");
});

describe("the terminal shell", () => {
  it("asks for the target with numbered columns, revises, trains, deploys, answers follow-ups and undeploys after a restart", async () => {
    await say("/data bananas.csv", /Attached .*bananas\.csv/);
    const question = await say("Build me a classifier", /Which column of bananas\.csv should I predict\?[\s\S]*Type a number/);
    const number = question.match(/(\d+)\) Quality/)![1];
    await say(number, /Reply a to approve/);
    // The reading comes first on the card, then how the data was read, before anything trains.
    expect(out).toMatch(/\nI read: predict Quality\b[^\n]*\nData: bananas\.csv · \d+ rows × \d+ columns[^\n]*\nColumns: [^\n]* · target Quality\n\nI have \d plans:/);
    const revised = await say("r try extra trees please", /Decision: you asked for a revision[\s\S]*Reply a to approve/);
    expect(revised).toMatch(/Extra trees/);
    const report = await say("a", /== Model deployed ==[\s\S]*Try it: curl[^\n]*\n/);
    expect(report).toMatch(/Constraints:|No constraints were given/);
    expect(out).toMatch(/Evaluate plans|Train/);
    const url = report.match(/Endpoint: (http:\/\/[\d.:]+)/)![1];
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    await waitFor(/Registered as quality/, 0);

    // follow-ups at the same prompt: a typed path is scored, the model explained, the registry listed
    const scored = await say("score fresh.csv", /Scored 20 rows of fresh\.csv with quality[\s\S]*File: \S+predictions\.csv/);
    expect(scored).toMatch(/Predicted Quality: (Good|Bad): \d+/);
    const explained = await say("what matters?", /What matters most to quality[\s\S]*File: \S+importance\.png/);
    expect(explained).toMatch(/1\. (Size|Sweetness) /);
    await say("/models", /Registered models \(1\)[\s\S]*quality[^\n]*serving/);

    // a restart: the registry and the model server come back at the same address
    await quit();
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    await start();
    await say("/models", /quality[^\n]*serving[^\n]*http/);
    // served again in the background while the prompt is already open
    expect(await answersWithin(`${url}/health`, 30_000)).toBe(200);
    await say("/undeploy", /Stopped serving quality\./);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    await quit();
  }, 240_000);
});
