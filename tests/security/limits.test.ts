import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { classifyOutcome } from "../../graphs/automl/failures.js";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { LocalRunner, type LocalRunnerOptions } from "../../runners/local/index.js";
import { controlPaths, identityOf, type JobRecord } from "../../runners/local/job-record.js";
import { checkRun, diskUsage, keyedValue, limitMessage, parseMountinfo, parseProcCgroup, selectJob } from "../../runners/local/limits.js";
import type { Limits } from "../../runners/types.js";
import { tempDir } from "../helpers/tmp.js";

// Limits per run, through the real LocalRunner and bubblewrap, with hostile fixture "harnesses"
// (tests/fixtures/runner/{forkbomb,memhog,diskfill}). Every hostile job is bounded by itself too, so
// a host without the mechanism under test survives it.

const FIXTURES = fileURLToPath(new URL("../fixtures/runner/", import.meta.url));
const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data.csv", target: "y", metric: "accuracy" };
const LIMITS: Limits = { wallTimeS: 60, cpuS: 60, memoryMb: 1024, pids: 64, diskMb: 200 };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

// One folder for the file (tests/helpers/tmp.ts removes it); a fresh data folder per test inside it.
const tmp = tempDir("threadml-limits-");
const dataFolder = (prefix: string) => mkdtemp(path.join(tmp.dir, prefix));

async function sandboxedRunner(fixture: string, options: Partial<LocalRunnerOptions> = {}) {
  const dataDir = await dataFolder("run-");
  const logs: string[] = [];
  const runner = new LocalRunner({
    dataDir,
    harnessDir: path.join(FIXTURES, fixture),
    sandbox: "bubblewrap",
    logger: { warn: (_o, m) => logs.push(m ?? ""), info: (_o, m) => logs.push(m ?? ""), debug: () => undefined },
    ...options,
  });
  cleanups.push(() => runner.close());
  const check = await runner.check();
  expect(check.ok, `bubblewrap is required for this test: ${check.message}`).toBe(true);
  expect(check.sandbox).toBe("bubblewrap");
  const mechanism = /Run limits: (cgroup v2|cgroup v1|watchdog)/.exec(check.message)?.[1];
  expect(mechanism, check.message).toBeDefined();
  return { runner, dataDir, logs, mechanism: mechanism!, check };
}

async function runFixture(fixture: string, limits: Partial<Limits>, options: Partial<LocalRunnerOptions> = {}) {
  const made = await sandboxedRunner(fixture, options);
  const ws = await made.runner.prepare({ runId: `${fixture}-1`, files: [], texts: {} });
  const outcome = await made.runner.run(ws, { spec: SPEC, limits: { ...LIMITS, ...limits } });
  const record = JSON.parse(await readFile(controlPaths(made.dataDir, `${fixture}-1`).job, "utf8")) as JobRecord;
  return { ...made, ws, outcome, record };
}

describe("limits per run (real bubblewrap)", () => {
  it("bounds a fork bomb by limits.pids and leaves nothing behind", async (ctx) => {
    const probe = await sandboxedRunner("forkbomb");
    if (probe.mechanism === "watchdog")
      ctx.skip("no usable cgroups here: the polling watchdog cannot stop a burst of forks before it ends (see docs/security.md)");
    const { outcome, ws, record } = await runFixture("forkbomb", { pids: 64 });
    const forks = JSON.parse(await readFile(path.join(ws.dir, "forks.json"), "utf8")) as { forked: number; failed: number };
    // The job's own python and bubblewrap's init count too.
    expect(forks.forked).toBeLessThanOrEqual(64);
    expect(forks.forked).toBeGreaterThan(0);
    expect(forks.failed).toBeGreaterThan(0);
    expect(outcome.cancelled).toBe(false);
    // The run's cgroups are gone with it.
    for (const dir of record.cgroups ?? []) expect(existsSync(dir)).toBe(false);
  });

  it("stops three processes that together pass the run's memory limit", async (ctx) => {
    const probe = await sandboxedRunner("memhog");
    if (probe.mechanism === "watchdog") ctx.skip("covered by the watchdog test below on a host without cgroups");
    // Each worker (150 MB) stays under the per-process address-space limit (300 MB).
    const { outcome, record } = await runFixture("memhog", { memoryMb: 300 });
    expect(outcome.stderrTail).toContain(limitMessage("memory", { memoryMb: 300 }));
    const classified = classifyOutcome(outcome, LIMITS.wallTimeS);
    expect(classified).toEqual({ failure: "runtime_error", message: "the run used more than 300 MB of memory in total (limits.memoryMb)" });
    for (const dir of record.cgroups ?? []) expect(existsSync(dir)).toBe(false);
  });

  it("stops the same job with the watchdog where no cgroups are used", async () => {
    const { outcome, check, record } = await runFixture("memhog", { memoryMb: 300 }, { runLimits: "watchdog" });
    expect(check.message).toMatch(/Run limits: watchdog/);
    expect(record.containment).toBe("watchdog");
    expect(outcome.stderrTail).toContain("the run used more than 300 MB of memory in total (limits.memoryMb)");
    expect(classifyOutcome(outcome, LIMITS.wallTimeS).failure).toBe("runtime_error");
  });

  it("kills a run that writes past limits.diskMb into its workspace", async () => {
    const { outcome, ws } = await runFixture("diskfill", { diskMb: 200 });
    expect(outcome.stderrTail).toContain("[runner] stopped at a limit: the run wrote more than 200 MB into its workspace (limits.diskMb)");
    expect(outcome.timedOut).toBe(false);
    expect(classifyOutcome(outcome, LIMITS.wallTimeS)).toEqual({
      failure: "environment_error",
      message: "the run wrote more than 200 MB into its workspace (limits.diskMb)",
    });
    // Stopped long before the 2 GB the job would have written.
    expect((await diskUsage(ws.dir)).bytes).toBeLessThan(1024 * 1024 * 1024);
  });

  it("reports a finished job's stop reason again instead of running it twice", async () => {
    const { runner, ws, outcome } = await runFixture("diskfill", { diskMb: 200 });
    const again = await runner.run(ws, { spec: SPEC, limits: { ...LIMITS, diskMb: 200 } });
    expect(again.stderrTail).toBe(outcome.stderrTail);
  });
});

describe("workspace retention", () => {
  const spawned: ChildProcess[] = [];
  afterEach(() => {
    for (const child of spawned.splice(0)) child.kill("SIGKILL");
  });

  async function fakeRun(dataDir: string, runId: string, ageDays: number, leader?: ChildProcess): Promise<string> {
    const ws = path.join(dataDir, "runs", runId);
    const paths = controlPaths(dataDir, runId);
    await mkdir(path.join(ws, "out"), { recursive: true });
    await writeFile(path.join(ws, "out", "model.bin"), "x");
    await mkdir(paths.dir, { recursive: true });
    if (leader?.pid) {
      const record: JobRecord = {
        version: 1,
        runId,
        pid: leader.pid,
        ...identityOf(leader.pid),
        startedAt: Date.now(),
        workspace: ws,
        spec: SPEC as JobRecord["spec"],
        limits: { wallTimeS: 60, cpuS: 60, memoryMb: 512 },
        sandbox: "bubblewrap",
      };
      await writeFile(paths.job, JSON.stringify(record));
    }
    const old = (Date.now() - ageDays * 24 * 3600 * 1000) / 1000;
    for (const p of [path.join(ws, "out", "model.bin"), path.join(ws, "out"), ws, paths.job, paths.dir]) if (existsSync(p)) await utimes(p, old, old);
    return ws;
  }

  it("removes old workspaces and job records, never a live job's or one in use", async () => {
    const dataDir = await dataFolder("retention-");
    const logs: Array<{ obj: object; msg?: string }> = [];
    const runner = new LocalRunner({
      dataDir,
      harnessDir: path.join(FIXTURES, "events"),
      retention: { runsDays: 7 },
      logger: { warn: () => undefined, info: (obj, msg) => logs.push({ obj, msg }), debug: () => undefined },
    });
    cleanups.push(() => runner.close());
    // A live job: its own process group, like the detached wrapper.
    const leader = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    spawned.push(leader);
    // A model server still serving from an old workspace.
    const oldServed = await fakeRun(dataDir, "served", 30);
    const server = spawn("sleep", ["60"], { cwd: oldServed, stdio: "ignore" });
    spawned.push(server);
    await fakeRun(dataDir, "old", 10);
    await fakeRun(dataDir, "live", 30, leader);
    await fakeRun(dataDir, "fresh", 1);

    expect(await runner.sweepRuns()).toEqual(["old"]);
    expect(existsSync(path.join(dataDir, "runs", "old"))).toBe(false);
    expect(existsSync(path.join(dataDir, "jobs", "old"))).toBe(false);
    for (const kept of ["live", "fresh", "served"]) expect(existsSync(path.join(dataDir, "runs", kept))).toBe(true);
    expect(existsSync(controlPaths(dataDir, "live").job)).toBe(true);
    expect(logs.some((l) => /removed an expired run/.test(l.msg ?? "") && (l.obj as { runId?: string }).runId === "old")).toBe(true);

    // Once the live job has ended, its old workspace goes at the next sweep.
    leader.kill("SIGKILL");
    await new Promise((r) => leader.once("exit", r));
    expect(await runner.sweepRuns()).toEqual(["live"]);
  });

  it("keeps everything when runsDays is 0", async () => {
    const dataDir = await dataFolder("retention-");
    const runner = new LocalRunner({ dataDir, retention: { runsDays: 0 } });
    cleanups.push(() => runner.close());
    await fakeRun(dataDir, "ancient", 365);
    expect(await runner.sweepRuns()).toEqual([]);
    expect(existsSync(path.join(dataDir, "runs", "ancient"))).toBe(true);
  });
});

describe("limit mechanism parts", () => {
  it("parses mountinfo and /proc/self/cgroup of a hybrid host", () => {
    const mounts = parseMountinfo(
      [
        "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755",
        "35 30 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate",
        "38 30 0:34 / /sys/fs/cgroup/pids rw,nosuid shared:7 - cgroup cgroup rw,pids",
        "39 30 0:35 / /sys/fs/cgroup/my\\040mem rw - cgroup cgroup rw,memory",
      ].join("\n"),
    );
    expect(mounts.map((m) => [m.mountPoint, m.fsType])).toEqual([
      ["/sys/fs/cgroup", "tmpfs"],
      ["/sys/fs/cgroup/unified", "cgroup2"],
      ["/sys/fs/cgroup/pids", "cgroup"],
      ["/sys/fs/cgroup/my mem", "cgroup"],
    ]);
    expect(mounts[2].superOptions).toContain("pids");
    const own = parseProcCgroup("8:pids:/\n4:memory:/svc/a\n2:cpu,cpuacct:/x\n0::/user.slice\n");
    expect(own.v2).toBe("/user.slice");
    expect(own.v1.get("memory")).toBe("/svc/a");
    expect(own.v1.get("cpuacct")).toBe("/x");
  });

  it("reads OOM-kill counters of cgroup v1 and v2", () => {
    expect(keyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill")).toBe(2);
    expect(keyedValue("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 1\n", "oom_kill")).toBe(1);
    expect(keyedValue("max 0\n", "oom_kill")).toBe(0);
  });

  it("finds the job's processes: descendants, and its group or session after they were orphaned", () => {
    const stats = [
      { pid: 1, ppid: 0, pgrp: 1, session: 1 },
      { pid: 100, ppid: 1, pgrp: 100, session: 100 }, // the wrapper (leader)
      { pid: 101, ppid: 100, pgrp: 100, session: 100 },
      { pid: 102, ppid: 101, pgrp: 102, session: 102 }, // bubblewrap's sandbox: a new session, still a descendant
      { pid: 103, ppid: 102, pgrp: 102, session: 102 },
      { pid: 104, ppid: 1, pgrp: 100, session: 100 }, // orphan, still in the group
      { pid: 200, ppid: 1, pgrp: 200, session: 200 }, // unrelated
    ];
    expect(selectJob(stats, 100).sort()).toEqual([100, 101, 102, 103, 104]);
  });

  it("the watchdog counts this process tree's memory and processes", async () => {
    const child = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    try {
      const base = { leader: child.pid!, workspace: os.tmpdir(), containment: "watchdog" as const, cgroups: [] };
      expect(await checkRun({ ...base, memoryMb: 1024, pids: 10 }, false)).toBeNull();
      expect(await checkRun({ ...base, memoryMb: 1024, pids: 0.5 }, false)).toBe("pids");
      // sleep uses far more than a few bytes.
      expect(await checkRun({ ...base, memoryMb: 0.0001, pids: 10 }, false)).toBe("memory");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
