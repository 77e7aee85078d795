import type { SlurmRunnerConfig } from "../../config/schema.js";
import type { JobControl } from "../ssh/run.js";
import { enterJob, jobDir, jobFacts, type JobState } from "../ssh/job.js";
import { pjoin, q, setupLines } from "../ssh/shell.js";
import type { Limits } from "../types.js";

// A harness run as a Slurm batch job. The wrapper (run.sh) is the SSH runner's: it runs on the
// compute node, writes the same files into the shared job folder and follows the same log. Only
// starting, watching and stopping differ: sbatch, squeue (sacct or scontrol once the job has left the
// queue) and scancel. When Slurm ends a job its wrapper could not see end (time limit, scancel, a
// failed node), the state script writes the exit status and the reason marker in the wrapper's place.

/** States in which the job still queues or runs. */
const ACTIVE = ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"];

/** Slurm's job name for a run: findable again when ThreadML died between sbatch and recording the id. */
export function slurmJobName(runId: string): string {
  return `threadml-${runId}`.slice(0, 200);
}

/** Minutes for --time: ThreadML's wall-time limit plus a minute of slack, within the cluster's cap. */
export function jobMinutes(config: SlurmRunnerConfig, limits: Limits): number {
  return Math.max(1, Math.min(config.timeLimitMin, Math.ceil(limits.wallTimeS / 60) + 1));
}

/** sbatch's options (each one sh word): the config's resources and the job's files. */
export function sbatchOptions(config: SlurmRunnerConfig, o: { ws: string; runId: string; limits: Limits }): string[] {
  const J = jobDir(o.ws, "job");
  const opts = [
    "--parsable",
    `--job-name=${slurmJobName(o.runId)}`,
    `--chdir=${o.ws}`,
    `--output=${pjoin(J, "slurm.out")}`,
    "--open-mode=append",
    // A requeued job would run again from a folder its first run could write to.
    "--no-requeue",
    `--time=${jobMinutes(config, o.limits)}`,
  ];
  // Only when asked: a cluster whose nodes declare no RealMemory refuses any --mem.
  if (config.memoryMb) opts.push(`--mem=${config.memoryMb}`);
  if (config.cpusPerJob) opts.push(`--cpus-per-task=${config.cpusPerJob}`);
  if (config.partition) opts.push(`--partition=${config.partition}`);
  if (config.account) opts.push(`--account=${config.account}`);
  if (config.qos) opts.push(`--qos=${config.qos}`);
  if (config.gpusPerJob > 0) opts.push(`--gres=gpu:${config.gpusPerJob}`);
  return [...opts, ...config.sbatchArgs];
}

/** The setup lines (module load, SLURM_CONF), their output kept off stdout, which carries key=value lines. */
function quietSetup(setup: string[]): string[] {
  return setup.length ? ["{", ...setupLines(setup, () => ":"), "} >&2"] : [];
}

/** A Slurm job id as sh checks it: digits, or an array job's id_index. */
const VALID_ID = `case "$id" in ''|*[!0-9_]*) id=;; esac`;

/**
 * Sets `id` to the job's Slurm id: recorded at submission, else the newest job of ours with the run's
 * name (ThreadML stopped between sbatch and recording the id). Anything but an id is ignored.
 */
function findJobId(name: string): string[] {
  return [
    `id=$(head -c 64 "$J/jobid" 2>/dev/null)`,
    VALID_ID,
    `if [ -z "$id" ] && [ -d "$J/lock" ]; then`,
    `  id=$(squeue -h -t all -u "$(id -un)" --name=${q(name)} -o %i 2>/dev/null | sort -n | tail -n 1)`,
    `  ${VALID_ID}`,
    `  [ -n "$id" ] && { echo "$id" > "$J/jobid.tmp"; mv "$J/jobid.tmp" "$J/jobid"; }`,
    `fi`,
  ];
}

/**
 * Sets st, why, node and code from Slurm: squeue while the job queues or runs, then sacct where
 * accounting is on, else scontrol (which remembers a finished job for MinJobAge). st=UNKNOWN when
 * Slurm could not be asked (a controller restarting), which is not taken for the job's end.
 */
function lookUp(): string[] {
  return [
    `st=; why=; node=; code=`,
    `field() { printf '%s\\n' "$2" | tr ' ' '\\n' | sed -n "s/^$1=//p" | head -n 1; }`,
    `out=$(squeue -h -j "$id" -o '%T|%r|%N' 2>&1); qrc=$?`,
    `if [ "$qrc" -eq 0 ]; then line=$(printf '%s\\n' "$out" | head -n 1); [ -n "$line" ] && { st=\${line%%|*}; rest=\${line#*|}; why=\${rest%%|*}; node=\${rest#*|}; }`,
    `else case "$out" in *[Ii]nvalid\\ job\\ id*) ;; *) st=UNKNOWN; why=$(printf '%s' "$out" | head -n 1 | cut -c1-200);; esac; fi`,
    `case "$st" in UNKNOWN|${ACTIVE.join("|")}) ;;`,
    `*)`,
    `  acct=$(sacct -n -X -P -j "$id" -o State,ExitCode,NodeList 2>/dev/null | head -n 1)`,
    `  if [ -n "$acct" ]; then st=$(printf '%s' "$acct" | cut -d'|' -f1 | cut -d' ' -f1); code=$(printf '%s' "$acct" | cut -d'|' -f2); node=$(printf '%s' "$acct" | cut -d'|' -f3)`,
    `  else`,
    `    line=$(scontrol -o show job "$id" 2>/dev/null)`,
    `    if [ -n "$line" ]; then st=$(field JobState "$line"); why=$(field Reason "$line"); node=$(field NodeList "$line"); code=$(field ExitCode "$line"); fi`,
    `  fi`,
    `esac`,
  ];
}

/** Leaves the marker for how Slurm ended the job (time limit, cancel) and a line in its log. */
function markEnd(): string[] {
  return [
    `case "$st" in TIMEOUT|DEADLINE) : > "$J/timedout";; CANCELLED*) [ -f "$J/timedout" ] || : > "$J/cancelled";; esac`,
    `case "$st" in OUT_OF_MEMORY) echo "[runner] Slurm job $id ran out of memory (MemoryError): it used more than its --mem allowance" >> "$J/err";;`,
    `  COMPLETED) ;; *) echo "[runner] Slurm ended job $id as $st (exit code \${code:-unknown})" >> "$J/err";; esac`,
  ];
}

/** Claims the job folder (atomic mkdir), submits run.sh with sbatch and records the id; prints start=ok|busy|refused. */
export function submitScript(config: SlurmRunnerConfig, o: { ws: string; runId: string; limits: Limits; specSha: string }): string[] {
  const J = jobDir(o.ws, "job");
  return [
    `cd ${q(o.ws)} 2>/dev/null || { echo start=nows; exit 0; }`,
    `J=${q(J)}`,
    `mkdir -p "$J"`,
    `mkdir "$J/lock" 2>/dev/null || { echo start=busy; exit 0; }`,
    `echo ${q(o.specSha)} > "$J/spec.sha"`,
    `echo "job $(date +%s)" >> starts.log`,
    ...setupLines(config.setup, (line) => `rmdir "$J/lock"; echo start=refused; echo "the setup line "${q(line)}" failed with exit code $_rc"; exit 0`),
    `command -v sbatch >/dev/null 2>&1 || { rmdir "$J/lock"; echo start=refused; echo "sbatch was not found after the setup lines (PATH=$PATH)"; exit 0; }`,
    `err=$(mktemp 2>/dev/null || echo "$J/sbatch.err")`,
    `out=$(sbatch ${sbatchOptions(config, o).map(q).join(" ")} "$J/run.sh" 2>"$err"); rc=$?`,
    `why=$(cat "$err" 2>/dev/null); rm -f "$err"`,
    `id=$(printf '%s\\n' "$out" | grep -E '^[0-9_]+(;|$)' | tail -n 1 | cut -d';' -f1)`,
    // Submitted, but the id was not on stdout (a site's submit filter talked): find it by name.
    `if [ "$rc" -eq 0 ] && [ -z "$id" ]; then id=$(squeue -h -u "$(id -un)" --name=${q(slurmJobName(o.runId))} -o %i 2>/dev/null | sort -n | tail -n 1); fi`,
    VALID_ID,
    `if [ "$rc" -ne 0 ] || [ -z "$id" ]; then rmdir "$J/lock"; echo start=refused; printf 'Slurm refused the job: %s\\n' "$(printf '%s %s' "$why" "$out" | tr '\\n' ' ')"; exit 0; fi`,
    `echo "$id" > "$J/jobid.tmp"; mv "$J/jobid.tmp" "$J/jobid"`,
    `echo start=ok; echo jobid=$id`,
  ];
}

/**
 * The job's state: the folder's facts, plus Slurm's view (sched, reason, node; alive while it queues or
 * runs, or while Slurm cannot be asked). A job that left the queue without an exit status gets one
 * here, with the marker for why it ended.
 */
export function slurmStateScript(config: SlurmRunnerConfig, o: { ws: string; runId: string; resultFile: string }): string[] {
  return [
    ...enterJob(o.ws, "job"),
    ...quietSetup(config.setup),
    ...findJobId(slurmJobName(o.runId)),
    `st=`,
    `if [ -n "$id" ] && [ ! -f "$J/exit" ]; then`,
    ...lookUp(),
    // The wrapper writes the exit status itself; a shared folder may show it a moment late.
    `  ls "$J" >/dev/null 2>&1`,
    `  if [ -f "$J/exit" ]; then st=COMPLETED`,
    `  elif [ "$st" = COMPLETED ]; then`,
    `    [ -f "$J/completed-seen" ] || date +%s > "$J/completed-seen"`,
    `    [ $(( $(date +%s) - $(cat "$J/completed-seen") )) -lt 60 ] && st=COMPLETING`,
    `  fi`,
    `  case "$st" in ''|UNKNOWN|${ACTIVE.join("|")}) ;;`,
    `  *)`,
    ...markEnd(),
    `    n=\${code%%:*}; s=\${code#*:}`,
    `    case "$n" in ''|*[!0-9]*) n=0;; esac; case "$s" in ''|*[!0-9]*) s=0;; esac`,
    `    if [ "$s" -ne 0 ]; then rc=$((128 + s)); elif [ "$n" -ne 0 ]; then rc=$n; else case "$st" in COMPLETED) rc=0;; TIMEOUT|DEADLINE|CANCELLED*|PREEMPTED) rc=143;; OUT_OF_MEMORY) rc=137;; *) rc=1;; esac; fi`,
    `    [ -f "$J/exit" ] || { echo "$rc" > "$J/exit.tmp"; mv "$J/exit.tmp" "$J/exit"; }`,
    `  esac`,
    `fi`,
    ...jobFacts("job", o.resultFile),
    `[ -n "$id" ] && echo jobid=$id`,
    `[ -n "$st" ] && echo sched=$st; [ -n "$why" ] && echo reason=$why; [ -n "$node" ] && echo node=$node`,
    `case "$st" in UNKNOWN|${ACTIVE.join("|")}) echo alive=1;; esac`,
    `exit 0`,
  ];
}

/**
 * After the wrapper wrote an exit status that says the job was killed by a signal: waits (a while) for
 * Slurm to finish ending the job and leaves the marker for why, since Slurm's time limit and scancel
 * both end the job with SIGTERM, which the wrapper sees as nothing more than a signal.
 */
export function settleScript(config: SlurmRunnerConfig, o: { ws: string; runId: string }): string[] {
  return [
    `cd ${q(o.ws)} 2>/dev/null || exit 0`,
    `J=${q(jobDir(o.ws, "job"))}`,
    ...quietSetup(config.setup),
    ...findJobId(slurmJobName(o.runId)),
    `[ -n "$id" ] || exit 0`,
    `i=0`,
    `while [ $i -lt 30 ]; do`,
    ...lookUp(),
    `  case "$st" in UNKNOWN|${ACTIVE.join("|")}) sleep 1; i=$((i + 1));; *) break;; esac`,
    `done`,
    ...markEnd(),
    `exit 0`,
  ];
}

/**
 * Marks why (unless the job already ended) and cancels the job with scancel, after checking that the
 * id names this run's job. Replacing a job (no marker) waits until Slurm has let go of it, so that
 * it cannot write into the folder that takes its place.
 */
export function cancelScript(config: SlurmRunnerConfig, o: { ws: string; runId: string }, marker: "cancelled" | "timedout" | null): string[] {
  const name = slurmJobName(o.runId);
  return [
    `cd ${q(o.ws)} 2>/dev/null || exit 0`,
    `J=${q(jobDir(o.ws, "job"))}`,
    ...quietSetup(config.setup),
    marker ? `[ -f "$J/exit" ] || : > "$J/${marker}"` : ":",
    ...findJobId(name),
    `[ -n "$id" ] || exit 0`,
    `named=$(squeue -h -j "$id" -o %j 2>/dev/null | head -n 1)`,
    `[ -z "$named" ] || [ "$named" = ${q(name)} ] || { echo "[runner] job $id is not ${name}; not cancelled" >&2; exit 0; }`,
    `scancel "$id" >&2`,
    marker
      ? ":"
      : `i=0; while [ $i -lt 60 ]; do t=$(squeue -h -j "$id" -o %T 2>/dev/null | head -n 1); case "$t" in ${ACTIVE.join("|")}) sleep 1; i=$((i + 1));; *) break;; esac; done`,
    `exit 0`,
  ];
}

// Reasons a pending job keeps until someone changes it: waiting would wait forever.
const NEVER = /^(PartitionTimeLimit|PartitionNodeLimit|BadConstraints|InvalidAccount|InvalidQOS|DependencyNeverSatisfied|(QOS|Assoc)Max\w*PerJob\w*)$/;

/** Why a job waits, in words for the thread (Slurm's reason codes, see squeue(1) "JOB REASON CODES"). */
export function pendingReason(reason: string | undefined): string {
  const r = reason ?? "";
  if (r === "Resources") return "waiting for resources: the nodes it needs are busy";
  if (r === "Priority") return "waiting behind jobs with a higher priority";
  if (r === "Dependency") return "waiting for a job it depends on";
  if (r === "DependencyNeverSatisfied") return "a job it depends on failed";
  if (r === "BadConstraints" || r === "PartitionNodeLimit") return "no node of its partition has what it asks for";
  if (r === "InvalidAccount" || r === "InvalidQOS") return `its ${r === "InvalidAccount" ? "account" : "QoS"} is not valid`;
  if (r === "BeginTime") return "waiting for its start time";
  if (/^JobHeld(User|Admin)$/.test(r)) return `held (${r === "JobHeldUser" ? "by its user" : "by an administrator"}); \`scontrol release\` lets it run`;
  if (/^ReqNodeNotAvail/.test(r)) return "the nodes it asks for are not available (down, drained or reserved)";
  if (r === "PartitionTimeLimit") return "its time limit is above the partition's; lower timeLimitMin or the wall-time limit";
  if (/^Partition(Down|Inactive)$/.test(r)) return "its partition is down";
  if (/^(QOS|Assoc)/.test(r)) return `held by a limit of its account or QoS (${r})`;
  if (r === "" || r === "None") return "waiting to be scheduled";
  return `waiting (${r})`;
}

/** Starting, watching and stopping one harness run as a Slurm job. */
export function slurmControl(config: SlurmRunnerConfig, o: { ws: string; runId: string; limits: Limits }): JobControl {
  let told: string | null = null;
  let queued = false;
  return {
    startScript: (specSha) => submitScript(config, { ...o, specSha }),
    startedLabel: (stdout) => {
      const id = stdout.match(/jobid=(\S+)/)?.[1] ?? "?";
      const gpus = config.gpusPerJob > 0 ? `${config.gpusPerJob} GPU${config.gpusPerJob > 1 ? "s" : ""}` : "no GPU";
      return `as Slurm job ${id}${config.partition ? ` in partition ${config.partition}` : ""} (${gpus}, ${jobMinutes(config, o.limits)} min limit)`;
    },
    stateScript: (resultFile) => slurmStateScript(config, { ...o, resultFile }),
    stopScript: (marker) => cancelScript(config, o, marker),
    settleScript: () => settleScript(config, o),
    observe(s: JobState, notice) {
      if (!s.jobid) return;
      if (s.sched === "PENDING" && NEVER.test(s.reason ?? ""))
        return `Slurm will never run job ${s.jobid}: ${pendingReason(s.reason)} (${s.reason}). It was cancelled; change the runner's partition, account, QoS, limits or sbatchArgs.`;
      if (s.sched === "PENDING") {
        const why = pendingReason(s.reason);
        if (why !== told) notice(`Slurm job ${s.jobid} is queued: ${why}.`);
        told = why;
        queued = true;
      } else if (s.sched === "RUNNING" && queued) {
        queued = false;
        told = null;
        notice(`Slurm job ${s.jobid} is running${s.node ? ` on ${s.node}` : ""}.`);
      }
    },
  };
}
