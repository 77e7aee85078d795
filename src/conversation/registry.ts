import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ThreadRef } from "../../adapters/types.js";
import { checkEndpoint } from "../../graphs/automl/endpoint-check.js";
import { fmt, slug } from "../../graphs/automl/format.js";
import type { EarlierModel, State } from "../../graphs/automl/state.js";
import type { HarnessResult } from "../../runners/contract.js";
import { MODEL_FILES } from "../../graphs/automl/followup/job.js";
import type { Engine } from "../engine.js";
import type { Logger } from "../logger.js";
import { MODEL_NAME, type ConversationStore, type Lease, type ModelEntry } from "../store/types.js";

// The deployment registry (docs/architecture.md §9): every trained model of every thread, kept in the
// conversation store so that it outlives the process. Servers marked "serving" are started again when
// ThreadML starts, at their old port and token where the runner allows, and the entry records where
// they answer now. With several replicas on one Redis, a lease per model decides which one serves it.

const MAX_SAMPLE_BYTES = 32 * 1024;

export interface RecordInput {
  ref: ThreadRef;
  key: string;
  graphThreadId: string;
  generation: number;
  requester: string;
  runner: string;
  state: State;
  searchScale?: number;
  /** The seed the conversation's splits used: an explanation rebuilds the same validation rows. */
  seed: number;
}

/** A name from the target (or task): "churn", then "churn-2", "churn-3"… */
export function nameStem(target: string | null, task: string): string {
  const stem = slug(target ?? task);
  return MODEL_NAME.test(stem) ? stem : "model";
}

/** A thread's model as the next conversation compares with it. */
export function asEarlier(e: ModelEntry): EarlierModel {
  return { name: e.name, description: e.description, metric: e.metric, metrics: e.metrics, constraints: e.constraints.map((c) => ({ name: c.name, met: c.met })), status: e.status };
}

export class Registry {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly store: ConversationStore,
    private readonly engine: Pick<Engine, "server" | "serveAgain" | "stopServer">,
    private readonly logger: Logger,
    private readonly leaseTtlMs = 15_000,
    /** ThreadML's data folder (absolute): a local model's files must lie inside it. */
    private readonly dataDir: string | null = null,
  ) {}

  /**
   * Why an entry's paths cannot be used, or null. Entries come from a store other processes write; a
   * local model's workspace and copies must lie in this machine's data folder before anything loads them.
   */
  untrusted(entry: ModelEntry): string | null {
    if (!this.dataDir) return null;
    const inside = (p: string) => {
      const rel = path.relative(this.dataDir!, path.resolve(p));
      return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
    };
    const local = entry.runner === "local";
    if (entry.artifactsDir && !inside(entry.artifactsDir)) return `${entry.name}'s files are recorded outside ThreadML's data folder`;
    if (local && !(inside(entry.workspace) && inside(entry.runnerDir))) return `${entry.name}'s workspace is recorded outside ThreadML's data folder`;
    return null;
  }

  list(thread?: string): Promise<ModelEntry[]> {
    return this.store.listModels(thread ? { thread } : {});
  }

  get(name: string): Promise<ModelEntry | null> {
    return this.store.getModel(name);
  }

  /** Registers the model a finished conversation trained (null when it trained none). */
  async record(o: RecordInput): Promise<ModelEntry | null> {
    const { state } = o;
    const best = state.best;
    const req = state.requirements;
    if (!best || !req) return null;
    // a conversation resumed after a crash between registering and finishing registers once
    const already = (await this.list(o.key)).find((e) => e.graphThreadId === o.graphThreadId && e.runId === best.runId);
    if (already) return already;
    const server = state.endpoint?.serving ? this.engine.server(o.graphThreadId) : undefined;
    const sample = best.result.sample && JSON.stringify(best.result.sample).length <= MAX_SAMPLE_BYTES ? best.result.sample : null;
    const entry = {
      thread: o.key,
      platform: o.ref.platform,
      channel: o.ref.channel,
      threadId: o.ref.thread,
      graphThreadId: o.graphThreadId,
      generation: o.generation,
      runner: o.runner,
      status: server ? ("serving" as const) : ("stopped" as const),
      url: state.endpoint?.url ?? null,
      ...(state.endpoint?.token ? { token: state.endpoint.token } : {}),
      port: server?.port ?? null,
      ...(server?.pid ? { pid: server.pid, ...identity(server.pid) } : {}),
      runId: best.runId,
      runnerDir: best.runnerDir,
      workspace: best.workspace,
      artifactsDir: best.artifacts?.dir ?? null,
      bundle: state.report?.artifacts.bundle ?? null,
      description: best.description,
      task: req.task,
      target: req.target,
      metric: req.metric,
      metrics: best.result.metrics,
      constraints: best.verdict.checks.map((c) => ({ name: c.name, op: c.op, target: c.target, actual: c.actual, met: c.met })),
      createdAt: Date.now(),
      createdBy: o.requester,
      sample,
      context: {
        messages: state.messages,
        files: state.files,
        answers: state.answers,
        feedback: state.feedback,
        localPaths: state.localPaths,
        requirements: req,
        profile: state.profile,
        searchScale: o.searchScale ?? state.searchScale,
        seed: o.seed,
      },
    };
    const stem = nameStem(req.target, req.task);
    for (let n = 1; n < 1000; n++) {
      const name = n === 1 ? stem : `${stem.slice(0, 56)}-${n}`;
      const stored = await this.store.putModel({ ...entry, name }, { onlyNew: true });
      if (stored) {
        if (server) await this.hold(name);
        return stored;
      }
    }
    throw new Error(`no free registry name for ${stem}`);
  }

  /** Remembers which message is the model's report, so that the report's buttons act on this model. */
  async noteReport(name: string, messageId: string): Promise<void> {
    const entry = await this.store.getModel(name);
    if (entry) await this.store.putModel({ ...entry, reportMessageId: messageId });
  }

  /** The lease that says this process serves the model (several replicas, one server). */
  private async hold(name: string): Promise<boolean> {
    if (this.leases.has(name)) return true;
    const lease = await this.store.acquireLease(`model:${name}`, this.leaseTtlMs).catch(() => null);
    if (lease) this.leases.set(name, lease);
    return lease !== null;
  }

  private async letGo(name: string): Promise<void> {
    const lease = this.leases.get(name);
    this.leases.delete(name);
    await lease?.release().catch(() => {});
  }

  /** Stops a model's server wherever this machine can reach it, and records it as stopped. */
  async stop(entry: ModelEntry): Promise<ModelEntry> {
    const here = await this.engine.stopServer(entry.graphThreadId);
    if (!here && entry.status === "serving" && entry.pid) stopProcess(entry.pid, entry.pidStart);
    await this.letGo(entry.name);
    return (await this.store.putModel({ ...entry, status: "stopped", stoppedAt: Date.now() })) ?? entry;
  }

  /**
   * Serves again every model the registry says should serve and no process serves now: one that
   * still answers at its address is left as it is. `onFailure` tells the model's thread why one could not.
   */
  async restore(onFailure: (entry: ModelEntry, reason: string) => Promise<void>): Promise<void> {
    let entries: ModelEntry[];
    try {
      entries = (await this.list()).filter((e) => e.status === "serving");
    } catch (err) {
      this.logger.warn({ err }, "could not read the model registry");
      return;
    }
    for (const entry of entries) {
      if (this.engine.server(entry.graphThreadId) || !(await this.hold(entry.name))) continue;
      const refused = this.untrusted(entry);
      if (refused) {
        this.logger.warn({ model: entry.name }, refused);
        await this.letGo(entry.name);
        continue;
      }
      const sample = (entry.sample ?? null) as HarnessResult["sample"];
      if (entry.url && (await answers(entry.url, entry.token))) {
        this.logger.info({ model: entry.name, url: entry.url }, "model server still answers; left as it is");
        continue;
      }
      try {
        const server = await this.engine.serveAgain({
          threadId: entry.graphThreadId,
          runner: entry.runner,
          workspace: { runId: entry.runId, dir: entry.runnerDir, localDir: entry.workspace },
          copies: keptCopies(entry),
          options: { ...(entry.port ? { port: entry.port } : {}), ...(entry.token ? { token: entry.token } : {}) },
        });
        const check = await checkEndpoint(server.url, sample, server.token);
        if (!check.ok && !(sample === null && (await answers(server.url, server.token)))) throw new Error(check.error ?? "the endpoint check failed");
        // stopped meanwhile (an undeploy while it started): the stop wins
        const now = await this.store.getModel(entry.name);
        if (!now || now.status !== "serving") {
          await this.engine.stopServer(entry.graphThreadId);
          await this.letGo(entry.name);
          continue;
        }
        await this.store.putModel({ ...now, url: server.url, port: server.port, ...(server.token ? { token: server.token } : {}), ...(server.pid ? { pid: server.pid, ...identity(server.pid) } : {}) });
        this.logger.info({ model: entry.name, url: server.url }, "model served again");
      } catch (err) {
        const reason = (err as Error).message.split("\n")[0];
        this.logger.warn({ err, model: entry.name }, "could not serve a registered model again");
        await this.engine.stopServer(entry.graphThreadId).catch(() => {});
        await this.letGo(entry.name);
        const now = await this.store.getModel(entry.name).catch(() => null);
        if (now?.status === "serving") await this.store.putModel({ ...now, status: "stopped", stoppedAt: Date.now() }).catch(() => {});
        await onFailure(entry, reason).catch(() => {});
      }
    }
  }

  /** Stops servers this process holds whose entries another process marked stopped (`threadml models stop`). */
  async reconcile(): Promise<void> {
    for (const name of [...this.leases.keys()]) {
      const entry = await this.store.getModel(name).catch(() => null);
      if (entry && entry.status === "stopped") {
        await this.engine.stopServer(entry.graphThreadId).catch(() => {});
        await this.letGo(name);
      }
    }
  }

  /** Lets go of every model lease (shutdown): the next process serves them again. */
  async release(): Promise<void> {
    await Promise.all([...this.leases.keys()].map((n) => this.letGo(n)));
  }
}

/** The registry as a table: the thread's models (compare) or every model (`models`). */
export function registryTable(entries: ModelEntry[], o: { all: boolean }): { header: string[]; rows: string[][] } {
  const header = o.all ? ["name", "model", "metric (test)", "constraints met", "status", "endpoint", "by", "when"] : ["name", "model", "metric (test)", "constraints met", "status", "endpoint"];
  const rows = entries.map((e) => {
    const value = e.metrics[e.metric.name];
    const met = e.constraints.length ? `${e.constraints.filter((c) => c.met === true).length}/${e.constraints.length}` : "none set";
    const row = [e.name, e.description, `${e.metric.name} ${fmt(value)}`, met, e.status, e.status === "serving" && e.url ? e.url : "—"];
    return o.all ? [...row, e.createdBy, new Date(e.createdAt).toISOString().slice(0, 16).replace("T", " ")] : row;
  });
  return { header, rows };
}

/** The host-owned copies a fresh workspace is made from, or null when they are gone. */
function keptCopies(entry: ModelEntry): Array<{ source: string; dest: string }> | null {
  if (!entry.artifactsDir) return null;
  const copies = MODEL_FILES.map((rel) => ({ source: path.join(entry.artifactsDir!, ...rel.split("/")), dest: rel })).filter((c) => existsSync(c.source));
  return copies.length >= 2 && copies[0].dest === MODEL_FILES[0] && copies[1].dest === MODEL_FILES[1] ? copies : null;
}

async function answers(url: string, token?: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(3000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** This boot and the process's start time: a pid recorded earlier names the same process only if both match. */
function identity(pid: number): { pidStart?: string } {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    // field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces and parentheses)
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return started ? { pidStart: `${boot}:${started}` } : {};
  } catch {
    return {};
  }
}

/**
 * Ends a local model server another process started: only the very process recorded (same boot, same
 * start time, so not a reused pid), only when it runs ThreadML's serve.py, and its process group.
 */
function stopProcess(pid: number, recorded: string | undefined): void {
  if (!recorded || identity(pid).pidStart !== recorded) return;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return;
  }
  // the launcher execs the (sandboxed) server in place: same pid, serve.py among its arguments
  if (!argv.some((a) => path.basename(a) === "serve.py")) return;
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    // already gone
  }
}
