import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { slurmMissing, slurmRunnerSettings, startSlurm, type SlurmCluster } from "../helpers/slurm.js";
import { sshdMissing, startSshd, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// A whole headless conversation on a real Slurm cluster reached over SSH: every harness run is a batch
// job, the plans' searches run at the same time, the model server runs on the login node, and the
// result is the local runner's.

const missing = sshdMissing() ?? slurmMissing();
// A missing Slurm or sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

const TASK = "Build a model that predicts Quality in bananas.csv, accuracy at least 0.7";

describe("threadml run --runner <slurm cluster>", () => {
  const tmp = tempDir("threadml-slurm-cli-");
  let sshd: Sshd;
  let cluster: SlurmCluster;

  beforeAll(async () => {
    requirePython();
    [sshd, cluster] = await Promise.all([startSshd(), startSlurm({ cpus: 4 })]);
    writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 600, seed: 31 });
  }, 90_000);
  afterAll(async () => {
    await Promise.all([sshd?.stop(), cluster?.stop()]);
  });

  it("trains through Slurm with the plans in parallel, deploys on the login node, and matches the local runner", async () => {
    const shared = join(tmp.dir, "shared");
    // A budget no search reaches, so that both runners run every trial and the results can be compared.
    const search = { budgetS: 120, trialsPerFamily: 2, sampleRows: 600 };
    const config = (dataDir: string) =>
      tmp.write(
        `${dataDir}.json`,
        JSON.stringify({
          dataDir: join(tmp.dir, dataDir),
          search,
          runners: {
            cluster: slurmRunnerSettings(cluster, sshd, shared, { gpusPerJob: 0, sbatchArgs: ["--nice=0"] }),
          },
        }),
      );
    // Another user's job holds every CPU for a while: the first jobs queue, and the thread hears why.
    const blocker = cluster.cmd(["sbatch", "--parsable", "-o", "/dev/null", "-p", cluster.partition, "-c", String(cluster.cpus), "--wrap", "sleep 25"]).trim();

    const [viaSlurm, viaLocal] = await Promise.all([
      runCli(["--yes", "--runner", "cluster", "--data", "bananas.csv", TASK], { cwd: tmp.dir, env: { THREADML_CONFIG: config("slurm-data"), LOG_LEVEL: "info" }, timeoutMs: 280_000 }),
      runCli(["--yes", "--runner", "local", "--data", "bananas.csv", TASK], { cwd: tmp.dir, env: { THREADML_CONFIG: config("local-data") }, timeoutMs: 280_000 }),
    ]);
    expect(viaSlurm.result.status, viaSlurm.stderr.slice(-4000)).toBe("deployed");
    expect(viaLocal.result.status, viaLocal.stderr.slice(-3000)).toBe("deployed");
    expect(viaSlurm.result.endpoint?.check.ok).toBe(true);

    // What the runner told the thread, as its log has it.
    expect(viaSlurm.stderr).toMatch(/Slurm job \d+ is queued: waiting for resources/);
    expect(viaSlurm.stderr).toMatch(/Training on cluster \(127\.0\.0\.1\), as Slurm job \d+ in partition debug/);
    expect(viaSlurm.stderr).toMatch(/The model server runs on cluster \(127\.0\.0\.1\)/);

    // Every harness run was a Slurm job, and Slurm remembers each one.
    const jobs = cluster.jobs().filter((j) => j.id !== blocker);
    const runs = readdirSync(join(shared, "runs")).filter((r) => existsSync(join(shared, "runs", r, ".job", "jobid")));
    expect(runs.length).toBeGreaterThanOrEqual(4);
    for (const run of runs) {
      const id = readFileSync(join(shared, "runs", run, ".job", "jobid"), "utf8").trim();
      const job = jobs.find((j) => j.id === id);
      expect(job, `${run}: job ${id}\n${cluster.log()}`).toBeDefined();
      expect(job!.name).toBe(`threadml-${run}`);
      expect(job!.state).toBe("COMPLETED");
    }
    // The plans' searches overlapped in time.
    const searches = jobs.filter((j) => /-search-\d+$/.test(j.name));
    expect(searches.length).toBe(viaSlurm.result.plans.length);
    expect(searches.length).toBeGreaterThanOrEqual(2);
    const latestStart = Math.max(...searches.map((j) => j.start!));
    const earliestEnd = Math.min(...searches.map((j) => j.end!));
    expect(latestStart).toBeLessThan(earliestEnd);

    // The same plans, model and test metrics as on the local runner.
    expect(viaSlurm.result.plan).toEqual(viaLocal.result.plan);
    expect(viaSlurm.result.metrics).toEqual(viaLocal.result.metrics);
  }, 300_000);
});
