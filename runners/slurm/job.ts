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
    `--time=${jobMinutes(config, o.limits)}`,
    `--mem=${config.memoryMb ?? o.limits.memoryMb}`,
  ];
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

/** Sets `id` to the job's Slurm id: recorded at submission, else found by its name (ThreadML died in between). */
function findJobId(name: string): string[] {
  return [
    `id=$(cat "$J/jobid" 2>/dev/null)`,
    `if [ -z "$id" ] && [ -d "$J/lock" ]; then`,
    `  id=$(squeue -h -t all -u "$(id -un)" --name=${q(name)} -o %i 2>/dev/null | head -n 1)`,
    `  [ -n "$id" ] && { echo "$id" > "$J/jobid.tmp"; mv "$J/jobid.tmp" "$J/jobid"; }`,
    `fi`,
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
    `out=$(sbatch ${sbatchOptions(config, o).map(q).join(" ")} "$J/run.sh" 2>&1); rc=$?`,
    `id=$(printf '%s\\n' "$out" | tail -n 1 | cut -d';' -f1)`,
    `case "$id" in ''|*[!0-9_]*) rc=1;; esac`,
    `if [ "$rc" -ne 0 ]; then rmdir "$J/lock"; echo start=refused; printf 'Slurm refused the job: %s\\n' "$out"; exit 0; fi`,
    `echo "$id" > "$J/jobid.tmp"; mv "$J/jobid.tmp" "$J/jobid"`,
    `echo start=ok; echo jobid=$id`,
  ];
}

/**
 * The job's state: the folder's facts, plus Slurm's view (sched, reason, node; alive while it queues or
 * runs). A job that left the queue without an exit status gets one here, from sacct where accounting
 * is on, else from scontrol, which remembers finished jobs for MinJobAge.
 */
export function slurmStateScript(config: SlurmRunnerConfig, o: { ws: string; runId: string; resultFile: string }): string[] {
  return [
    ...enterJob(o.ws, "job"),
    ...quietSetup(config.setup),
    ...findJobId(slurmJobName(o.runId)),
    `st=; why=; node=; code=`,
    `field() { printf '%s\\n' "$2" | tr ' ' '\\n' | sed -n "s/^$1=//p" | head -n 1; }`,
    `if [ -n "$id" ] && [ ! -f "$J/exit" ]; then`,
    `  line=$(squeue -h -j "$id" -o '%T|%r|%N' 2>/dev/null | head -n 1)`,
    `  [ -n "$line" ] && { st=\${line%%|*}; rest=\${line#*|}; why=\${rest%%|*}; node=\${rest#*|}; }`,
    `  case "$st" in ${ACTIVE.join("|")}) ;;`,
    `  *)`,
    `    acct=$(sacct -n -X -P -j "$id" -o State,ExitCode,NodeList 2>/dev/null | head -n 1)`,
    `    if [ -n "$acct" ]; then st=$(printf '%s' "$acct" | cut -d'|' -f1 | cut -d' ' -f1); code=$(printf '%s' "$acct" | cut -d'|' -f2); node=$(printf '%s' "$acct" | cut -d'|' -f3)`,
    `    else`,
    `      line=$(scontrol -o show job "$id" 2>/dev/null)`,
    `      if [ -n "$line" ]; then st=$(field JobState "$line"); why=$(field Reason "$line"); node=$(field NodeList "$line"); code=$(field ExitCode "$line"); fi`,
    `    fi`,
    `  esac`,
    // COMPLETED: the wrapper wrote the exit status itself (a shared folder may show it a moment late).
    `  [ -f "$J/exit" ] && st=COMPLETED`,
    `  case "$st" in ''|COMPLETED|${ACTIVE.join("|")}) ;;`,
    `  *)`,
    `    case "$st" in TIMEOUT|DEADLINE) : > "$J/timedout";; CANCELLED*) [ -f "$J/timedout" ] || : > "$J/cancelled";; esac`,
    `    n=\${code%%:*}; s=\${code#*:}`,
    `    case "$n" in ''|*[!0-9]*) n=0;; esac; case "$s" in ''|*[!0-9]*) s=0;; esac`,
    `    if [ "$s" -ne 0 ]; then rc=$((128 + s)); elif [ "$n" -ne 0 ]; then rc=$n; else case "$st" in COMPLETED) rc=0;; TIMEOUT|DEADLINE|CANCELLED*|PREEMPTED) rc=143;; OUT_OF_MEMORY) rc=137;; *) rc=1;; esac; fi`,
    `    case "$st" in OUT_OF_MEMORY) echo "[runner] Slurm job $id ran out of memory (MemoryError): it used more than its --mem allowance" >> "$J/err";; *) echo "[runner] Slurm ended job $id as $st (exit code \${code:-unknown})" >> "$J/err";; esac`,
    `    echo "$rc" > "$J/exit.tmp"; mv "$J/exit.tmp" "$J/exit"`,
    `  esac`,
    `fi`,
    ...jobFacts("job", o.resultFile),
    `[ -n "$id" ] && echo jobid=$id`,
    `[ -n "$st" ] && echo sched=$st; [ -n "$why" ] && echo reason=$why; [ -n "$node" ] && echo node=$node`,
    `case "$st" in ${ACTIVE.join("|")}) echo alive=1;; esac`,
    `exit 0`,
  ];
}

/** Marks why (unless the job already ended) and cancels the job with scancel. */
export function cancelScript(config: SlurmRunnerConfig, o: { ws: string; runId: string }, marker: "cancelled" | "timedout" | null): string[] {
  return [
    `cd ${q(o.ws)} 2>/dev/null || exit 0`,
    `J=${q(jobDir(o.ws, "job"))}`,
    ...quietSetup(config.setup),
    marker ? `[ -f "$J/exit" ] || : > "$J/${marker}"` : ":",
    ...findJobId(slurmJobName(o.runId)),
    `[ -n "$id" ] && scancel "$id" >&2`,
    `exit 0`,
  ];
}

/** Why a job waits, in words for the thread (Slurm's reason codes, see squeue(1) "JOB REASON CODES"). */
export function pendingReason(reason: string | undefined): string {
  const r = reason ?? "";
  if (r === "Resources") return "waiting for resources: the nodes it needs are busy";
  if (r === "Priority") return "waiting behind jobs with a higher priority";
  if (r === "Dependency") return "waiting for a job it depends on";
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
    observe(s: JobState, notice) {
      if (!s.jobid) return;
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
