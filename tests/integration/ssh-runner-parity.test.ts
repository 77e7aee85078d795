import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv, writeClusteringCsv, writeRegressionCsv } from "../helpers/datasets.js";
import { sshdMissing, startSshd, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// The benchmark's tabular tasks through `threadml run --runner gpu1` (an SSH host) and `--runner local`:
// the same metrics. Six whole conversations take minutes, so this runs only with
// THREADML_SSH_PARITY=1. The search budget is large enough for every trial to finish, which makes a
// conversation deterministic.

const PYTHON = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
const enabled = process.env.THREADML_SSH_PARITY === "1";
const missing = sshdMissing();

const TASKS = [
  { id: "classification", file: "banana.csv", text: "Build a model that predicts Quality in banana.csv, accuracy at least 0.9", write: (p: string) => writeClassificationCsv(p, { rows: 2000, seed: 101 }) },
  { id: "regression", file: "crabs.csv", text: "Predict Age in crabs.csv; the evaluation metric is RMSE", write: (p: string) => writeRegressionCsv(p, { rows: 3000, seed: 102 }) },
  { id: "clustering", file: "blobs.csv", text: "Group blobs.csv into 4 clusters and check them against the group labels", write: (p: string) => writeClusteringCsv(p, { rows: 5000, seed: 103, clusters: 4 }) },
];

describe.skipIf(!enabled || missing)("the benchmark tasks through --runner: SSH host against local", () => {
  const tmp = tempDir("threadml-ssh-parity-");
  let sshd: Sshd;
  let config: string;

  beforeAll(async () => {
    requirePython();
    sshd = await startSshd();
    for (const t of TASKS) t.write(join(tmp.dir, t.file));
    config = tmp.write(
      "threadml.json",
      JSON.stringify({
        dataDir: join(tmp.dir, ".threadml"),
        search: { budgetS: 120 },
        runners: {
          gpu1: { kind: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHosts: sshd.knownHostsFile, workdir: join(tmp.dir, "host"), python: PYTHON },
        },
      }),
    );
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  for (const task of TASKS) {
    it(`${task.id}: the same metrics on both runners`, { timeout: 600_000 }, async () => {
      const run = (runner: string) =>
        runCli(["--yes", "--runner", runner, "--data", task.file, task.text], { cwd: tmp.dir, env: { THREADML_CONFIG: config, THREADML_PYTHON: PYTHON }, timeoutMs: 290_000 });
      const local = await run("local");
      const ssh = await run("gpu1");
      expect(local.result.status, local.stderr.slice(-2000)).toBe("deployed");
      expect(ssh.result.status, ssh.stderr.slice(-2000)).toBe("deployed");
      const planId = (r: typeof local) => (r.result.plan as { id?: string } | null)?.id;
      expect(planId(ssh)).toBe(planId(local));
      // Equal up to the last bit or so: a forest averages its trees' predictions across threads in
      // whatever order they finish, so even two local runs can differ there (seen: mae ...344 / ...346).
      expect(Object.keys(ssh.result.metrics).sort()).toEqual(Object.keys(local.result.metrics).sort());
      for (const [name, value] of Object.entries(local.result.metrics))
        expect(Math.abs(ssh.result.metrics[name] - value), name).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(value)));
      console.log(
        `parity ${task.id}: ${JSON.stringify(ssh.result.metrics)}; seconds local ${local.result.timings.total} ssh ${ssh.result.timings.total}`,
      );
    });
  }
});
