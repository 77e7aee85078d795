import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { sshdMissing, startSshd, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// A whole headless conversation on an SSH host: THREADML_CONFIG names the host as a runner and
// `--runner` picks it; search, smoke run, training and the model server all run there.

const PYTHON = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
const missing = sshdMissing();
if (missing) console.warn(`Skipping the SSH deployment test: ${missing}`);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

// A missing sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

describe("threadml run --runner <ssh host>", () => {
  const tmp = tempDir("threadml-ssh-cli-");
  let sshd: Sshd;

  beforeAll(async () => {
    requirePython();
    sshd = await startSshd();
    writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 600, seed: 31 });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it("trains on the host and deploys the model there, checked through SSH", async () => {
    const remote = join(tmp.dir, "gpu-host");
    const config = tmp.write(
      "threadml.json",
      JSON.stringify({
        dataDir: join(tmp.dir, ".threadml"),
        search: { budgetS: 3, trialsPerFamily: 2, sampleRows: 600 },
        runners: {
          gpu1: { kind: "ssh", host: sshd.host, port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHosts: sshd.knownHostsFile, workdir: remote, python: PYTHON },
        },
      }),
    );
    const run = await runCli(["--yes", "--runner", "gpu1", "--data", "bananas.csv", "Build a model that predicts Quality in bananas.csv, accuracy at least 0.7"], {
      cwd: tmp.dir,
      env: { THREADML_CONFIG: config, LOG_LEVEL: "info" },
      timeoutMs: 170_000,
    });
    expect(run.result.status, run.stderr.slice(-3000)).toBe("deployed");
    expect(run.result.endpoint?.check.ok).toBe(true);
    expect(run.result.metrics.accuracy).toBeGreaterThanOrEqual(0.7);
    expect(run.stderr).toMatch(/Training on gpu1 \(127\.0\.0\.1\), no GPU/);
    expect(run.stderr).toMatch(/The model server runs on gpu1 \(127\.0\.0\.1\)/);

    // Every harness run and the server ran in the host's workdir; the server was stopped after its check.
    const runs = readdirSync(join(remote, "runs"));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    const served = runs.filter((r) => existsSync(join(remote, "runs", r, ".serve")));
    expect(served).toHaveLength(1);
    const serverPid = Number(readFileSync(join(remote, "runs", served[0], ".serve", "pid"), "utf8"));
    expect(pidAlive(serverPid)).toBe(false);
    // The report and artifacts are local.
    expect(existsSync(run.result.artifacts.model!)).toBe(true);
    expect(existsSync(run.result.artifacts.report!)).toBe(true);
    writeFileSync(join(tmp.dir, "done"), "");
  });
});
