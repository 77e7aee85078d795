import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/tmp.js";

// ThreadML killed with SIGKILL and started again, with conversations kept in a real redis-server: a
// question that waits, a plan card that waits, and training that runs when the process dies. The
// terminal is the chat here (its thread is the same across restarts), so each case is what a user
// at the prompt sees.

const tmp = tempDir("threadml-durable-");
let redis: RedisServer;
const bots: Bot[] = [];

class Bot {
  out = "";
  readonly child: ChildProcessWithoutNullStreams;
  constructor(cwd: string, prefix: string) {
    const config = join(cwd, "threadml.yaml");
    writeFileSync(config, `redis:\n  prefix: ${prefix}\n  leaseTtlS: 2\n`);
    this.child = spawn(process.execPath, [BIN, "start"], {
      cwd,
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        THREADML_CONFIG: config,
        THREADML_DATA_DIR: join(cwd, ".threadml"),
        THREADML_SEARCH_BUDGET_S: "2",
        LOG_LEVEL: "warn",
      },
    });
    this.child.stdout.on("data", (d) => (this.out += d));
    this.child.stderr.on("data", (d) => (this.out += d));
    bots.push(this);
  }

  waitFor(pattern: RegExp, from = 0, timeoutMs = 120_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const tick = () => {
        const match = this.out.slice(from).match(pattern);
        if (match) return resolve(match[0]);
        if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${pattern}; output so far:\n${this.out}`));
        if (this.exited) return reject(new Error(`ThreadML exited (${this.child.exitCode}) before ${pattern}:\n${this.out}`));
        setTimeout(tick, 50);
      };
      tick();
    });
  }

  say(line: string, expect: RegExp, timeoutMs?: number): Promise<string> {
    const mark = this.out.length;
    this.child.stdin.write(`${line}\n`);
    return this.waitFor(expect, mark, timeoutMs);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async kill9(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGKILL");
    await exited;
  }

  /** A normal shutdown, so the model servers it started stop with it. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

async function started(cwd: string, prefix: string): Promise<Bot> {
  const bot = new Bot(cwd, prefix);
  await bot.waitFor(/ThreadML is ready/);
  return bot;
}

function caseDir(name: string, rows = 600): string {
  const dir = join(tmp.dir, name);
  writeClassificationCsv(join(dir, "bananas.csv"), { rows, seed: 7 });
  return dir;
}

beforeAll(async () => {
  requirePython();
  redis = await startRedisServer();
});

afterAll(async () => {
  await Promise.all(bots.map((b) => b.stop()));
  await redis?.stop();
}, 60_000);

describe("a conversation survives kill -9 of ThreadML", () => {
  it("while a clarifying question waits", async () => {
    const dir = caseDir("question");
    const first = await started(dir, "question");
    await first.say("Build me a classifier from bananas.csv", /Which column of bananas\.csv should I predict\?/);
    await first.kill9();

    const second = await started(dir, "question");
    // The new process knows the question: a plain answer continues the same conversation.
    await second.say("Quality", /Reply a to approve/);
    expect(second.out).not.toMatch(/doesn't look like|rejected/i);
  });

  it("while a plan waits for approval", async () => {
    const dir = caseDir("approval");
    const first = await started(dir, "approval");
    await first.say("Build a model that predicts Quality in bananas.csv", /Reply a to approve/);
    await first.kill9();

    const second = await started(dir, "approval");
    const report = await second.say("approve", /== Model deployed ==[\s\S]*Try it: curl[^\n]*\n/);
    expect(report).toMatch(/accuracy/);
  });

  /** Starts a conversation, approves it and resolves once its full training run is on record. */
  async function untilTraining(dir: string, prefix: string): Promise<{ first: Bot; jobs: string; id: string; pid: number }> {
    const first = await started(dir, prefix);
    await first.say("Build a model that predicts Quality in bananas.csv", /Reply a to approve/);
    first.child.stdin.write("a\n");
    const jobs = join(dir, ".threadml", "jobs");
    const find = () => (existsSync(jobs) ? readdirSync(jobs).find((d) => /-full-\d+$/.test(d) && existsSync(join(jobs, d, "job.json"))) : undefined);
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const tick = () => (find() ? resolve() : Date.now() - t0 > 180_000 ? reject(new Error(`no training run started:\n${first.out}`)) : setTimeout(tick, 50));
      tick();
    });
    const id = find()!;
    return { first, jobs, id, pid: pidOf(jobs, id) };
  }

  const pidOf = (jobs: string, id: string) => (JSON.parse(readFileSync(join(jobs, id, "job.json"), "utf8")) as { pid: number }).pid;

  it("while training runs: the job goes on, the new process re-attaches and reports, nothing runs twice", async () => {
    const { first, jobs, id, pid } = await untilTraining(caseDir("training", 60_000), "training");
    await first.kill9();

    const second = await started(join(tmp.dir, "training"), "training");
    await second.waitFor(/picking this conversation up where it stopped/, 0, 60_000);
    const report = await second.waitFor(/== Model deployed ==[\s\S]*Try it: curl[^\n]*\n/, 0, 240_000);
    expect(report).toMatch(/accuracy/);
    // One training job, started once: the second process adopted the first one's process.
    expect(readdirSync(jobs).filter((d) => /-full-\d+$/.test(d))).toEqual([id]);
    expect(pidOf(jobs, id)).toBe(pid);
    // Adopted while running ("following it again") or, on a fast machine, after it ended ("already
    // finished"); never run a second time.
    expect(second.out).toMatch(/following it again|already finished/);
    expect(second.out).not.toMatch(/stopped without finishing/);
  }, 420_000);

  it("while training runs and the job dies with it: the job is run again and the thread says so", async () => {
    const { first, jobs, id, pid } = await untilTraining(caseDir("training-lost", 15_000), "training-lost");
    await first.kill9();
    process.kill(-pid, "SIGKILL");

    const second = await started(join(tmp.dir, "training-lost"), "training-lost");
    await second.waitFor(/stopped without finishing[^\n]*running it again/, 0, 120_000);
    const report = await second.waitFor(/== Model deployed ==[\s\S]*Try it: curl[^\n]*\n/, 0, 240_000);
    expect(report).toMatch(/accuracy/);
    expect(pidOf(jobs, id)).not.toBe(pid);
  }, 420_000);
});
