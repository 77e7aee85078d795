import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { copyFile, cp, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fromRoot } from "../../src/paths.js";
import { HarnessSpec, parseBoundLine, parseEventLine } from "../contract.js";
import type {
  Limits,
  ModelServer,
  RunOptions,
  RunOutcome,
  Runner,
  RunnerCheck,
  ServeOptions,
  Workspace,
  WorkspaceInput,
} from "../types.js";
import { startDetached } from "./detached.js";
import { Follower, replayEvents } from "./follow.js";
import {
  clearJob,
  controlPaths,
  InputsRecord,
  inspectJob,
  readJson,
  writeJsonAtomic,
  type ControlPaths,
  type JobRecord,
} from "./job-record.js";
import { checkRun, createRunCgroups, detectContainment, diskUsage, removeRunCgroups, sweepCgroups, type ContainmentInfo } from "./limits.js";
import { buildOutcome, isInside } from "./outcome.js";
import { expiredRuns, removeExpiredHoldouts, removeRun } from "./retention.js";
import { killGroupNow, startJob, type Job } from "./process.js";
import { describeProbe, probePython, PYTHON_FIX_HINT, resolveExecutable, type PythonProbe } from "./python.js";
import { buildCommand, cleanEnv, type Tools } from "./sandbox.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export { JobRecord, controlPaths, inspectJob } from "./job-record.js";

// The local runner: generated code runs on this machine, in a per-run workspace, under resource
// limits and (when available) a bubblewrap sandbox with no network and no view of the host.
// Training jobs are detached (own session, output in files, a record in <dataDir>/jobs/<runId>), so a
// restarted service re-attaches to them by run id instead of starting them twice.

export interface RunnerLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface LocalRunnerOptions {
  /** Workspaces live in `<dataDir>/runs/<runId>`. */
  dataDir: string;
  /** "auto" (default) prefers /usr/bin/python3, then python3 on PATH; otherwise a path or a name. */
  python?: string;
  sandbox?: "auto" | "bubblewrap" | "off";
  /** Host the model server binds to (default 127.0.0.1). */
  serveHost?: string;
  /** Folder whose *.py files are copied into every workspace (default: runners/python). */
  harnessDir?: string;
  /** Address-space limit of the model server in MiB (default 4096). */
  serveMemoryMb?: number;
  /** What bounds each run as a whole: "auto" (cgroup v2, else v1, else the watchdog) or "watchdog" (tests). */
  runLimits?: "auto" | "watchdog";
  /** Workspaces and job records of runs idle this many days are removed (default 7; 0 keeps them). */
  retention?: { runsDays?: number };
  /** Bearer token for the model server: "auto" (default) only when serveHost is not loopback, "always", or "off". */
  serveToken?: "auto" | "always" | "off";
  logger?: RunnerLogger;
}

const RUN_ID = /^[A-Za-z0-9._-]+$/;
const SERVE_START_TIMEOUT_MS = 30_000;
const SANDBOX_PROBE_TIMEOUT_MS = 20_000;
// Where tools are looked for besides the host PATH (a service may run with a minimal PATH).
const TOOL_PATH = [process.env.PATH ?? "", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].join(path.delimiter);

// Processes per run when the caller sets no limit.
const DEFAULT_PIDS = 256;
// Retention sweeps: at the first check, then this often.
const RETENTION_SWEEP_MS = 60 * 60 * 1000;

const silentLogger: RunnerLogger = { warn() {}, info() {}, debug() {} };

interface Resolved {
  check: RunnerCheck;
  probe: PythonProbe | null;
  tools: Tools;
  containment: ContainmentInfo;
}

/** Error from serve() that keeps the server's stderr for diagnosis. */
export class ServeError extends Error {
  constructor(
    message: string,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = "ServeError";
  }
}

/** Resolves a workspace-relative destination, refusing anything that would land outside it. */
function safeDest(dir: string, dest: string): string {
  if (!dest || path.isAbsolute(dest) || dest.split(/[\\/]/).includes("..")) {
    throw new Error(`invalid workspace path ${JSON.stringify(dest)}: must be relative and stay inside the workspace`);
  }
  const full = path.resolve(dir, dest);
  if (full === dir || !isInside(full, dir)) {
    throw new Error(`invalid workspace path ${JSON.stringify(dest)}: must be relative and stay inside the workspace`);
  }
  return full;
}

/**
 * A workspace path the host can write without following anything generated code left there: each
 * folder on the way that is a link (or not a folder) is removed and made again, and the name itself
 * is removed. rm never follows links.
 */
async function freshTarget(dir: string, rel: string): Promise<string> {
  const parts = rel.split(/[\\/]/).filter(Boolean);
  let cur = dir;
  for (const p of parts.slice(0, -1)) {
    cur = path.join(cur, p);
    const st = await lstat(cur).catch(() => null);
    if (st && (!st.isDirectory() || st.isSymbolicLink())) await rm(cur, { recursive: true, force: true });
    if (!st || !st.isDirectory() || st.isSymbolicLink()) await mkdir(cur);
  }
  const target = path.join(dir, ...parts);
  await rm(target, { recursive: true, force: true });
  return target;
}

function notStarted(): RunOutcome {
  return {
    result: null,
    exitCode: null,
    signal: null,
    timedOut: false,
    cancelled: true,
    durationS: 0,
    stderrTail: "[runner] cancelled before the run started",
  };
}

function checkRunId(runId: unknown): string {
  if (typeof runId !== "string" || !RUN_ID.test(runId) || runId === "." || runId === "..") {
    throw new Error(`invalid runId ${JSON.stringify(runId)}: use letters, digits, '.', '_' and '-' only`);
  }
  return runId;
}

/** Identifies what prepare() was asked to write: text contents, and each copied file's name, size and time. */
async function inputsFingerprint(input: WorkspaceInput): Promise<string> {
  const hash = createHash("sha256");
  for (const [dest, content] of Object.entries(input.texts ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    hash.update(`text\0${dest}\0${createHash("sha256").update(content).digest("hex")}\n`);
  }
  for (const f of [...(input.files ?? [])].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0))) {
    const st = await stat(f.source).catch(() => null);
    hash.update(`file\0${f.dest}\0${path.resolve(f.source)}\0${st ? `${st.size}:${st.mtimeMs}` : "missing"}\n`);
  }
  return hash.digest("hex");
}

function checkLimits(limits: Limits): void {
  for (const key of ["wallTimeS", "cpuS", "memoryMb", "pids", "diskMb"] as const) {
    const v = limits[key];
    if ((key === "pids" || key === "diskMb") && v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new Error(`invalid limit ${key}: ${String(v)}`);
  }
}

// Binds the listening socket outside the sandbox and execs the sandboxed server on it. Run from the
// repository, never from the workspace, which the generated code could have rewritten.
const SERVE_LAUNCHER = fromRoot("runners/python/serve_launch.py");
const LOOPBACK_HOST = /^(127\.|localhost$|::1$|\[::1\]$)/i;

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}


export class LocalRunner implements Runner {
  readonly name = "local";
  private readonly dataDir: string;
  private readonly python: string;
  private readonly sandboxMode: "auto" | "bubblewrap" | "off";
  private readonly serveHost: string;
  private readonly harnessDir: string;
  private readonly serveMemoryMb: number;
  private readonly runLimits: "auto" | "watchdog";
  private readonly retentionMs: number;
  private retentionTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<string[]> | null = null;
  private readonly serveToken: "auto" | "always" | "off";
  private readonly log: RunnerLogger;
  private resolving: Promise<Resolved> | null = null;
  /** Model servers still starting, each with the function that gives up on it. */
  private readonly jobs = new Map<Job, () => void>();
  private readonly servers = new Map<Job, ModelServer>();
  /** Training jobs this runner follows (started here or re-attached). */
  private readonly followers = new Set<Follower>();
  /** Per runId: prepare() and run()'s start-or-attach decision never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private detached = false;
  private exitHookInstalled = false;
  private readonly exitHook = () => {
    // Synchronous last resort when Node exits without close() or detach().
    for (const job of [...this.jobs.keys(), ...this.servers.keys()]) killGroupNow(job.pid);
    for (const follower of this.followers) follower.killNow();
  };

  constructor(options: LocalRunnerOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.python = options.python?.trim() || "auto";
    this.sandboxMode = options.sandbox ?? "auto";
    this.serveHost = options.serveHost ?? "127.0.0.1";
    this.harnessDir = path.resolve(options.harnessDir ?? fromRoot("runners/python"));
    this.serveMemoryMb = options.serveMemoryMb ?? 4096;
    this.runLimits = options.runLimits ?? "auto";
    this.retentionMs = (options.retention?.runsDays ?? 7) * 24 * 3600 * 1000;
    this.serveToken = options.serveToken ?? "auto";
    this.log = options.logger ?? silentLogger;
  }

  check(): Promise<RunnerCheck> {
    return this.resolve().then((r) => ({ ...r.check, missing: [...r.check.missing] }));
  }

  /** Which optional modules (xgboost, lightgbm, …) the chosen interpreter can import, without importing them. */
  async modules(names: string[]): Promise<Record<string, boolean>> {
    const { probe } = await this.resolve();
    if (!probe?.executable || names.length === 0) return Object.fromEntries(names.map((n) => [n, false]));
    const script = "import importlib.util, json, sys; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))";
    const { stdout } = await execFileAsync(probe.executable, ["-c", script, ...names], { timeout: 30_000, env: { PATH: "/usr/bin:/bin", PYTHONNOUSERSITE: "1" } });
    const found = JSON.parse(stdout.trim()) as Record<string, boolean>;
    return Object.fromEntries(names.map((n) => [n, found[n] === true]));
  }

  private resolve(): Promise<Resolved> {
    this.resolving ??= this.doCheck();
    return this.resolving;
  }

  private async doCheck(): Promise<Resolved> {
    const tools: Tools = {
      bwrap: resolveExecutable("bwrap", TOOL_PATH),
      prlimit: resolveExecutable("prlimit", TOOL_PATH),
      setpriv: resolveExecutable("setpriv", TOOL_PATH),
      sh: resolveExecutable("sh", TOOL_PATH),
    };

    // Interpreter: the first candidate that imports the required modules.
    const candidates = this.python === "auto" ? ["/usr/bin/python3", "python3"] : [this.python];
    const probes: PythonProbe[] = [];
    const seen = new Set<string>();
    let chosen: PythonProbe | null = null;
    for (const candidate of candidates) {
      const found = resolveExecutable(candidate);
      if (found) {
        let real = found;
        try {
          real = realpathSync(found);
        } catch {
          // keep the unresolved path
        }
        if (seen.has(real)) continue;
        seen.add(real);
      }
      const probe = await probePython(candidate);
      probes.push(probe);
      if (!probe.error && probe.missing.length === 0) {
        chosen = probe;
        break;
      }
    }

    const notes: string[] = [];
    let ok = true;
    if (chosen) {
      const lacks = Object.entries(chosen.modules)
        .filter(([, has]) => !has)
        .map(([m]) => m);
      notes.push(`Python: ${chosen.executable} (${chosen.version ?? "unknown version"})`);
      if (lacks.length) notes.push(`Optional modules missing: ${lacks.join(", ")} (no plots without matplotlib).`);
    } else {
      ok = false;
      const tried = probes.map((p) => `  - ${describeProbe(p)}`).join("\n");
      if (this.python === "auto") {
        notes.push(`No Python interpreter with numpy, pandas and scikit-learn was found. Tried:\n${tried}\n${PYTHON_FIX_HINT}`);
      } else {
        notes.push(`The configured Python interpreter cannot run the harness:\n${tried}\n${PYTHON_FIX_HINT}`);
      }
    }

    // Sandbox: bubblewrap when it is present and actually works here.
    let sandbox: RunnerCheck["sandbox"] = "limits-only";
    if (this.sandboxMode === "off") {
      notes.push("Sandbox: off by configuration; generated code runs unsandboxed (limits and a clean environment only).");
      this.log.warn({ sandbox: "off" }, "sandbox disabled by configuration: generated code runs unsandboxed");
    } else if (!tools.bwrap) {
      if (this.sandboxMode === "bubblewrap") {
        ok = false;
        notes.push("Sandbox: bubblewrap was required but bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap).");
      } else {
        notes.push("Sandbox: bwrap not found; generated code runs unsandboxed (install bubblewrap to isolate it).");
        this.log.warn({ sandbox: "limits-only" }, "bubblewrap not found: generated code runs unsandboxed");
      }
    } else {
      const failure = await this.probeSandbox(tools, chosen);
      if (!failure) {
        sandbox = "bubblewrap";
        notes.push(`Sandbox: bubblewrap (${tools.bwrap}).`);
      } else if (this.sandboxMode === "bubblewrap") {
        ok = false;
        notes.push(`Sandbox: bubblewrap was required but does not work here: ${failure}`);
      } else {
        notes.push(`Sandbox: bubblewrap does not work here (${failure}); generated code runs unsandboxed.`);
        this.log.warn({ sandbox: "limits-only", reason: failure }, "bubblewrap does not work: generated code runs unsandboxed");
      }
    }
    if (!tools.prlimit) notes.push("prlimit not found; limits are set by the interpreter itself.");
    // Limits per run (processes, total memory): the strongest mechanism that really works here.
    const containment = await detectContainment(this.runLimits);
    notes.push(`Run limits: ${containment.note}; workspace size watched (limits.diskMb).`);
    if (containment.kind === "watchdog") this.log.warn({ runLimits: containment.kind }, `run limits: ${containment.note}`);
    else this.log.info({ runLimits: containment.kind, cgroups: containment.parents }, `run limits: ${containment.note}`);
    this.startRetention(containment);

    const best = chosen ?? probes[probes.length - 1] ?? null;
    const check: RunnerCheck = {
      ok,
      python: best?.executable ?? best?.candidate ?? this.python,
      missing: chosen ? [] : best?.missing ?? [],
      sandbox,
      message: notes.join("\n"),
    };
    if (ok) this.log.info({ python: check.python, sandbox, runLimits: containment.kind }, "local runner ready");
    else this.log.warn({ python: check.python, sandbox }, check.message);
    return { check, probe: chosen, tools, containment };
  }

  /** Runs a no-op inside the real sandbox; returns why it failed, or null. */
  private async probeSandbox(tools: Tools, probe: PythonProbe | null): Promise<string | null> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "threadml-sandbox-"));
    try {
      const argv = probe?.executable ? [probe.executable, "-c", "pass"] : ["true"];
      const cmd = buildCommand({
        tools,
        sandbox: true,
        limits: { cpuS: 10, memoryMb: 1024 },
        workspace: dir,
        env: cleanEnv(dir),
        network: false,
        pythonPrefixes: probe?.prefixes,
        argv,
      });
      const job = startJob({ ...cmd, cwd: dir, env: cleanEnv(dir) });
      const timer = setTimeout(() => void job.kill(), SANDBOX_PROBE_TIMEOUT_MS);
      const exit = await job.done;
      clearTimeout(timer);
      if (exit.exitCode === 0) return null;
      const why = job.stderrTail().trim().split("\n").slice(-3).join(" ");
      return why || `exit code ${exit.exitCode ?? exit.signal}`;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async prepare(input: WorkspaceInput): Promise<Workspace> {
    const runId = checkRunId(input.runId);
    const dir = path.join(this.dataDir, "runs", runId);
    // Validate every destination before touching the disk.
    const files = (input.files ?? []).map((f) => ({ source: f.source, target: safeDest(dir, f.dest) }));
    const texts = Object.entries(input.texts ?? {}).map(([dest, content]) => ({ target: safeDest(dir, dest), content }));

    let harnessFiles: string[];
    try {
      harnessFiles = (await readdir(this.harnessDir, { withFileTypes: true }))
        .filter((e) => e.isFile() && e.name.endsWith(".py"))
        .map((e) => e.name);
    } catch (err) {
      throw new Error(`harness folder ${this.harnessDir} cannot be read: ${(err as Error).message}`);
    }
    const fingerprint = await inputsFingerprint(input);
    const paths = controlPaths(this.dataDir, runId);

    return this.exclusive(runId, async () => {
      const state = await inspectJob(paths);
      const recorded = await readJson(paths.inputs, InputsRecord);
      const sameInputs = recorded !== null && !(recorded instanceof Error) && recorded.fingerprint === fingerprint;
      if (state.kind === "live" || state.kind === "done" || state.kind === "ended") {
        // The job of this run id is running or has run on exactly these inputs: leave its workspace alone.
        if (sameInputs) return { runId, dir, localDir: dir };
        if (state.kind === "live")
          throw new Error(`run ${runId} is still running (pid ${state.record.pid}) with other inputs; its workspace was left as it is`);
        // A new job under an old id: the earlier record no longer describes this workspace.
        await clearJob(paths);
      } else if (state.kind === "lost" && !sameInputs) {
        await clearJob(paths);
      }

      await mkdir(dir, { recursive: true });
      // An earlier job here may have planted links (data -> /etc): every name written is made fresh first.
      for (const name of harnessFiles) await cp(path.join(this.harnessDir, name), await freshTarget(dir, name));
      for (const f of files) {
        await freshTarget(dir, path.relative(dir, f.target));
        // Links are followed: a link to a host path would be dangling inside the sandbox.
        await cp(f.source, f.target, { recursive: true, dereference: true });
      }
      for (const t of texts) {
        await writeFile(await freshTarget(dir, path.relative(dir, t.target)), t.content, { flag: "wx" });
      }
      await mkdir(paths.dir, { recursive: true });
      await writeJsonAtomic(paths.inputs, { fingerprint });
      return { runId, dir, localDir: dir };
    });
  }

  /**
   * Runs the harness for this workspace, once per run id: a job of the same run id and spec that is
   * still running (started by this process or an earlier one) is followed again, a finished one gives
   * its outcome without running again, and one that vanished without an exit record runs again.
   */
  async run(ws: Workspace, options: RunOptions): Promise<RunOutcome> {
    // Shutting down for a restart: start nothing and leave the caller's step unfinished (see detach()).
    if (this.detached) return new Promise<RunOutcome>(() => undefined);
    const runId = checkRunId(ws.runId);
    checkLimits(options.limits);
    const dir = await this.workspaceDir(ws);
    const spec = HarnessSpec.parse(options.spec);
    const paths = controlPaths(this.dataDir, runId);
    const notify = (text: string) => {
      try {
        options.onNotice?.(text);
      } catch (err) {
        this.log.debug({ err: String(err) }, "onNotice listener threw; ignored");
      }
    };

    const next = await this.exclusive(runId, async (): Promise<Follower | RunOutcome> => {
      const state = await inspectJob(paths);
      const same = (r: JobRecord) => path.resolve(r.workspace) === dir && JSON.stringify(r.spec) === JSON.stringify(spec);
      if (state.kind === "live") {
        if (!same(state.record)) throw new Error(`run ${runId} is already running a different job (pid ${state.record.pid}); it was not started again`);
        notify(`The job was still running (since ${new Date(state.record.startedAt).toISOString()}); following it again.`);
        this.log.info({ runId, pid: state.record.pid }, "re-attached to a running job");
        return this.follow({ paths, record: state.record, stop: state.stop, onEvent: options.onEvent, signal: options.signal });
      }
      if ((state.kind === "done" || state.kind === "ended") && same(state.record)) {
        const outcome =
          state.kind === "done"
            ? state.outcome
            : await this.store(paths, await buildOutcome(state.record, paths.stderr, { exit: state.exit, stop: state.stop, endedAt: state.endedAt, lastSignal: null }, paths.artifacts));
        if (state.kind === "ended") await removeRunCgroups(state.record.cgroups ?? []);
        await replayEvents(paths.events, options.onEvent);
        notify("This job had already finished; using its result instead of running it again.");
        this.log.info({ runId }, "job already finished; outcome reused");
        return outcome;
      }
      if (options.signal?.aborted) return notStarted();
      if (state.kind === "lost" && (state.record === null || same(state.record))) {
        this.log.warn({ runId, why: state.why }, "job vanished without an exit record; running it again");
        notify(`The previous run of this job stopped without finishing (${state.why}); running it again.`);
        // From a clean state of its outputs; the inputs prepare() wrote stay.
        const outDir = path.resolve(dir, spec.out_dir);
        if (outDir !== dir && isInside(outDir, dir)) await rm(outDir, { recursive: true, force: true });
        await rm(path.join(dir, "tmp"), { recursive: true, force: true });
      }
      if (state.kind !== "none") await clearJob(paths);
      return this.start(ws, dir, spec, options, paths);
    });
    if (!(next instanceof Follower)) return next;
    try {
      return await next.done;
    } finally {
      this.untrackFollower(next);
    }
  }

  private async start(ws: Workspace, dir: string, spec: HarnessSpec, options: RunOptions, paths: ControlPaths): Promise<Follower | RunOutcome> {
    if (options.signal?.aborted) return notStarted();
    const { check, probe, tools, containment } = await this.resolve();
    if (!check.ok || !probe?.executable) throw new Error(`local runner is not usable: ${check.message}`);
    if (!tools.sh) throw new Error("local runner is not usable: no sh found to start jobs with");

    await writeFile(await freshTarget(dir, "spec.json"), JSON.stringify(spec, null, 2), { flag: "wx" });
    const resultPath = path.join(path.resolve(dir, spec.out_dir), "result.json");
    // A stale result from an earlier run in this workspace must never be mistaken for this one's.
    if (isInside(resultPath, dir)) await rm(resultPath, { force: true });
    await mkdir(path.join(dir, "tmp"), { recursive: true });
    await mkdir(path.join(dir, ".mpl"), { recursive: true });
    if (options.signal?.aborted) return notStarted();

    const sandboxed = check.sandbox === "bubblewrap";
    if (!sandboxed) this.log.warn({ runId: ws.runId }, "running generated code without a sandbox (limits and clean environment only)");
    const env = cleanEnv(dir);
    const cmd = buildCommand({
      tools,
      sandbox: sandboxed,
      limits: { cpuS: options.limits.cpuS, memoryMb: options.limits.memoryMb, fileMb: options.limits.diskMb },
      workspace: dir,
      env,
      network: false,
      pythonPrefixes: probe.prefixes,
      argv: [probe.executable, "harness.py"],
    });
    // Only what the job adds counts against limits.diskMb, not the data prepare() copied in.
    const diskBaseBytes = options.limits.diskMb !== undefined ? (await diskUsage(dir)).bytes : undefined;
    const runLimits = { memoryMb: options.limits.memoryMb, pids: options.limits.pids ?? DEFAULT_PIDS };
    // A cgroup that cannot be made now (removed parent, no permission) is a runner failure, not a reason to run unbounded.
    let cgroups: string[];
    try {
      cgroups = await createRunCgroups(containment, ws.runId, runLimits);
    } catch (err) {
      throw new Error(`local runner is not usable: ${(err as Error).message}`);
    }
    const started = await startDetached({
      shell: tools.sh,
      ...cmd,
      cwd: dir,
      env,
      paths,
      cgroups,
      record: {
        version: 1,
        runId: ws.runId,
        workspace: dir,
        spec,
        limits: { wallTimeS: options.limits.wallTimeS, cpuS: options.limits.cpuS, memoryMb: options.limits.memoryMb, pids: runLimits.pids, diskMb: options.limits.diskMb },
        sandbox: check.sandbox,
        containment: containment.kind,
        cgroups,
        diskBaseBytes,
      },
    });
    if ("error" in started) {
      await removeRunCgroups(cgroups);
      return {
        result: null,
        exitCode: null,
        signal: null,
        timedOut: false,
        cancelled: false,
        durationS: 0,
        stderrTail: `[runner] could not start ${tools.sh}: ${started.error.message}`,
      };
    }
    this.log.debug({ runId: ws.runId, pid: started.record.pid, sandboxed, runLimits: containment.kind, cgroups }, "run started");
    return this.follow({ paths, record: started.record, child: started.child, onEvent: options.onEvent, signal: options.signal });
  }

  private follow(opts: Omit<ConstructorParameters<typeof Follower>[0], "finish" | "watch">): Follower {
    const record = opts.record;
    const follower = new Follower({
      ...opts,
      // From the record, so a runner that re-attaches enforces the limits the job was started with.
      watch: (final) =>
        checkRun(
          {
            leader: record.pid,
            workspace: record.workspace,
            containment: record.containment ?? "watchdog",
            cgroups: record.cgroups ?? [],
            memoryMb: record.limits.memoryMb,
            pids: record.limits.pids,
            diskMb: record.limits.diskMb,
            diskBaseBytes: record.diskBaseBytes,
          },
          final,
        ),
      finish: async (end) => {
        if (end.stop && ["disk", "memory", "pids"].includes(end.stop.reason)) this.log.warn({ runId: record.runId, limit: end.stop.reason, limits: record.limits }, "run stopped at a limit");
        const outcome = await this.store(opts.paths, await buildOutcome(opts.record, opts.paths.stderr, end, opts.paths.artifacts));
        await removeRunCgroups(record.cgroups ?? []);
        this.log.debug({ runId: opts.record.runId, exitCode: outcome.exitCode, signal: outcome.signal, timedOut: outcome.timedOut, cancelled: outcome.cancelled, durationS: outcome.durationS }, "run ended");
        return outcome;
      },
    });
    this.followers.add(follower);
    this.installExitHook();
    // detach() came while this job was being started: leave it running like the others.
    if (this.detached) {
      follower.detach();
      this.followers.delete(follower);
    }
    return follower;
  }

  /** Keeps the outcome beside the job record, so a later run() with this id returns it as it was. */
  private async store(paths: ControlPaths, outcome: RunOutcome): Promise<RunOutcome> {
    await writeJsonAtomic(paths.outcome, outcome).catch((err: unknown) => this.log.warn({ err: String(err) }, "could not store the run outcome"));
    return outcome;
  }

  private exclusive<T>(runId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(runId) ?? Promise.resolve();
    const current = previous.then(fn, fn);
    const settled = current.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(runId, settled);
    void settled.then(() => {
      if (this.locks.get(runId) === settled) this.locks.delete(runId);
    });
    return current;
  }

  async put(ws: Workspace, dest: string, source: string): Promise<void> {
    const dir = await this.workspaceDir(ws);
    const target = await freshTarget(dir, path.relative(dir, safeDest(dir, dest)));
    const part = `${target}.part`;
    await rm(part, { force: true });
    await copyFile(source, part, fsConstants.COPYFILE_EXCL);
    await rename(part, target);
  }

  async serve(ws: Workspace, options: ServeOptions = {}): Promise<ModelServer> {
    if (options.signal?.aborted) throw new Error("serve cancelled before it started");
    const { check, probe, tools } = await this.resolve();
    if (!check.ok || !probe?.executable) throw new Error(`local runner is not usable: ${check.message}`);
    const dir = await this.workspaceDir(ws);
    await mkdir(path.join(dir, "tmp"), { recursive: true });
    await mkdir(path.join(dir, ".mpl"), { recursive: true });

    const sandboxed = check.sandbox === "bubblewrap";
    if (!sandboxed) this.log.warn({ runId: ws.runId }, "starting the model server without a sandbox");
    // In the sandbox the workspace is read-only: scratch space lives in the private /tmp.
    const env = sandboxed ? { ...cleanEnv(dir), HOME: "/tmp", TMPDIR: "/tmp", MPLCONFIGDIR: "/tmp/.mpl" } : cleanEnv(dir);
    const cmd = buildCommand({
      tools,
      sandbox: sandboxed,
      // No CPU limit: a server accumulates CPU time for as long as it lives.
      limits: { memoryMb: this.serveMemoryMb },
      workspace: dir,
      env,
      // No network at all: it answers on the socket the launcher bound and hands down.
      network: false,
      readOnlyWorkspace: true,
      pythonPrefixes: probe.prefixes,
      argv: [probe.executable, "serve.py", "--workspace", dir],
    });
    const wantsToken = this.serveToken === "always" || (this.serveToken === "auto" && !LOOPBACK_HOST.test(this.serveHost));
    const token = wantsToken ? (options.token ?? randomBytes(32).toString("base64url")) : undefined;
    // The launcher takes the token out of its environment and passes it down a pipe.
    const launchEnv = token ? { ...env, THREADML_SERVE_TOKEN: token } : env;

    return new Promise<ModelServer>((resolve, reject) => {
      let settled = false;
      let lines = 0;
      let bound: { host: string; port: number } | null = null;
      const job = startJob({
        file: probe.executable!,
        args: [SERVE_LAUNCHER, "--host", this.serveHost, "--port", String(options.port ?? 0), "--", cmd.file, ...cmd.args],
        cwd: dir,
        env: launchEnv,
        onLine: (line) => {
          // Only the first line is the launcher's; whatever follows comes from untrusted code.
          if (++lines === 1) {
            bound = parseBoundLine(line);
            if (!bound) fail(`the model server launcher did not report its address: ${line.slice(0, 500)}`);
            return;
          }
          const event = parseEventLine(line);
          if (!event) return;
          if (!settled && bound && event.event === "listening") {
            settled = true;
            cleanup();
            const { host, port } = bound;
            const server: ModelServer = {
              url: `http://${formatHost(host)}:${port}`,
              host,
              port,
              ...(token ? { token } : {}),
              ...(job.pid ? { pid: job.pid } : {}),
              stop: async () => {
                await job.kill();
                this.untrack(this.servers, job);
              },
            };
            this.untrack(this.jobs, job);
            this.track(this.servers, job, server);
            this.log.info({ runId: ws.runId, url: server.url, sandboxed, token: token !== undefined }, "model server listening");
            resolve(server);
            return;
          }
          this.log.debug({ runId: ws.runId, line: line.slice(0, 500) }, "model server output");
        },
      });
      const fail = (message: string) => {
        if (settled) return;
        settled = true;
        cleanup();
        void job.kill().then(() => {
          const tail = job.stderrTail();
          reject(new ServeError(tail.trim() ? `${message}\n${tail.trim()}` : message, tail));
        });
      };
      // Tracked as a job until it listens, so close() also ends a server that is still starting.
      this.track(this.jobs, job, () => fail("runner closed while the model server was starting"));
      const timer = setTimeout(() => fail(`model server did not report listening within ${SERVE_START_TIMEOUT_MS / 1000} s`), SERVE_START_TIMEOUT_MS);
      const onAbort = () => fail("serve cancelled");
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      void job.done.then((exit) => {
        this.untrack(this.jobs, job);
        this.untrack(this.servers, job);
        fail(`model server exited before listening (exit code ${exit.exitCode ?? "none"}, signal ${exit.signal ?? "none"})`);
      });
    });
  }

  /** Stops every server and job this runner started or re-attached to. */
  async close(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    const servers = [...this.servers.values()];
    const jobs = [...this.jobs.entries()];
    const followers = [...this.followers];
    for (const [, cancel] of jobs) cancel();
    for (const follower of followers) follower.cancel();
    await Promise.all([
      ...servers.map((s) => s.stop()),
      ...jobs.map(([job]) => job.done),
      ...followers.map((f) => f.done.catch(() => undefined)),
    ]);
    this.removeExitHookIfIdle();
  }

  /**
   * For a service that stops but will come back: stops following the training jobs and leaves them
   * running; a later runner on the same data folder re-attaches to them by run id. Pending run() calls
   * and later ones never settle (and start nothing), so no graph step records an outcome for a job it
   * no longer follows; the process is expected to exit. Model servers cannot be re-attached: they stop.
   */
  async detach(): Promise<void> {
    this.detached = true;
    const followers = [...this.followers];
    for (const follower of followers) {
      this.log.info({ pid: follower.pid }, "detached from a running job; it keeps running");
      follower.detach();
      this.followers.delete(follower);
    }
    const servers = [...this.servers.values()];
    const jobs = [...this.jobs.entries()];
    for (const [, cancel] of jobs) cancel();
    await Promise.all([...servers.map((s) => s.stop()), ...jobs.map(([job]) => job.done)]);
    this.removeExitHookIfIdle();
  }

  /** First sweep now, then every RETENTION_SWEEP_MS, on a timer that never keeps the process alive. */
  private startRetention(containment: ContainmentInfo): void {
    if (this.retentionTimer) return;
    const sweep = () => void this.sweepRuns(containment).catch((err: unknown) => this.log.warn({ err: String(err) }, "workspace retention sweep failed"));
    this.retentionTimer = setInterval(sweep, RETENTION_SWEEP_MS);
    this.retentionTimer.unref();
    sweep();
  }

  /**
   * Removes the workspaces and job records of runs idle longer than the retention period (never a
   * live job's) and empty run cgroups a crash left; returns the run ids removed.
   */
  async sweepRuns(containment?: ContainmentInfo): Promise<string[]> {
    if (this.sweeping) return this.sweeping;
    const work = async (): Promise<string[]> => {
      const removed: string[] = [];
      if (this.retentionMs > 0) {
        for (const { runId, lastUsed } of await expiredRuns(this.dataDir, this.retentionMs)) {
          // Under the run's lock, so a prepare() or run() of this id never sees half a removal.
          const res = await this.exclusive(runId, () => removeRun(this.dataDir, runId));
          if (res.removed) {
            removed.push(runId);
            this.log.info({ runId, lastUsed: new Date(lastUsed).toISOString() }, "removed an expired run workspace and job record");
          } else {
            this.log.debug({ runId, why: res.why }, "expired run kept");
          }
        }
        for (const name of await removeExpiredHoldouts(this.dataDir, this.retentionMs)) this.log.info({ holdout: name }, "removed an expired held-out split");
      }
      const info = containment ?? (await this.resolve()).containment;
      for (const dir of await sweepCgroups(info, new Set())) this.log.info({ cgroup: dir }, "removed an empty run cgroup");
      return removed;
    };
    this.sweeping = work().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private async workspaceDir(ws: Workspace): Promise<string> {
    const dir = path.resolve(ws.dir);
    const st = await stat(dir).catch(() => null);
    if (!st?.isDirectory()) throw new Error(`workspace ${dir} does not exist; call prepare() first`);
    return dir;
  }

  private track<V>(map: Map<Job, V>, job: Job, value: V): void {
    map.set(job, value);
    this.installExitHook();
  }

  private untrack<V>(map: Map<Job, V>, job: Job): void {
    map.delete(job);
    this.removeExitHookIfIdle();
  }

  private untrackFollower(follower: Follower): void {
    this.followers.delete(follower);
    this.removeExitHookIfIdle();
  }

  private installExitHook(): void {
    if (this.exitHookInstalled) return;
    process.on("exit", this.exitHook);
    this.exitHookInstalled = true;
  }

  private removeExitHookIfIdle(): void {
    if (this.exitHookInstalled && this.jobs.size === 0 && this.servers.size === 0 && this.followers.size === 0) {
      process.removeListener("exit", this.exitHook);
      this.exitHookInstalled = false;
    }
  }
}
