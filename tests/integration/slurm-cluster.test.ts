import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slurmMissing, startSlurm, type SlurmCluster, type SlurmJob } from "../helpers/slurm.js";
import { until } from "../helpers/sshd.js";

// Smoke test of the Slurm test cluster itself: what the Slurm runner's tests rely on.

const missing = slurmMissing();
// A missing Slurm fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);
const FINAL = /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)$/;

async function finished(cluster: SlurmCluster, id: string, timeoutMs = 30_000): Promise<SlurmJob> {
  let job: SlurmJob | undefined;
  await until(() => FINAL.test((job = cluster.jobs().find((j) => j.id === id))?.state ?? ""), `job ${id} to end`, timeoutMs).catch((err) => {
    throw new Error(`${(err as Error).message} (last seen ${JSON.stringify(job)})\n${cluster.log()}`);
  });
  return job!;
}

const sbatch = (cluster: SlurmCluster, ...args: string[]) => cluster.cmd(["sbatch", "--parsable", ...args]).trim().split(";")[0];

describe("a real single-node Slurm cluster", () => {
  let cluster: SlurmCluster;

  beforeAll(async () => {
    cluster = await startSlurm();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it("runs a batch job to COMPLETED and keeps its record", async () => {
    const out = join(cluster.dir, "hi.out");
    const id = sbatch(cluster, "-o", out, "--wrap", "echo hi");
    const job = await finished(cluster, id);
    expect(job).toMatchObject({ state: "COMPLETED", node: cluster.node, exitCode: "0:0", name: "wrap" });
    expect(job.start).toBeTypeOf("number");
    expect(job.end).toBeGreaterThanOrEqual(job.start!);
    expect(readFileSync(out, "utf8").trim()).toBe("hi");
  });

  it("runs jobs side by side on the advertised CPUs (more than the machine has)", async () => {
    const ids = [1, 2, 3].map(() => sbatch(cluster, "-c", "1", "-o", "/dev/null", "--wrap", "sleep 5"));
    const jobs = await Promise.all(ids.map((id) => finished(cluster, id)));
    for (const j of jobs) expect(j.state).toBe("COMPLETED");
    expect(Math.max(...jobs.map((j) => j.start!))).toBeLessThan(Math.min(...jobs.map((j) => j.end!)));
  });

  it("queues a job behind one that holds every CPU, and runs it once that one is cancelled", async () => {
    const blocker = sbatch(cluster, "-c", String(cluster.cpus), "-o", "/dev/null", "--wrap", "sleep 60");
    await until(() => cluster.cmd(["squeue", "-h", "-j", blocker, "-o", "%T"]).trim() === "RUNNING", "the blocker to run", 20_000);
    const waiting = sbatch(cluster, "-c", "1", "-o", "/dev/null", "--wrap", "true");
    await until(() => cluster.cmd(["squeue", "-h", "-j", waiting, "-o", "%T|%r"]).trim() === "PENDING|Resources", "PENDING|Resources", 20_000);
    expect(cluster.jobs().find((j) => j.id === waiting)).toMatchObject({ state: "PENDING", reason: "Resources", start: null, end: null });
    cluster.cmd(["scancel", blocker]);
    expect((await finished(cluster, waiting)).state).toBe("COMPLETED");
    expect((await finished(cluster, blocker)).state).toBe("CANCELLED");
  });

  it("has no accounting: sacct fails", () => {
    const r = spawnSync("sacct", ["-n", "-X"], { env: { ...process.env, ...cluster.env }, encoding: "utf8" });
    expect(r.status !== 0 || /accounting storage is disabled/i.test(r.stdout + r.stderr)).toBe(true);
  });
});
