import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SlurmRunnerConfig } from "../../config/schema.js";
import { parseJobState, phaseOf } from "../../runners/ssh/job.js";
import { asStdinScript } from "../../runners/ssh/shell.js";
import { cancelScript, jobMinutes, pendingReason, sbatchOptions, settleScript, slurmControl, slurmStateScript, submitScript } from "../../runners/slurm/job.js";
import { tempDir } from "../helpers/tmp.js";

// The Slurm job scripts run by sh against stand-in squeue, sacct, scontrol, sbatch and scancel that
// print what a cluster would; the real cluster is in tests/integration/slurm-runner.test.ts.

const config = SlurmRunnerConfig.parse({ kind: "slurm", partition: "gpu", account: "lab", qos: "normal", gpusPerJob: 2, cpusPerJob: 4, timeLimitMin: 30, sbatchArgs: ["--constraint=a100"] });
const limits = { wallTimeS: 600, cpuS: 600, memoryMb: 2048 };

function fakeCluster(answers: Record<string, string>) {
  const tmp = tempDir("threadml-slurm-unit-");
  const bin = join(tmp.dir, "bin");
  mkdirSync(bin);
  for (const cmd of ["squeue", "sacct", "scontrol", "sbatch", "scancel"]) {
    const file = join(bin, cmd);
    const out = answers[cmd];
    // Each stand-in logs its arguments and prints its answer; no answer: it fails as on a cluster without it.
    // An answer starting with "sh:" is the stand-in's script itself (it answers by its arguments).
    const body = out === undefined ? "echo 'error: not available' >&2; exit 1" : out.startsWith("sh:") ? out.slice(3) : `printf '%s\\n' ${JSON.stringify(out)}`;
    writeFileSync(file, `#!/bin/sh\necho "${cmd} $*" >> ${JSON.stringify(join(tmp.dir, "calls.log"))}\n${body}\n`);
    chmodSync(file, 0o755);
  }
  const ws = join(tmp.dir, "ws");
  mkdirSync(join(ws, ".job"), { recursive: true });
  const setup = [`PATH=${bin}:$PATH`];
  const run = (lines: string[]) => execFileSync("sh", ["-s"], { input: asStdinScript(lines), encoding: "utf8" });
  const calls = () => (existsSync(join(tmp.dir, "calls.log")) ? readFileSync(join(tmp.dir, "calls.log"), "utf8") : "");
  return { ws, setup, run, calls, J: join(ws, ".job") };
}

describe("Slurm job scripts", () => {
  it("asks sbatch for the config's resources and a time limit within the cluster's cap", () => {
    const opts = sbatchOptions(config, { ws: "/shared/runs/r1", runId: "r1", limits });
    expect(opts).toEqual([
      "--parsable",
      "--job-name=threadml-r1",
      "--chdir=/shared/runs/r1",
      "--output=/shared/runs/r1/.job/slurm.out",
      "--open-mode=append",
      "--no-requeue",
      "--time=11",
      "--cpus-per-task=4",
      "--partition=gpu",
      "--account=lab",
      "--qos=normal",
      "--gres=gpu:2",
      "--constraint=a100",
    ]);
    expect(jobMinutes({ ...config, timeLimitMin: 5 }, limits)).toBe(5);
    // --mem only when the config asks: nodes that declare no memory refuse any.
    expect(sbatchOptions({ ...config, memoryMb: 8000 }, { ws: "/w", runId: "r", limits })).toContain("--mem=8000");
  });

  it("submits once, records the id, and refuses with sbatch's own words", () => {
    const c = fakeCluster({ sbatch: "4242;cluster" });
    const cfg = { ...config, setup: c.setup };
    const out = c.run(submitScript(cfg, { ws: c.ws, runId: "r1", limits, specSha: "abc" }));
    expect(out).toMatch(/start=ok\njobid=4242/);
    expect(readFileSync(join(c.J, "jobid"), "utf8").trim()).toBe("4242");
    expect(c.calls()).toMatch(/sbatch --parsable --job-name=threadml-r1 .*--gres=gpu:2 --constraint=a100 .*\.job\/run\.sh/);
    expect(c.run(submitScript(cfg, { ws: c.ws, runId: "r1", limits, specSha: "abc" }))).toMatch(/start=busy/);

    const refused = fakeCluster({});
    const again = refused.run(submitScript({ ...config, setup: refused.setup }, { ws: refused.ws, runId: "r2", limits, specSha: "abc" }));
    expect(again).toMatch(/start=refused\nSlurm refused the job: error: not available/);
    // The claim is given back, so a corrected config can submit.
    expect(existsSync(join(refused.J, "lock"))).toBe(false);
  });

  it("reads a queued job's state and reason from squeue", () => {
    const c = fakeCluster({ squeue: "PENDING|Resources|" });
    mkdirSync(join(c.J, "lock"));
    writeFileSync(join(c.J, "jobid"), "77\n");
    const s = parseJobState(c.run(slurmStateScript({ ...config, setup: c.setup }, { ws: c.ws, runId: "r1", resultFile: join(c.ws, "out/result.json") })));
    expect(s).toMatchObject({ jobid: "77", sched: "PENDING", reason: "Resources", alive: true });
    expect(phaseOf(s)).toBe("running");
  });

  it("without accounting, takes a finished job's end from scontrol and writes the exit status the wrapper could not", () => {
    const c = fakeCluster({ squeue: "", scontrol: "JobId=77 JobName=threadml-r1 JobState=TIMEOUT Reason=TimeLimit NodeList=n1 ExitCode=0:15" });
    mkdirSync(join(c.J, "lock"));
    writeFileSync(join(c.J, "jobid"), "77\n");
    const s = parseJobState(c.run(slurmStateScript({ ...config, setup: c.setup }, { ws: c.ws, runId: "r1", resultFile: join(c.ws, "out/result.json") })));
    expect(s).toMatchObject({ sched: "TIMEOUT", exit: 143, timedout: true, alive: false });
    expect(phaseOf(s)).toBe("finished");
    expect(readFileSync(join(c.J, "err"), "utf8")).toMatch(/Slurm ended job 77 as TIMEOUT/);
    expect(c.calls()).toMatch(/sacct/);
  });

  it("prefers sacct where accounting is on, and leaves an exit status the wrapper wrote alone", () => {
    const c = fakeCluster({ squeue: "", sacct: "CANCELLED by 0|0:9|n1" });
    mkdirSync(join(c.J, "lock"));
    writeFileSync(join(c.J, "jobid"), "78\n");
    const s = parseJobState(c.run(slurmStateScript({ ...config, setup: c.setup }, { ws: c.ws, runId: "r1", resultFile: "x" })));
    expect(s).toMatchObject({ sched: "CANCELLED", exit: 137, cancelled: true });

    const done = fakeCluster({ squeue: "", scontrol: "JobId=79 JobState=FAILED ExitCode=1:0" });
    mkdirSync(join(done.J, "lock"));
    writeFileSync(join(done.J, "jobid"), "79\n");
    writeFileSync(join(done.J, "exit"), "3\n");
    const t = parseJobState(done.run(slurmStateScript({ ...config, setup: done.setup }, { ws: done.ws, runId: "r1", resultFile: "x" })));
    expect(t.exit).toBe(3);
    expect(done.calls()).not.toMatch(/scontrol/);
  });

  it("finds a job submitted just before a crash by its name", () => {
    const c = fakeCluster({ squeue: `sh:case "$*" in *--name=*) printf '90\\n91\\n';; *"-o %j"*) echo threadml-r1;; esac` });
    mkdirSync(join(c.J, "lock"));
    c.run(cancelScript({ ...config, setup: c.setup }, { ws: c.ws, runId: "r1" }, "cancelled"));
    expect(readFileSync(join(c.J, "jobid"), "utf8").trim()).toBe("91");
    expect(existsSync(join(c.J, "cancelled"))).toBe(true);
    expect(c.calls()).toMatch(/squeue -h -t all -u \S+ --name=threadml-r1 -o %i[\s\S]*scancel 91/);
  });

  it("never hands scancel what the job folder says unless it is this run's job", () => {
    // The job could write its folder: a hostile id is ignored, and another job's id is not cancelled.
    const hostile = fakeCluster({ squeue: "" });
    mkdirSync(join(hostile.J, "lock"));
    writeFileSync(join(hostile.J, "jobid"), "-uroot\n");
    hostile.run(cancelScript({ ...config, setup: hostile.setup }, { ws: hostile.ws, runId: "r1" }, "cancelled"));
    expect(hostile.calls()).not.toMatch(/scancel/);

    const other = fakeCluster({ squeue: "threadml-someone-else" });
    mkdirSync(join(other.J, "lock"));
    writeFileSync(join(other.J, "jobid"), "55\n");
    other.run(cancelScript({ ...config, setup: other.setup }, { ws: other.ws, runId: "r1" }, "cancelled"));
    expect(other.calls()).not.toMatch(/scancel/);
  });

  it("does not take a controller that does not answer for the job's end", () => {
    const c = fakeCluster({ squeue: "sh:echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1" });
    mkdirSync(join(c.J, "lock"));
    writeFileSync(join(c.J, "jobid"), "60\n");
    const s = parseJobState(c.run(slurmStateScript({ ...config, setup: c.setup }, { ws: c.ws, runId: "r1", resultFile: "x" })));
    expect(s).toMatchObject({ sched: "UNKNOWN", alive: true });
    expect(phaseOf(s)).toBe("running");
    expect(existsSync(join(c.J, "exit"))).toBe(false);
    // A job Slurm no longer knows at all has ended.
    const gone = fakeCluster({ squeue: "sh:echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1" });
    mkdirSync(join(gone.J, "lock"));
    writeFileSync(join(gone.J, "jobid"), "61\n");
    expect(phaseOf(parseJobState(gone.run(slurmStateScript({ ...config, setup: gone.setup }, { ws: gone.ws, runId: "r1", resultFile: "x" }))))).toBe("dead");
  });

  it("waits for Slurm to end a job killed by a signal and marks a time limit as such", () => {
    const c = fakeCluster({ squeue: "", scontrol: "JobId=70 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15" });
    mkdirSync(join(c.J, "lock"));
    writeFileSync(join(c.J, "jobid"), "70\n");
    writeFileSync(join(c.J, "exit"), "143\n");
    c.run(settleScript({ ...config, setup: c.setup }, { ws: c.ws, runId: "r1" }));
    expect(existsSync(join(c.J, "timedout"))).toBe(true);
    expect(readFileSync(join(c.J, "exit"), "utf8").trim()).toBe("143");
  });

  it("tells the thread why a job waits once per reason, and when it starts", () => {
    const notices: string[] = [];
    const control = slurmControl(config, { ws: "/w", runId: "r1", limits });
    const state = (sched: string, reason?: string) => parseJobState(`ws=1\nnow=1\nlock=1\njobid=5\nsched=${sched}\n${reason ? `reason=${reason}\n` : ""}node=n7\n`);
    for (const s of [state("PENDING", "Priority"), state("PENDING", "Priority"), state("PENDING", "Resources"), state("RUNNING", "None"), state("RUNNING", "None")])
      control.observe!(s, (n) => notices.push(n));
    expect(notices).toEqual([
      "Slurm job 5 is queued: waiting behind jobs with a higher priority.",
      "Slurm job 5 is queued: waiting for resources: the nodes it needs are busy.",
      "Slurm job 5 is running on n7.",
    ]);
    expect(pendingReason("QOSMaxJobsPerUserLimit")).toMatch(/limit of its account or QoS/);
    // A reason that never passes gives up on the job instead of waiting forever.
    const hopeless = slurmControl(config, { ws: "/w", runId: "r2", limits }).observe!(state("PENDING", "PartitionTimeLimit"), () => {});
    expect(hopeless).toMatch(/Slurm will never run job 5: its time limit is above the partition's.*\(PartitionTimeLimit\)/);
    expect(control.observe!(state("PENDING", "QOSMaxJobsPerUserLimit"), () => {})).toBeUndefined();
    expect(pendingReason("SomethingNew")).toBe("waiting (SomethingNew)");
  });
});
