import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { SFTPWrapper } from "ssh2";
import type { SshRunnerConfig } from "../../config/schema.js";
import { parseEventLine, type HarnessEvent, type HarnessResult, type HarnessSpec } from "../contract.js";
import { intakeRun, type HostArtifacts } from "../intake.js";
import type { Limits, RunOptions, RunOutcome, Workspace } from "../types.js";
import { ConnectionLost, isConnectionError, type ConnLogger, type HostLink } from "./connection.js";
import type { GpuChoice } from "./gpu.js";
import { jobDir, parseJobState, phaseOf, readJobFiles, retireScript, SANDBOX_SH, startScript, stateScript, stopScript, wrapperScript, type JobState } from "./job.js";
import { LineReader, loadFollowState, saveFollowState } from "./lines.js";
import { withReconnect, type ReconnectHooks } from "./reconnect.js";
import { closeHandle, downloadDir, isMissing, open, readAt, readTail, readText, stat, writeText } from "./sftp.js";
import { pjoin } from "./shell.js";

// One harness run on the host, from start (or re-attachment) to its fetched result. Every remote
// step is idempotent and retried across dropped connections; the job itself runs detached and never
// notices them.

export const STDERR_TAIL_BYTES = 8192;
const POLL_MIN_MS = 150;
const POLL_MAX_MS = 1000;
const LIVENESS_EVERY_MS = 10_000;
const READ_CHUNK = 256 * 1024;
const MAX_ARTIFACT_BYTES = 2 * 1024 * 1024 * 1024;
// After a cancel, how long we keep trying to reach the host to stop the job.
const CANCEL_REACH_MS = 60_000;

export interface RunContext {
  conn: HostLink;
  runner: string;
  config: SshRunnerConfig;
  log: ConnLogger;
  /** The interpreter as one sh word. */
  python: string;
  ws: Workspace;
  spec: HarnessSpec;
  /** Host-owned folder for the intake's copies of the run's artifacts. */
  artifactsDir: string;
  limits: Limits;
  options: RunOptions;
  /** Picks GPUs for a new start (the runner tracks which ones its jobs hold). */
  pickGpus(): Promise<GpuChoice>;
  /** True once the runner has detached: the job is left running and this run is abandoned. */
  detached(): boolean;
  /** Registers what to save when the runner detaches (the log offset); returns its remover. */
  onDetach(flush: () => Promise<void>): () => void;
  /** How the job is started, looked at and stopped; a detached process on the host by default. */
  control?: JobControl;
  /** What the runner check found: without bubblewrap on the host the thread is told the job runs unsandboxed. */
  sandbox?: "bubblewrap" | "limits-only";
}

/**
 * Starting, watching and stopping one job. The SSH runner starts a detached process on the host; the
 * Slurm runner submits a batch job. Both run the same wrapper (run.sh) and leave the same files in
 * the job folder, so following the log and collecting the result are shared.
 */
export interface JobControl {
  /** Claims the job folder and starts the written run.sh; prints start=ok|busy (anything else is a refusal). */
  startScript(specSha: string): string[];
  /** How the thread hears where the job went, from the start script's output ("GPU 0", "Slurm job 42, partition gpu"). */
  startedLabel(stdout: string, gpus: GpuChoice): string;
  /** The job's state with liveness (key=value lines for parseJobState). */
  stateScript(resultFile: string): string[];
  stopScript(marker: "cancelled" | "timedout" | null): string[];
  /**
   * Sees every state read with liveness, e.g. to tell the thread why a queued job waits. Returns a
   * sentence when the job can never run as submitted: it is stopped and the run fails with it.
   */
  observe?(state: JobState, notice: (text: string) => void): string | void;
  /**
   * Run once the wrapper wrote an exit status from a signal: leaves the cancelled/timedout marker
   * where something else (a scheduler's time limit or scancel) sent it.
   */
  settleScript?(): string[];
}

/** The SSH runner's control: a detached process group on the host. */
export function processControl(ws: string): JobControl {
  return {
    startScript: (sha) => startScript(ws, "job", sha),
    startedLabel: (_out, gpus) => gpus.label,
    stateScript: (resultFile) => stateScript(ws, "job", resultFile),
    stopScript: (marker) => stopScript(ws, "job", marker),
  };
}

/** Resolves early when poked: the poll loop sleeps on it, a cancel pokes it. */
class Waker {
  private ctl = new AbortController();
  get signal(): AbortSignal {
    return this.ctl.signal;
  }
  poke(): void {
    this.ctl.abort();
    this.ctl = new AbortController();
  }
  wait(ms: number): Promise<void> {
    const signal = this.ctl.signal;
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

function signalName(code: number): string | null {
  return Object.entries(os.constants.signals).find(([, n]) => n === code)?.[0] ?? null;
}

function appendNote(tail: string, note: string): string {
  const joined = tail && !tail.endsWith("\n") ? `${tail}\n${note}` : `${tail}${note}`;
  return joined.slice(-STDERR_TAIL_BYTES);
}

/** A workspace-relative path that stays inside it. */
function insideWs(rel: string): boolean {
  return !!rel && !rel.startsWith("/") && !rel.split("/").includes("..");
}

const never = <T>() => new Promise<T>(() => undefined);

export async function runRemoteJob(ctx: RunContext): Promise<RunOutcome> {
  const { conn, ws, spec, options, runner, config } = ctx;
  const t0 = performance.now();
  const J = jobDir(ws.dir, "job");
  const outPath = pjoin(J, "out");
  const exitPath = pjoin(J, "exit");
  if (!insideWs(spec.out_dir)) throw new Error(`out_dir ${JSON.stringify(spec.out_dir)} must be a relative path inside the workspace`);
  const resultRel = pjoin(spec.out_dir, "result.json");
  const specJson = JSON.stringify(spec, null, 2);
  const specSha = createHash("sha256").update(specJson).digest("hex").slice(0, 16);
  const followFile = path.join(ws.localDir, ".ssh-follow.json");
  const where = `${runner} (${config.host})`;

  const notice = (text: string) => {
    ctx.log.info({ runId: ws.runId }, text);
    try {
      options.onNotice?.(text);
    } catch {
      // a faulty listener must not stop the run
    }
  };
  const waker = new Waker();
  let cancelRequested = false;
  const onAbort = () => {
    cancelRequested = true;
    waker.poke();
  };
  const wallMs = ctx.limits.wallTimeS * 1000;
  // One "lost" and one "reconnected" notice per outage, whether a step failed or the link just closed.
  let down = false;
  const lost = (reason: string) => {
    if (down) return;
    down = true;
    notice(`Lost the connection to ${where} (${reason}); the job keeps running there. Reconnecting…`);
  };
  let following = false;
  const back = () => {
    if (!down) return;
    down = false;
    notice(`Reconnected to ${where}${following ? "; following the job again from where it left off" : ""}.`);
  };
  const hooks: ReconnectHooks = {
    maxDownMs: () => (cancelRequested ? CANCEL_REACH_MS : Math.max(wallMs + 60_000, 10 * 60_000)),
    onLost: lost,
    onBack: back,
    wake: () => waker.signal,
  };
  const remote = <T>(step: () => Promise<T>) => withReconnect(conn, step, hooks);
  const resultPath = pjoin(ws.dir, resultRel);
  const control = ctx.control ?? processControl(ws.dir);
  let hopeless: string | undefined;
  /** With liveness: a shell on the host. */
  const getState = async (): Promise<JobState> => {
    const r = await conn.exec(control.stateScript(resultPath), { timeoutMs: 60_000 });
    const s = parseJobState(r.stdout);
    const verdict = control.observe?.(s, notice);
    if (verdict) hopeless ??= verdict;
    return s;
  };
  /** Files only, over SFTP: enough unless the job has started and not ended. */
  const filesState = async (): Promise<JobState> => readJobFiles(await conn.sftp(), ws.dir, "job", resultPath);
  const currentState = async (): Promise<JobState> => {
    const s = await filesState();
    return s.lock && s.exit === undefined ? getState() : s;
  };

  options.signal?.addEventListener("abort", onAbort, { once: true });
  const stopWatching = conn.onLost((reason) => lost(reason));
  let unregister = () => {};
  try {
    // 1. Start the job, or find the one already there.
    let state = await remote(currentState);
    if (!state.ws) throw new Error(`the workspace ${ws.dir} does not exist on ${where}; call prepare() first`);
    let phase = phaseOf(state);
    if (phase !== "none" && state.spec && state.spec !== specSha) {
      notice(`A different job had run under this id on ${where}; it is replaced by this one.`);
      if (phase === "running") await remote(() => conn.exec(control.stopScript(null)));
      await remote(() => conn.exec(retireScript(ws.dir, "job")));
      phase = "none";
    } else if (phase === "dead") {
      notice(`The job on ${where} had stopped without a result (was the host restarted?); starting it again.`);
      await remote(() => conn.exec(retireScript(ws.dir, "job")));
      phase = "none";
    } else if (phase === "running") {
      const which = state.jobid ? `Slurm job ${state.jobid}` : `pid ${state.pid ?? state.wpid}`;
      notice(`The job was already ${state.sched === "PENDING" ? "queued" : "running"} on ${where} (${which}); following it again instead of starting it twice.`);
    } else if (phase === "finished") {
      notice(`The job had already finished on ${where}; using its result.`);
    }
    let startedHere = false;
    if (phase === "none") {
      if (cancelRequested) return notStarted();
      const gpus = await remote(() => ctx.pickGpus());
      const wrapper = wrapperScript({
        ws: ws.dir,
        kind: "job",
        setup: config.setup,
        python: ctx.python,
        args: ["harness.py", "--spec", pjoin(ws.dir, "spec.json")],
        cudaVisible: gpus.visible,
        cpuS: ctx.limits.cpuS,
        // An address-space limit breaks CUDA, which maps far more than it uses.
        memoryMb: gpus.devices.length ? undefined : ctx.limits.memoryMb,
        wallTimeS: ctx.limits.wallTimeS,
        fileMb: ctx.limits.diskMb,
        pids: ctx.limits.pids,
        sandbox: true,
      });
      await remote(async () => {
        const sftp = await conn.sftp();
        await writeText(sftp, pjoin(ws.dir, "spec.json"), specJson);
        // A stale result must never be taken for this run's.
        await new Promise<void>((resolve) => sftp.unlink(resultPath, () => resolve()));
        await mkdirOne(sftp, J);
        await writeText(sftp, pjoin(J, "run.sh"), wrapper, 0o755);
        await writeText(sftp, pjoin(J, "sandbox.sh"), SANDBOX_SH, 0o644);
      });
      const start = await remote(() => conn.exec(control.startScript(specSha)));
      if (!/start=(ok|busy)/.test(start.stdout)) {
        const said = start.stdout.replace(/^start=\w+$/m, "").trim().replace(/\s*\n\s*/g, " ");
        throw new Error(`the job could not be started on ${where}: ${(said || start.stderr.trim()).slice(-500)}`);
      }
      startedHere = true;
      state = await remote(filesState);
      const unsandboxed = ctx.sandbox === "limits-only" ? "; without a sandbox: bubblewrap is not available there" : "";
      const what = { search: "Evaluating plans", score: "Scoring the held-out rows", predict: "Scoring a file", explain: "Measuring what matters" }[spec.mode as string] ?? (spec.sample_rows ? "Smoke run" : "Training");
      notice(`${what} on ${where}, ${control.startedLabel(start.stdout, gpus)}${unsandboxed}.`);
    }

    // 2. Follow its log by byte offset until it has exited.
    following = true;
    const saved = await loadFollowState(followFile);
    const startOffset = saved && saved.dir === ws.dir && saved.started === state.started ? saved.offset : 0;
    const reader = new LineReader(startOffset);
    let lastSaved = startOffset;
    let lastSaveAt = 0;
    const persist = async (force = false) => {
      if (state.started === undefined || reader.committed === lastSaved) return;
      if (!force && Date.now() - lastSaveAt < 500) return;
      lastSaveAt = Date.now();
      lastSaved = reader.committed;
      await saveFollowState(followFile, { runner, dir: ws.dir, started: state.started, offset: reader.committed }).catch(() => undefined);
    };
    unregister = ctx.onDetach(() => persist(true));
    const emit = (lines: string[]) => {
      for (const line of lines) {
        const event: HarnessEvent | null = parseEventLine(line);
        if (!event || !options.onEvent) continue;
        try {
          options.onEvent(event);
        } catch (err) {
          ctx.log.debug({ err: String(err) }, "onEvent listener threw; ignored");
        }
      }
    };

    let handle: { sftp: SFTPWrapper; buf: Buffer } | null = null;
    let cancelSent = false;
    let timeoutSent = false;
    // A job just started is looked at after a second: a queued batch job says why it waits.
    let lastLiveness = startedHere ? Date.now() - LIVENESS_EVERY_MS + 1000 : Date.now();
    let spoke = false;
    let vanished = false;
    const readNew = async (sftp: SFTPWrapper): Promise<number> => {
      if (!handle || handle.sftp !== sftp) {
        handle = null;
        try {
          handle = { sftp, buf: await open(sftp, outPath, "r") };
        } catch (err) {
          if (isMissing(err)) return 0; // the wrapper is still in its setup lines
          throw err;
        }
      }
      let got = 0;
      for (let i = 0; i < 8; i++) {
        const chunk = await readAt(sftp, handle.buf, reader.offset, READ_CHUNK);
        // A detached runner hands nothing more on, so the offset it saved stays exact.
        if (!chunk.length || ctx.detached()) break;
        got += chunk.length;
        emit(reader.push(chunk));
      }
      return got;
    };
    const poll = async (): Promise<"data" | "idle" | "exited"> => {
      const sftp = await conn.sftp();
      if ((await readNew(sftp)) > 0) {
        await persist();
        // The first output: look at the job now (a queued batch job has just started, on some node).
        if (!spoke) {
          spoke = true;
          lastLiveness = 0;
          // The wrapper decided on the machine the job landed on, which may lack what the check found.
          if (ctx.sandbox === "bubblewrap" && (await readText(sftp, pjoin(J, "sandbox"), 64))?.trim() === "none")
            notice(`The job on ${where} runs without a sandbox: bubblewrap is not usable on the machine it landed on (see its log).`);
        }
        return "data";
      }
      if (await stat(sftp, exitPath)) {
        while ((await readNew(sftp)) > 0);
        emit(reader.flush());
        await persist(true);
        return "exited";
      }
      if (Date.now() - lastLiveness >= LIVENESS_EVERY_MS) {
        lastLiveness = Date.now();
        const s = await getState();
        if (phaseOf(s) === "dead") {
          while ((await readNew(sftp)) > 0);
          emit(reader.flush());
          vanished = true;
          return "exited";
        }
        // The wrapper's own watchdog enforces the limit; this catches a wrapper that is gone.
        if (!timeoutSent && s.started !== undefined && s.now - s.started > ctx.limits.wallTimeS + 30) {
          timeoutSent = true;
          await conn.exec(control.stopScript("timedout"));
        }
      }
      return "idle";
    };

    if (options.signal?.aborted) cancelRequested = true;
    let delay = POLL_MIN_MS;
    for (;;) {
      if (ctx.detached()) return never();
      if (hopeless) {
        await remote(() => conn.exec(control.stopScript(null)));
        throw new Error(`the job could not be started on ${where}: ${hopeless}`);
      }
      if (cancelRequested && !cancelSent) {
        try {
          await remote(() => conn.exec(control.stopScript("cancelled")));
        } catch (err) {
          if (!(err instanceof ConnectionLost)) throw err;
          return outcome({ cancelled: true, note: `[runner] cancelled, but ${where} could not be reached to stop the job: ${err.message}` });
        }
        cancelSent = true;
        // Look at once: a scheduler may end the job without its wrapper writing the exit status.
        lastLiveness = 0;
      }
      const step = await remote(poll);
      back();
      if (step === "exited") break;
      delay = step === "data" ? POLL_MIN_MS : Math.min(POLL_MAX_MS, Math.round(delay * 1.5));
      await waker.wait(delay);
    }
    const h = handle as { sftp: SFTPWrapper; buf: Buffer } | null;
    if (h) await closeHandle(h.sftp, h.buf).catch(() => undefined);

    // 3. The outcome: exit status, markers, stderr tail and the artifacts, fetched back.
    let final = await remote(filesState);
    if (control.settleScript && (final.exit ?? 0) >= 128 && !final.cancelled && !final.timedout) {
      await remote(() => conn.exec(control.settleScript!(), { timeoutMs: 90_000 }));
      final = await remote(filesState);
    }
    const { tail, result, artifacts, notes } = await remote(() => collect(ctx));
    const durationS = startedHere ? Math.round(performance.now() - t0) / 1000 : Math.max(0, (final.ended ?? final.now) - (final.started ?? final.now));
    let stderrTail = tail;
    for (const n of notes) stderrTail = appendNote(stderrTail, n);
    if (vanished) stderrTail = appendNote(stderrTail, `[runner] the job on ${where} stopped without an exit status (was it killed, or the host restarted?)`);
    if (final.timedout) stderrTail = appendNote(stderrTail, `[runner] killed after the wall-time limit of ${ctx.limits.wallTimeS} s`);
    const cancelled = final.cancelled || cancelSent;
    if (cancelled) stderrTail = appendNote(stderrTail, "[runner] cancelled");
    const code = final.exit ?? null;
    const sig = code !== null && code > 128 && code < 160 ? signalName(code - 128) : null;
    return {
      result,
      artifacts,
      exitCode: sig ? null : code,
      signal: sig,
      timedOut: final.timedout,
      cancelled,
      durationS,
      stderrTail,
    };
  } catch (err) {
    if (ctx.detached()) return never();
    throw err;
  } finally {
    stopWatching();
    unregister();
    options.signal?.removeEventListener("abort", onAbort);
  }

  function notStarted(): RunOutcome {
    return outcome({ cancelled: true, note: "[runner] cancelled before the run started" });
  }
  function outcome(o: { cancelled: boolean; note: string }): RunOutcome {
    return { result: null, exitCode: null, signal: null, timedOut: false, cancelled: o.cancelled, durationS: Math.round(performance.now() - t0) / 1000, stderrTail: o.note };
  }
}

/** Creates one folder (its parent exists); an existing one is fine. */
function mkdirOne(sftp: SFTPWrapper, dir: string): Promise<void> {
  return new Promise((resolve, reject) =>
    sftp.mkdir(dir, (err) => {
      if (!err) return resolve();
      void stat(sftp, dir).then((st) => (st?.isDirectory() ? resolve() : reject(err)), reject);
    }),
  );
}

/** Fetches the run's output folder into the local workspace, then takes it in like a local run's. */
async function collect(ctx: RunContext): Promise<{ tail: string; result: HarnessResult | null; artifacts: HostArtifacts | null; notes: string[] }> {
  const { conn, ws, spec } = ctx;
  const sftp = await conn.sftp();
  const notes: string[] = [];
  const tail = ((await readTail(sftp, pjoin(jobDir(ws.dir, "job"), "err"), STDERR_TAIL_BYTES)) ?? Buffer.alloc(0)).toString("utf8");
  const localOut = path.join(ws.localDir, ...spec.out_dir.split("/"));
  await rm(localOut, { recursive: true, force: true });
  try {
    await downloadDir(sftp, pjoin(ws.dir, spec.out_dir), localOut, MAX_ARTIFACT_BYTES);
  } catch (err) {
    if (isConnectionError(err) || !conn.connected) throw err;
    notes.push(`[runner] the artifacts could not be fetched: ${(err as Error).message}`);
  }
  const taken = await intakeRun({ workspace: ws.localDir, outDir: spec.out_dir, dest: ctx.artifactsDir, solution: spec.mode === "train" ? spec.solution : undefined });
  return { tail, result: taken.result, artifacts: taken.artifacts, notes: [...notes, ...taken.notes] };
}
