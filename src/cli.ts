import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import os from "node:os";
import { Command, Option } from "commander";
import { dataCard } from "../graphs/automl/data-card.js";
import type { InterruptPayload, State } from "../graphs/automl/state.js";
import { createChatAdapters } from "../adapters/index.js";
import { ShellAdapter } from "../adapters/shell/index.js";
import { ConfigError, loadConfig } from "./config.js";
import { ConversationService } from "./conversation/service.js";
import { createEngine, type Outcome } from "./engine.js";
import { MemoryStore } from "./store/memory.js";
import { createLogger } from "./logger.js";
import { CliResult, failedResult, type CliResultT } from "./schema/cli-result.js";
import { runThread, THREAD_NAME } from "./cli-thread.js";
import { Registry, registryTable } from "./conversation/registry.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "./logger.js";
import type { ConversationStore, ModelEntry } from "./store/types.js";

// The headless CLI (docs/architecture.md §5): one conversation without a chat platform, `--json` for tools.

interface RunOptions {
  thread?: string;
  data: string[];
  yes: boolean;
  answer: string[];
  engine?: "offline" | "llm";
  runner?: string;
  json: boolean;
  serve: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function questionText(payload: InterruptPayload): string {
  if (payload.kind === "question") {
    const q = payload.question;
    return q.choices.length ? `${q.text} Choices: ${q.choices.map((c) => c.label).join(", ")}.` : q.text;
  }
  // The reading first, as on every plan card, so a misreading is seen before anything trains.
  const reading = payload.reading ? `${payload.reading}. ` : "";
  return `${reading}Approve a plan? ${payload.plans.map((p, i) => `${i + 1}) ${p.title}`).join("; ")}. Use --yes to approve, or --answer with a plan number or revision text.`;
}

export function toCliResult(state: State, status: CliResultT["status"], questions: string[], startedAt: number): CliResultT {
  const best = state.best;
  const planId = best ? (state.instructions?.planId ?? null) : null;
  const plan = state.plans.find((p) => p.id === planId) ?? null;
  const report = state.report;
  return CliResult.parse({
    status,
    ...(questions.length ? { questions } : {}),
    requirements: state.requirements,
    plan,
    plans: state.plans,
    data: dataCard(state.profile, state.requirements),
    metrics: best?.result.metrics ?? {},
    constraints: (report?.constraints ?? best?.verdict.checks ?? []).map((c) => ({ name: c.name, target: c.target, op: c.op, actual: c.actual, met: c.met })),
    ...(state.endpoint ? { endpoint: { url: state.endpoint.url, check: state.endpoint.check, serving: state.endpoint.serving } } : {}),
    artifacts: report?.artifacts ?? { model: null, code: null, report: null, plots: [] },
    timings: { ...state.timings, total: Math.round((performance.now() - startedAt) / 10) / 100 },
    llm: report?.llm ?? state.llm,
    notices: [...new Set(state.notices)],
    training: report?.training ?? [],
    threshold: best?.result.threshold ?? null,
    summary: report?.summary ?? [],
    comparison: report?.comparison ?? null,
    ...(state.error && ["failed", "rejected", "cancelled"].includes(status) ? { error: state.error } : {}),
  });
}

/** Redis when configured, else the file store under the data folder (shared by this machine's ThreadML processes). */
async function openStore(config: Config, logger: Logger): Promise<ConversationStore> {
  const stores = await import("./store/index.js");
  return config.redis.url ? stores.createStore(config, logger) : stores.createLocalStore(config, logger);
}

async function threadCommand(name: string, task: string, opts: RunOptions, startedAt: number): Promise<number> {
  if (!THREAD_NAME.test(name)) throw new ConfigError(`--thread ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-" (at most 64).`);
  const config = loadConfig(process.env, opts.engine ? { engine: opts.engine } : {});
  const logger = createLogger(process.env.LOG_LEVEL ?? (opts.json ? "warn" : config.logLevel));
  const store = await openStore(config, logger);
  const engine = await createEngine({ config, logger, checkpointer: store.checkpointer });
  let exitCode = 0;
  try {
    if (opts.runner) engine.runner(opts.runner);
    const run = await runThread(name, task, opts, { engine, store, config, logger, toCliResult: toCliResult as never, startedAt });
    const { result } = run;
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printThread(result);
    if (result.status === "failed") exitCode = 1;
    if (opts.serve && run.serving) {
      process.stderr.write(`Serving ${run.serving.name} at ${run.serving.url}; press Ctrl-C to stop.\n`);
      await new Promise<void>((done) => {
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      });
      await run.service.registry.stop(run.serving).catch((err) => logger.warn({ err }, "could not record the stop"));
    }
    await run.service.stop();
  } finally {
    await engine.close();
    await store.close().catch(() => {});
  }
  return exitCode;
}

function printThread(result: CliResultT): void {
  const lines = [`Status: ${result.status}${result.model ? ` · model ${result.model}` : ""}`];
  if (result.questions) lines.push(...result.questions.map((q) => `Question: ${q}`));
  if (result.error) lines.push(`Error: ${result.error}`);
  const f = result.followup;
  if (f) {
    lines.push(...f.lines);
    if (f.table) lines.push(...[f.table.header, ...f.table.rows].map((r) => r.join(" | ")));
    if (f.file) lines.push(`File: ${f.file}`);
  } else {
    lines.push(...result.summary);
    if (result.comparison) lines.push(...[result.comparison.header, ...result.comparison.rows].map((r) => `  ${r.join(" | ")}`));
    for (const [k, v] of Object.entries(result.metrics)) lines.push(`  ${k}: ${v}`);
    if (result.endpoint) lines.push(`Endpoint: ${result.endpoint.url} (check ${result.endpoint.check.ok ? "ok" : "failed"})`);
    if (result.artifacts.report) lines.push(`Report: ${result.artifacts.report}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function modelsCommand(action: string, name: string | undefined, opts: { json: boolean }): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? "warn");
  const store = await openStore(config, logger);
  // No engine here: a server this process did not start is stopped through its process id.
  const registry = new Registry(store, { server: () => undefined, stopServer: async () => false, serveAgain: () => Promise.reject(new Error("not in this process")) }, logger, undefined, resolve(config.dataDir));
  const out = (human: string, json: unknown) => process.stdout.write(opts.json ? `${JSON.stringify(json)}\n` : `${human}\n`);
  try {
    if (action === "list") {
      const entries = await registry.list();
      const { header, rows } = registryTable(entries, { all: true });
      out(entries.length ? [header, ...rows].map((r) => r.join(" | ")).join("\n") : "No models are registered yet.", { models: entries.map(publicEntry) });
      return 0;
    }
    if (action === "stop") {
      const entry = name ? await registry.get(name) : null;
      if (!entry) {
        out(`No model is registered as ${JSON.stringify(name ?? "")}; \`threadml models list\` shows the names.`, { error: `no model named ${name ?? ""}` });
        return 1;
      }
      const was = entry.status;
      const stopped = await registry.stop(entry);
      out(was === "serving" ? `Stopped serving ${entry.name}.` : `${entry.name} was not serving.`, { model: publicEntry(stopped) });
      return 0;
    }
    throw new ConfigError(`Unknown models command "${action}": use list or stop NAME.`);
  } finally {
    await store.close().catch(() => {});
  }
}

/** A registry entry as printed: no bearer token, no stored request context. */
function publicEntry(e: ModelEntry) {
  const { token: _t, context: _c, sample: _s, ...rest } = e;
  return { ...rest, token: e.token ? "(set)" : null };
}

async function runCommand(task: string, opts: RunOptions): Promise<number> {
  const startedAt = performance.now();
  if (opts.thread !== undefined) return threadCommand(opts.thread, task, opts, startedAt);
  const config = loadConfig(process.env, opts.engine ? { engine: opts.engine } : {});
  const logger = createLogger(process.env.LOG_LEVEL ?? (opts.json ? "warn" : config.logLevel));
  const engine = await createEngine({ config, logger });
  const threadId = `cli:${randomUUID()}`;
  const answers = [...opts.answer];
  const runner = opts.runner ?? config.defaultRunner;
  engine.runner(runner);
  if (!opts.json)
    engine.onEvent((_id, e) => {
      if (e.type === "stage" && e.state === "start") process.stderr.write(`· ${e.stage}\n`);
      if (e.type === "notice") process.stderr.write(`! ${e.text}\n`);
    });

  let exitCode = 0;
  try {
    let outcome: Outcome = await engine.advance(threadId, { text: task, files: opts.data, requester: "cli" }, { serve: opts.serve, runner });
    const questions: string[] = [];
    while (outcome.kind === "interrupt") {
      const p = outcome.payload;
      if (p.kind === "approval" && opts.yes) outcome = await engine.advance(threadId, { kind: "approve", planId: "best" }, { serve: opts.serve, runner });
      else if (answers.length) outcome = await engine.advance(threadId, { kind: "answer", text: answers.shift()!, files: [] }, { serve: opts.serve, runner });
      else {
        questions.push(questionText(p));
        break;
      }
    }
    const state = outcome.state;
    const status = outcome.kind === "interrupt" ? "needs_input" : (state.report?.status ?? state.status);
    const result = toCliResult(state, status === "running" ? "failed" : status, questions, startedAt);
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printHuman(result, state);
    if (result.status === "failed") exitCode = 1;
    if (opts.serve && result.endpoint?.serving) {
      process.stderr.write(`Serving at ${result.endpoint.url}; press Ctrl-C to stop.\n`);
      await new Promise<void>((done) => {
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      });
    }
  } finally {
    await engine.close();
  }
  return exitCode;
}

function printHuman(result: CliResultT, state: State): void {
  const lines = [`Status: ${result.status}`];
  if (result.questions) lines.push(...result.questions.map((q) => `Question: ${q}`));
  if (result.error) lines.push(`Error: ${result.error}`);
  if (result.questions && result.data.length) lines.push(...result.data);
  if (state.report) lines.push(...state.report.summary, ...result.training);
  for (const [k, v] of Object.entries(result.metrics)) lines.push(`  ${k}: ${v}`);
  for (const c of result.constraints) lines.push(`  ${c.name} ${c.op} ${c.target}: ${c.actual ?? "n/a"} (${c.met === null ? "not measured" : c.met ? "met" : "NOT met"})`);
  if (result.endpoint) lines.push(`Endpoint: ${result.endpoint.url} (check ${result.endpoint.check.ok ? "ok" : "failed"})`);
  if (result.artifacts.report) lines.push(`Report: ${result.artifacts.report}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function startCommand(): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? "warn");
  // Redis (and its client library) only when configured; otherwise everything lives in this process.
  const store = await openStore(config, logger);
  const engine = await createEngine({ config, logger, checkpointer: store.checkpointer });
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => (finish = r));
  const chat = await createChatAdapters(config, logger);
  // With no chat platform configured, the terminal is the chat.
  const adapters = chat.length ? chat : [new ShellAdapter({ onExit: () => finish() })];
  const service = new ConversationService(engine, adapters, { approvers: config.approvers, logger, store, leaseTtlMs: config.redis.leaseTtlS * 1000 });
  const check = await engine.runner(config.defaultRunner).check();
  if (!check.ok) process.stderr.write(`Warning: ${check.message}\n`);
  // A remote host without bubblewrap works, but its jobs run unsandboxed: say so where the operator looks.
  else if (check.sandbox === "limits-only" && (config.runners[config.defaultRunner]?.kind ?? "local") !== "local") process.stderr.write(`Warning: ${check.message}\n`);
  await service.start();
  if (chat.length) {
    // On Linux this lowers the calling (main) thread only: the Slack connection thread keeps acknowledging
    // at full priority, and training jobs and model servers started from here inherit the lower one.
    if (config.workNice > 0)
      try {
        os.setPriority(0, Math.max(os.getPriority(0), config.workNice));
      } catch (err) {
        logger.warn({ err }, "could not lower the priority of graph work");
      }
    process.stderr.write(`ThreadML is listening on ${chat.map((a) => a.platform).join(" and ")}; Ctrl-C stops it.\n`);
  }
  process.once("SIGINT", () => finish());
  process.once("SIGTERM", () => finish());
  await done;
  if (store.kind === "memory") {
    await service.stop().catch((err) => logger.warn({ err }, "stopping the chat adapters failed"));
    await engine.close();
    return 0;
  }
  // With a shared store nothing is lost by leaving now: running jobs stay up and the next process
  // (or another replica) resumes every conversation from its checkpoint.
  await service.stop({ drain: false }).catch((err) => logger.warn({ err }, "stopping the chat adapters failed"));
  await engine.detach();
  await store.close().catch(() => {});
  process.exit(0);
}

export function buildProgram(): Command {
  const program = new Command("threadml").description("ThreadML: an ML engineer in a chat thread").showHelpAfterError();
  program
    .command("run")
    .description("run one conversation headlessly, from a task to a checked endpoint")
    .argument("<task>", "the task, in words")
    .option("--thread <name>", "continue (or start) a named conversation: answers, approvals and follow-ups across runs")
    .option("--data <file>", "a data file (repeatable)", collect, [])
    .option("--yes", "approve the recommended plan", false)
    .option("--answer <text>", "answer the next clarifying question (repeatable, in order)", collect, [])
    .addOption(new Option("--engine <engine>", "offline or llm").choices(["offline", "llm"]))
    .option("--runner <name>", "runner to train on (default: the configured default)")
    .option("--json", "print one JSON object as the last line of stdout", false)
    .option("--serve", "keep the model server running after its check", false)
    .action(async (task: string, opts: RunOptions) => {
      process.exitCode = await runCommand(task, opts);
    });
  program
    .command("models")
    .description("the deployment registry: `models list`, `models stop NAME`")
    .argument("<action>", "list or stop")
    .argument("[name]", "the model to stop")
    .option("--json", "print JSON", false)
    .action(async (action: string, name: string | undefined, opts: { json: boolean }) => {
      process.exitCode = await modelsCommand(action, name, opts);
    });
  program
    .command("start", { isDefault: true })
    .description("start the bot: Slack/Discord when configured, else the terminal")
    .action(async () => {
      process.exitCode = await startCommand();
    });
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : `ThreadML failed: ${(err as Error).stack ?? err}`;
    if (argv.includes("--json")) process.stdout.write(`${JSON.stringify(failedResult(message))}\n`);
    process.stderr.write(`${message}\n`);
    process.exitCode = 1;
  }
}
