import { open, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HarnessResult, type HarnessSpec } from "../contract.js";
import type { RunOutcome } from "../types.js";
import type { JobEnd } from "./follow.js";
import type { JobRecord } from "./job-record.js";
import { STDERR_TAIL_CHARS } from "./process.js";

// Turns how a job ended (exit record, stop record, files in the workspace) into the RunOutcome.

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

/** result.json of the workspace, validated; otherwise null and a note for the stderr tail. */
export async function readResult(dir: string, spec: HarnessSpec): Promise<{ result: HarnessResult | null; note: string | null }> {
  const resultPath = path.join(path.resolve(dir, spec.out_dir), "result.json");
  if (!isInside(resultPath, dir)) return { result: null, note: `[runner] out_dir ${JSON.stringify(spec.out_dir)} is outside the workspace; result ignored` };
  let raw: string;
  try {
    raw = await readFile(resultPath, "utf8");
  } catch {
    return { result: null, note: `[runner] no result.json was written (${path.relative(dir, resultPath)})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { result: null, note: `[runner] result.json is not valid JSON: ${(err as Error).message}` };
  }
  const parsed = HarnessResult.safeParse(json);
  if (parsed.success) return { result: parsed.data, note: null };
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
  return { result: null, note: `[runner] result.json does not match the contract: ${issues}` };
}

export async function buildOutcome(record: JobRecord, stderrFile: string, end: JobEnd): Promise<RunOutcome> {
  const timedOut = end.stop?.reason === "timeout" || end.exit?.timedOut === true;
  const cancelled = end.stop?.reason === "cancel";
  let stderrTail = await fileTail(stderrFile);
  if (timedOut) stderrTail = appendNote(stderrTail, `[runner] killed after the wall-time limit of ${record.limits.wallTimeS} s`);
  if (cancelled) stderrTail = appendNote(stderrTail, "[runner] cancelled");
  if (!end.exit && !end.stop) stderrTail = appendNote(stderrTail, "[runner] the job ended without recording an exit status (killed from outside?)");
  const { result, note } = await readResult(record.workspace, record.spec);
  if (note) stderrTail = appendNote(stderrTail, note);
  const status = end.exit ? unwrapStatus(end.exit.code) : { exitCode: null, signal: end.stop ? (end.lastSignal ?? "SIGTERM") : null };
  const durationS = Math.max(0, Math.round(end.endedAt - record.startedAt)) / 1000;
  return { result, ...status, timedOut, cancelled, durationS, stderrTail };
}
