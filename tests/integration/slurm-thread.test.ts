import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliAdapter, type Posted } from "../../adapters/cli/index.js";
import type { ModelEntry } from "../../src/store/index.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { slurmMissing, slurmRunnerSettings, startSlurm, type SlurmCluster } from "../helpers/slurm.js";
import { sshdMissing, startSshd, until, type Sshd } from "../helpers/sshd.js";
import { closeStack, detachStack, ofKind, openStack, shown, threadDriver, type Stack } from "../helpers/thread.js";
import { tempDir } from "../helpers/tmp.js";

// A chat thread whose model is trained on a real Slurm cluster reached over SSH: the thread hears why
// the first jobs queue and that the plans run side by side; the model is served on the login node,
// scored there through another batch job, served again after a restart of ThreadML, and undeployed.

const missing = sshdMissing() ?? slurmMissing();
// A missing Slurm or sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

const tmp = tempDir("threadml-slurm-thread-");
const shared = () => join(tmp.dir, "shared");
const thread = CliAdapter.thread("slurm");
let sshd: Sshd;
let cluster: SlurmCluster;

function open(): Promise<Stack> {
  return openStack(
    {
      dataDir: join(tmp.dir, ".threadml"),
      search: { budgetS: 3, trialsPerFamily: 2 },
      runners: {
        cluster: slurmRunnerSettings(cluster, sshd, shared()),
      },
    },
    tmp.dir,
  );
}

let stack: Stack | null = null;

const { send, say } = threadDriver(() => stack!, thread);
/** Everything the thread's status messages said while the work ran. */
const noticesOf = (posted: Posted[]) => ofKind(posted, "status").flatMap((s) => s.status.notices);

async function health(entry: ModelEntry): Promise<number | string> {
  try {
    const res = await fetch(`${entry.url}/health`, { headers: entry.token ? { authorization: `Bearer ${entry.token}` } : {}, signal: AbortSignal.timeout(10_000) });
    return res.status;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Each run in the shared work folder: its harness mode and its Slurm job id. */
function sharedRuns(): Array<{ run: string; mode: string; jobid: string | null }> {
  const runs = join(shared(), "runs");
  return readdirSync(runs)
    .filter((r) => existsSync(join(runs, r, "spec.json")))
    .map((r) => ({
      run: r,
      mode: (JSON.parse(readFileSync(join(runs, r, "spec.json"), "utf8")) as { mode: string }).mode,
      jobid: existsSync(join(runs, r, ".job", "jobid")) ? readFileSync(join(runs, r, ".job", "jobid"), "utf8").trim() : null,
    }));
}

const serverPid = (entry: ModelEntry) => Number(readFileSync(join(entry.runnerDir, ".serve", "pid"), "utf8"));
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

beforeAll(async () => {
  requirePython();
  [sshd, cluster] = await Promise.all([startSshd(), startSlurm({ cpus: 4 })]);
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 500, seed: 12 });
  stack = await open();
}, 90_000);

afterAll(async () => {
  if (stack) await closeStack(stack);
  await Promise.all([sshd?.stop(), cluster?.stop()]);
});

describe("a chat thread trained and served through a Slurm cluster", () => {
  let entry: ModelEntry;

  it("hears why the jobs queue and that the plans run side by side, and deploys on the login node", async () => {
    const opened = await say("Build a model that predicts Quality in bananas.csv", [join(tmp.dir, "bananas.csv")]);
    const [where] = ofKind(opened, "question");
    expect(where?.question, shown(opened)).toMatchObject({ slot: "runner" });
    expect(JSON.stringify(where.question)).toMatch(/cluster \(Slurm via .*@127\.0\.0\.1, partition debug\)/);
    await say("cluster");
    const card = stack!.adapter.posted.at(-1)!;
    expect(card.message.kind).toBe("plans");
    // Another user's job holds the node: the first search jobs wait for it.
    cluster.cmd(["sbatch", "--parsable", "-o", "/dev/null", "-p", cluster.partition, "-c", String(cluster.cpus), "--wrap", "sleep 12"]);
    const done = await send({ kind: "action", action: "approve", value: "best", message: card.ref });
    const [report] = ofKind(done, "report");
    expect(report?.report.status, shown(done)).toBe("deployed");
    const notices = noticesOf(done).join("\n");
    expect(notices).toMatch(/Evaluating the \d plans side by side: one search job per plan on cluster\./);
    expect(notices).toMatch(/Slurm job \d+ is queued: waiting for resources: the nodes it needs are busy\./);
    expect(notices).toMatch(/Training on cluster \(127\.0\.0\.1\), as Slurm job \d+ in partition debug/);
    expect(notices).toMatch(/The model server runs on cluster \(127\.0\.0\.1\)/);

    entry = (await stack!.service.registry.get(report.model!))!;
    expect(entry).toMatchObject({ runner: "cluster", status: "serving" });
    expect(await health(entry)).toBe(200);
    expect(alive(serverPid(entry))).toBe(true);
    // Every harness run was a batch job; the searches were three of them.
    const runs = sharedRuns();
    expect(runs.every((r) => r.jobid !== null)).toBe(true);
    expect(runs.filter((r) => r.mode === "search").length).toBeGreaterThanOrEqual(2);
    const jobs = new Set(cluster.jobs().map((j) => j.id));
    for (const r of runs) expect(jobs.has(r.jobid!), `${r.run}: job ${r.jobid}`).toBe(true);
  }, 240_000);

  it("scores a file through another batch job", async () => {
    const file = join(tmp.dir, "new.csv");
    writeClassificationCsv(file, { rows: 30, seed: 5 });
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    writeFileSync(file, `${lines.map((l) => l.split(",").slice(0, -1).join(",")).join("\n")}\n`);
    const posted = await say("score these", [file]);
    const [out] = ofKind(posted, "file");
    expect(out?.name ?? shown(posted)).toMatch(/predictions\.csv$/);
    // the header and one line per row
    expect(readFileSync(out.path, "utf8").trimEnd().split(/\r?\n/)).toHaveLength(31);
    const predict = sharedRuns().filter((r) => r.mode === "predict");
    expect(predict).toHaveLength(1);
    expect(cluster.jobs().find((j) => j.id === predict[0].jobid)?.state).toBe("COMPLETED");
  }, 120_000);

  it("is served again on the login node after a restart, and undeploy stops it", async () => {
    const oldPid = serverPid(entry);
    await detachStack(stack!);
    stack = null;
    await until(() => !alive(oldPid), "the login node's model server to stop", 30_000);

    stack = await open();
    const again = (await stack.service.registry.get(entry.name))!;
    expect(again.status).toBe("serving");
    expect(await health(again)).toBe(200);
    expect(alive(serverPid(again))).toBe(true);

    const posted = await say("undeploy");
    expect(shown(posted)).toMatch(new RegExp(`Stopped serving ${entry.name}`));
    expect((await stack.service.registry.get(entry.name))?.status).toBe("stopped");
    await until(() => !alive(serverPid(again)), "the model server to exit", 30_000);
  }, 120_000);
});
