import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliAdapter, type Posted } from "../../adapters/cli/index.js";
import type { ModelEntry } from "../../src/store/index.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { sshdMissing, startSshd, until, type Sshd } from "../helpers/sshd.js";
import { closeStack, detachStack, ofKind, openStack, shown, threadDriver, type Stack } from "../helpers/thread.js";
import { tempDir } from "../helpers/tmp.js";

// A model trained and served on an SSH host (a real loopback sshd), then asked follow-ups in its
// thread: scoring a file and explaining run as jobs on the host and come back through the intake. A
// restart of ThreadML over the same file store serves the model again on the host, through a freshly
// forwarded local port that the registry records, and "undeploy" stops it.

const PYTHON = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
const missing = sshdMissing();
// A missing sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

const tmp = tempDir("threadml-ssh-followups-");
const host = () => join(tmp.dir, "gpu-host");
const thread = CliAdapter.thread("ssh");
let sshd: Sshd;

function open(): Promise<Stack> {
  return openStack(
    {
      dataDir: join(tmp.dir, ".threadml"),
      search: { budgetS: 2, trialsPerFamily: 2 },
      runners: {
        gpu1: { kind: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHosts: sshd.knownHostsFile, workdir: host(), python: PYTHON },
      },
      defaultRunner: "gpu1",
    },
    tmp.dir,
  );
}

let stack: Stack | null = null;

const { send, say } = threadDriver(() => stack!, thread);

/** The endpoint's answer, or the network error's message when nothing answers. */
async function get(entry: ModelEntry, path: string, body?: unknown): Promise<{ status: number; json: unknown } | string> {
  const headers: Record<string, string> = entry.token ? { authorization: `Bearer ${entry.token}` } : {};
  if (body !== undefined) headers["content-type"] = "application/json";
  try {
    const res = await fetch(`${entry.url}${path}`, { method: body === undefined ? "GET" : "POST", headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    return { status: res.status, json: await res.json().catch(() => null) };
  } catch (err) {
    return (err as Error).message;
  }
}

/** The harness modes of the runs in the host's workdir (each run's spec.json). */
function hostModes(): string[] {
  const runs = join(host(), "runs");
  return readdirSync(runs)
    .filter((r) => existsSync(join(runs, r, "spec.json")))
    .map((r) => (JSON.parse(readFileSync(join(runs, r, "spec.json"), "utf8")) as { mode: string }).mode);
}

/** The process id of the model server the host started in the model's workspace. */
const serverPid = (entry: ModelEntry) => Number(readFileSync(join(entry.runnerDir, ".serve", "pid"), "utf8"));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** New rows in the training table's columns, without the label (Quality is the last column). */
function unlabelled(file: string, rows: number, seed: number): string[][] {
  writeClassificationCsv(file, { rows, seed });
  const lines = readFileSync(file, "utf8").trimEnd().split("\n");
  const cut = lines.map((l) => l.split(",").slice(0, -1));
  writeFileSync(file, `${cut.map((r) => r.join(",")).join("\n")}\n`);
  return cut;
}

beforeAll(async () => {
  requirePython();
  sshd = await startSshd();
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 600, seed: 31 });
  stack = await open();
}, 60_000);

afterAll(async () => {
  if (stack) await closeStack(stack);
  await sshd?.stop();
});

describe("follow-ups and a restart with the model served on an SSH host", () => {
  let first: ModelEntry;

  it("trains on the host, deploys there and registers the model with its forwarded endpoint", async () => {
    const opened = await say("Build a model that predicts Quality in bananas.csv", [join(tmp.dir, "bananas.csv")]);
    // with more than one runner configured, a chat thread is asked where to train (the default first)
    const [where] = ofKind(opened, "question");
    expect(where?.question, shown(opened)).toMatchObject({ slot: "runner", choices: [{ value: "gpu1" }, { value: "local" }] });
    const answered = await say("gpu1");
    const card = stack!.adapter.posted.at(-1)!;
    expect(card.message.kind, shown(answered)).toBe("plans");
    const done = await send({ kind: "action", action: "approve", value: "best", message: card.ref });
    const [report] = ofKind(done, "report");
    expect(report, shown(done)).toBeDefined();
    expect(report.report.status, shown(done)).toBe("deployed");
    expect(report.model).toBe("quality");

    first = (await stack!.service.registry.get("quality"))!;
    expect(first).toMatchObject({ runner: "gpu1", status: "serving", thread: "cli:local:ssh" });
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await get(first, "/health");
    expect(health).toMatchObject({ status: 200 });
    // the run's workspace and its model server are on the host
    expect(first.runnerDir.startsWith(host())).toBe(true);
    expect(alive(serverPid(first))).toBe(true);
    expect(hostModes()).not.toContain("predict");
  }, 150_000);

  it("scores a file of new rows on the host and posts the predictions back", async () => {
    const rows = unlabelled(join(tmp.dir, "new-bananas.csv"), 40, 77);
    const posted = await say("score these", [join(tmp.dir, "new-bananas.csv")]);
    const [file] = ofKind(posted, "file");
    expect(file, shown(posted)).toBeDefined();
    expect(file.name).toMatch(/predictions\.csv$/);
    expect(existsSync(file.path)).toBe(true);
    const lines = readFileSync(file.path, "utf8").trimEnd().split(/\r?\n/);
    const header = lines[0].split(",");
    expect(header.slice(0, rows[0].length)).toEqual(rows[0]);
    const at = header.indexOf("prediction");
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines).toHaveLength(rows.length);
    const predictions = lines.slice(1).map((l) => l.split(",")[at]);
    expect(predictions.every((p) => p === "Good" || p === "Bad")).toBe(true);
    // the input's rows come back in order, beside their predictions
    const numbers = (r: string[]) => r.map(Number);
    expect(lines.slice(1).map((l) => numbers(l.split(",").slice(0, rows[0].length)))).toEqual(rows.slice(1).map(numbers));
    expect(file.lines.join("\n")).toMatch(/Scored 40 rows/);
    // the predict job ran in a workspace on the host
    expect(hostModes().filter((m) => m === "predict")).toHaveLength(1);
  }, 120_000);

  it("explains the model with an importance plot measured on the host", async () => {
    const posted = await say("what matters?");
    const [file] = ofKind(posted, "file");
    expect(file, shown(posted)).toBeDefined();
    expect(file.name).toBe("importance.png");
    expect(readFileSync(file.path).subarray(1, 4).toString()).toBe("PNG");
    expect(hostModes().filter((m) => m === "explain")).toHaveLength(1);
    expect(file.lines.join("\n")).toMatch(/Size|Sweetness|Weight|Softness|HarvestTime|Ripeness|Acidity/);
  }, 120_000);

  it("serves the model again on the host after a restart, at the address the registry records", async () => {
    const oldPid = serverPid(first);
    await detachStack(stack!);
    stack = null;
    // the forwarded port closed with the process that held it, and the server on the host stopped
    expect(typeof (await get(first, "/health"))).toBe("string");
    await until(() => !alive(oldPid), "the host's model server to exit", 30_000);

    stack = await open();
    const again = (await stack.service.registry.get("quality"))!;
    expect(again.status).toBe("serving");
    expect(again.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await get(again, "/health")).toMatchObject({ status: 200 });
    // a fresh server on the host, in the same workspace
    expect(again.runnerDir).toBe(first.runnerDir);
    expect(serverPid(again)).not.toBe(oldPid);
    expect(alive(serverPid(again))).toBe(true);
    const row = Object.fromEntries(["Size", "Weight", "Sweetness", "Softness", "HarvestTime", "Ripeness", "Acidity"].map((c, i) => [c, i % 2 ? 1.5 : -0.5]));
    const predicted = await get(again, "/predict", { rows: [row] });
    expect(predicted).toMatchObject({ status: 200 });
    const answer = (predicted as { json: { predictions: unknown[] } }).json.predictions;
    expect(answer).toHaveLength(1);
    expect(["Good", "Bad"]).toContain(answer[0]);
    first = again;
  }, 120_000);

  it("undeploys: the entry says stopped and the endpoint no longer answers", async () => {
    const posted = await say("undeploy");
    expect(shown(posted)).toMatch(/Stopped serving quality/);
    expect((await stack!.service.registry.get("quality"))?.status).toBe("stopped");
    expect(typeof (await get(first, "/health"))).toBe("string");
    await until(() => !alive(serverPid(first)), "the host's model server to exit", 30_000);
  }, 60_000);
});
