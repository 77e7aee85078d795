import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, rmdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { StopReason } from "./job-record.js";

// Limits per run rather than per process. rlimits (RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE) bound each
// process; what bounds the run as a whole depends on the host:
//   cgroup2   one cgroup per run with pids.max and memory.max (swap 0, OOM kills the whole group);
//   cgroup1   the same with the v1 pids and memory controllers (hybrid hosts);
//   watchdog  no usable cgroups: the follower sums the memory of the job's processes, counts them
//             and kills the run past its limits (polling, so a fast fork bomb can overshoot).
// The workspace's size is watched in every mode.

export type Containment = "cgroup2" | "cgroup1" | "watchdog";

export interface ContainmentInfo {
  kind: Containment;
  /** cgroup2: one parent; cgroup1: the pids parent, then the memory parent. */
  parents: string[];
  /** One sentence for the runner check and logs. */
  note: string;
}

export interface RunLimits {
  memoryMb: number;
  pids: number;
}

const MIB = 1024 * 1024;
const PARENT = "threadml";
const JOIN_PROBE_TIMEOUT_MS = 5000;

// ----------------------------------------------------------------------------- parsing

export interface Mount {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** /proc/self/mountinfo: mount point, file system type and super options of each line. */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (fields.length < 10 || dash < 0) continue;
    // Octal escapes (\040 for a space) in paths.
    const mountPoint = fields[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    mounts.push({ mountPoint, fsType: fields[dash + 1], superOptions: (fields[dash + 3] ?? "").split(",") });
  }
  return mounts;
}

/** /proc/self/cgroup: the v2 path ("0::/x") and each v1 controller's path. */
export function parseProcCgroup(text: string): { v2: string | null; v1: Map<string, string> } {
  let v2: string | null = null;
  const v1 = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "0" && m[2] === "") v2 = m[3];
    else for (const c of m[2].split(",")) if (c) v1.set(c, m[3]);
  }
  return { v2, v1 };
}

/** The value after `key` in a flat-keyed cgroup file ("oom_kill 3"), 0 when absent. */
export function keyedValue(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

// ----------------------------------------------------------------------------- detection

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Moves a throwaway sh into the cgroup, as the job wrapper does; resolves with why it failed, or null. */
function joinProbe(dirs: string[]): Promise<string | null> {
  const script = 'for d in "$@"; do echo 0 > "$d/cgroup.procs" || exit 1; done';
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-c", script, "probe", ...dirs], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), JOIN_PROBE_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve(e.message);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? null : err.trim() || `exit code ${code}`);
    });
  });
}

async function removeDir(dir: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY") throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates a throwaway run cgroup under each parent, sets limits, joins it and removes it. */
async function probeParents(kind: "cgroup2" | "cgroup1", parents: string[]): Promise<string | null> {
  let dirs: string[] = [];
  try {
    dirs = await createRunCgroups({ kind, parents, note: "" }, `probe-${process.pid}`, { memoryMb: 64, pids: 16 });
    return await joinProbe(dirs);
  } catch (err) {
    return (err as Error).message;
  } finally {
    for (const dir of dirs) await removeDir(dir).catch(() => undefined);
  }
}

async function enableControllers(dir: string): Promise<void> {
  const have = readText(path.join(dir, "cgroup.subtree_control")).split(/\s+/);
  if (have.includes("pids") && have.includes("memory")) return;
  await writeFile(path.join(dir, "cgroup.subtree_control"), "+pids +memory");
}

async function tryCgroup2(mounts: Mount[], self: string | null): Promise<ContainmentInfo | string> {
  const mount = mounts.find((m) => m.fsType === "cgroup2" && m.mountPoint === "/sys/fs/cgroup") ?? mounts.find((m) => m.fsType === "cgroup2");
  if (!mount) return "no cgroup2 mount";
  const controllers = readText(path.join(mount.mountPoint, "cgroup.controllers")).split(/\s+/);
  if (!controllers.includes("pids") || !controllers.includes("memory"))
    return `cgroup2 at ${mount.mountPoint} lacks the pids and memory controllers (they are bound to cgroup v1)`;
  // The root (as root), then the parent of our own cgroup (delegated, e.g. systemd DelegateSubgroup=).
  const bases = [mount.mountPoint];
  if (self && self !== "/") bases.push(path.join(mount.mountPoint, path.dirname(self)));
  const why: string[] = [];
  for (const base of [...new Set(bases)]) {
    const parent = path.join(base, PARENT);
    try {
      await enableControllers(base);
      await mkdir(parent, { recursive: true });
      await enableControllers(parent);
    } catch (err) {
      why.push(`${parent}: ${(err as Error).message}`);
      continue;
    }
    const failed = await probeParents("cgroup2", [parent]);
    if (!failed) return { kind: "cgroup2", parents: [parent], note: `cgroup v2 (${parent})` };
    why.push(`${parent}: ${failed}`);
  }
  return why.join("; ");
}

async function tryCgroup1(mounts: Mount[], own: Map<string, string>): Promise<ContainmentInfo | string> {
  const parents: string[] = [];
  for (const controller of ["pids", "memory"]) {
    const mount = mounts.find((m) => m.fsType === "cgroup" && m.superOptions.includes(controller));
    if (!mount) return `no cgroup v1 ${controller} hierarchy`;
    // Under our own cgroup, so whatever limits the service has still apply to its runs.
    const parent = path.join(mount.mountPoint, own.get(controller) ?? "/", PARENT);
    try {
      await mkdir(parent, { recursive: true });
    } catch (err) {
      return `${parent}: ${(err as Error).message}`;
    }
    parents.push(parent);
  }
  const failed = await probeParents("cgroup1", parents);
  if (failed) return failed;
  return { kind: "cgroup1", parents, note: `cgroup v1 pids and memory (${parents.join(", ")})` };
}

/** Finds the strongest mechanism that really works here (creating, limiting and joining a cgroup). */
export async function detectContainment(prefer: "auto" | "watchdog" = "auto"): Promise<ContainmentInfo> {
  const watchdog = (why: string): ContainmentInfo => ({
    kind: "watchdog",
    parents: [],
    note: `watchdog (no usable cgroups: ${why}); the follower sums the memory of the run's processes and counts them, polling`,
  });
  if (prefer === "watchdog") return watchdog("disabled by configuration");
  if (process.platform !== "linux") return watchdog(`not Linux`);
  const mounts = parseMountinfo(readText("/proc/self/mountinfo"));
  const own = parseProcCgroup(readText("/proc/self/cgroup"));
  const v2 = await tryCgroup2(mounts, own.v2);
  if (typeof v2 !== "string") return v2;
  const v1 = await tryCgroup1(mounts, own.v1);
  if (typeof v1 !== "string") return v1;
  return watchdog(`cgroup v2: ${v2}; cgroup v1: ${v1}`);
}

// ----------------------------------------------------------------------------- per-run cgroups

async function writeOptional(file: string, value: string): Promise<void> {
  await writeFile(file, value).catch(() => undefined);
}

/** One cgroup per parent for this run, limits set; the wrapper moves the job into them before it execs. */
export async function createRunCgroups(info: ContainmentInfo, runId: string, limits: RunLimits): Promise<string[]> {
  if (info.kind === "watchdog") return [];
  // Two data folders may use the same run id: the suffix keeps their cgroups apart.
  const name = `${runId}.${randomUUID().slice(0, 8)}`;
  const memory = String(Math.max(1, Math.floor(limits.memoryMb)) * MIB);
  const pids = String(Math.max(1, Math.floor(limits.pids)));
  const dirs = info.parents.map((p) => path.join(p, name));
  try {
    for (const dir of dirs) await mkdir(dir);
    if (info.kind === "cgroup2") {
      const [dir] = dirs;
      await writeFile(path.join(dir, "pids.max"), pids);
      await writeFile(path.join(dir, "memory.max"), memory);
      await writeOptional(path.join(dir, "memory.swap.max"), "0");
      // An OOM kill ends the whole run, not one worker the parent then waits on forever.
      await writeOptional(path.join(dir, "memory.oom.group"), "1");
    } else {
      const [pidsDir, memDir] = dirs;
      await writeFile(path.join(pidsDir, "pids.max"), pids);
      await writeFile(path.join(memDir, "memory.limit_in_bytes"), memory);
      // Only with swap accounting; must not be below memory.limit_in_bytes.
      await writeOptional(path.join(memDir, "memory.memsw.limit_in_bytes"), memory);
    }
  } catch (err) {
    await removeRunCgroups(dirs);
    throw new Error(`could not set up the run's cgroup: ${(err as Error).message}`);
  }
  return dirs;
}

function membersOf(dir: string): number[] {
  return readText(path.join(dir, "cgroup.procs"))
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((n) => n > 0);
}

/** Kills whatever is left in the run's cgroups (stragglers outside the process group too) and removes them. */
export async function removeRunCgroups(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    await writeOptional(path.join(dir, "cgroup.kill"), "1");
    for (let i = 0; i < 40; i++) {
      const members = membersOf(dir);
      if (!members.length) break;
      for (const pid of members) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await removeDir(dir).catch(() => undefined);
  }
}

/** Removes empty run cgroups left by a crash (older than a minute, so none that is being set up). */
export async function sweepCgroups(info: ContainmentInfo, keep: ReadonlySet<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const parent of info.parents) {
    const entries = await readdir(parent, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const dir = path.join(parent, e.name);
      if (keep.has(dir) || membersOf(dir).length) continue;
      const st = await stat(dir).catch(() => null);
      if (!st || Date.now() - st.mtimeMs < 60_000) continue;
      try {
        await rmdir(dir);
        removed.push(dir);
      } catch {
        // busy or gone
      }
    }
  }
  return removed;
}

/** OOM kills inside the run's memory cgroup so far. */
export function oomKills(dirs: readonly string[]): number {
  let total = 0;
  for (const dir of dirs) {
    const events = readText(path.join(dir, "memory.events"));
    if (events) total += keyedValue(events, "oom_kill");
    const control = readText(path.join(dir, "memory.oom_control"));
    if (control) total += keyedValue(control, "oom_kill");
  }
  return total;
}

// ----------------------------------------------------------------------------- watchdog scan

interface Stat {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
}

function parseStat(pid: number, text: string): Stat | null {
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  if (rest.length < 4) return null;
  return { pid, ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
}

/**
 * The job's processes: descendants of the leader (a sandbox keeps every one of them in its pid
 * namespace under bubblewrap), plus anything still in its process group or session.
 */
export async function jobProcesses(leader: number): Promise<number[]> {
  const stats: Stat[] = [];
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => null);
    const st = text ? parseStat(Number(entry), text) : null;
    if (st) stats.push(st);
  }
  return selectJob(stats, leader);
}

/** Exported for tests: which of these processes belong to the job led by `leader`. */
export function selectJob(stats: Stat[], leader: number): number[] {
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const found = new Set<number>();
  const queue = [leader];
  while (queue.length) {
    const pid = queue.pop()!;
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  for (const s of stats) if (s.pgrp === leader || s.session === leader) found.add(s.pid);
  return [...found].filter((pid) => stats.some((s) => s.pid === pid));
}

/** Proportional set size (shared pages split between sharers), else resident size; bytes. */
async function memoryOf(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
  const pss = /^Pss:\s+(\d+) kB$/m.exec(rollup);
  if (pss) return Number(pss[1]) * 1024;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return rss ? Number(rss[1]) * 1024 : 0;
}

export async function jobUsage(leader: number): Promise<{ pids: number[]; memoryBytes: number }> {
  const pids = await jobProcesses(leader);
  let memoryBytes = 0;
  for (const pid of pids) memoryBytes += await memoryOf(pid);
  return { pids, memoryBytes };
}

// ----------------------------------------------------------------------------- disk

/** Bytes allocated to regular files under dir (links not followed, hard links counted once). */
export async function diskUsage(dir: string, maxEntries = 1_000_000): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const seen = new Set<string>();
  const stack = [dir];
  while (stack.length && entries < maxEntries) {
    const current = stack.pop()!;
    const list = await readdir(current, { withFileTypes: true }).catch(() => []);
    for (const e of list) {
      entries++;
      const full = path.join(current, e.name);
      if (e.isDirectory()) stack.push(full);
      else if (e.isFile()) {
        const st = await lstat(full).catch(() => null);
        if (!st?.isFile()) continue;
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        // Allocated blocks, so a sparse file counts for what it really takes; never less than nothing.
        bytes += Math.max(st.blocks * 512, 0);
      }
    }
  }
  return { bytes, entries };
}

// ----------------------------------------------------------------------------- the follower's watch

export interface WatchTarget {
  leader: number;
  workspace: string;
  containment: Containment;
  cgroups: readonly string[];
  memoryMb: number;
  pids?: number;
  diskMb?: number;
  /** Workspace bytes before the job started; only growth counts against diskMb. */
  diskBaseBytes?: number;
}

/** Past which limit the run is now, if any. `final`: the job has ended; only what it left counts. */
export async function checkRun(t: WatchTarget, final: boolean): Promise<StopReason | null> {
  if (t.cgroups.length && oomKills(t.cgroups) > 0) return "memory";
  if (!final && t.containment === "watchdog") {
    const usage = await jobUsage(t.leader);
    const over: StopReason | null =
      t.pids !== undefined && usage.pids.length > t.pids ? "pids" : usage.memoryBytes > t.memoryMb * MIB ? "memory" : null;
    if (over) {
      // Members that left the group (setsid without a sandbox) are killed one by one.
      for (const pid of usage.pids) {
        if (pid === t.leader) continue;
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      return over;
    }
  }
  if (t.diskMb !== undefined) {
    const { bytes, entries } = await diskUsage(t.workspace);
    if (bytes - (t.diskBaseBytes ?? 0) > t.diskMb * MIB || entries >= 1_000_000) return "disk";
  }
  return null;
}

/** The sentence for the thread when a run was stopped at one of its limits. */
export function limitMessage(reason: StopReason, limits: { memoryMb: number; pids?: number; diskMb?: number }): string | null {
  if (reason === "disk") return `the run wrote more than ${limits.diskMb} MB into its workspace (limits.diskMb)`;
  if (reason === "memory") return `the run used more than ${limits.memoryMb} MB of memory in total (limits.memoryMb)`;
  if (reason === "pids") return `the run started more than ${limits.pids} processes (limits.pids)`;
  return null;
}
