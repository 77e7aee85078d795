import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fromRoot } from "../../src/paths.js";
import { HarnessResult, HarnessSpec, parseEventLine, type HarnessEvent } from "../contract.js";
import type {
  Limits,
  ModelServer,
  RunOptions,
  RunOutcome,
  Runner,
  RunnerCheck,
  Workspace,
  WorkspaceInput,
} from "../types.js";
import { killGroupNow, startJob, STDERR_TAIL_CHARS, type Job } from "./process.js";
import { describeProbe, probePython, PYTHON_FIX_HINT, resolveExecutable, type PythonProbe } from "./python.js";
import { buildCommand, cleanEnv, type Tools } from "./sandbox.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

// The local runner: generated code runs on this machine, in a per-run workspace, under resource
// limits and (when available) a bubblewrap sandbox with no network and no view of the host.

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
  logger?: RunnerLogger;
}

const RUN_ID = /^[A-Za-z0-9._-]+$/;
const SERVE_START_TIMEOUT_MS = 30_000;
const SANDBOX_PROBE_TIMEOUT_MS = 20_000;
// Where tools are looked for besides the host PATH (a service may run with a minimal PATH).
const TOOL_PATH = [process.env.PATH ?? "", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].join(path.delimiter);

const silentLogger: RunnerLogger = { warn() {}, info() {}, debug() {} };

interface Resolved {
  check: RunnerCheck;
  probe: PythonProbe | null;
  tools: Tools;
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

function appendNote(tail: string, note: string): string {
  const joined = tail && !tail.endsWith("\n") ? `${tail}\n${note}` : `${tail}${note}`;
  return joined.slice(-STDERR_TAIL_CHARS);
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
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

function checkLimits(limits: Limits): void {
  for (const key of ["wallTimeS", "cpuS", "memoryMb"] as const) {
    const v = limits[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new Error(`invalid limit ${key}: ${String(v)}`);
  }
}

/** bubblewrap reports a command killed by signal N as exit code 128+N; report it as that signal. */
function unwrapBwrapStatus(exitCode: number | null, signal: string | null): { exitCode: number | null; signal: string | null } {
  if (signal !== null || exitCode === null || exitCode <= 128) return { exitCode, signal };
  const name = Object.entries(os.constants.signals).find(([, n]) => n === exitCode - 128)?.[0];
  return name ? { exitCode: null, signal: name } : { exitCode, signal };
}

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
  private readonly log: RunnerLogger;
  private resolving: Promise<Resolved> | null = null;
  /** Running jobs, each with the function that cancels it. */
  private readonly jobs = new Map<Job, () => void>();
  private readonly servers = new Map<Job, ModelServer>();
  private exitHookInstalled = false;
  private readonly exitHook = () => {
    // Synchronous last resort when Node exits without close().
    for (const job of [...this.jobs.keys(), ...this.servers.keys()]) killGroupNow(job.pid);
  };

  constructor(options: LocalRunnerOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.python = options.python?.trim() || "auto";
    this.sandboxMode = options.sandbox ?? "auto";
    this.serveHost = options.serveHost ?? "127.0.0.1";
    this.harnessDir = path.resolve(options.harnessDir ?? fromRoot("runners/python"));
    this.serveMemoryMb = options.serveMemoryMb ?? 4096;
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

    const best = chosen ?? probes[probes.length - 1] ?? null;
    const check: RunnerCheck = {
      ok,
      python: best?.executable ?? best?.candidate ?? this.python,
      missing: chosen ? [] : best?.missing ?? [],
      sandbox,
      message: notes.join("\n"),
    };
    if (ok) this.log.info({ python: check.python, sandbox }, "local runner ready");
    else this.log.warn({ python: check.python, sandbox }, check.message);
    return { check, probe: chosen, tools };
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
    const runId = input.runId;
    if (typeof runId !== "string" || !RUN_ID.test(runId) || runId === "." || runId === "..") {
      throw new Error(`invalid runId ${JSON.stringify(runId)}: use letters, digits, '.', '_' and '-' only`);
    }
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

    await mkdir(dir, { recursive: true });
    for (const name of harnessFiles) await cp(path.join(this.harnessDir, name), path.join(dir, name));
    for (const f of files) {
      await mkdir(path.dirname(f.target), { recursive: true });
      // Links are followed: a link to a host path would be dangling inside the sandbox.
      await cp(f.source, f.target, { recursive: true, dereference: true });
    }
    for (const t of texts) {
      await mkdir(path.dirname(t.target), { recursive: true });
      await writeFile(t.target, t.content);
    }
    return { runId, dir, localDir: dir };
  }

  async run(ws: Workspace, options: RunOptions): Promise<RunOutcome> {
    const notStarted = (): RunOutcome => ({
      result: null,
      exitCode: null,
      signal: null,
      timedOut: false,
      cancelled: true,
      durationS: 0,
      stderrTail: "[runner] cancelled before the run started",
    });
    if (options.signal?.aborted) return notStarted();
    const { check, probe, tools } = await this.resolve();
    if (!check.ok || !probe?.executable) throw new Error(`local runner is not usable: ${check.message}`);
    checkLimits(options.limits);
    const dir = await this.workspaceDir(ws);

    const spec = HarnessSpec.parse(options.spec);
    await writeFile(path.join(dir, "spec.json"), JSON.stringify(spec, null, 2));
    const outDir = path.resolve(dir, spec.out_dir);
    const resultPath = path.join(outDir, "result.json");
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
      limits: { cpuS: options.limits.cpuS, memoryMb: options.limits.memoryMb },
      workspace: dir,
      env,
      network: false,
      pythonPrefixes: probe.prefixes,
      argv: [probe.executable, "harness.py"],
    });

    const onEvent = options.onEvent;
    const started = performance.now();
    const job = startJob({
      ...cmd,
      cwd: dir,
      env,
      onLine: (line) => {
        const event: HarnessEvent | null = parseEventLine(line);
        if (!event || !onEvent) return;
        try {
          onEvent(event);
        } catch (err) {
          this.log.debug({ err: String(err) }, "onEvent listener threw; ignored");
        }
      },
    });
    this.log.debug({ runId: ws.runId, pid: job.pid, sandboxed }, "run started");

    let timedOut = false;
    let cancelled = false;
    const cancel = () => {
      if (job.exited || timedOut || cancelled) return;
      cancelled = true;
      void job.kill();
    };
    this.track(this.jobs, job, cancel);
    const timer = setTimeout(() => {
      if (job.exited || cancelled) return;
      timedOut = true;
      void job.kill();
      // setTimeout overflows past 2^31-1 ms and would fire at once.
    }, Math.min(options.limits.wallTimeS * 1000, 2 ** 31 - 1));
    options.signal?.addEventListener("abort", cancel, { once: true });

    let exit;
    try {
      exit = await job.done;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", cancel);
      this.untrack(this.jobs, job);
    }
    const durationS = Math.round(performance.now() - started) / 1000;

    let stderrTail = job.stderrTail();
    if (timedOut) stderrTail = appendNote(stderrTail, `[runner] killed after the wall-time limit of ${options.limits.wallTimeS} s`);
    if (cancelled) stderrTail = appendNote(stderrTail, "[runner] cancelled");
    let result: HarnessResult | null = null;
    if (!isInside(resultPath, dir)) {
      stderrTail = appendNote(stderrTail, `[runner] out_dir ${JSON.stringify(spec.out_dir)} is outside the workspace; result ignored`);
    } else {
      let raw: string | null = null;
      try {
        raw = await readFile(resultPath, "utf8");
      } catch {
        stderrTail = appendNote(stderrTail, `[runner] no result.json was written (${path.relative(dir, resultPath)})`);
      }
      if (raw !== null) {
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch (err) {
          stderrTail = appendNote(stderrTail, `[runner] result.json is not valid JSON: ${(err as Error).message}`);
        }
        if (json !== undefined) {
          const parsed = HarnessResult.safeParse(json);
          if (parsed.success) result = parsed.data;
          else {
            const issues = parsed.error.issues
              .slice(0, 5)
              .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
              .join("; ");
            stderrTail = appendNote(stderrTail, `[runner] result.json does not match the contract: ${issues}`);
          }
        }
      }
    }
    this.log.debug({ runId: ws.runId, ...exit, timedOut, cancelled, durationS }, "run ended");
    const { exitCode, signal } = sandboxed ? unwrapBwrapStatus(exit.exitCode, exit.signal) : exit;
    return { result, exitCode, signal, timedOut, cancelled, durationS, stderrTail };
  }

  async serve(ws: Workspace, options: { signal?: AbortSignal } = {}): Promise<ModelServer> {
    if (options.signal?.aborted) throw new Error("serve cancelled before it started");
    const { check, probe, tools } = await this.resolve();
    if (!check.ok || !probe?.executable) throw new Error(`local runner is not usable: ${check.message}`);
    const dir = await this.workspaceDir(ws);
    await mkdir(path.join(dir, "tmp"), { recursive: true });
    await mkdir(path.join(dir, ".mpl"), { recursive: true });

    const sandboxed = check.sandbox === "bubblewrap";
    if (!sandboxed) this.log.warn({ runId: ws.runId }, "starting the model server without a sandbox");
    const env = cleanEnv(dir);
    const cmd = buildCommand({
      tools,
      sandbox: sandboxed,
      // No CPU limit: a server accumulates CPU time for as long as it lives.
      limits: { memoryMb: this.serveMemoryMb },
      workspace: dir,
      env,
      network: true,
      pythonPrefixes: probe.prefixes,
      argv: [probe.executable, "serve.py", "--host", this.serveHost, "--port", "0", "--workspace", dir],
    });

    return new Promise<ModelServer>((resolve, reject) => {
      let settled = false;
      const job = startJob({
        ...cmd,
        cwd: dir,
        env,
        onLine: (line) => {
          const event = parseEventLine(line);
          if (!event) return;
          if (!settled && event.event === "listening") {
            settled = true;
            cleanup();
            const host = event.host;
            const port = event.port;
            const server: ModelServer = {
              url: `http://${formatHost(host)}:${port}`,
              host,
              port,
              stop: async () => {
                await job.kill();
                this.untrack(this.servers, job);
              },
            };
            this.untrack(this.jobs, job);
            this.track(this.servers, job, server);
            this.log.info({ runId: ws.runId, url: server.url, sandboxed }, "model server listening");
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

  async close(): Promise<void> {
    const servers = [...this.servers.values()];
    const jobs = [...this.jobs.entries()];
    for (const [, cancel] of jobs) cancel();
    await Promise.all([...servers.map((s) => s.stop()), ...jobs.map(([job]) => job.done)]);
    if (this.exitHookInstalled && this.jobs.size === 0 && this.servers.size === 0) {
      process.removeListener("exit", this.exitHook);
      this.exitHookInstalled = false;
    }
  }

  private async workspaceDir(ws: Workspace): Promise<string> {
    const dir = path.resolve(ws.dir);
    const st = await stat(dir).catch(() => null);
    if (!st?.isDirectory()) throw new Error(`workspace ${dir} does not exist; call prepare() first`);
    return dir;
  }

  private track<V>(map: Map<Job, V>, job: Job, value: V): void {
    map.set(job, value);
    if (!this.exitHookInstalled) {
      process.on("exit", this.exitHook);
      this.exitHookInstalled = true;
    }
  }

  private untrack<V>(map: Map<Job, V>, job: Job): void {
    map.delete(job);
    if (this.exitHookInstalled && this.jobs.size === 0 && this.servers.size === 0) {
      process.removeListener("exit", this.exitHook);
      this.exitHookInstalled = false;
    }
  }
}
