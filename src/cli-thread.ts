import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { CliAdapter, type Posted } from "../adapters/cli/index.js";
import { threadKey, type Inbound, type Outbound } from "../adapters/types.js";
import type { Config } from "../config/schema.js";
import { ConversationService } from "./conversation/service.js";
import type { Engine } from "./engine.js";
import type { Logger } from "./logger.js";
import { CliResult, failedResult, type CliResultT } from "./schema/cli-result.js";
import type { ConversationStore, ModelEntry } from "./store/types.js";

// `threadml run --thread NAME` (docs/architecture.md §5, §9): a named conversation kept in the store,
// so that a later run with the same name continues it — answers a question, approves the plan card,
// or asks a follow-up of the model it trained (score a file, explain, retrain with a change, compare).

export const THREAD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ThreadRunOptions {
  runner?: string;
  data: string[];
  yes: boolean;
  answer: string[];
  serve: boolean;
}

/** What the run printed and how it ended. */
export interface ThreadRun {
  result: CliResultT;
  /** The model to stop when the user ends `--serve` (its registry entry says stopped afterwards). */
  serving: ModelEntry | null;
}

export async function runThread(
  name: string,
  task: string,
  opts: ThreadRunOptions,
  o: { engine: Engine; store: ConversationStore; config: Config; logger: Logger; toCliResult: (state: never, status: CliResultT["status"], questions: string[], startedAt: number) => CliResultT; startedAt: number },
): Promise<ThreadRun & { service: ConversationService }> {
  const adapter = new CliAdapter();
  // A one-off run neither serves other threads' models again nor takes over other conversations: it
  // resumes only its own thread, if a run that died left it mid-step.
  const service = new ConversationService(o.engine, [adapter], { approvers: o.config.approvers, logger: o.logger, store: o.store, serve: opts.serve, restoreModels: false, recoverOnStart: false, sweepIntervalMs: 0, ...(opts.runner ? { runner: opts.runner } : {}) });
  await service.start();
  const thread = CliAdapter.thread(name);
  const key = threadKey(thread);
  await service.recover(key);
  const answers = [...opts.answer];
  const base = { thread, user: "cli" };
  const message = (text: string, files: string[] = []): Inbound => ({ kind: "message", eventId: randomUUID(), ...base, text, files, mention: true });
  const all: Posted[] = [];
  const send = async (event: Inbound) => {
    const before = adapter.posted.length;
    await adapter.send(event);
    await service.idle();
    const fresh = adapter.posted.slice(before);
    all.push(...fresh);
    return fresh;
  };

  // A thread waiting on a question or plan card that this run answers (--answer, --yes): the card is
  // acted on directly, and the task text is not sent as one more answer.
  const meta0 = await o.store.getThread(key);
  const waiting = meta0?.status === "waiting" && (opts.yes || answers.length > 0) && !opts.data.length ? await o.engine.snapshot(meta0.graphThreadId) : null;
  const pending = waiting?.pending ?? null;
  let posted: Posted[];
  if (pending && meta0?.pendingMessageId) {
    const ref = { thread, id: meta0.pendingMessageId };
    const card: Outbound = pending.kind === "question" ? { kind: "question", question: pending.question } : { kind: "plans", plans: pending.plans, recommended: pending.recommended, notices: pending.notices };
    posted = [{ ref, message: card }];
  } else posted = await send(message(task, opts.data.map((f) => resolve(f))));
  const questions: string[] = [];
  for (let guard = 0; guard < 50; guard++) {
    const last = [...posted].reverse().find((p) => ["question", "plans", "report", "file", "table", "text"].includes(p.message.kind));
    const m = last?.message;
    if (m?.kind === "question") {
      if (answers.length) {
        posted = await send(message(answers.shift()!));
        continue;
      }
      const q = m.question;
      questions.push(q.choices.length ? `${q.text} Choices: ${q.choices.map((c) => c.label).join(", ")}.` : q.text);
    } else if (m?.kind === "plans" && !m.decided) {
      if (opts.yes) {
        posted = await send({ kind: "action", eventId: randomUUID(), ...base, action: "approve", value: "best", message: last!.ref });
        continue;
      }
      if (answers.length) {
        posted = await send(message(answers.shift()!));
        continue;
      }
      const reading = m.reading ? `${m.reading}. ` : "";
      questions.push(`${reading}Approve a plan? ${m.plans.map((p, i) => `${i + 1}) ${p.title}`).join("; ")}. Use --yes to approve, or --answer with a plan number or revision text.`);
    }
    break;
  }

  const meta = await o.store.getThread(key);
  const snap = meta ? await o.engine.snapshot(meta.graphThreadId) : null;
  const models = await service.registry.list(key);
  const report = all.find((p) => p.message.kind === "report")?.message as Extract<Outbound, { kind: "report" }> | undefined;
  const latest = models.at(-1) ?? null;
  const named = (r: CliResultT) => CliResult.parse({ ...r, thread: name });

  if (questions.length && snap) return { service, serving: null, result: named(o.toCliResult(snap.state as never, "needs_input", questions, o.startedAt)) };
  if (report && snap) {
    const state = snap.state;
    const status = report.report.status === "running" || report.report.status === "needs_input" ? "failed" : report.report.status;
    const model = report.model ? models.find((e) => e.name === report.model) ?? null : null;
    return { service, serving: model?.status === "serving" ? model : null, result: named({ ...o.toCliResult(state as never, status, [], o.startedAt), model: report.model ?? null }) };
  }
  // A follow-up: its answer is what the run posted last.
  const answer = [...all].reverse().find((p) => ["file", "table", "text"].includes(p.message.kind))?.message;
  const status: CliResultT["status"] = latest ? (latest.status === "serving" ? "deployed" : "trained") : "needs_input";
  const followup =
    answer?.kind === "file"
      ? { kind: "file" as const, lines: answer.lines, file: answer.path, table: null }
      : answer?.kind === "table"
        ? { kind: "table" as const, lines: [answer.title, ...(answer.notes ?? [])], file: null, table: { header: answer.header, rows: answer.rows } }
        : { kind: "text" as const, lines: answer?.kind === "text" ? answer.text.split("\n") : [], file: null, table: null };
  // A job that was started (scoring, explaining) and answered without its file failed.
  const opening = all.find((p) => p.message.kind === "text" && /^(Scoring|Measuring) /.test(p.message.text));
  const jobFailed = followup.kind === "text" && opening !== undefined && answer !== opening.message;
  const { error: _none, ...empty } = failedResult("");
  const result: CliResultT = {
    ...empty,
    status: jobFailed ? "failed" : status,
    metrics: latest?.metrics ?? {},
    constraints: latest?.constraints ?? [],
    ...(jobFailed ? { error: followup.lines.join(" ") } : {}),
    model: latest?.name ?? null,
    followup,
  };
  return { service, serving: null, result: named(result) };
}
