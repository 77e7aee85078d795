import type { HarnessEvent, HarnessResult, HarnessSpecInput } from "./contract.js";
import type { HostArtifacts } from "./intake.js";

// The Runner interface: where generated code runs. The local runner (runners/local) and the SSH runner
// implement it; graph nodes only ever see this interface.

export interface Limits {
  /** Wall-clock limit; the job is killed (whole process group) and classified solution_stuck. */
  wallTimeS: number;
  /** CPU-seconds limit (RLIMIT_CPU). */
  cpuS: number;
  /**
   * Memory limit in MiB: the run's total where the runner can bound it (cgroups, or the local runner's
   * watchdog), and always each process's address space (RLIMIT_AS).
   */
  memoryMb: number;
  /** Processes (and threads) the run may have at once. */
  pids?: number;
  /** MiB the run may add to its workspace (and the largest file it may write, RLIMIT_FSIZE). */
  diskMb?: number;
}

export interface WorkspaceInput {
  /** Unique id of this run; becomes the workspace folder name. */
  runId: string;
  /** Local files copied into the workspace: `source` is a local path, `dest` relative to the workspace. */
  files: Array<{ source: string; dest: string }>;
  /** Text files written into the workspace (generated code, spec.json), relative path → content. */
  texts: Record<string, string>;
}

export interface Workspace {
  runId: string;
  /** The workspace path on the runner's machine. */
  dir: string;
  /** Where artifacts are readable locally (the same folder for the local runner). */
  localDir: string;
}

export interface RunOptions {
  spec: HarnessSpecInput;
  limits: Limits;
  signal?: AbortSignal;
  onEvent?: (event: HarnessEvent) => void;
  /** Plain sentences for the thread about where and how the job runs ("Training on gpu1, GPU 0", "reconnected"). */
  onNotice?: (text: string) => void;
}

export interface RunOutcome {
  /** The validated result.json, or null when the harness wrote none (crash, kill, sandbox failure). */
  result: HarnessResult | null;
  /** Host-owned copies of what the run left (runners/intake.ts); null without a result. */
  artifacts?: HostArtifacts | null;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  durationS: number;
  /** Last lines of stderr, for error messages and failure classification. */
  stderrTail: string;
}

export interface ModelServer {
  url: string;
  host: string;
  port: number;
  /** Bearer token every request must send (`Authorization: Bearer <token>`); absent when none is needed. */
  token?: string;
  /** Process (group) id of a server on this machine, so another ThreadML process can stop it. */
  pid?: number;
  stop(): Promise<void>;
}

export interface ServeOptions {
  signal?: AbortSignal;
  onNotice?: (text: string) => void;
  /** Listen on this port where the runner can (a model served again after a restart keeps its address); else any free one. */
  port?: number;
  /** Require this bearer token instead of a fresh one (the registry's, so clients keep working after a restart). */
  token?: string;
}

export interface RunnerCheck {
  ok: boolean;
  python: string;
  /** Python modules the harness needs that the interpreter lacks. */
  missing: string[];
  sandbox: "bubblewrap" | "limits-only";
  message: string;
}

export interface Runner {
  readonly name: string;
  /**
   * Runs jobs side by side on resources of their own (a cluster): the plans' searches go out as one
   * job per plan. Elsewhere one search job evaluates every plan.
   */
  readonly parallelSearches?: boolean;
  /** Checks the interpreter and sandbox once; the message names what is missing and how to install it. */
  check(): Promise<RunnerCheck>;
  prepare(input: WorkspaceInput): Promise<Workspace>;
  /** Writes spec.json into the workspace, runs the harness there and resolves when it has ended. */
  run(ws: Workspace, options: RunOptions): Promise<RunOutcome>;
  /**
   * Puts one host file into a prepared workspace while its job may already run (the scorer waits for
   * the predictions this way); the file appears whole, by rename. Only runners that run jobs side by
   * side offer it: where jobs queue for a slot (SSH), a waiting scorer could hold the slot the training
   * run needs, so the scorer runs after it instead.
   */
  put?(ws: Workspace, dest: string, source: string): Promise<void>;
  /** Starts the model server for a trained workspace; resolves once it listens. */
  serve(ws: Workspace, options?: ServeOptions): Promise<ModelServer>;
  /** Which of these optional Python modules the runner's interpreter can import. */
  modules?(names: string[]): Promise<Record<string, boolean>>;
  /** Stops every server and job this runner started. */
  close(): Promise<void>;
  /**
   * Stops following running jobs and leaves them running (a restart with a shared store: the next process
   * re-attaches). Unfinished run() calls never settle. Runners without it are closed instead.
   */
  detach?(): Promise<void>;
}
