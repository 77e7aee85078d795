import type { ActionsBlock, Button, ContextBlock, KnownBlock, ModalView, SectionBlock } from "@slack/types";
import type { Plan, Question } from "../../graphs/automl/agents/types.js";
import { fmt, oneLine } from "../../graphs/automl/format.js";
import type { Report } from "../../graphs/automl/state.js";
import { STAGE_LABELS, progressBar, type StatusView } from "../../src/conversation/status.js";
import { renderStatusLine } from "../shell/render.js";
import { fitTable } from "../bounded.js";
import { FOLLOW_UP_ACTIONS, FOLLOW_UP_LABELS, type Decision, type FollowUpAction, type Outbound } from "../types.js";
import { safeFileName } from "./files.js";
import { ACTION, REVISE_BLOCK, REVISE_INPUT, REVISE_VIEW, followUpActionId } from "./ids.js";
import type { ReviseMetadata } from "./payloads.js";

// Block Kit renderings of the outbound message kinds. Pure functions: easy to test, and every Slack
// limit (block count, text lengths) is applied here, once.

export interface Rendered {
  /** Notification and fallback text. */
  text: string;
  blocks: KnownBlock[];
}

const LIMITS = { blocks: 50, section: 3000, header: 150, button: 75, value: 2000, fields: 10, field: 2000, buttons: 10, options: 100, fallback: 3000 };

/** Cuts text to `max` characters, marking the cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Escapes the three characters mrkdwn treats as markup. */
export const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A user mention when `id` looks like a Slack user id, else the name as given. */
const who = (id: string) => (/^[UW][A-Z0-9]{2,}$/.test(id) ? `<@${id}>` : esc(id));

const section = (text: string, accessory?: Button): SectionBlock => ({
  type: "section",
  text: { type: "mrkdwn", text: clip(text, LIMITS.section) },
  ...(accessory ? { accessory } : {}),
});

const context = (...texts: string[]): ContextBlock => ({
  type: "context",
  elements: texts.slice(0, 10).map((t) => ({ type: "mrkdwn" as const, text: clip(t, LIMITS.section) })),
});

function button(actionId: string, label: string, value: string, style?: "primary" | "danger"): Button {
  return {
    type: "button",
    action_id: actionId,
    text: { type: "plain_text", text: clip(label, LIMITS.button), emoji: true },
    value: clip(value, LIMITS.value),
    ...(style ? { style } : {}),
  };
}

/** A code block: mrkdwn still needs its markup characters escaped inside. */
const code = (text: string) => `\`\`\`${esc(text)}\`\`\``;

/**
 * A table from data or the registry (column names, values, model names: any text) as a code block that fits
 * in `max` characters: cells on one line, backticks (which could close the block) shown as look-alikes,
 * markup escaped, and rows that do not fit counted in a last line.
 */
export function codeTable(header: string[], rows: string[][], max: number): string {
  const text = fitTable(header, rows, { max: max - code("").length, measure: (t) => esc(t).length, clean: (c) => c.replace(/`/g, "\u02cb") });
  return code(text);
}

/** A name (a registered model's) in inline code: one line, and no backtick to break out of it. */
const codeName = (name: string) => `\`${esc(oneLine(name, 80).replace(/`/g, "\u02cb"))}\``;

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

const finish = (text: string, blocks: KnownBlock[]): Rendered => ({ text: clip(text, LIMITS.fallback), blocks: blocks.slice(0, LIMITS.blocks) });

export function renderQuestion(q: Question, answered = false): Rendered {
  const blocks: KnownBlock[] = [section(esc(q.text))];
  const fallback = [q.text, ...q.choices.map((c, i) => `${i + 1}) ${c.label}`)].join("\n");
  if (answered) return finish(fallback, [...blocks, context("✔ Answered; the conversation continues below.")]);
  if (q.choices.length && q.choices.length <= LIMITS.buttons) {
    const actions: ActionsBlock = { type: "actions", elements: q.choices.map((c, i) => button(`${ACTION.answer}.${i}`, c.label, c.value)) };
    blocks.push(actions);
  } else if (q.choices.length) {
    blocks.push({
      type: "actions",
      elements: [
        {
          type: "static_select",
          action_id: ACTION.answer,
          placeholder: { type: "plain_text", text: "Choose…" },
          options: q.choices.slice(0, LIMITS.options).map((c) => ({ text: { type: "plain_text" as const, text: clip(c.label, LIMITS.button) }, value: clip(c.value, 150) })),
        },
      ],
    });
  }
  const hint = !q.choices.length ? "Reply in this thread." : q.allowFreeText ? "Click a choice, or reply in this thread with your answer." : "Click a choice.";
  blocks.push(context(hint));
  return finish(fallback, blocks);
}

export function renderPlans(plans: Plan[], recommended: string, notices: string[], decided?: Decision, reading?: string, data: string[] = []): Rendered {
  const count = `${plans.length} plan${plans.length === 1 ? "" : "s"}`;
  // The reading first, so a misreading is seen before anything trains, then how the data was read. Both name
  // columns (user input), so they go out as plain text: no mrkdwn, no mentions, no emoji codes.
  const blocks: KnownBlock[] = reading ? [{ type: "section", text: { type: "plain_text", text: clip(reading, LIMITS.section), emoji: false } }] : [];
  if (data.length)
    blocks.push({ type: "context", elements: data.slice(0, 10).map((line) => ({ type: "plain_text" as const, text: clip(line, LIMITS.section), emoji: false })) });
  blocks.push(section(decided ? `*I had ${count}:*` : `*I have ${count}.* Approve to evaluate every plan and build the best, build one plan, revise, or cancel.`));
  plans.forEach((p, i) => {
    const lines = [`*Plan ${i + 1} — ${esc(p.title)}*${p.id === recommended ? " (recommended)" : ""}`, esc(p.summary)];
    if (p.preprocessing.length) lines.push(`*Data:* ${esc(p.preprocessing.join("; "))}`);
    lines.push(`*Training:* ${esc(p.training)}`, `*Why:* ${esc(p.rationale)}`);
    blocks.push({ type: "divider" }, section(lines.join("\n"), decided ? undefined : button(`${ACTION.approve}.plan.${i + 1}`, `Build plan ${i + 1}`, p.id)));
  });
  if (notices.length) blocks.push(context(...notices.map((n) => `Note: ${esc(n)}`)));
  if (decided) blocks.push(context(`*Decision:* ${who(decided.by)} ${esc(decided.text)}.`));
  else {
    const cancel = button(ACTION.cancel, "Cancel", "cancel", "danger");
    cancel.confirm = {
      title: { type: "plain_text", text: "Cancel this request?" },
      text: { type: "plain_text", text: "Nothing will be trained." },
      confirm: { type: "plain_text", text: "Cancel it" },
      deny: { type: "plain_text", text: "Keep it" },
    };
    blocks.push({
      type: "actions",
      elements: [button(`${ACTION.approve}.best`, "Approve: build the best", "best", "primary"), button(ACTION.revise, "Revise…", "revise"), cancel],
    });
  }
  const titles = plans.map((p, i) => `${i + 1}) ${p.title}`).join("; ");
  const text = decided ? `Plans: ${titles}. Decision: ${decided.text}.` : `I have ${count}: ${titles}. Approve, revise or cancel.`;
  // The notification text keeps its "I have N plans" start (what people and tools look for) and ends with the reading.
  return finish(reading ? `${text}\n${esc(reading)}` : text, blocks);
}

const MARK = { pending: "▫️", running: "⏳", done: "✅", failed: "❌" } as const;

export function renderStatus(view: StatusView, final = false): Rendered {
  const title = view.current ? STAGE_LABELS[view.current] : "Working";
  const bar = view.progress ? ` \`${progressBar(view.progress.done, view.progress.total)}\` ${esc(view.progress.label)}` : "";
  const blocks: KnownBlock[] = [section(`*${title}*${bar}`)];
  if (view.stages.length) blocks.push(section(view.stages.map((s) => `${MARK[s.state]} ${STAGE_LABELS[s.stage]}`).join("\n")));
  // Validation and test metrics are what the user watches; others (timings, sizes) follow if room is left.
  const names = Object.keys(view.metrics);
  const shown = [...names.filter((n) => /^(valid|test)_/.test(n)), ...names.filter((n) => !/^(valid|test)_/.test(n))].slice(0, LIMITS.fields);
  if (shown.length)
    blocks.push({ type: "section", fields: shown.map((n) => ({ type: "mrkdwn" as const, text: clip(`*${esc(n)}*\n${fmt(view.metrics[n])}`, LIMITS.field) })) });
  if (view.notices.length) blocks.push(context(...view.notices.slice(-3).map((n) => `Note: ${esc(n)}`)));
  // While a stage runs it can be stopped: the button, an :x: reaction on this message, or a `cancel` reply.
  if (!final && view.stages.some((s) => s.state === "running")) {
    blocks.push({ type: "actions", elements: [button(ACTION.cancel, "Cancel", "cancel", "danger")] });
    blocks.push(context("Or react with :x: to this message, or reply `cancel`."));
  }
  return finish(renderStatusLine(view), blocks);
}

export interface ReportExtras {
  /** The model's name in the deployment registry. */
  model?: string;
  followUps?: FollowUpAction[];
}

/** The report's follow-up buttons; stopping the server asks first. */
function followUpButtons(actions: FollowUpAction[]): ActionsBlock | null {
  const wanted = FOLLOW_UP_ACTIONS.filter((a) => actions.includes(a));
  if (!wanted.length) return null;
  const elements = wanted.map((a) => {
    const b = button(followUpActionId(a), FOLLOW_UP_LABELS[a], a, a === "undeploy" ? "danger" : undefined);
    if (a === "undeploy")
      b.confirm = {
        title: { type: "plain_text", text: "Stop serving this model?" },
        text: { type: "plain_text", text: "Its endpoint stops answering; the model and its bundle are kept." },
        confirm: { type: "plain_text", text: "Stop serving" },
        deny: { type: "plain_text", text: "Keep serving" },
      };
    return b;
  });
  return { type: "actions", elements };
}

export function renderReport(report: Report, extras: ReportExtras = {}): Rendered {
  const blocks: KnownBlock[] = [{ type: "header", text: { type: "plain_text", text: clip(report.title, LIMITS.header), emoji: true } }];
  if (report.summary.length) blocks.push(section(esc(report.summary.join("\n"))));
  const metricNames = Object.keys(report.metrics);
  if (metricNames.length) blocks.push(section(`*Test-split metrics*\n${code(table([["metric", "value"], ...metricNames.map((m) => [m, fmt(report.metrics[m])])]))}`));
  if (report.constraints.length) {
    const rows = report.constraints.map((c) => [c.name, `${c.op} ${c.target}`, fmt(c.actual), c.met === null ? "not measured" : c.met ? "✅ met" : "❌ NOT met"]);
    blocks.push(section(`*Constraints*\n${code(table([["constraint", "target", "actual", "met"], ...rows]))}`));
  }
  // Column names from the data: plain text, so they cannot format, link or mention.
  if (report.training?.length)
    blocks.push(section("*How it was trained*"), {
      type: "section",
      text: { type: "plain_text", text: clip(report.training.map((t) => `• ${t}`).join("\n"), LIMITS.section), emoji: false },
    });
  if (report.endpoint) {
    const e = report.endpoint;
    blocks.push(section(`*Endpoint:* ${esc(e.url)} (${e.serving ? "serving" : "stopped"}; check ${e.check.ok ? "ok ✅" : "failed ❌"})`));
    if (report.curl && e.serving) blocks.push(section(`*Try it:*\n${code(report.curl)}`));
  }
  if (extras.model) blocks.push(section(`*Registered as* ${codeName(extras.model)}`));
  if (report.comparison?.header.length) {
    const heading = "*Compared with this thread's earlier models*\n";
    blocks.push(section(heading + codeTable(report.comparison.header, report.comparison.rows, LIMITS.section - heading.length)));
  }
  const a = report.artifacts;
  const files = [a.model && `model: \`${esc(a.model)}\``, a.code && `code: \`${esc(a.code)}\``, a.report && `report: \`${esc(a.report)}\``].filter((f): f is string => !!f);
  if (a.plots.length) files.push(`${a.plots.length} plot${a.plots.length === 1 ? "" : "s"}: attached below`);
  if (a.bundle) files.push("bundle (model, serving script, requirements, Dockerfile, model card): attached below");
  if (files.length) blocks.push(context(...files));
  if (report.llm)
    blocks.push(context(`LLM: ${report.llm.calls} calls, ${report.llm.prompt_tokens + report.llm.completion_tokens} tokens, about $${report.llm.cost_usd.toFixed(4)}`));
  if (report.notices.length) blocks.push(context(...report.notices.map((n) => `Note: ${esc(n)}`)));
  const buttons = followUpButtons(extras.followUps ?? []);
  // The buttons come last but must survive the block limit.
  const body = buttons ? [...blocks.slice(0, LIMITS.blocks - 1), buttons] : blocks;
  const endpoint = report.endpoint?.serving ? ` Endpoint: ${report.endpoint.url}` : "";
  const registered = extras.model ? ` Registered as ${esc(oneLine(extras.model, 80))}.` : "";
  return finish(`${report.title}.${endpoint}${registered}`, body);
}

/** A small table (the thread's models): a heading, the table as a code block, notes under it. */
export function renderTable(title: string, header: string[], rows: string[][], notes: string[] = []): Rendered {
  const heading = `*${esc(oneLine(title, 150))}*\n`;
  const blocks: KnownBlock[] = [section(heading + codeTable(header, rows, LIMITS.section - heading.length))];
  if (notes.length) blocks.push(context(...notes.map(esc)));
  // The notification text is mrkdwn too: escaped, so a name cannot ping the channel.
  return finish(`${esc(oneLine(title, 150))} (${rows.length} row${rows.length === 1 ? "" : "s"})`, blocks);
}

/**
 * The message that goes with a file posted into the thread: the headline in bold, the other lines as plain
 * text (they quote file names, column names and predicted values), and the name the file is uploaded under.
 */
export function renderFile(name: string, lines: string[]): Rendered {
  const [headline = name, ...rest] = lines.map((l) => oneLine(l, LIMITS.section));
  const blocks: KnownBlock[] = [section(`*${esc(headline)}*`)];
  if (rest.length) blocks.push({ type: "section", text: { type: "plain_text", text: clip(rest.join("\n"), LIMITS.section), emoji: false } });
  blocks.push(context(`${esc(safeFileName(name))}: attached below`));
  return finish(esc(headline), blocks);
}

export function renderText(text: string): Rendered {
  return finish(text, [section(esc(text))]);
}

export function render(message: Outbound): Rendered {
  switch (message.kind) {
    case "text":
      return renderText(message.text);
    case "question":
      return renderQuestion(message.question);
    case "plans":
      return renderPlans(message.plans, message.recommended, message.notices, message.decided, message.reading, message.data);
    case "status":
      return renderStatus(message.status);
    case "report":
      return renderReport(message.report, { model: message.model, followUps: message.followUps });
    case "file":
      return renderFile(message.name, message.lines);
    case "table":
      return renderTable(message.title, message.header, message.rows, message.notes);
  }
}

/** The modal that takes revision feedback; the thread and the plan card ride along in private_metadata. */
export function reviseModal(meta: ReviseMetadata): ModalView {
  return {
    type: "modal",
    callback_id: REVISE_VIEW,
    private_metadata: JSON.stringify(meta),
    title: { type: "plain_text", text: "Revise the plans" },
    submit: { type: "plain_text", text: "Re-plan" },
    close: { type: "plain_text", text: "Back" },
    blocks: [
      {
        type: "input",
        block_id: REVISE_BLOCK,
        label: { type: "plain_text", text: "What should change?" },
        element: {
          type: "plain_text_input",
          action_id: REVISE_INPUT,
          multiline: true,
          min_length: 1,
          max_length: 2000,
          placeholder: { type: "plain_text", text: "e.g. use a random forest, no logistic regression" },
        },
      },
    ],
  };
}
