import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { HarnessResult, HarnessSpec } from "../contract.js";

// What a detached training job leaves on disk so that another process can find it again: the job
// record (who the process is), its exit status, why the runner stopped it, and its final outcome.
// These files live in <dataDir>/jobs/<runId>/, outside the workspace, so the sandboxed code (which
// can write only its workspace) cannot forge them.

export interface ControlPaths {
  dir: string;
  /** Fingerprint of the inputs prepare() wrote. */
  inputs: string;
  job: string;
  /** Written by the wrapper outside the sandbox when the job's command has ended. */
  exit: string;
  /** Created by the wrapper when its own wall-time backstop fired. */
  backstop: string;
  /** Written by a runner before it kills the job (wall time, cancel, close). */
  stop: string;
  /** The RunOutcome once a runner has seen the end. */
  outcome: string;
  /** The job's stdout: one harness event per line. */
  events: string;
  /** Host-owned copies of the run's artifacts (runners/intake.ts). */
  artifacts: string;
  stderr: string;
}

export function controlPaths(dataDir: string, runId: string): ControlPaths {
  const dir = path.join(dataDir, "jobs", runId);
  return {
    dir,
    inputs: path.join(dir, "inputs.json"),
    job: path.join(dir, "job.json"),
    exit: path.join(dir, "exit.json"),
    backstop: path.join(dir, "backstop-fired"),
    stop: path.join(dir, "stop.json"),
    outcome: path.join(dir, "outcome.json"),
    events: path.join(dir, "events.log"),
    stderr: path.join(dir, "stderr.log"),
    // Host-owned copies of the run's artifacts: never bound into a sandbox.
    artifacts: path.join(dir, "artifacts"),
  };
}

export const LimitsRecord = z.object({
  wallTimeS: z.number().positive(),
  cpuS: z.number().positive(),
  memoryMb: z.number().positive(),
  pids: z.number().int().positive().optional(),
  diskMb: z.number().positive().optional(),
});

export const JobRecord = z.object({
  version: z.literal(1),
  runId: z.string().min(1),
  /** The wrapper: leader of the job's own process group and session. */
  pid: z.number().int().positive(),
  /** /proc/<pid>/stat start time in clock ticks since boot, so a recycled pid is never taken for the job. */
  startTicks: z.string().nullable(),
  bootId: z.string().nullable(),
  /** Wall-clock ms; the wall-time limit counts from here, in whichever process follows the job. */
  startedAt: z.number(),
  workspace: z.string().min(1),
  spec: HarnessSpec,
  limits: LimitsRecord,
  sandbox: z.enum(["bubblewrap", "limits-only"]),
  /** What bounds the run as a whole (runners/local/limits.ts); absent in records from before it existed. */
  containment: z.enum(["cgroup2", "cgroup1", "watchdog"]).optional(),
  /** The run's own cgroups, removed when it has ended. */
  cgroups: z.array(z.string()).optional(),
  /** Workspace bytes before the job started: only what the job adds counts against limits.diskMb. */
  diskBaseBytes: z.number().min(0).optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

export const ExitRecord = z.object({
  code: z.number().int().min(0).max(255),
  /** The wrapper stopped the job at its wall-time limit because no runner did. */
  timedOut: z.boolean().default(false),
});
export type ExitRecord = z.infer<typeof ExitRecord>;

/** disk, memory, pids: the run went past limits.diskMb, limits.memoryMb (in total) or limits.pids. */
export const StopReason = z.enum(["timeout", "cancel", "disk", "memory", "pids"]);
export type StopReason = z.infer<typeof StopReason>;
export const StopRecord = z.object({ reason: StopReason, at: z.number() });
export type StopRecord = z.infer<typeof StopRecord>;

export const InputsRecord = z.object({ fingerprint: z.string() });

export const StoredOutcome = z.object({
  result: HarnessResult.nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  cancelled: z.boolean(),
  durationS: z.number(),
  stderrTail: z.string(),
  artifacts: z.object({ dir: z.string(), model: z.string().nullable(), code: z.string().nullable(), plots: z.array(z.string()), predictions: z.string().nullable().optional(), scored: z.string().nullable().optional() }).nullable().optional(),
});

/** Writes JSON so that a reader never sees half a file (write, then rename). */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  // Unique: two followers of one job (in one process or two) may store the same outcome at once.
  const tmp = `${file}.${randomUUID().slice(0, 8)}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, file);
}

/** Reads and validates a JSON file: null when absent; an Error (with the file named) when present but invalid. */
export async function readJson<T>(file: string, schema: z.ZodType<T>): Promise<T | null | Error> {
  let raw: string;
  try {
    raw = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    return new Error(`${path.basename(file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    if (parsed.success) return parsed.data;
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    return new Error(`${path.basename(file)} is not a valid record: ${issues.join("; ")}`);
  } catch (err) {
    return new Error(`${path.basename(file)} is not valid JSON: ${(err as Error).message}`);
  }
}

// ----------------------------------------------------------------------------- process identity

export interface ProcInfo {
  state: string;
  pgrp: number;
  startTicks: string;
}

let procfs: boolean | null = null;
function hasProcfs(): boolean {
  if (procfs === null) {
    try {
      readFileSync("/proc/self/stat", "utf8");
      procfs = true;
    } catch {
      procfs = false;
    }
  }
  return procfs;
}

/** The fields of /proc/<pid>/stat we need, or null when there is no such process. */
export function procInfo(pid: number): ProcInfo | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state), rest[2] field 5 (pgrp), rest[19] field 22 (starttime).
  if (rest.length < 20) return null;
  return { state: rest[0], pgrp: Number(rest[2]), startTicks: rest[19] };
}

export function bootId(): string | null {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || null;
  } catch {
    return null;
  }
}

/** The identity to record for a process just started. */
export function identityOf(pid: number): { startTicks: string | null; bootId: string | null } {
  return { startTicks: procInfo(pid)?.startTicks ?? null, bootId: bootId() };
}

/**
 * True while the recorded leader runs and is really the job: same boot, same start time, still the
 * leader of its group. A zombie counts as ended. Without procfs only "a process with this pid exists".
 */
export function leaderAlive(record: Pick<JobRecord, "pid" | "startTicks" | "bootId">): boolean {
  if (!hasProcfs()) {
    try {
      process.kill(record.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  }
  if (record.bootId !== null && record.bootId !== bootId()) return false;
  const info = procInfo(record.pid);
  if (!info || info.state === "Z" || info.state === "X") return false;
  if (record.startTicks === null || info.startTicks !== record.startTicks) return false;
  return info.pgrp === record.pid;
}

/** Signals the job's process group, only while its leader is still the recorded process. */
export function signalJobGroup(record: Pick<JobRecord, "pid" | "startTicks" | "bootId">, signal: NodeJS.Signals): boolean {
  if (!leaderAlive(record)) return false;
  try {
    process.kill(-record.pid, signal);
    return true;
  } catch {
    return false;
  }
}

// ----------------------------------------------------------------------------- job state

export type JobState =
  | { kind: "none" }
  /** A runner saw the end and stored the outcome. */
  | { kind: "done"; record: JobRecord; outcome: z.infer<typeof StoredOutcome> }
  /** Ended while no runner followed it: an exit status or a stop record, and the leader is gone. */
  | { kind: "ended"; record: JobRecord; exit: ExitRecord | null; stop: StopRecord | null; endedAt: number }
  | { kind: "live"; record: JobRecord; stop: StopRecord | null }
  /** Started, gone, and nothing says how it ended (killed with the machine, or its wrapper killed). */
  | { kind: "lost"; record: JobRecord | null; why: string };

/** Where the job of this control folder stands; invalid files are reported as a lost job, never thrown. */
export async function inspectJob(paths: ControlPaths): Promise<JobState> {
  const record = await readJson(paths.job, JobRecord);
  if (record === null) return { kind: "none" };
  if (record instanceof Error) {
    // Without a valid record nobody can be signalled or followed; the job is run again.
    return { kind: "lost", record: null, why: record.message };
  }
  const outcome = await readJson(paths.outcome, StoredOutcome);
  if (outcome && !(outcome instanceof Error)) return { kind: "done", record, outcome };
  const stopRead = await readJson(paths.stop, StopRecord);
  const stop = stopRead instanceof Error ? null : stopRead;
  if (leaderAlive(record)) return { kind: "live", record, stop };
  const exitRead = await readJson(paths.exit, ExitRecord);
  const exit = exitRead instanceof Error ? null : exitRead;
  if (exit || stop) {
    const exitStat = exit ? await stat(paths.exit).catch(() => null) : null;
    const endedAt = exitStat ? exitStat.mtimeMs : (stop?.at ?? Date.now());
    return { kind: "ended", record, exit, stop, endedAt };
  }
  const why = exitRead instanceof Error ? exitRead.message : "no exit status was recorded";
  return { kind: "lost", record, why };
}

/** Forgets the job of this control folder (keeps the inputs fingerprint). */
export async function clearJob(paths: ControlPaths): Promise<void> {
  for (const file of [paths.job, paths.exit, paths.backstop, paths.stop, paths.outcome, paths.events, paths.stderr]) await rm(file, { force: true });
}
