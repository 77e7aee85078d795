import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SlurmRunnerConfig } from "../../config/schema.js";
import { classifyOutcome } from "../../graphs/automl/failures.js";
import type { HarnessEvent, HarnessSpecInput } from "../../runners/contract.js";
import { SlurmRunner } from "../../runners/slurm/index.js";
import type { RunOutcome, Workspace } from "../../runners/types.js";
import { createLogger } from "../../src/logger.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { slurmMissing, slurmRunnerSettings, startSlurm, type SlurmCluster } from "../helpers/slurm.js";
import { GATE_SOLUTION, sshdMissing, startSshd, until, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// The Slurm runner against a real single-node Slurm cluster (slurmctld, slurmd, munge) on this machine,
// reached through a real sshd on 127.0.0.1, as a login node would be. Accounting is off, as on many
// clusters: the runner follows jobs with squeue, scontrol and the job's own exit file.

const missing = sshdMissing() ?? slurmMissing();
// A missing Slurm or sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data/bananas.csv", target: "Quality", metric: "accuracy", seed: 42 };
const LIMITS = { wallTimeS: 300, cpuS: 300, memoryMb: 1024 };
const logger = createLogger("silent");

const FAILING = `def build(ctx):
    raise RuntimeError("the model cannot be built: deliberate failure")
`;

describe("the Slurm runner against a real Slurm cluster over SSH", () => {
  const tmp = tempDir("threadml-slurm-");
  const remoteDir = join(tmp.dir, "shared");
  let sshd: Sshd;
  let cluster: SlurmCluster;
  let data: string;
  const open: SlurmRunner[] = [];
  // The job Slurm kills at its time limit takes a minute or more: it runs while the other tests do.
  let stuck: Promise<{ ws: Workspace; out: RunOutcome }>;
  let stuckRunner: SlurmRunner;

  beforeAll(async () => {
    requirePython();
    [sshd, cluster] = await Promise.all([startSshd(), startSlurm({ cpus: 4 })]);
    data = join(tmp.dir, "bananas.csv");
    writeClassificationCsv(data, { rows: 400, seed: 7 });
    stuckRunner = runner({ timeLimitMin: 1 });
    open.pop();
    stuck = stuckRunner.prepare(input("stuck")).then(async (ws) => ({ ws, out: await stuckRunner.run(ws, { spec: SPEC, limits: LIMITS }) }));
  }, 90_000);
  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await stuckRunner?.close();
    await Promise.all([sshd?.stop(), cluster?.stop()]);
  });

  function runner(overrides: Record<string, unknown> = {}): SlurmRunner {
    const config = SlurmRunnerConfig.parse(slurmRunnerSettings(cluster, sshd, remoteDir, { memoryMb: 512, timeLimitMin: 10, ...overrides }));
    const r = new SlurmRunner({ name: "cluster", config, dataDir: join(tmp.dir, "local"), logger });
    open.push(r);
    return r;
  }

  const input = (runId: string, solution = GATE_SOLUTION) => ({ runId, files: [{ source: data, dest: "data/bananas.csv" }], texts: { "solution.py": solution } });
  const jobFile = (ws: Workspace, name: string) => join(ws.dir, ".job", name);
  const jobOf = (ws: Workspace) => {
    const id = readFileSync(jobFile(ws, "jobid"), "utf8").trim();
    const job = cluster.jobs().find((j) => j.id === id);
    if (!job) throw new Error(`Slurm has no record of job ${id}:\n${cluster.log()}`);
    return job;
  };

  function recorder() {
    const waits: number[] = [];
    const notices: string[] = [];
    return {
      waits,
      notices,
      onEvent: (e: HarnessEvent) => {
        if (e.event === "progress" && e.stage === "waiting") waits.push(e.done ?? -1);
      },
      onNotice: (n: string) => notices.push(n),
    };
  }

  it("checks the login node: interpreter, sandbox and Slurm", async () => {
    const check = await runner().check();
    expect(check.ok, check.message).toBe(true);
    expect(check.sandbox).toBe("bubblewrap");
    expect(check.message).toMatch(/slurm[-\w]* 22\.\d+.*debug\* up \(1 idle\)/i);
    expect(check.message).toContain(cluster.partition);
    // A controller that does not answer, as sinfo reports it.
    const down = `sinfo() { echo "sinfo: error: Unable to contact slurm controller (connect failure)" >&2; return 1; }`;
    const broken = await runner({ setup: [...cluster.setup, down] }).check();
    expect(broken.ok).toBe(false);
    expect(broken.message).toMatch(/Slurm does not answer on cluster \(.*\) for partition debug: sinfo: error: Unable to contact slurm controller/);
  });

  it("runs a harness run as one batch job, in the sandbox, with the local runner's results", async () => {
    const r = runner();
    const rec = recorder();
    const ws = await r.prepare(input("ok", readFileSync(join(process.cwd(), "runners/python/solution_example.py"), "utf8")));
    const out = await r.run(ws, { spec: SPEC, limits: LIMITS, onNotice: rec.onNotice });
    expect(out.result?.status, out.stderrTail).toBe("ok");
    expect(out.result!.metrics.accuracy).toBeGreaterThan(0.5);
    expect(rec.notices.join("\n")).toMatch(/Training on cluster \(127\.0\.0\.1\), as Slurm job \d+ in partition debug \(no GPU, 6 min limit\)/);
    const job = jobOf(ws);
    expect(job.name).toBe("threadml-ok");
    expect(job.state).toBe("COMPLETED");
    expect(readFileSync(jobFile(ws, "sandbox"), "utf8").trim()).toBe("bubblewrap");
    expect(existsSync(join(ws.localDir, out.result!.model_path!))).toBe(true);
  });

  it("without a host, submits from this machine and serves the model here, its secrets kept from the job", async () => {
    const config = SlurmRunnerConfig.parse(slurmRunnerSettings(cluster, null, join(tmp.dir, "here"), { memoryMb: 512 }));
    process.env.THREADML_TEST_SECRET_TOKEN = "do-not-leak";
    const r = new SlurmRunner({ name: "here", config, dataDir: join(tmp.dir, "here-local"), logger });
    open.push(r);
    const leak = GATE_SOLUTION.replace("def build(ctx):", "def build(ctx):\n    open('env.txt', 'w').write(os.environ.get('THREADML_TEST_SECRET_TOKEN', 'absent'))");
    const ws = await r.prepare(input("here", leak));
    writeFileSync(join(ws.dir, "release"), "");
    const out = await r.run(ws, { spec: SPEC, limits: LIMITS });
    delete process.env.THREADML_TEST_SECRET_TOKEN;
    expect(out.result?.status, out.stderrTail).toBe("ok");
    expect(jobOf(ws).name).toBe("threadml-here");
    expect(readFileSync(join(ws.dir, "env.txt"), "utf8")).toBe("absent");
    const notices: string[] = [];
    const server = await r.serve(ws, { onNotice: (n) => notices.push(n) });
    expect(notices.join("\n")).not.toMatch(/ssh -N -L/);
    const health = await fetch(`${server.url}/health`, { headers: server.token ? { authorization: `Bearer ${server.token}` } : {} });
    expect(health.status).toBe(200);
    await server.stop();
  });

  it("reports a job that fails with the harness's error and Slurm's record", async () => {
    const r = runner();
    const ws = await r.prepare(input("fails", FAILING));
    const out = await r.run(ws, { spec: SPEC, limits: LIMITS });
    expect(out.result?.status).toBe("error");
    expect(out.cancelled).toBe(false);
    expect(out.timedOut).toBe(false);
    expect(out.stderrTail + JSON.stringify(out.result)).toMatch(/deliberate failure/);
    expect(jobOf(ws).state).toMatch(/COMPLETED|FAILED/);
  });

  it("says why Slurm refuses a job, and gives up on one it would never run", async () => {
    const refused = runner({ partition: "no-such-partition" });
    const ws = await refused.prepare(input("refused"));
    await expect(refused.run(ws, { spec: SPEC, limits: LIMITS })).rejects.toThrow(/could not be started on cluster .*Slurm refused the job: .*invalid partition/i);

    // A job that waits on one that failed waits forever (Slurm keeps it, reason DependencyNeverSatisfied).
    const failed = cluster.cmd(["sbatch", "--parsable", "-o", "/dev/null", "-p", cluster.partition, "--wrap", "false"]).trim();
    await until(() => cluster.jobs().some((j) => j.id === failed && j.state === "FAILED"), "the job to fail", 30_000);
    const waits = runner({ sbatchArgs: [`--dependency=afterok:${failed}`] });
    const stuckWs = await waits.prepare(input("never"));
    const rec = recorder();
    await expect(waits.run(stuckWs, { spec: SPEC, limits: LIMITS, onNotice: rec.onNotice })).rejects.toThrow(/could not be started on cluster .*Slurm will never run job \d+: .*DependencyNeverSatisfied/);
    await until(() => jobOf(stuckWs).state.startsWith("CANCELLED"), "the hopeless job to be cancelled", 30_000);
  });

  it("cancels a running job with scancel", async () => {
    const r = runner();
    const rec = recorder();
    const ctl = new AbortController();
    const ws = await r.prepare(input("cancel"));
    const outcome = r.run(ws, { spec: SPEC, limits: LIMITS, signal: ctl.signal, onEvent: rec.onEvent });
    await until(() => rec.waits.length >= 1, "the job to run", 90_000);
    ctl.abort();
    const out = await outcome;
    expect(out.cancelled).toBe(true);
    expect(out.result).toBeNull();
    expect(classifyOutcome(out, LIMITS.wallTimeS).failure).toBe("cancelled");
    await until(() => jobOf(ws).state.startsWith("CANCELLED"), "Slurm to record the cancel", 30_000);
  });

  it("re-attaches to the job by its id after a restart of ThreadML, without submitting it twice", async () => {
    const first = runner();
    const ws = await first.prepare(input("restart"));
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent, onNotice: a.onNotice });
    await until(() => a.waits.length >= 2, "the job to run", 90_000);
    const id = readFileSync(jobFile(ws, "jobid"), "utf8").trim();
    await first.detach();

    const second = runner();
    const again = await second.prepare(input("restart"));
    expect(again.dir).toBe(ws.dir);
    const b = recorder();
    const outcome = second.run(again, { spec: SPEC, limits: LIMITS, onEvent: b.onEvent, onNotice: b.onNotice });
    await until(() => b.waits.length >= 1, "events after re-attaching", 60_000);
    writeFileSync(join(ws.dir, "release"), "");
    const out = await outcome;
    expect(out.result?.status).toBe("ok");
    expect(b.notices.join("\n")).toMatch(new RegExp(`already running on cluster .*\\(Slurm job ${id}\\).*instead of starting it twice`));
    expect(readFileSync(join(ws.dir, "starts.log"), "utf8").trim().split("\n")).toHaveLength(1);
    expect(cluster.jobs().filter((j) => j.name === "threadml-restart")).toHaveLength(1);
  });

  it("tells the thread why a queued job waits, and when it starts", async () => {
    // Another user's job asks for every CPU: it runs, or queues behind the stuck job; either way this one waits.
    const blocker = cluster.cmd(["sbatch", "--parsable", "-o", "/dev/null", "-p", cluster.partition, "-c", String(cluster.cpus), "--wrap", "sleep 300"]).trim();
    const r = runner();
    const rec = recorder();
    const ws = await r.prepare(input("queued"));
    writeFileSync(join(ws.dir, "release"), "");
    const outcome = r.run(ws, { spec: SPEC, limits: LIMITS, onNotice: rec.onNotice });
    await until(() => rec.notices.some((n) => /is queued: waiting (for resources|behind jobs with a higher priority)/.test(n)), "the pending reason", 60_000);
    cluster.cmd(["scancel", blocker]);
    const out = await outcome;
    expect(out.result?.status).toBe("ok");
    expect(rec.notices.join("\n")).toMatch(/Slurm job \d+ is queued: waiting (for resources: the nodes it needs are busy|behind jobs with a higher priority)\.[\s\S]*Slurm job \d+ is running on /);
  });

  it("a job Slurm kills at its time limit is solution_stuck", async () => {
    const { ws, out } = await stuck;
    expect(out.timedOut, out.stderrTail).toBe(true);
    expect(out.stderrTail).toMatch(/Slurm ended job \d+ as TIMEOUT/);
    expect(classifyOutcome(out, LIMITS.wallTimeS).failure).toBe("solution_stuck");
    expect(jobOf(ws).state).toBe("TIMEOUT");
  }, 240_000);
});
