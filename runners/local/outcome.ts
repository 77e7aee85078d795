import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { intakeRun } from "../intake.js";
import type { RunOutcome } from "../types.js";
import type { JobEnd } from "./follow.js";
import type { JobRecord } from "./job-record.js";
import { limitMessage } from "./limits.js";
import { STDERR_TAIL_CHARS } from "./process.js";

// Turns how a job ended (exit record, stop record, files in the workspace) into the RunOutcome.

/** Starts the note of a run stopped at limits.diskMb, memoryMb or pids; graphs/automl/failures.ts looks for it. */
export const LIMIT_NOTE = "[runner] stopped at a limit: ";

export function appendNote(tail: string, note: string): string {
  const joined = tail && !tail.endsWith("\n") ? `${tail}\n${note}` : `${tail}${note}`;
  return joined.slice(-STDERR_TAIL_CHARS);
}

export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/** The wrapper (and bubblewrap) report a command killed by signal N as exit status 128+N: report it as that signal. */
export function unwrapStatus(code: number): { exitCode: number | null; signal: string | null } {
  if (code <= 128) return { exitCode: code, signal: null };
  const name = Object.entries(os.constants.signals).find(([, n]) => n === code - 128)?.[0];
  return name ? { exitCode: null, signal: name } : { exitCode: code, signal: null };
}

/** The last STDERR_TAIL_CHARS characters of a log file ("" when it is missing). */
export async function fileTail(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch {
    return "";
  }
  try {
    const { size } = await fh.stat();
    // Up to 4 bytes a character: enough bytes for the characters kept.
    const want = Math.min(size, STDERR_TAIL_CHARS * 4);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, size - want);
    // A character cut at the start decodes as U+FFFD; drop it.
    return buf.subarray(0, bytesRead).toString("utf8").replace(/^\uFFFD+/, "").slice(-STDERR_TAIL_CHARS);
  } finally {
    await fh.close();
  }
}

export async function buildOutcome(record: JobRecord, stderrFile: string, end: JobEnd, artifactsDir: string): Promise<RunOutcome> {
  const timedOut = end.stop?.reason === "timeout" || end.exit?.timedOut === true;
  const cancelled = end.stop?.reason === "cancel";
  let stderrTail = await fileTail(stderrFile);
  if (timedOut) stderrTail = appendNote(stderrTail, `[runner] killed after the wall-time limit of ${record.limits.wallTimeS} s`);
  if (cancelled) stderrTail = appendNote(stderrTail, "[runner] cancelled");
  const limit = end.stop ? limitMessage(end.stop.reason, record.limits) : null;
  if (limit) stderrTail = appendNote(stderrTail, `${LIMIT_NOTE}${limit}`);
  if (!end.exit && !end.stop) stderrTail = appendNote(stderrTail, "[runner] the job ended without recording an exit status (killed from outside?)");
  // The workspace is hostile: read it only through the intake, which copies what passes to a host folder.
  const { result, artifacts, notes } = await intakeRun({ workspace: record.workspace, outDir: record.spec.out_dir, dest: artifactsDir, solution: record.spec.mode === "train" ? record.spec.solution : undefined });
  for (const note of notes) stderrTail = appendNote(stderrTail, note);
  const status = end.exit ? unwrapStatus(end.exit.code) : { exitCode: null, signal: end.stop ? (end.lastSignal ?? "SIGTERM") : null };
  const durationS = Math.max(0, Math.round(end.endedAt - record.startedAt)) / 1000;
  return { result, artifacts, ...status, timedOut, cancelled, durationS, stderrTail };
}
