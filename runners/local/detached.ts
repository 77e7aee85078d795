import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, renameSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { clearJob, identityOf, type ControlPaths, type JobRecord } from "./job-record.js";

// Starts a training job that outlives this process: its own session and process group, stdout and
// stderr into files, and a shell wrapper that records the exit status when the command ends.
//
// The wrapper is the group leader and sits outside the sandbox (it runs prlimit → bwrap → python), so
// bubblewrap's --die-with-parent and setpriv's --pdeathsig tie the sandboxed code to the wrapper, not
// to Node. The exit file goes to the control folder, which the sandbox cannot see.

const WRAPPER = [
  'exit_file=$1; fired=$2; limit=$3; ncg=$4; shift 4',
  // The wrapper's own messages ("Terminated") stay out of the job's stderr.
  "exec 3>&2 2>/dev/null",
  // The job (not the wrapper, which must outlive an OOM kill to record the exit) enters the run's
  // cgroups before it execs anything untrusted: writing 0 moves the writing process itself.
  "(",
  '  while [ "$ncg" -gt 0 ]; do',
  '    echo 0 > "$1/cgroup.procs" || { echo "[runner] could not enter the run\'s cgroup $1; not started" >&2; exit 125; }',
  "    shift; ncg=$((ncg - 1))",
  "  done",
  '  exec "$@"',
  ") 2>&3 3>&- &",
  "job=$!",
  // Backstop for a job nobody follows (its service is down): the wall-time limit, plus a grace period
  // in which a following runner stops it first, still holds.
  '( sleep "$limit"; : > "$fired"; kill -TERM "$job"; sleep 2; kill -KILL "$job" ) 3>&- &',
  'wait "$job"',
  "code=$?",
  "timed_out=false",
  '[ -e "$fired" ] && timed_out=true',
  `printf '{"code":%d,"timedOut":%s}\\n' "$code" "$timed_out" > "$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"`,
  // Anything the job left behind in its group (possible without the sandbox), the backstop included, ends with it.
  "kill -9 0",
].join("\n");

/** How long after the wall-time limit the wrapper stops a job itself. */
export const BACKSTOP_GRACE_S = 5;

export interface DetachedStart {
  /** The shell that runs the wrapper (sh). */
  shell: string;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  paths: ControlPaths;
  /** cgroup folders the job enters before it starts (runners/local/limits.ts); none with the watchdog. */
  cgroups?: string[];
  record: Omit<JobRecord, "pid" | "startTicks" | "bootId" | "startedAt">;
}

export type Started = { record: JobRecord; child: ChildProcess } | { error: Error; startedAt: number };

export async function startDetached(opts: DetachedStart): Promise<Started> {
  await mkdir(opts.paths.dir, { recursive: true });
  // Whatever an earlier job under this id left must not be read as this one's.
  await clearJob(opts.paths);
  const out = openSync(opts.paths.events, "w");
  const err = openSync(opts.paths.stderr, "w");
  const startedAt = Date.now();
  let child: ChildProcess;
  try {
    const limit = String(Math.ceil(opts.record.limits.wallTimeS) + BACKSTOP_GRACE_S);
    const cgroups = opts.cgroups ?? [];
    child = spawn(opts.shell, ["-c", WRAPPER, "threadml-job", opts.paths.exit, opts.paths.backstop, limit, String(cgroups.length), ...cgroups, opts.file, ...opts.args], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ["ignore", out, err],
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once("error", resolve));
    return { error, startedAt };
  }
  child.on("error", () => undefined);
  const record: JobRecord = { ...opts.record, pid, ...identityOf(pid), startedAt };
  // Synchronously, straight after the spawn: the window in which a crash leaves a job with no record stays tiny.
  const tmp = `${opts.paths.job}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(record));
  renameSync(tmp, opts.paths.job);
  return { record, child };
}
