import type { SFTPWrapper } from "ssh2";
import { z } from "zod";
import { readText, stat } from "./sftp.js";
import { pjoin, q, setupLines } from "./shell.js";

// Remote job control in POSIX sh. A job lives in a folder of its workspace (`.job` for training,
// `.serve` for the model server):
//   run.sh       the wrapper: runs the setup lines, then Python in a session of its own
//   lock/        made atomically by the start script: whoever makes it starts the job, nobody else
//   wrapper.pid  the wrapper; pid  the job's process (and process-group) id
//   out, err     the job's stdout (JSON event lines, followed by byte offset) and stderr
//   started      start time (epoch seconds); exit  the exit status, written by the wrapper at the end
//   cancelled, timedout   why it was stopped, when it was
// Every start also appends a line to the workspace's starts.log.

export type JobKind = "job" | "serve";

export function jobDir(ws: string, kind: JobKind): string {
  return pjoin(ws, kind === "job" ? ".job" : ".serve");
}

// Python puts itself in a new session so that one signal to the group reaches everything it started.
const SETSID_SHIM = "import os, sys\ntry:\n    os.setsid()\nexcept OSError:\n    pass\nos.execvp(sys.argv[1], sys.argv[1:])";

/** Environment the harness gets besides the host's own, as on the local runner. */
export const JOB_ENV: Record<string, string> = {
  MPLBACKEND: "Agg",
  PYTHONUNBUFFERED: "1",
  PYTHONDONTWRITEBYTECODE: "1",
  LANG: "C.UTF-8",
  OMP_NUM_THREADS: "1",
  OPENBLAS_NUM_THREADS: "2",
  MKL_NUM_THREADS: "2",
};

export interface WrapperInput {
  ws: string;
  kind: JobKind;
  setup: string[];
  /** The interpreter as one sh word (already quoted). */
  python: string;
  /** Arguments after the interpreter, unquoted. */
  args: string[];
  /** CUDA_VISIBLE_DEVICES; null leaves the host's value. */
  cudaVisible: string | null;
  cpuS?: number;
  memoryMb?: number;
  wallTimeS?: number;
  /** RLIMIT_FSIZE in MiB (limits.diskMb): the largest file the job may write. */
  fileMb?: number;
  /** Processes of the host user beyond those it already has (RLIMIT_NPROC, limits.pids); root is exempt. */
  pids?: number;
  /**
   * Run inside bubblewrap ($J/sandbox.sh, workspace writable) where it works on the machine the job
   * lands on, else without it and say so on stderr.
   */
  sandbox?: boolean;
}

/** rlimits set by the interpreter before it execs the job: exact units, whichever sh the host has. */
function rlimitShim(w: WrapperInput): string {
  // Never above the host's hard limit, which an unprivileged user cannot raise.
  const lines = [
    "import os, resource",
    "def _lim(r, n):",
    "    h = resource.getrlimit(r)[1]",
    "    n = n if h == resource.RLIM_INFINITY else min(n, h)",
    // Hard as well: the job must not raise its soft limit back.
    "    resource.setrlimit(r, (n, n))",
  ];
  if (w.fileMb) {
    const n = Math.max(1, Math.floor(w.fileMb)) * 1024 * 1024;
    lines.push(`_lim(resource.RLIMIT_FSIZE, ${n})`);
  }
  if (w.pids) {
    // RLIMIT_NPROC counts every task of the user: the job's allowance comes on top of what runs already.
    lines.push(
      "def _tasks(p):",
      "    try:",
      "        return len(os.listdir('/proc/%s/task' % p)) if os.stat('/proc/' + p).st_uid == os.getuid() else 0",
      "    except OSError:",
      "        return 0",
      "if os.getuid() != 0 and os.path.isdir('/proc'):",
      `    _n = sum(_tasks(p) for p in os.listdir('/proc') if p.isdigit()) + ${Math.max(1, Math.floor(w.pids))}`,
      "    _lim(resource.RLIMIT_NPROC, _n)",
    );
  }
  return w.fileMb || w.pids ? `${lines.join("\n")}\n` : "";
}

/** The wrapper script (run.sh). */
export function wrapperScript(w: WrapperInput): string {
  const J = jobDir(w.ws, w.kind);
  const lines = [
    // A batch scheduler wants the interpreter named.
    "#!/bin/sh",
    "# ThreadML job wrapper (generated). Runs detached; records pid, output and exit status.",
    `J=${q(J)}`,
    `cd ${q(w.ws)} || exit 1`,
    `date +%s > "$J/started"`,
    `echo $$ > "$J/wrapper.pid"`,
    // setup output goes to the job's stderr
    `exec >>"$J/err" 2>&1 </dev/null`,
    `finish() { echo "$1" > "$J/exit.tmp"; mv "$J/exit.tmp" "$J/exit"; exit 0; }`,
    ...setupLines(w.setup, (line) => `echo "[runner] setup line failed with exit code $_rc: "${q(line)}; finish 125`),
    `command -v ${w.python} >/dev/null 2>&1 || { echo "[runner] the Python interpreter "${w.python}" was not found on $(hostname) after the setup lines (PATH=$PATH)"; finish 127; }`,
    `export ${Object.entries(JOB_ENV)
      .map(([k, v]) => `${k}=${q(v)}`)
      .join(" ")}`,
    `export MPLCONFIGDIR="$PWD/.mpl" TMPDIR="$PWD/tmp"`,
    w.cudaVisible === null ? ":" : `CUDA_VISIBLE_DEVICES=${q(w.cudaVisible)}; export CUDA_VISIBLE_DEVICES`,
    `mkdir -p tmp .mpl`,
  ];
  const limits: string[] = [];
  if (w.cpuS) limits.push(`ulimit -t ${Math.ceil(w.cpuS)} 2>/dev/null`);
  if (w.memoryMb) limits.push(`ulimit -v ${Math.ceil(w.memoryMb * 1024)} 2>/dev/null`);
  if (w.sandbox) {
    lines.push(
      `if ${BWRAP_WORKS}; then THREADML_SANDBOX_PYTHON=$(${w.python} -I -c 'import sys; print(sys.executable)'); THREADML_SANDBOX_WS=rw; export THREADML_SANDBOX_PYTHON THREADML_SANDBOX_WS; set -- sh "$J/sandbox.sh"; echo bubblewrap > "$J/sandbox"`,
      `else set -- ${w.python}; echo none > "$J/sandbox"; echo "[runner] bubblewrap is not usable on $(hostname); the job runs without a sandbox (install bubblewrap there to isolate it)"; fi`,
    );
  }
  const runner = w.sandbox ? `"$@"` : w.python;
  // -I: the shim runs in the workspace, whose files must not shadow the modules it imports.
  const run = `${w.python} -I -c ${q(rlimitShim(w) + SETSID_SHIM)} ${runner} ${w.args.map(q).join(" ")}`;
  lines.push(`( ${[...limits, `exec ${run}`].join("; ")} ) >>"$J/out" 2>>"$J/err" </dev/null &`);
  lines.push(`child=$!`, `echo "$child" > "$J/pid.tmp"; mv "$J/pid.tmp" "$J/pid"`);
  // A TERM for the wrapper (scancel, a scheduler's time limit) reaches the job's own session too,
  // which a scheduler that tracks process groups would miss; the exit status is still written.
  lines.push(`trap 'kill -s TERM -- "-$child" 2>/dev/null' TERM`);
  if (w.wallTimeS) {
    // The wall-time limit holds even while nobody follows the job.
    lines.push(
      `( sleep ${Math.ceil(w.wallTimeS)} & s=$!; trap 'kill $s 2>/dev/null; exit 0' TERM; wait $s; [ -f "$J/exit" ] && exit 0; : > "$J/timedout"; ` +
        `kill -s TERM -- "-$child" 2>/dev/null; sleep 3; kill -s KILL -- "-$child" 2>/dev/null ) </dev/null >/dev/null 2>&1 &`,
      `wd=$!`,
    );
  }
  lines.push(`wait "$child"`, `rc=$?`);
  if (w.wallTimeS) lines.push(`kill "$wd" 2>/dev/null`);
  // Stragglers the job left in its group would hold the GPU.
  lines.push(`kill -s KILL -- "-$child" 2>/dev/null`, `finish "$rc"`);
  return lines.join("\n") + "\n";
}

/** Claims the job (atomic mkdir) and starts the wrapper detached; prints start=ok|busy|nows. */
export function startScript(ws: string, kind: JobKind, specSha: string | null): string[] {
  const J = jobDir(ws, kind);
  const wrapper = pjoin(J, "run.sh");
  return [
    `cd ${q(ws)} 2>/dev/null || { echo start=nows; exit 0; }`,
    `J=${q(J)}`,
    `mkdir -p "$J"`,
    `mkdir "$J/lock" 2>/dev/null || { echo start=busy; exit 0; }`,
    specSha ? `echo ${q(specSha)} > "$J/spec.sha"` : ":",
    `echo "${kind} $(date +%s)" >> starts.log`,
    // setsid: no hangup or signal from the SSH session reaches the job when the connection drops.
    `if command -v setsid >/dev/null 2>&1; then setsid nohup sh ${q(wrapper)} </dev/null >/dev/null 2>&1 &`,
    `else nohup sh ${q(wrapper)} </dev/null >/dev/null 2>&1 & fi`,
    `i=0; while [ ! -s "$J/wrapper.pid" ] && [ $i -lt 100 ]; do sleep 0.05 2>/dev/null || sleep 1; i=$((i+1)); done`,
    `echo start=ok`,
  ];
}

// alive PID: the process exists and is one of this workspace's (its command line names the workspace),
// so a pid reused after a host restart is not mistaken for the job.
function aliveFn(ws: string): string {
  return (
    `alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1; command -v ps >/dev/null 2>&1 || return 0; ` +
    `case "$(ps -o args= -p "$1" 2>/dev/null)" in *${q(ws)}*) return 0;; esac; return 1; }`
  );
}

/** Enters the workspace (or prints ws=0 and stops) and sets J to the job folder. */
export function enterJob(ws: string, kind: JobKind): string[] {
  return [`cd ${q(ws)} 2>/dev/null || { echo ws=0; echo now=$(date +%s); exit 0; }`, `J=${q(jobDir(ws, kind))}`];
}

/** Prints what the job folder records, as key=value lines (after enterJob); liveness is the caller's. */
export function jobFacts(kind: JobKind, resultFile: string | null): string[] {
  return [
    `echo ws=1; echo now=$(date +%s)`,
    `[ -d "$J/lock" ] && echo lock=1`,
    `p=$(cat "$J/pid" 2>/dev/null); w=$(cat "$J/wrapper.pid" 2>/dev/null)`,
    `[ -n "$p" ] && echo pid=$p; [ -n "$w" ] && echo wpid=$w`,
    `[ -f "$J/exit" ] && echo exit=$(cat "$J/exit")`,
    `[ -f "$J/spec.sha" ] && echo spec=$(cat "$J/spec.sha")`,
    `[ -f "$J/started" ] && echo started=$(cat "$J/started")`,
    `[ -f "$J/cancelled" ] && echo cancelled=1; [ -f "$J/timedout" ] && echo timedout=1`,
    resultFile ? `[ -f ${q(resultFile)} ] && echo result=1` : ":",
    `n=$(grep -c "^${kind} " starts.log 2>/dev/null); echo "starts=\${n:-0}"`,
  ];
}

/** Prints the job's state as key=value lines (parsed by parseJobState). */
export function stateScript(ws: string, kind: JobKind, resultFile: string | null): string[] {
  return [...enterJob(ws, kind), aliveFn(ws), ...jobFacts(kind, resultFile), `alive "$p" && echo alive=1; alive "$w" && echo walive=1`, `exit 0`];
}

const flag = z
  .string()
  .optional()
  .transform((v) => v === "1");
const int = z.coerce.number().int();

export const JobState = z.object({
  ws: flag,
  now: int,
  lock: flag,
  pid: int.optional(),
  wpid: int.optional(),
  alive: flag,
  walive: flag,
  exit: int.optional(),
  spec: z.string().optional(),
  started: int.optional(),
  cancelled: flag,
  timedout: flag,
  result: flag,
  starts: int.default(0),
  /** When the exit status was written (epoch seconds); from SFTP only. */
  ended: int.optional(),
  /** False when the state was read over SFTP, which cannot tell whether the processes live. */
  liveness: z.boolean().default(true),
  /** A batch job's id and what its scheduler says: state (PENDING, RUNNING…), why it waits, its node. */
  jobid: z.string().optional(),
  sched: z.string().optional(),
  reason: z.string().optional(),
  node: z.string().optional(),
});
export type JobState = z.infer<typeof JobState>;

/** Parses stateScript's output; throws with the raw text when it does not fit. */
export function parseJobState(stdout: string): JobState {
  const record: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = line.trim().match(/^([a-z]+)=(.*)$/);
    if (m) record[m[1]] = m[2].trim();
  }
  const parsed = JobState.safeParse(record);
  if (!parsed.success) throw new Error(`unexpected job state from the host: ${JSON.stringify(stdout.slice(0, 300))} (${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

/**
 * The job's files read over SFTP (a few pipelined requests instead of a shell on the host). It cannot
 * see processes: `liveness` is false, and a job with a lock and no exit status needs stateScript.
 */
export async function readJobFiles(sftp: SFTPWrapper, ws: string, kind: JobKind, resultFile: string | null): Promise<JobState> {
  const J = jobDir(ws, kind);
  const small = async (name: string) => (await readText(sftp, pjoin(J, name), 4096))?.trim() || undefined;
  const [wsSt, lock, pid, wpid, exit, exitSt, spec, started, cancelled, timedout, result] = await Promise.all([
    stat(sftp, ws),
    stat(sftp, pjoin(J, "lock")),
    small("pid"),
    small("wrapper.pid"),
    small("exit"),
    stat(sftp, pjoin(J, "exit")),
    small("spec.sha"),
    small("started"),
    stat(sftp, pjoin(J, "cancelled")),
    stat(sftp, pjoin(J, "timedout")),
    resultFile ? stat(sftp, resultFile) : Promise.resolve(null),
  ]);
  const record: Record<string, unknown> = {
    ws: wsSt ? "1" : undefined,
    now: Math.floor(Date.now() / 1000),
    lock: lock ? "1" : undefined,
    pid,
    wpid,
    exit,
    spec,
    started,
    cancelled: cancelled ? "1" : undefined,
    timedout: timedout ? "1" : undefined,
    result: result ? "1" : undefined,
    ended: exitSt?.mtime,
    liveness: false,
  };
  const parsed = JobState.safeParse(record);
  if (!parsed.success) throw new Error(`unexpected job files in ${J}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export type JobPhase = "none" | "running" | "finished" | "dead";

/** What the state means: no job yet, running, finished (exit status or a result), or dead without a result. */
export function phaseOf(s: JobState): JobPhase {
  if (!s.lock) return "none";
  if (s.exit !== undefined) return "finished";
  if (!s.liveness) throw new Error("phaseOf needs the job's liveness (stateScript)");
  if (s.alive || s.walive) return "running";
  return s.result ? "finished" : "dead";
}

/**
 * Stops the job: marks why, SIGTERM to its process group, SIGKILL after a grace period. A wrapper
 * still in its setup lines is stopped too and the exit status written for it.
 */
export function stopScript(ws: string, kind: JobKind, marker: "cancelled" | "timedout" | null, graceS = 3): string[] {
  const J = jobDir(ws, kind);
  return [
    `cd ${q(ws)} 2>/dev/null || exit 0`,
    `J=${q(J)}`,
    aliveFn(ws),
    marker ? `[ -f "$J/exit" ] || : > "$J/${marker}"` : ":",
    `p=$(cat "$J/pid" 2>/dev/null); w=$(cat "$J/wrapper.pid" 2>/dev/null)`,
    // Nothing but a process id above 1 is signalled ("-1" would mean every process of the user).
    `case "$p" in ''|*[!0-9]*|0|1) p=;; esac; case "$w" in ''|*[!0-9]*|0|1) w=;; esac`,
    `if [ -z "$p" ]; then alive "$w" && kill -s TERM "$w" 2>/dev/null; [ -f "$J/exit" ] || { echo 143 > "$J/exit.tmp"; mv "$J/exit.tmp" "$J/exit"; }; exit 0; fi`,
    `kill -s TERM -- "-$p" 2>/dev/null`,
    `i=0; while kill -0 -- "-$p" 2>/dev/null && [ $i -lt ${graceS * 10} ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done`,
    `kill -s KILL -- "-$p" 2>/dev/null`,
    `exit 0`,
  ];
}

/** Moves a dead job's folder aside (kept for diagnosis) so that it can start again. */
export function retireScript(ws: string, kind: JobKind): string[] {
  const J = jobDir(ws, kind);
  return [`cd ${q(ws)} 2>/dev/null || exit 0`, `[ -d ${q(J)} ] && mv ${q(J)} ${q(J)}.dead-$(date +%s)-$$`, `exit 0`];
}

// The sandbox on a host with bubblewrap, the same policy as on this machine: no network, the
// interpreter's files read-only, a private /tmp, and the workspace: writable for a training job
// (THREADML_SANDBOX_WS=rw), read-only for the model server, whose socket serve_launch.py binds before
// it runs this script with serve.py's arguments. The bwrap arguments are worked out on the host (or
// the compute node), whose layout (merged /usr, where Python lives) may differ from this machine's.
// Run from the workspace; it execs the interpreter (THREADML_SANDBOX_PYTHON, or the launcher's own) on "$@".
export const SANDBOX_SH = String.raw`# ThreadML sandbox (generated): exec python "$@" in bubblewrap without network.
py=$THREADML_SANDBOX_PYTHON
[ -n "$py" ] || py=$THREADML_SERVE_PYTHON
[ -x "$py" ] || { echo "[runner] no interpreter to sandbox ($py)" >&2; exit 127; }
n=$#
ws=$(pwd -P)
home=$(cd "$HOME" 2>/dev/null && pwd -P)
set -- "$@" --unshare-all --die-with-parent --new-session --cap-drop ALL --ro-bind /usr /usr
for p in /bin /sbin /lib /lib64 /lib32 /libx32; do
  if [ -L "$p" ]; then set -- "$@" --symlink "$(readlink "$p")" "$p"; elif [ -d "$p" ]; then set -- "$@" --ro-bind "$p" "$p"; fi
done
for p in /etc/alternatives /etc/ld.so.cache /etc/ld.so.conf /etc/ld.so.conf.d /etc/localtime /etc/matplotlibrc /etc/fonts; do
  [ -e "$p" ] && set -- "$@" --ro-bind "$p" "$p"
done
# The interpreter's prefixes, user site and library folders outside /usr (a cluster's modules),
# read-only, each by its real absolute path; never /, nor a folder holding the workspace or the home.
ub=
set -f
oldifs=$IFS
IFS='
:'
for p in $("$py" -c 'import site, sys; print(sys.prefix); print(sys.base_prefix); print(sys.exec_prefix); print("ub=" + site.getuserbase())' 2>/dev/null) $LD_LIBRARY_PATH; do
  case "$p" in ub=*) p=$(printf '%s' "$p" | cut -c4-); ub=$p;; esac
  case "$p" in /*) ;; *) continue;; esac
  p=$(cd "$p" 2>/dev/null && pwd -P) || continue
  case "$p" in ''|/|/usr|/usr/*) continue;; esac
  case "$ws/" in "$p"/*) continue;; esac
  [ -n "$home" ] && case "$home/" in "$p"/*) continue;; esac
  set -- "$@" --ro-bind "$p" "$p"
done
IFS=$oldifs
set +f
set -- "$@" --proc /proc --dev /dev
for d in /dev/nvidia*; do [ -e "$d" ] && set -- "$@" --dev-bind "$d" "$d"; done
[ -e /dev/nvidiactl ] && set -- "$@" --ro-bind /sys /sys
# Only what the run needs of the environment: the host's (ThreadML's or a login's) may hold secrets.
set -- "$@" --clearenv
for k in PATH LD_LIBRARY_PATH PYTHONPATH PYTHONHOME VIRTUAL_ENV CONDA_PREFIX LANG LC_ALL TZ MPLBACKEND PYTHONUNBUFFERED PYTHONDONTWRITEBYTECODE OMP_NUM_THREADS OPENBLAS_NUM_THREADS MKL_NUM_THREADS CUDA_VISIBLE_DEVICES CUDA_HOME CUDA_PATH NVIDIA_VISIBLE_DEVICES; do
  eval "v=\${$k-}; isset=\${$k+1}"
  [ -n "$isset" ] && set -- "$@" --setenv "$k" "$v"
done
if [ "$THREADML_SANDBOX_WS" = rw ]; then
  # The job folder (ThreadML's records, this script) stays read-only to the job.
  set -- "$@" --tmpfs /tmp --bind "$ws" "$ws"
  [ -d "$ws/.job" ] && set -- "$@" --ro-bind "$ws/.job" "$ws/.job"
  set -- "$@" --chdir "$ws" --setenv HOME "$ws" --setenv TMPDIR "$ws/tmp" --setenv MPLCONFIGDIR "$ws/.mpl"
else
  set -- "$@" --tmpfs /tmp --ro-bind "$ws" "$ws" --chdir "$ws"
  set -- "$@" --setenv HOME /tmp --setenv TMPDIR /tmp --setenv MPLCONFIGDIR /tmp/.mpl
fi
[ -n "$ub" ] && [ -d "$ub" ] && set -- "$@" --setenv PYTHONUSERBASE "$ub"
set -- "$@" -- "$py"
# The interpreter's arguments (the first n) go last.
i=0
while [ "$i" -lt "$n" ]; do set -- "$@" "$1"; shift; i=$((i + 1)); done
exec bwrap "$@"
`;

/** The sh test for a bubblewrap that can make a sandbox without network here (exit status 0). */
export const BWRAP_WORKS = "command -v bwrap >/dev/null 2>&1 && bwrap --unshare-all --die-with-parent --ro-bind / / true >/dev/null 2>&1";

/** Prints bwrap=ok when bubblewrap is installed on the host and can make a sandbox without network. */
export function bwrapProbeScript(): string[] {
  return [
    `command -v bwrap >/dev/null 2>&1 || { echo bwrap=missing; exit 0; }`,
    `if ${BWRAP_WORKS}; then echo bwrap=ok; else echo bwrap=broken; fi`,
  ];
}
