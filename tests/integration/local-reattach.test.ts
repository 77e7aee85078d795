import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { HarnessEvent, HarnessSpecInput } from "../../runners/contract.js";
import { JobRecord, LocalRunner, controlPaths } from "../../runners/local/index.js";
import { leaderAlive, procInfo } from "../../runners/local/job-record.js";
import type { Limits, RunOutcome, Workspace } from "../../runners/types.js";

// Training jobs outlive the process that started them: a second runner on the same data folder (a
// restarted service) follows a job that still runs, returns the outcome of one that finished, and runs
// again one that vanished without an exit record. Real processes under bubblewrap, a tiny harness that
// waits for a `release` file so the tests decide when a job ends.

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data.csv", target: "y", metric: "accuracy" };
const LIMITS: Limits = { wallTimeS: 120, cpuS: 60, memoryMb: 1024 };

// Appends to starts.log (one line per start), optionally leaves a child carrying marker.txt's text on its
// command line, waits for `release`, then reports a metric and a valid result.
const HARNESS = `import json, os, subprocess, sys, time
spec = json.load(open("spec.json"))
with open("starts.log", "a") as f:
    f.write("start\\n")
if os.path.exists("marker.txt"):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", open("marker.txt").read().strip()])
print(json.dumps({"event": "progress", "stage": "started", "done": 0, "total": 1}), flush=True)
print("harness stderr line", file=sys.stderr, flush=True)
deadline = time.time() + 100
while not os.path.exists("release") and time.time() < deadline:
    time.sleep(0.05)
print(json.dumps({"event": "metric", "name": "accuracy", "value": 0.75, "split": "valid"}), flush=True)
os.makedirs(spec["out_dir"], exist_ok=True)
with open(os.path.join(spec["out_dir"], "result.json"), "w") as f:
    json.dump({"status": "ok", "mode": spec["mode"], "task": spec["task"], "metrics": {"accuracy": 0.75}}, f)
print(json.dumps({"event": "done", "status": "ok"}), flush=True)
`;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A data folder and a harness folder shared by the runners of one test; jobs left behind are killed after it. */
async function setup(sandbox: "bubblewrap" | "off" = "bubblewrap") {
  const dataDir = await tempDir("threadml-reattach-");
  const harnessDir = await tempDir("threadml-reattach-harness-");
  await writeFile(path.join(harnessDir, "harness.py"), HARNESS);
  cleanups.push(async () => {
    const jobs = path.join(dataDir, "jobs");
    for (const runId of existsSync(jobs) ? await readdir(jobs) : []) {
      const record = await readRecord(dataDir, runId).catch(() => null);
      if (record && leaderAlive(record)) process.kill(-record.pid, "SIGKILL");
    }
  });
  return { dataDir, harnessDir, runner: () => newRunner(dataDir, harnessDir, sandbox) };
}

function newRunner(dataDir: string, harnessDir: string, sandbox: "bubblewrap" | "off"): LocalRunner {
  const runner = new LocalRunner({ dataDir, harnessDir, sandbox });
  cleanups.push(() => runner.close());
  return runner;
}

async function readRecord(dataDir: string, runId: string): Promise<JobRecord> {
  return JobRecord.parse(JSON.parse(await readFile(controlPaths(dataDir, runId).job, "utf8")));
}

async function waitUntil(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function starts(ws: Workspace): Promise<number> {
  const text = await readFile(path.join(ws.dir, "starts.log"), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).length;
}

const started = (events: HarnessEvent[]) => events.some((e) => e.event === "progress" && e.stage === "started");

/** Host pids whose command line holds the marker (the sandbox's pid namespace hides nothing from the host). */
async function pidsWithMarker(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const state = procInfo(Number(entry))?.state;
    if (cmdline.includes(marker) && state !== "Z") found.push(Number(entry));
  }
  return found;
}

/** Whether the promise has settled, read later. */
function watch(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

function recorder() {
  const events: HarnessEvent[] = [];
  const notices: string[] = [];
  return { events, notices, onEvent: (e: HarnessEvent) => events.push(e), onNotice: (t: string) => notices.push(t) };
}

const INPUT = { runId: "job-1", files: [], texts: { "note.txt": "from prepare" } };

describe("LocalRunner re-attach", () => {
  it.each(["bubblewrap", "off"] as const)("a second runner follows a running job: same process, one start, the same outcome (sandbox %s)", async (sandbox) => {
    const { dataDir, runner } = await setup(sandbox);
    const first = runner();
    const ws = await first.prepare(INPUT);
    const a = recorder();
    const runA = first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent });
    await waitUntil("the job has started", () => started(a.events));
    const record = await readRecord(dataDir, "job-1");
    expect(leaderAlive(record)).toBe(true);

    // What the job wrote into its workspace survives a second prepare() with the same inputs.
    await writeFile(path.join(ws.dir, "note.txt"), "written while running");
    const second = runner();
    const wsB = await second.prepare(INPUT);
    expect(wsB.dir).toBe(ws.dir);
    expect(await readFile(path.join(ws.dir, "note.txt"), "utf8")).toBe("written while running");
    // Other inputs under the id of a running job are refused rather than written under it.
    await expect(second.prepare({ ...INPUT, texts: { "note.txt": "other" } })).rejects.toThrow(/still running/);

    const b = recorder();
    const runB = second.run(wsB, { spec: SPEC, limits: LIMITS, ...b });
    // Events are delivered again from the start of the log, so the new view sees the progress so far.
    await waitUntil("the second runner has replayed the start", () => started(b.events));
    await writeFile(path.join(ws.dir, "release"), "");
    const [outA, outB] = await Promise.all([runA, runB]);

    expect(outA.result?.status, outA.stderrTail).toBe("ok");
    expect(outB).toEqual(outA);
    expect(outB.exitCode).toBe(0);
    expect(outB.stderrTail).toContain("harness stderr line");
    expect(await starts(ws)).toBe(1);
    expect((await readRecord(dataDir, "job-1")).pid).toBe(record.pid);
    expect(b.notices).toEqual([expect.stringMatching(/still running .*following it again/)]);
    expect(b.events).toEqual(a.events);
    expect(b.events).toContainEqual({ event: "metric", name: "accuracy", value: 0.75, split: "valid" });

    // Finished: a third runner gets the stored outcome and the events, and starts nothing.
    const third = runner();
    const c = recorder();
    const outC = await third.run(await third.prepare(INPUT), { spec: SPEC, limits: LIMITS, ...c });
    expect(outC).toEqual(outA);
    expect(c.events).toEqual(a.events);
    expect(c.notices).toEqual([expect.stringMatching(/already finished/)]);
    expect(await starts(ws)).toBe(1);
  });

  it("detach() leaves the job running and a new runner gets its result", async () => {
    const { dataDir, runner } = await setup();
    const first = runner();
    const ws = await first.prepare(INPUT);
    const a = recorder();
    const runA = first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent });
    await waitUntil("the job has started", () => started(a.events));
    const settled = watch(runA);
    await first.detach();
    const later = watch(first.run(ws, { spec: SPEC, limits: LIMITS }));
    const record = await readRecord(dataDir, "job-1");
    expect(leaderAlive(record)).toBe(true);

    await writeFile(path.join(ws.dir, "release"), "");
    // The job ends with no runner following it; its exit record is enough.
    await waitUntil("the job has ended", () => !leaderAlive(record));
    const b = recorder();
    const second = runner();
    const outB = await second.run(await second.prepare(INPUT), { spec: SPEC, limits: LIMITS, ...b });
    expect(outB.result?.status, outB.stderrTail).toBe("ok");
    expect(outB.exitCode).toBe(0);
    expect(outB.timedOut).toBe(false);
    expect(outB.durationS).toBeGreaterThan(0);
    expect(b.notices).toEqual([expect.stringMatching(/already finished/)]);
    expect(await starts(ws)).toBe(1);
    // The detached runner's calls stay unfinished, so a graph step never records a job it stopped following.
    expect(settled()).toBe(false);
    expect(later()).toBe(false);
  });

  it("runs a job again, with a notice, when it was killed without an exit record", async () => {
    const { dataDir, runner } = await setup();
    const first = runner();
    const ws = await first.prepare(INPUT);
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent });
    await waitUntil("the job has started", () => started(a.events));
    await first.detach();
    const record = await readRecord(dataDir, "job-1");
    // As if the machine went down: the whole group dies at once and nothing records an exit.
    process.kill(-record.pid, "SIGKILL");
    await waitUntil("the killed job is gone", () => !leaderAlive(record));
    await writeFile(path.join(ws.dir, "stale-output-marker"), "");

    const second = runner();
    const wsB = await second.prepare(INPUT);
    await writeFile(path.join(ws.dir, "release"), "");
    const b = recorder();
    const outB = await second.run(wsB, { spec: SPEC, limits: LIMITS, ...b });
    expect(outB.result?.status, outB.stderrTail).toBe("ok");
    expect(b.notices).toEqual([expect.stringMatching(/^The previous run of this job stopped without finishing \(.+\); running it again\.$/)]);
    expect(await starts(ws)).toBe(2);
    expect((await readRecord(dataDir, "job-1")).pid).not.toBe(record.pid);
    // Only the events of the new run.
    expect(b.events.filter((e) => e.event === "progress")).toHaveLength(1);
  });

  it("keeps the wall-time limit of the recorded start, not of the re-attach", async () => {
    const { dataDir, runner } = await setup();
    const first = runner();
    const ws = await first.prepare(INPUT);
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: { ...LIMITS, wallTimeS: 2 }, onEvent: a.onEvent });
    await waitUntil("the job has started", () => started(a.events));
    await first.detach();
    const record = await readRecord(dataDir, "job-1");

    // Asked with a long limit, the new runner still stops the job at the 2 s it was started with.
    const second = runner();
    const out = await second.run(await second.prepare(INPUT), { spec: SPEC, limits: LIMITS });
    expect(out.timedOut).toBe(true);
    expect(out.cancelled).toBe(false);
    expect(out.result).toBeNull();
    expect(out.durationS).toBeGreaterThanOrEqual(2);
    expect(out.stderrTail).toMatch(/wall-time limit of 2 s/);
    expect(leaderAlive(record)).toBe(false);
    expect(await starts(ws)).toBe(1);
  });

  it("a job nobody follows is still stopped at its wall-time limit (plus a grace period) by its wrapper", async () => {
    const { dataDir, runner } = await setup();
    const marker = `threadml-reattach-${process.pid}-${Date.now()}-backstop`;
    const input = { ...INPUT, texts: { ...INPUT.texts, "marker.txt": marker } };
    const first = runner();
    const ws = await first.prepare(input);
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: { ...LIMITS, wallTimeS: 1 }, onEvent: a.onEvent });
    await waitUntil("the job has started", () => started(a.events));
    await first.detach();
    const record = await readRecord(dataDir, "job-1");
    await waitUntil("the wrapper has stopped the job", () => !leaderAlive(record));
    await waitUntil("the job's child is gone too", async () => (await pidsWithMarker(marker)).length === 0, 5000);

    const second = runner();
    const out = await second.run(await second.prepare(input), { spec: SPEC, limits: LIMITS });
    expect(out.timedOut).toBe(true);
    expect(out.result).toBeNull();
    expect(out.signal).toBe("SIGTERM");
    expect(out.stderrTail).toMatch(/wall-time limit of 1 s/);
    expect(out.stderrTail).not.toMatch(/Terminated/);
    expect(existsSync(controlPaths(dataDir, "job-1").stop)).toBe(false);
    expect(await starts(ws)).toBe(1);
  });

  it("cancelling a re-attached job kills its whole group", async () => {
    const { dataDir, runner } = await setup();
    const marker = `threadml-reattach-${process.pid}-${Date.now()}`;
    const input = { ...INPUT, texts: { ...INPUT.texts, "marker.txt": marker } };
    const first = runner();
    const ws = await first.prepare(input);
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent });
    await waitUntil("the job has started", () => started(a.events));
    await waitUntil("the job's child is up", async () => (await pidsWithMarker(marker)).length > 0);
    await first.detach();
    const record = await readRecord(dataDir, "job-1");

    const second = runner();
    const controller = new AbortController();
    const outB = await second.run(await second.prepare(input), {
      spec: SPEC,
      limits: LIMITS,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.event === "progress" && e.stage === "started") controller.abort();
      },
    });
    expect(outB.cancelled).toBe(true);
    expect(outB.timedOut).toBe(false);
    expect(outB.result).toBeNull();
    expect(outB.stderrTail).toContain("[runner] cancelled");
    expect(leaderAlive(record)).toBe(false);
    await waitUntil("the job's child is gone too", async () => (await pidsWithMarker(marker)).length === 0, 5000);
    expect(await starts(ws)).toBe(1);
  });

  it("does not adopt an unrelated process whose pid is in the job record", async () => {
    const { dataDir, runner } = await setup();
    const bystander = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    cleanups.push(async () => void bystander.kill("SIGKILL"));
    const pid = bystander.pid!;
    const info = procInfo(pid)!;
    expect(info.pgrp).toBe(pid);

    const first = runner();
    const ws = await first.prepare(INPUT);
    await writeFile(path.join(ws.dir, "release"), "");
    const paths = controlPaths(dataDir, "job-1");
    const real = JobRecord.parse({
      version: 1,
      runId: "job-1",
      pid,
      // A recycled pid: alive and a group leader, but not started when the record says.
      startTicks: String(Number(info.startTicks) + 1),
      bootId: (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim(),
      startedAt: Date.now(),
      workspace: ws.dir,
      spec: SPEC,
      limits: LIMITS,
      sandbox: "bubblewrap",
    });
    await writeFile(paths.job, JSON.stringify(real));

    const b = recorder();
    const out = await first.run(await first.prepare(INPUT), { spec: SPEC, limits: LIMITS, ...b });
    expect(out.result?.status, out.stderrTail).toBe("ok");
    expect(b.notices).toEqual([expect.stringMatching(/stopped without finishing/)]);
    expect(await starts(ws)).toBe(1);
    expect((await readRecord(dataDir, "job-1")).pid).not.toBe(pid);
    expect(procInfo(pid)?.state).not.toBe("Z");
    expect(procInfo(pid)).not.toBeNull();

    // A record that is not valid at all is reported and the job runs again.
    await writeFile(paths.job, "{not json");
    await rm(paths.outcome, { force: true });
    const c = recorder();
    const again = await first.run(await first.prepare(INPUT), { spec: SPEC, limits: LIMITS, ...c });
    expect(again.result?.status, again.stderrTail).toBe("ok");
    expect(c.notices).toEqual([expect.stringMatching(/stopped without finishing \(.*not valid JSON.*\)/)]);
    expect(await starts(ws)).toBe(2);
  });

  it("a new process re-attaches to a job whose starting process was killed with SIGKILL", async () => {
    const { dataDir, harnessDir, runner } = await setup();
    const scriptDir = await tempDir("threadml-reattach-child-");
    const script = path.join(scriptDir, "child.mts");
    const runnerModule = pathToFileURL(path.join(ROOT, "runners/local/index.ts")).href;
    await writeFile(
      script,
      `import { LocalRunner } from ${JSON.stringify(runnerModule)};
const [dataDir, harnessDir, spec, limits] = process.argv.slice(2);
const runner = new LocalRunner({ dataDir, harnessDir, sandbox: "bubblewrap" });
const ws = await runner.prepare(${JSON.stringify(INPUT)});
const outcome = await runner.run(ws, {
  spec: JSON.parse(spec),
  limits: JSON.parse(limits),
  onEvent: (e) => { if (e.event === "progress" && e.stage === "started") console.log("STARTED"); },
});
console.log("FINISHED " + JSON.stringify(outcome));
`,
    );
    const child = spawn(process.execPath, [path.join(ROOT, "bin/run-ts.mjs"), script, dataDir, harnessDir, JSON.stringify(SPEC), JSON.stringify(LIMITS)], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    cleanups.push(async () => void child.kill("SIGKILL"));
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<string | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    await waitUntil("the child process has started the job", () => {
      if (child.exitCode !== null) throw new Error(`the child process exited early:\n${stdout}\n${stderr}`);
      return stdout.includes("STARTED");
    }, 60_000);

    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    const record = await readRecord(dataDir, "job-1");
    expect(leaderAlive(record)).toBe(true);

    const second = runner();
    const ws = await second.prepare(INPUT);
    const b = recorder();
    const running = second.run(ws, { spec: SPEC, limits: LIMITS, ...b });
    await waitUntil("the new runner has re-attached", () => started(b.events));
    await writeFile(path.join(ws.dir, "release"), "");
    const out: RunOutcome = await running;
    expect(out.result?.status, out.stderrTail).toBe("ok");
    expect(out.result?.metrics).toEqual({ accuracy: 0.75 });
    expect(b.notices).toEqual([expect.stringMatching(/following it again/)]);
    expect(await starts(ws)).toBe(1);
    expect(stdout).not.toContain("FINISHED");
  });
});
