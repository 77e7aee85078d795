import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { SshRunnerConfig } from "../../config/schema.js";
import { fromRoot } from "../../src/paths.js";
import { HarnessSpec } from "../contract.js";
import { OPTIONAL_MODULES, REQUIRED_MODULES } from "../local/python.js";
import type { Limits, ModelServer, RunOptions, RunOutcome, Runner, RunnerCheck, ServeOptions, Workspace, WorkspaceInput } from "../types.js";
import { isConnectionError, SshConnection, SshError, type ConnLogger, type HostLink } from "./connection.js";
import { chooseGpus, type GpuChoice, type GpuInfo } from "./gpu.js";
import { jobDir, retireScript, stopScript } from "./job.js";
import { gpuScript, interpretProbe, parseGpuProbe, probeScript } from "./probe.js";
import { withReconnect } from "./reconnect.js";
import { runRemoteJob, type JobControl } from "./run.js";
import { startRemoteServer, type SshModelServer } from "./serve.js";
import { readText, stat, writeText } from "./sftp.js";
import { homeRelative, pjoin, q, qPath } from "./shell.js";
import { Slots } from "./slots.js";
import { fillWorkspace, harnessFiles, inputsDigest } from "./upload.js";

export { RemoteServeError, type SshModelServer } from "./serve.js";

export interface SshRunnerOptions {
  /** The runner's name in the config (shown in the thread). */
  name: string;
  config: SshRunnerConfig;
  /** Local folder for fetched artifacts: `<dataDir>/runs/<runId>`. */
  dataDir: string;
  logger: ConnLogger;
  /** Folder whose *.py files (subfolders included) go into every workspace (default: runners/python). */
  harnessDir?: string;
  /** The host to use instead of an SSH connection (a Slurm cluster driven from this machine). */
  link?: HostLink;
}

/** The runner check plus what the job steps need: the modules, and whether the host answered at all. */
export type Probe = RunnerCheck & { modules: Record<string, boolean>; reachable: boolean };

const RUN_ID = /^[A-Za-z0-9._-]+$/;
// Digest of the inputs a workspace was filled with.
const INPUTS_FILE = "inputs.sha";
// How long prepare() and check() wait for a host that does not answer.
const SETUP_OUTAGE_MS = 60_000;
const CHECK_OUTAGE_MS = 15_000;

function safeDest(dest: string): string {
  const parts = dest.split(/[\\/]/);
  if (!dest || dest.startsWith("/") || parts.includes("..") || parts.every((p) => p === "" || p === "."))
    throw new Error(`invalid workspace path ${JSON.stringify(dest)}: must be relative and stay inside the workspace`);
  return parts.filter((p) => p !== "" && p !== ".").join("/");
}

function checkLimits(limits: Limits): void {
  for (const key of ["wallTimeS", "cpuS", "memoryMb"] as const) {
    const v = limits[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new Error(`invalid limit ${key}: ${String(v)}`);
  }
}

/**
 * The SSH runner: workspaces on a remote host, uploaded over SFTP; jobs run there detached
 * (setsid + nohup, a pid file, a log file), followed by byte offset across dropped connections and
 * restarts of ThreadML; GPUs picked with nvidia-smi; the model server started there and checked
 * through the SSH connection.
 */
export class SshRunner implements Runner {
  readonly name: string;
  protected readonly config: SshRunnerConfig;
  protected readonly log: ConnLogger;
  private readonly dataDir: string;
  private readonly harnessDir: string;
  protected readonly conn: HostLink;
  protected readonly python: string;
  private readonly slots: Slots;
  private checking: Promise<Probe> | null = null;
  private base: string | null = null;
  private readonly gpusInUse = new Map<string, number[]>();
  private readonly active = new Map<string, Promise<RunOutcome>>();
  private readonly servers = new Set<SshModelServer>();
  private readonly flushers = new Set<() => Promise<void>>();
  private readonly cancels = new Map<string, () => void>();
  private detached = false;
  private noNvidiaSmi = false;

  constructor(readonly options: SshRunnerOptions) {
    this.name = options.name;
    this.config = options.config;
    this.log = options.logger;
    this.dataDir = path.resolve(options.dataDir);
    this.harnessDir = path.resolve(options.harnessDir ?? fromRoot("runners/python"));
    this.conn = options.link ?? new SshConnection(options.name, options.config, options.logger);
    this.python = qPath(options.config.python);
    this.slots = new Slots(options.config.maxJobs);
  }

  protected get where(): string {
    return `${this.name} (${this.conn.target})`;
  }

  protected remote<T>(step: () => Promise<T>, maxDownMs = SETUP_OUTAGE_MS): Promise<T> {
    return withReconnect(this.conn, step, { maxDownMs: () => maxDownMs });
  }

  async check(): Promise<RunnerCheck> {
    const { modules: _m, reachable: _r, ...check } = await this.probe();
    return { ...check, missing: [...check.missing] };
  }

  /** The probe, cached once it succeeds (a failed one is tried again next time). */
  protected probe(): Promise<Probe> {
    this.checking ??= this.doProbe().then((r) => {
      if (!r.ok) this.checking = null;
      return r;
    });
    return this.checking;
  }

  private async doProbe(): Promise<Probe> {
    try {
      const out = await this.remote(
        () => this.conn.exec(probeScript(this.config.setup, this.python, [...REQUIRED_MODULES, ...OPTIONAL_MODULES]), { timeoutMs: 120_000 }),
        CHECK_OUTAGE_MS,
      );
      const check = interpretProbe({ runner: this.name, target: this.conn.target, python: this.config.python }, out);
      const probed = check.ok ? await this.probeMore({ ...check, reachable: true }) : { ...check, reachable: true };
      if (probed.ok) this.log.info({ python: probed.python }, `ssh runner ${this.name} ready`);
      else this.log.warn({}, probed.message);
      return probed;
    } catch (err) {
      const message = err instanceof SshError ? err.message : `${this.where}: ${(err as Error).message}`;
      this.log.warn({}, message);
      const reachable = !isConnectionError(err);
      return { ok: false, python: this.config.python, missing: [], sandbox: "limits-only", message, modules: {}, reachable };
    }
  }

  /** What a runner built on this one checks beyond the interpreter and the sandbox (a scheduler that answers). */
  protected async probeMore(probe: Probe): Promise<Probe> {
    return probe;
  }

  /**
   * Throws when the host cannot run jobs (no Python, missing packages, refused host key or login). A host
   * that does not answer now is not refused: the job steps wait for it (a restart may find it rebooting).
   */
  private async usable(): Promise<void> {
    const check = await this.probe();
    if (!check.ok && check.reachable) throw new Error(`SSH runner ${this.name} is not usable: ${check.message}`);
  }

  /** Which optional modules the host's interpreter can import. */
  async modules(names: string[]): Promise<Record<string, boolean>> {
    await this.usable();
    if (names.length === 0) return {};
    const out = await this.remote(() => this.conn.exec(probeScript(this.config.setup, this.python, names), { timeoutMs: 120_000 }));
    const probed = interpretProbe({ runner: this.name, target: this.conn.target, python: this.config.python }, out).modules;
    return Object.fromEntries(names.map((n) => [n, probed[n] === true]));
  }

  /** The absolute workdir on the host (created when missing). */
  protected async baseDir(): Promise<string> {
    if (this.base) return this.base;
    const dir = homeRelative(this.config.workdir);
    const r = await this.conn.exec([`mkdir -p ${q(dir)} && cd ${q(dir)} && pwd -P`]);
    const abs = r.stdout.trim().split("\n").pop() ?? "";
    if (r.code !== 0 || !abs.startsWith("/")) throw new Error(`${this.where}: cannot create the workdir ${this.config.workdir}: ${r.stderr.trim() || r.stdout.trim()}`);
    this.base = abs;
    return abs;
  }

  async prepare(input: WorkspaceInput): Promise<Workspace> {
    const runId = input.runId;
    if (typeof runId !== "string" || !RUN_ID.test(runId) || runId === "." || runId === "..")
      throw new Error(`invalid runId ${JSON.stringify(runId)}: use letters, digits, '.', '_' and '-' only`);
    const files = (input.files ?? []).map((f) => ({ source: path.resolve(f.source), dest: safeDest(f.dest) }));
    const texts = Object.entries(input.texts ?? {}).map(([dest, content]) => ({ dest: safeDest(dest), content }));
    const harness = await harnessFiles(this.harnessDir).catch((err: Error) => {
      throw new Error(`harness folder ${this.harnessDir} cannot be read: ${err.message}`);
    });
    const localDir = path.join(this.dataDir, "runs", runId);

    const digest = await inputsDigest(files, texts);
    const dir = await this.remote(async () => {
      const base = await this.baseDir();
      const ws = pjoin(base, "runs", runId);
      const sftp = await this.conn.sftp();
      const [started, had] = await Promise.all([stat(sftp, pjoin(jobDir(ws, "job"), "lock")), readText(sftp, pjoin(ws, INPUTS_FILE), 1024)]);
      // A job already started under this id with these inputs (ThreadML restarted) keeps its workspace as it is.
      if (started && had?.trim() === digest) return ws;
      if (started) {
        this.log.warn({ runId }, `a job with other inputs had run under the id ${runId} on ${this.where}; it is replaced`);
        await this.conn.exec(this.replaceScript(ws, runId));
        await this.conn.exec(retireScript(ws, "job"));
      }
      await fillWorkspace(this.conn, { ws, cacheDir: pjoin(base, "cache"), files: [...harness, ...files], texts });
      await writeText(sftp, pjoin(ws, INPUTS_FILE), `${digest}\n`);
      return ws;
    });

    // Local copy of the generated files, beside the artifacts fetched after the run.
    await mkdir(localDir, { recursive: true });
    for (const t of texts) {
      const target = path.join(localDir, ...t.dest.split("/"));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, t.content);
    }
    return { runId, dir, localDir };
  }

  async run(ws: Workspace, options: RunOptions): Promise<RunOutcome> {
    if (options.signal?.aborted) return notStarted();
    const existing = this.active.get(ws.runId);
    if (existing) return existing;
    const promise = this.runOnce(ws, options).finally(() => {
      if (this.active.get(ws.runId) === promise) this.active.delete(ws.runId);
    });
    this.active.set(ws.runId, promise);
    return promise;
  }

  private async runOnce(ws: Workspace, options: RunOptions): Promise<RunOutcome> {
    await this.usable();
    checkLimits(options.limits);
    const spec = HarnessSpec.parse(options.spec);
    // close() cancels the jobs this runner follows, whatever signal their caller gave.
    const own = new AbortController();
    this.cancels.set(ws.runId, () => own.abort());
    const signal = options.signal ? AbortSignal.any([options.signal, own.signal]) : own.signal;
    if (!(await this.slots.acquire(signal))) {
      this.cancels.delete(ws.runId);
      return notStarted();
    }
    try {
      return await runRemoteJob({
        conn: this.conn,
        runner: this.name,
        config: this.config,
        log: this.log,
        python: this.python,
        ws,
        spec,
        artifactsDir: path.join(this.dataDir, "jobs", ws.runId, "artifacts"),
        limits: options.limits,
        options: { ...options, signal },
        pickGpus: () => this.pickGpus(ws.runId),
        detached: () => this.detached,
        onDetach: (flush) => {
          this.flushers.add(flush);
          return () => this.flushers.delete(flush);
        },
        control: this.jobControl(ws, options.limits),
        sandbox: (await this.probe()).sandbox,
      });
    } finally {
      this.cancels.delete(ws.runId);
      this.slots.release();
      this.gpusInUse.delete(ws.runId);
    }
  }

  /** Stops a job that is to be replaced by one with other inputs, before its folder is retired. */
  protected replaceScript(ws: string, _runId: string): string[] {
    return stopScript(ws, "job", null);
  }

  /** How a job is started and watched; undefined: a detached process on the host. */
  protected jobControl(_ws: Workspace, _limits: Limits): JobControl | undefined {
    return undefined;
  }

  /** Least-loaded GPUs, preferring those no other job of this runner holds. */
  protected async pickGpus(key: string): Promise<GpuChoice> {
    const setting = this.config.gpus;
    let reported: GpuInfo[] | null = null;
    // A host without nvidia-smi does not grow one: ask once.
    if (setting !== "none" && !this.noNvidiaSmi) {
      const out = await this.conn.exec(gpuScript(this.config.setup), { timeoutMs: 60_000 });
      reported = parseGpuProbe(out);
      this.noNvidiaSmi = reported === null && !out.stdout.includes("setupfail=");
    }
    const busy = new Set([...this.gpusInUse].filter(([k]) => k !== key).flatMap(([, g]) => g));
    const choice = chooseGpus(setting, this.config.gpusPerJob, reported, busy);
    this.gpusInUse.set(key, choice.devices.map((d) => d.index));
    return choice;
  }

  /** A model served again after a restart gets a fresh address here: the registry records the new one. */
  async serve(ws: Workspace, options: ServeOptions = {}): Promise<ModelServer> {
    if (options.signal?.aborted) throw new Error("serve cancelled before it started");
    await this.usable();
    const key = `serve:${ws.runId}`;
    const server = await startRemoteServer({
      conn: this.conn,
      runner: this.name,
      config: this.config,
      log: this.log,
      python: this.python,
      ws,
      signal: options.signal,
      onNotice: options.onNotice,
      pickGpus: () => this.pickGpus(key),
      here: this.options.link !== undefined,
    });
    const stop = server.stop;
    const tracked: SshModelServer = {
      ...server,
      stop: async () => {
        this.servers.delete(tracked);
        this.gpusInUse.delete(key);
        await stop();
      },
    };
    this.servers.add(tracked);
    return tracked;
  }

  /** Cancels the jobs this runner follows (their process groups on the host are killed), stops its model servers and disconnects. */
  async close(): Promise<void> {
    if (this.detached) return;
    for (const cancel of this.cancels.values()) cancel();
    await Promise.allSettled([...this.active.values()]);
    await Promise.all([...this.servers].map((s) => s.stop()));
    this.conn.close();
  }

  /**
   * For a restart: training jobs keep running on the host (detached by design), the log offsets are
   * saved, model servers stop and the connection closes. A run() still following a job never settles;
   * the next process re-attaches to the job by its run id.
   */
  async detach(): Promise<void> {
    if (this.detached) return;
    this.detached = true;
    await Promise.all([...this.flushers].map((flush) => flush().catch(() => undefined)));
    await Promise.all([...this.servers].map((s) => s.stop()));
    this.conn.close();
  }
}

function notStarted(): RunOutcome {
  return { result: null, exitCode: null, signal: null, timedOut: false, cancelled: true, durationS: 0, stderrTail: "[runner] cancelled before the run started" };
}
