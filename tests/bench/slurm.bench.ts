import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { SlurmRunnerConfig } from "../../config/schema.js";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { LocalRunner } from "../../runners/local/index.js";
import { SlurmRunner } from "../../runners/slurm/index.js";
import type { Runner } from "../../runners/types.js";
import { createLogger } from "../../src/logger.js";
import { ROOT, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { slurmRunnerSettings, startSlurm } from "../helpers/slurm.js";
import { startSshd } from "../helpers/sshd.js";
import { cliCodePath, machineLine, median, runsFromArgs } from "./common.js";

// The Slurm runner on a single-node cluster started here (tests/helpers/slurm.ts), reached through a
// loopback sshd as a login node would be, against the local runner:
//  1. one harness run (a small training run): what a batch job adds (submit, schedule, follow, fetch);
//  2. a whole conversation to deployed through the CLI, and its execute step (the plans' searches:
//     one job per plan at once on Slurm, one job for all plans locally).
// Usage: npm run bench:slurm [-- --runs N]

const RUNS = runsFromArgs();
const PYTHON = "/usr/bin/python3";
const TASK = "Build a model that predicts Quality in bananas.csv, accuracy at least 0.7";
const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data/bananas.csv", target: "Quality", metric: "accuracy", seed: 42 };
const LIMITS = { wallTimeS: 300, cpuS: 300, memoryMb: 1024 };

const load0 = os.loadavg();
const dir = mkdtempSync(join(os.tmpdir(), "threadml-bench-slurm-"));
const [sshd, cluster] = await Promise.all([startSshd(), startSlurm({ cpus: 4 })]);
const logger = createLogger("silent");
const data = join(dir, "bananas.csv");
writeClassificationCsv(data, { rows: 2000, seed: 3 });
const solution = readFileSync(join(ROOT, "runners/python/solution_example.py"), "utf8");

const slurmConfig = slurmRunnerSettings(cluster, sshd, join(dir, "shared"));

async function oneRun(make: () => Runner, label: string): Promise<number[]> {
  const times: number[] = [];
  const runner = make();
  await runner.check();
  for (let i = 0; i < RUNS; i++) {
    const ws = await runner.prepare({ runId: `${label}-${i}`, files: [{ source: data, dest: "data/bananas.csv" }], texts: { "solution.py": solution } });
    const t0 = performance.now();
    const out = await runner.run(ws, { spec: SPEC, limits: LIMITS });
    if (out.result?.status !== "ok") throw new Error(`${label}: ${out.stderrTail}`);
    times.push((performance.now() - t0) / 1000);
  }
  await runner.close();
  return times;
}

try {
  const local = await oneRun(() => new LocalRunner({ dataDir: join(dir, "local-runner"), python: PYTHON }), "local");
  const overSsh = await oneRun(() => new SlurmRunner({ name: "cluster", config: SlurmRunnerConfig.parse(slurmConfig), dataDir: join(dir, "slurm-ssh"), logger }), "slurm-ssh");
  const here = await oneRun(
    () => new SlurmRunner({ name: "here", config: SlurmRunnerConfig.parse(slurmRunnerSettings(cluster, null, join(dir, "here"))), dataDir: join(dir, "slurm-here"), logger }),
    "slurm-here",
  );

  const conversation = { local: [] as number[], slurm: [] as number[] };
  const execute = { local: [] as number[], slurm: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ["local", "slurm"] as const) {
      const cwd = join(dir, `cli-${kind}-${i}`);
      mkdirSync(cwd);
      writeClassificationCsv(join(cwd, "bananas.csv"), { rows: 2000, seed: 3 });
      const config = join(cwd, "threadml.json");
      writeFileSync(config, JSON.stringify({ dataDir: join(cwd, ".threadml"), runners: { cluster: { ...slurmConfig, workdir: join(cwd, "shared") } } }));
      const t0 = performance.now();
      const run = await runCli(["--yes", "--runner", kind === "local" ? "local" : "cluster", "--data", "bananas.csv", TASK], { cwd, env: { THREADML_CONFIG: config }, timeoutMs: 600_000 });
      if (run.result.status !== "deployed") throw new Error(`${kind}: ${run.result.status} ${run.result.error ?? ""}\n${run.stderr.slice(-2000)}`);
      conversation[kind].push((performance.now() - t0) / 1000);
      execute[kind].push(run.result.timings.execute ?? NaN);
    }
  }

  const s = (xs: number[]) => `${median(xs).toFixed(2)} s`;
  const lines = [
    machineLine(load0, cliCodePath()),
    "",
    `Runs: ${RUNS} each. Slurm 22.05 single node (4 CPUs advertised on this machine), accounting off.`,
    "",
    "| what | local runner | Slurm over SSH | Slurm from this machine |",
    "|---|---|---|---|",
    `| one training run, 2,000 rows (run() to result) | ${s(local)} | ${s(overSsh)} | ${s(here)} |`,
    `| conversation to deployed (CLI) | ${s(conversation.local)} | ${s(conversation.slurm)} | — |`,
    `| its execute step (the plans' searches) | ${s(execute.local)} (one job) | ${s(execute.slurm)} (one job per plan, at once) | — |`,
  ];
  console.log(lines.join("\n"));
} finally {
  await Promise.all([sshd.stop(), cluster.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
