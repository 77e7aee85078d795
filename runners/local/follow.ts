import type { ChildProcess } from "node:child_process";
import { open, stat, type FileHandle } from "node:fs/promises";
import { parseEventLine, type HarnessEvent } from "../contract.js";
import type { RunOutcome } from "../types.js";
import {
  ExitRecord,
  leaderAlive,
  readJson,
  signalJobGroup,
  writeJsonAtomic,
  type ControlPaths,
  type JobRecord,
  type StopReason,
  type StopRecord,
} from "./job-record.js";

// Follows a detached job through its files, whichever process started it: events by byte offset
// from the start of the log, the wall-time limit counted from the recorded start, cancel by killing
// the group, and the end seen as an exit file or a leader that is gone.

const POLL_MS = 100;
const KILL_GRACE_MS = 2000;
const MAX_LINE_BYTES = 1_000_000;
// How often the run's limits are checked (workspace size, memory, processes); slower while a check is slow.
const WATCH_MS = 500;

/** How a job ended, as far as the files and this follower know. */
export interface JobEnd {
  exit: ExitRecord | null;
  stop: StopRecord | null;
  /** Wall-clock ms: the exit file's time, or when the leader was seen gone. */
  endedAt: number;
  /** The last signal this follower sent, when it killed the job. */
  lastSignal: NodeJS.Signals | null;
}

/** Splits bytes into lines; multi-byte characters never contain a newline byte, so cutting there is safe. */
export class LineSplitter {
  private pending = Buffer.alloc(0);
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
    let nl: number;
    while ((nl = this.pending.indexOf(0x0a)) >= 0) {
      this.emit(this.pending.subarray(0, nl));
      this.pending = this.pending.subarray(nl + 1);
    }
    if (this.pending.length > MAX_LINE_BYTES) this.flush();
  }

  flush(): void {
    if (this.pending.length) this.emit(this.pending);
    this.pending = Buffer.alloc(0);
  }

  private emit(bytes: Buffer): void {
    const line = bytes.toString("utf8");
    this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}

/** Calls onEvent for one stdout line; a listener that throws must not disturb the run. */
export function deliver(line: string, onEvent: ((event: HarnessEvent) => void) | undefined): void {
  const event = parseEventLine(line);
  if (!event || !onEvent) return;
  try {
    onEvent(event);
  } catch {
    // ignored: the listener's problem, not the job's
  }
}

/** Delivers every event of a finished job's log again. */
export async function replayEvents(file: string, onEvent: ((event: HarnessEvent) => void) | undefined): Promise<void> {
  if (!onEvent) return;
  const splitter = new LineSplitter((line) => deliver(line, onEvent));
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch {
    return;
  }
  try {
    for await (const chunk of fh.createReadStream({ autoClose: false })) splitter.push(chunk as Buffer);
    splitter.flush();
  } finally {
    await fh.close();
  }
}

export interface FollowOptions {
  paths: ControlPaths;
  record: JobRecord;
  onEvent?: (event: HarnessEvent) => void;
  signal?: AbortSignal;
  /** Set when this process started the job: its exit wakes the follower at once. */
  child?: ChildProcess;
  /** A stop another runner asked for and may not have finished. */
  stop?: StopRecord | null;
  /**
   * Checks the run's limits (runners/local/limits.ts checkRun): the limit it is past, or null. Called
   * every WATCH_MS while it runs, and once with final=true when it has ended.
   */
  watch?: (final: boolean) => Promise<StopReason | null>;
  /** Turns the end into the outcome (result.json, stderr tail, notes). */
  finish: (end: JobEnd) => Promise<RunOutcome>;
}

export class Follower {
  readonly done: Promise<RunOutcome>;
  private resolveDone!: (outcome: RunOutcome) => void;
  private rejectDone!: (err: Error) => void;
  private readonly splitter: LineSplitter;
  private offset = 0;
  private fh: FileHandle | null = null;
  private readonly buf = Buffer.alloc(64 * 1024);
  private stop: StopRecord | null;
  private lastSignal: NodeJS.Signals | null = null;
  private timer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private ticking = false;
  private again = false;
  private over = false;
  private watching = false;
  private nextWatch = 0;
  private readonly deadline: number;
  private readonly wake = () => this.kick();

  constructor(private readonly opts: FollowOptions) {
    this.done = new Promise<RunOutcome>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers attach their handlers later (or never, after detach): keep Node from calling it unhandled.
    this.done.catch(() => undefined);
    this.splitter = new LineSplitter((line) => deliver(line, opts.onEvent));
    this.stop = opts.stop ?? null;
    this.deadline = opts.record.startedAt + opts.record.limits.wallTimeS * 1000;
    opts.signal?.addEventListener("abort", this.wake);
    opts.child?.once("exit", this.wake);
    if (this.stop) this.sendKill();
    this.kick();
  }

  get pid(): number {
    return this.opts.record.pid;
  }

  /** Kills the job (whole group); done resolves once it has ended. */
  cancel(reason: StopReason = "cancel"): void {
    if (this.over || this.stop) return;
    this.requestStop(reason);
  }

  /**
   * Stops following and leaves the job running. done never settles: the caller's step must neither
   * finish nor fail, so that after a restart it runs again and re-attaches.
   */
  detach(): void {
    if (this.over) return;
    this.end();
    this.opts.child?.unref();
  }

  /** Synchronous last resort on process exit. */
  killNow(): void {
    if (!this.over) signalJobGroup(this.opts.record, "SIGKILL");
  }

  private kick(): void {
    if (this.over) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ticking = true;
    void this.tick()
      .catch((err: unknown) => this.fail(err as Error))
      .finally(() => {
        this.ticking = false;
        if (this.over) return;
        if (this.again) {
          this.again = false;
          this.kick();
        } else {
          this.timer = setTimeout(() => this.kick(), POLL_MS);
        }
      });
  }

  private async tick(): Promise<void> {
    await this.pump();
    if (this.over) return;
    if (!this.stop && this.opts.signal?.aborted) this.requestStop("cancel");
    if (!this.stop && Date.now() >= this.deadline) this.requestStop("timeout");
    if (!this.stop) this.startWatch();
    const exit = await readJson(this.opts.paths.exit, ExitRecord);
    if (exit && !(exit instanceof Error)) {
      const mtime = (await stat(this.opts.paths.exit).catch(() => null))?.mtimeMs ?? Date.now();
      return this.complete({ exit, endedAt: mtime });
    }
    if (!leaderAlive(this.opts.record)) {
      const endedAt = Date.now();
      // The wrapper may have written the exit file just before it went.
      const late = await readJson(this.opts.paths.exit, ExitRecord);
      if (this.stop) {
        // Whatever is left of the group (unsandboxed stragglers) ends now; its id cannot be reused while it has members.
        try {
          process.kill(-this.opts.record.pid, "SIGKILL");
        } catch {
          // the group is already empty
        }
      }
      return this.complete({ exit: late && !(late instanceof Error) ? late : null, endedAt });
    }
  }

  private async pump(): Promise<void> {
    if (!this.fh) {
      try {
        this.fh = await open(this.opts.paths.events, "r");
      } catch {
        return;
      }
    }
    for (;;) {
      if (this.over) return;
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.offset);
      if (!bytesRead) return;
      this.offset += bytesRead;
      // The splitter copies what it keeps, so the buffer can be read into again.
      this.splitter.push(this.buf.subarray(0, bytesRead));
    }
  }

  /** In the background, so a slow walk of a large workspace never delays seeing the end. */
  private startWatch(): void {
    const watch = this.opts.watch;
    if (!watch || this.watching || Date.now() < this.nextWatch) return;
    this.watching = true;
    const began = Date.now();
    void watch(false)
      .then((reason) => {
        if (reason && !this.over && !this.stop) this.requestStop(reason);
      })
      .catch(() => undefined)
      .finally(() => {
        this.watching = false;
        this.nextWatch = Date.now() + Math.max(WATCH_MS, 4 * (Date.now() - began));
      });
  }

  private requestStop(reason: StopReason): void {
    this.stop = { reason, at: Date.now() };
    // Recorded first, so a runner that takes over later knows why the job ended.
    void writeJsonAtomic(this.opts.paths.stop, this.stop).catch(() => undefined);
    this.sendKill();
  }

  private sendKill(): void {
    if (signalJobGroup(this.opts.record, "SIGTERM")) this.lastSignal = "SIGTERM";
    this.graceTimer ??= setTimeout(() => {
      if (!this.over && signalJobGroup(this.opts.record, "SIGKILL")) this.lastSignal = "SIGKILL";
    }, KILL_GRACE_MS);
    this.kick();
  }

  private async complete(end: { exit: ExitRecord | null; endedAt: number }): Promise<void> {
    await this.pump();
    if (this.over) return;
    this.splitter.flush();
    // What the run left counts even when it ended before a check saw it (an OOM kill, a last big write).
    if (!this.stop && this.opts.watch) {
      const reason = await this.opts.watch(true).catch(() => null);
      if (this.over) return;
      if (reason) this.stop = { reason, at: Date.now() };
    }
    const stop = this.stop;
    const lastSignal = this.lastSignal;
    this.end();
    try {
      this.resolveDone(await this.opts.finish({ ...end, stop, lastSignal }));
    } catch (err) {
      this.rejectDone(err as Error);
    }
  }

  private fail(err: Error): void {
    if (this.over) return;
    // A job nobody can follow would run on with no wall-time limit.
    signalJobGroup(this.opts.record, "SIGKILL");
    this.end();
    this.rejectDone(err);
  }

  private end(): void {
    this.over = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.timer = null;
    this.opts.signal?.removeEventListener("abort", this.wake);
    this.opts.child?.removeListener("exit", this.wake);
    const fh = this.fh;
    this.fh = null;
    void fh?.close().catch(() => undefined);
  }
}
