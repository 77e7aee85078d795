import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "./ports.js";
import type { z } from "zod";
import type { SlurmRunnerConfig } from "../../config/schema.js";

// A real single-node Slurm cluster (Debian's slurmctld, slurmd, munged) in a temporary folder: its own
// munge key and socket, free ports, every path under the folder, so several can run side by side.
// Accounting is off (no slurmdbd), as on many clusters: `sacct` fails and only the jobcomp file remains.

export interface SlurmJob {
  id: string;
  name: string;
  state: string;
  reason: string;
  /** Epoch seconds; null while pending. */
  start: number | null;
  /** Epoch seconds; null until the job has ended. */
  end: number | null;
  node: string;
  exitCode: string;
}

export interface SlurmCluster {
  dir: string;
  conf: string;
  /** { SLURM_CONF } — what a client command needs. */
  env: Record<string, string>;
  /** Shell lines for a runner's setup. */
  setup: string[];
  partition: string;
  node: string;
  cpus: number;
  /** The node's RealMemory (MB). */
  memoryMb: number;
  /** Tail of the slurmctld, slurmd and munged logs, for failure messages. */
  log(): string;
  /** Runs a Slurm client command (args[0] is sbatch, squeue, scontrol, ...) and returns its stdout. */
  cmd(args: string[]): string;
  /** Every job slurmctld still remembers (`scontrol show job -o`) plus those in the jobcomp file. */
  jobs(): SlurmJob[];
  stop(): Promise<void>;
}

const DAEMONS = ["munged", "slurmctld", "slurmd"]; // in start order
const CLIENTS = ["sbatch", "squeue", "scontrol", "scancel", "sinfo"];

function which(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/sbin", "/usr/bin", "/sbin"]) {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why a Slurm cluster cannot be started here, or null when it can. */
export function slurmMissing(): string | null {
  const absent = [...DAEMONS, ...CLIENTS].filter((b) => !which(b));
  if (absent.length === 0) return null;
  return `Slurm is not installed (missing ${absent.join(", ")}): install Debian's slurmctld slurmd slurm-client munge packages (apt-get install slurmctld slurmd slurm-client munge) to run the Slurm tests`;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGKILLs every process (job, slurmstepd) whose environment names this cluster's slurm.conf. */
function killStrays(conf: string): void {
  const mark = Buffer.from(`SLURM_CONF=${conf}\0`);
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      if (readFileSync(`/proc/${pid}/environ`).includes(mark)) process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone, or not ours to read
    }
  }
}

/** "2026-12-06T15:20:01" (Slurm prints local time) to epoch seconds; "Unknown", "None", "N/A" to null. */
function epoch(value: string | undefined): number | null {
  if (!value || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(value)) return null;
  return Math.round(new Date(value).getTime() / 1000);
}

/** One `Key=Value Key=Value` line; a value runs up to the next ` Key=`, so values may hold spaces. */
function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.trim().matchAll(/(?:^|\s)([A-Za-z][\w:/]*)=(.*?)(?=\s+[A-Za-z][\w:/]*=|\s*$)/g)) out[m[1]] = m[2];
  return out;
}

// Slurm fills StartTime/EndTime of unfinished jobs with its estimates; those are not times that happened.
const UNSTARTED = new Set(["PENDING"]);
const UNFINISHED = new Set(["PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "RESIZING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"]);

function toJob(f: Record<string, string>): SlurmJob {
  const state = (f.JobState ?? "").split(/\s/)[0];
  const node = f.NodeList && f.NodeList !== "(null)" ? f.NodeList : "";
  return {
    id: f.JobId,
    name: f.JobName ?? f.Name ?? "",
    state,
    reason: f.Reason ?? "",
    start: UNSTARTED.has(state) ? null : epoch(f.StartTime),
    end: UNFINISHED.has(state) ? null : epoch(f.EndTime),
    node,
    exitCode: f.ExitCode ?? "",
  };
}

const tail = (text: string, lines = 40) =>
  text
    .split("\n")
    .filter((l) => !/pmix/i.test(l)) // Debian's MPI plugins complain at every start; noise here
    .slice(-lines)
    .join("\n");

const running = new Map<string, () => void>();
let exitHook = false;

export async function startSlurm(opts: { cpus?: number } = {}): Promise<SlurmCluster> {
  const missing = slurmMissing();
  if (missing) throw new Error(missing);
  // A port taken between the probe and the bind: try again with fresh ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(opts.cpus ?? 4);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

async function launch(cpus: number): Promise<SlurmCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "threadml-slurmcluster-"));
  // munged refuses a socket in a folder that others cannot traverse.
  chmodSync(dir, 0o755);
  const conf = path.join(dir, "slurm.conf");
  const socket = path.join(dir, "munge.socket");
  const key = path.join(dir, "munge.key");
  const id = randomBytes(4).toString("hex");
  const node = `tml-${id}`;
  const host = os.hostname().split(".")[0];
  const memoryMb = Math.max(256, Math.floor((os.totalmem() / 2 ** 20) * 0.9));
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  for (const sub of ["state", "spool"]) mkdirSync(path.join(dir, sub));
  const at = (name: string) => path.join(dir, name);
  writeFileSync(
    conf,
    [
      `ClusterName=tml${id}`,
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      // Daemons and client commands all read the munge socket from here.
      "AuthType=auth/munge",
      "CredType=cred/munge",
      `AuthInfo=socket=${socket}`,
      "SlurmUser=root",
      "SlurmdUser=root",
      `StateSaveLocation=${at("state")}`,
      `SlurmdSpoolDir=${at("spool")}`,
      `SlurmctldPidFile=${at("slurmctld.pid")}`,
      `SlurmdPidFile=${at("slurmd.pid")}`,
      `SlurmctldLogFile=${at("slurmctld.log")}`,
      `SlurmdLogFile=${at("slurmd.log")}`,
      "MailProg=/bin/true",
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "JobCompType=jobcomp/filetxt",
      `JobCompLoc=${at("jobcomp.log")}`,
      "SchedulerType=sched/backfill",
      // Schedule within seconds of a change (the defaults wait up to a minute after a cancel).
      "SchedulerParameters=sched_interval=2,bf_interval=2",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU",
      "MinJobAge=600",
      "KillWait=2",
      "ReturnToService=2",
      "MpiDefault=none",
      "SwitchType=switch/none",
      // The node may advertise more CPUs (and memory) than the machine has.
      "SlurmdParameters=config_overrides",
      `NodeName=${node} NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memoryMb} State=UNKNOWN`,
      `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      "",
    ].join("\n"),
  );

  const env = { SLURM_CONF: conf };
  const childEnv = { ...process.env, ...env };
  const stderr: Record<string, string> = {};
  const children: ChildProcess[] = [];
  const start = (name: string, args: string[]) => {
    const child = spawn(which(name)!, args, { stdio: ["ignore", "ignore", "pipe"], env: childEnv });
    stderr[name] = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr[name] = (stderr[name] + d).slice(-16_384)));
    children.push(child);
    return child;
  };
  const log = () =>
    DAEMONS.map((name) => {
      const file = at(`${name}.log`);
      const text = name !== "munged" && existsSync(file) ? readFileSync(file, "utf8") : (stderr[name] ?? "");
      return `--- ${name}\n${tail(text)}`;
    }).join("\n");
  const cmd = (args: string[]) =>
    execFileSync(args[0], args.slice(1), { env: childEnv, encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "pipe"] });

  // A watchdog for a test process killed outright (no exit handler runs): its stdin pipe closes, so its
  // `read` returns and it kills whatever carries this SLURM_CONF (daemons, slurmstepd, jobs) and removes
  // the folder. stop() does this itself and kills the watchdog.
  const watchdog = spawn("sh", ["-c", 'read -r _; kill -9 $(grep -lzxF "SLURM_CONF=$0" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3) 2>/dev/null; rm -rf "$1"', conf, dir], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  const killNow = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    killStrays(conf);
  };
  running.set(conf, killNow);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const kill of running.values()) kill();
    });
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const ctld = children[1];
    if (ctld && ctld.exitCode === null && ctld.signalCode === null) {
      try {
        cmd(["scancel", "--user", os.userInfo().username]);
        for (let i = 0; i < 40 && cmd(["squeue", "-h", "-o", "%i"]).trim(); i++) await sleep(250);
      } catch {
        // the controller is gone; strays are killed below
      }
    }
    // slurmd and slurmctld first, munged (which they talk through) last.
    for (const child of [children[2], children[1], children[0]]) {
      if (!child) continue;
      child.kill("SIGTERM");
      if (!(await exited(child, 5_000))) {
        child.kill("SIGKILL");
        await exited(child, 5_000);
      }
    }
    killStrays(conf);
    watchdog.kill("SIGKILL");
    running.delete(conf);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const munged = start("munged", ["-F", "--force", `--socket=${socket}`, `--key-file=${key}`, `--pid-file=${at("munged.pid")}`, `--log-file=${at("munged.log")}`, `--seed-file=${at("munged.seed")}`]);
    for (let i = 0; !existsSync(socket); i++) {
      if (munged.exitCode !== null || i > 100) throw new Error("munged did not create its socket");
      await sleep(100);
    }
    start("slurmctld", ["-D", "-f", conf]);
    start("slurmd", ["-D", "-f", conf, "-N", node]);
    const deadline = Date.now() + 40_000;
    for (;;) {
      const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead) throw new Error(`${DAEMONS[children.indexOf(dead)] ?? "a daemon"} exited (${dead.exitCode ?? dead.signalCode})`);
      let state = "";
      try {
        state = cmd(["sinfo", "-h", "-N", "-o", "%T"]).trim();
      } catch {
        // slurmctld not answering yet
      }
      if (state === "idle") break;
      if (Date.now() > deadline) throw new Error(`the node is "${state || "unreachable"}", not idle, after 40 s`);
      await sleep(250);
    }
  } catch (err) {
    const message = `Slurm did not start in ${dir}: ${(err as Error).message}\n${log()}`;
    await stop();
    throw new Error(message);
  }

  const jobs = (): SlurmJob[] => {
    const byId = new Map<string, SlurmJob>();
    const jobcomp = at("jobcomp.log");
    if (existsSync(jobcomp)) {
      for (const line of readFileSync(jobcomp, "utf8").split("\n")) {
        const f = fields(line);
        if (f.JobId) byId.set(f.JobId, toJob(f));
      }
    }
    let listing = "";
    try {
      listing = cmd(["scontrol", "show", "job", "-o"]);
    } catch {
      // controller stopped: the jobcomp file is all there is
    }
    for (const line of listing.split("\n")) {
      const f = fields(line);
      if (f.JobId) byId.set(f.JobId, toJob(f));
    }
    return [...byId.values()].sort((a, b) => Number(a.id) - Number(b.id));
  };

  return {
    dir,
    conf,
    env,
    setup: [`export SLURM_CONF='${conf}'`],
    partition: "debug",
    node,
    cpus,
    memoryMb,
    log,
    cmd,
    jobs,
    stop,
  };
}

/**
 * A `slurm` runner's settings for this cluster, reached through the loopback sshd as a login node
 * (or from this machine when `login` is null), with one CPU and 1 GiB per job.
 */
export function slurmRunnerSettings(
  cluster: SlurmCluster,
  login: { host: string; port: number; user: string; identityFile: string; knownHostsFile: string } | null,
  workdir: string,
  overrides: Partial<z.input<typeof SlurmRunnerConfig>> = {},
): z.input<typeof SlurmRunnerConfig> {
  const via = login ? { host: login.host, port: login.port, user: login.user, identityFile: login.identityFile, knownHosts: login.knownHostsFile } : {};
  return {
    kind: "slurm" as const,
    ...via,
    workdir,
    python: process.env.THREADML_PYTHON ?? "/usr/bin/python3",
    setup: cluster.setup,
    partition: cluster.partition,
    cpusPerJob: 1,
    memoryMb: 1024,
    timeLimitMin: 30,
    ...overrides,
  };
}
