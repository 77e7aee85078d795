import os from "node:os";
import type { SlurmRunnerConfig, SshRunnerConfig } from "../../config/schema.js";
import type { ConnLogger } from "../ssh/connection.js";
import type { GpuChoice } from "../ssh/gpu.js";
import { SshRunner, type Probe } from "../ssh/index.js";
import { LocalLink } from "../ssh/local-link.js";
import type { JobControl } from "../ssh/run.js";
import { q, setupLines } from "../ssh/shell.js";
import type { Limits, RunOptions, RunOutcome, Workspace } from "../types.js";
import { cancelScript, slurmControl } from "./job.js";

export interface SlurmRunnerOptions {
  name: string;
  config: SlurmRunnerConfig;
  /** Local folder for fetched artifacts. */
  dataDir: string;
  logger: ConnLogger;
  harnessDir?: string;
}

// Slurm queues the jobs: the runner itself never holds one back.
const NO_LOCAL_QUEUE = 10_000;
// ThreadML's own secrets, which sbatch would otherwise hand on to every job (it exports the submitter's environment).
const SECRET = /KEY|TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|^THREADML_|^SLACK_|^DISCORD_|^OPENAI_|^ANTHROPIC_|^GOOGLE_|^REDIS_|^SSH_AUTH_SOCK$/i;

/** This machine's environment without ThreadML's secrets: what the Slurm commands and the jobs see. */
export function jobEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !SECRET.test(k)));
}

/** The SSH runner's view of the login node (or of this machine when no host is given). */
function loginHost(c: SlurmRunnerConfig): SshRunnerConfig {
  return {
    kind: "ssh",
    host: c.host ?? os.hostname(),
    port: c.port,
    user: c.user ?? os.userInfo().username,
    identityFile: c.identityFile,
    passphrase: c.passphrase,
    agent: c.agent,
    knownHosts: c.knownHosts,
    hostKey: c.hostKey,
    workdir: c.workdir,
    python: c.python,
    setup: c.setup,
    // GPUs come from Slurm (--gres) on the compute node, never from the login node.
    gpus: "none",
    gpusPerJob: Math.max(1, c.gpusPerJob),
    maxJobs: NO_LOCAL_QUEUE,
    // The model server runs on the login node and is reached through the SSH connection.
    serveHost: "127.0.0.1",
    keepaliveS: c.keepaliveS,
  };
}

/** What the login node says about Slurm: the client's version and the partition's state. */
function slurmProbe(c: SlurmRunnerConfig): string[] {
  const part = c.partition ? `-p ${q(c.partition)}` : "";
  return [
    "{",
    ...setupLines(c.setup, () => ":"),
    "} >&2",
    `command -v sbatch >/dev/null 2>&1 || { echo nosbatch=1; echo "path=$PATH"; exit 0; }`,
    `echo "version=$(sbatch --version 2>/dev/null | head -n 1)"`,
    `out=$(sinfo -h ${part} -o '%P|%a|%D|%T' 2>&1); rc=$?`,
    `echo "sinforc=$rc"`,
    `printf '%s\\n' "$out" | head -n 20 | sed 's/^/sinfo=/'`,
  ];
}

/**
 * The Slurm runner: workspaces in the shared work folder, uploaded and followed exactly as on an SSH
 * host (connection, host keys, upload cache, log following, re-attachment: runners/ssh), but each
 * harness run is a batch job (runners/slurm/job.ts). Model servers run on the login node.
 */
export class SlurmRunner extends SshRunner {
  /** Jobs run side by side on the cluster's nodes: the plans' searches go out as separate jobs. */
  readonly parallelSearches = true;
  private readonly slurm: SlurmRunnerConfig;

  constructor(options: SlurmRunnerOptions) {
    const c = options.config;
    super({
      name: options.name,
      config: loginHost(c),
      dataDir: options.dataDir,
      logger: options.logger,
      harnessDir: options.harnessDir,
      link: c.host ? undefined : new LocalLink(options.name, options.logger, jobEnvironment()),
    });
    this.slurm = c;
  }

  protected override jobControl(ws: Workspace, limits: Limits): JobControl {
    return slurmControl(this.slurm, { ws: ws.dir, runId: ws.runId, limits });
  }

  protected override replaceScript(ws: string, runId: string): string[] {
    return cancelScript(this.slurm, { ws, runId }, null);
  }

  /** A job may use what it asked Slurm for: its address-space limit is never below --mem. */
  override run(ws: Workspace, options: RunOptions): Promise<RunOutcome> {
    const memoryMb = Math.max(options.limits.memoryMb, this.slurm.memoryMb ?? 0);
    return super.run(ws, { ...options, limits: { ...options.limits, memoryMb } });
  }

  protected override async pickGpus(key: string): Promise<GpuChoice> {
    // A job sees the GPUs Slurm gave it (CUDA_VISIBLE_DEVICES is Slurm's); the model server on the login node sees none.
    if (key.startsWith("serve:")) return { visible: "", devices: [], label: "no GPU (login node)" };
    const n = this.slurm.gpusPerJob;
    // Which devices is Slurm's choice on the node; listed here only so that the job gets no address-space limit, which CUDA cannot live with.
    const devices = Array.from({ length: n }, (_, index) => ({ index, utilization: 0, memoryUsedMb: 0, memoryTotalMb: 0 }));
    return { visible: null, devices, label: n ? `${n} GPU${n > 1 ? "s" : ""} from Slurm` : "no GPU" };
  }

  /**
   * Beyond the SSH runner's check (interpreter, modules, sandbox): whether Slurm answers there. Missing
   * Slurm commands refuse the jobs; a controller that does not answer now only fails the check.
   */
  protected override async probeMore(base: Probe): Promise<Probe> {
    const where = this.slurm.host ? `on ${this.where}` : "on this machine";
    let out;
    try {
      out = await this.remote(() => this.conn.exec(slurmProbe(this.slurm), { timeoutMs: 60_000 }), 15_000);
    } catch (err) {
      return { ...base, ok: false, reachable: false, message: `${this.name}: Slurm could not be asked ${where}: ${(err as Error).message}` };
    }
    const pick = (k: string) => out.stdout.split("\n").filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
    if (pick("nosbatch").length)
      return {
        ...base,
        ok: false,
        message: `${this.name}: sbatch was not found ${where} after the setup lines (PATH=${pick("path")[0] ?? "?"}). Add the line that makes Slurm's commands available (e.g. "module load slurm") to runners.${this.name}.setup. See docs/scale-out.md.`,
      };
    const sinfo = pick("sinfo");
    if (pick("sinforc")[0] !== "0" || sinfo.length === 0)
      return {
        ...base,
        ok: false,
        reachable: false,
        message: `${this.name}: Slurm does not answer ${where}${this.slurm.partition ? ` for partition ${this.slurm.partition}` : ""}: ${sinfo.join(" ").trim() || "sinfo printed nothing"}. Check that slurmctld is up and the setup lines point at its configuration (SLURM_CONF).`,
      };
    const parts = sinfo.map((l) => l.split("|")).map(([p, avail, nodes, state]) => `${p} ${avail} (${nodes} ${state})`);
    return { ...base, message: `${base.message}\n${pick("version")[0] ?? "Slurm"}: ${parts.join(", ")}. Jobs are submitted with sbatch; the model server runs on the login node.` };
  }
}
