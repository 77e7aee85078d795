import { lstat, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import path from "node:path";
import { controlPaths, inspectJob } from "./job-record.js";
import { isInside } from "./outcome.js";

// Workspace retention: <dataDir>/runs/<runId> and <dataDir>/jobs/<runId> of runs idle for longer than
// the retention period are removed. Never a run whose job is live, nor one a process still uses (a
// model server serving from it), whichever runner started it.

export interface Expired {
  runId: string;
  /** Wall-clock ms of the newest change seen (workspace folder, job folder and its files). */
  lastUsed: number;
}

const RUN_ID = /^[A-Za-z0-9._-]+$/;

async function mtime(p: string): Promise<number> {
  return (await stat(p).catch(() => null))?.mtimeMs ?? 0;
}

async function lastUsed(dataDir: string, runId: string): Promise<number> {
  const ws = path.join(dataDir, "runs", runId);
  const jobs = path.join(dataDir, "jobs", runId);
  let newest = Math.max(await mtime(ws), await mtime(jobs));
  for (const name of await readdir(jobs).catch(() => [] as string[])) newest = Math.max(newest, await mtime(path.join(jobs, name)));
  return newest;
}

/** Runs under dataDir whose newest change is older than maxAgeMs. */
export async function expiredRuns(dataDir: string, maxAgeMs: number, now = Date.now()): Promise<Expired[]> {
  const ids = new Set<string>();
  for (const sub of ["runs", "jobs"]) {
    for (const e of await readdir(path.join(dataDir, sub), { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && RUN_ID.test(e.name) && e.name !== "." && e.name !== "..") ids.add(e.name);
    }
  }
  const expired: Expired[] = [];
  for (const runId of [...ids].sort()) {
    const used = await lastUsed(dataDir, runId);
    if (now - used > maxAgeMs) expired.push({ runId, lastUsed: used });
  }
  return expired;
}

/** Folders that some process has as its working directory or names on its command line. */
export async function foldersInUse(folders: string[]): Promise<Set<string>> {
  const used = new Set<string>();
  if (!folders.length) return used;
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => null);
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0");
    for (const f of folders) {
      if ((cwd && isInside(cwd, f)) || cmdline.some((arg) => arg.startsWith("/") && isInside(arg, f))) used.add(f);
    }
  }
  return used;
}

export type RemoveResult = { removed: true } | { removed: false; why: string };

/** Removes one expired run unless its job is live or a process uses its folders. */
export async function removeRun(dataDir: string, runId: string): Promise<RemoveResult> {
  const paths = controlPaths(dataDir, runId);
  const state = await inspectJob(paths);
  if (state.kind === "live") return { removed: false, why: `its job is still running (pid ${state.record.pid})` };
  const ws = path.join(dataDir, "runs", runId);
  const inUse = await foldersInUse([ws, paths.dir]);
  if (inUse.size) return { removed: false, why: `a process still uses ${[...inUse].join(", ")}` };
  // rm does not follow links the run may have planted.
  await rm(ws, { recursive: true, force: true });
  await rm(paths.dir, { recursive: true, force: true });
  return { removed: true };
}

/**
 * Held-out splits (<dataDir>/holdout/<digest>) not used for longer than maxAgeMs: a later conversation
 * on the same file makes the same split again, so removing one loses nothing.
 */
export async function removeExpiredHoldouts(dataDir: string, maxAgeMs: number, now = Date.now()): Promise<string[]> {
  const root = path.join(dataDir, "holdout");
  const removed: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) continue;
    const dir = path.join(root, e.name);
    const st = await lstat(dir).catch(() => null);
    if (st && now - st.mtimeMs > maxAgeMs) {
      await rm(dir, { recursive: true, force: true });
      removed.push(e.name);
    }
  }
  return removed;
}
