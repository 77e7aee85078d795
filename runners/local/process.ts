import { spawn, type ChildProcess } from "node:child_process";

// A job in its own process group: stdout split into lines, a bounded stderr tail, and a kill that
// reaches every process in the group.

export const STDERR_TAIL_CHARS = 8192;
const MAX_LINE_CHARS = 1_000_000;
const KILL_GRACE_MS = 2000;

export interface JobExit {
  exitCode: number | null;
  signal: string | null;
}

export interface Job {
  readonly pid: number | undefined;
  /** Resolves once the process has exited and its output is drained. */
  readonly done: Promise<JobExit>;
  stderrTail(): string;
  /** SIGTERM to the group, SIGKILL after a grace period; resolves when the job has ended. */
  kill(): Promise<JobExit>;
  readonly exited: boolean;
}

export interface StartOptions {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  onLine?: (line: string) => void;
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

export function startJob(opts: StartOptions): Job {
  let tail = "";
  let exited = false;
  let spawnError: Error | null = null;

  const child: ChildProcess = spawn(opts.file, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });

  let pending = "";
  const emit = (line: string) => {
    if (!opts.onLine) return;
    try {
      opts.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
    } catch {
      // A faulty listener must not end the job's output handling.
    }
  };
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    if (pending.length > MAX_LINE_CHARS) {
      emit(pending);
      pending = "";
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
  });

  const done = new Promise<JobExit>((resolve) => {
    let finished = false;
    const finish = (exit: JobExit) => {
      if (finished) return;
      finished = true;
      exited = true;
      if (pending) emit(pending);
      pending = "";
      if (spawnError) tail = (tail + `\n[runner] could not start ${opts.file}: ${spawnError.message}`).slice(-STDERR_TAIL_CHARS);
      resolve(exit);
    };
    child.on("error", (err) => {
      spawnError = err;
      // A process that never started emits no reliable close.
      if (child.pid === undefined) finish({ exitCode: null, signal: null });
    });
    child.on("exit", () => {
      // Stragglers the job left behind would otherwise keep the pipes (and resources) open.
      signalGroup(child.pid, "SIGKILL");
    });
    child.on("close", (code, signal) => finish({ exitCode: code, signal: signal ?? null }));
  });

  let killing: Promise<JobExit> | null = null;
  const kill = (): Promise<JobExit> => {
    if (exited) return done;
    if (!killing) {
      signalGroup(child.pid, "SIGTERM");
      const timer = setTimeout(() => signalGroup(child.pid, "SIGKILL"), KILL_GRACE_MS);
      killing = done.finally(() => clearTimeout(timer));
    }
    return killing;
  };

  return {
    get pid() {
      return child.pid;
    },
    done,
    stderrTail: () => tail,
    kill,
    get exited() {
      return exited;
    },
  };
}

/** Kills a group at once and synchronously (process exit path). */
export function killGroupNow(pid: number | undefined): void {
  signalGroup(pid, "SIGKILL");
}
