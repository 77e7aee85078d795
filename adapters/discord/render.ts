import { statSync } from "node:fs";
import { basename } from "node:path";
import {
  ButtonStyle,
  ComponentType,
  TextInputStyle,
  escapeMarkdown,
  type APIActionRowComponent,
  type APIButtonComponentWithCustomId,
  type APIComponentInMessageActionRow,
  type APIEmbed,
  type APIModalInteractionResponseCallbackData,
} from "discord.js";
import type { Plan, Question } from "../../graphs/automl/agents/types.js";
import { fmt, oneLine } from "../../graphs/automl/format.js";
import type { Report } from "../../graphs/automl/state.js";
import { STAGE_LABELS, progressBar, type StatusView } from "../../src/conversation/status.js";
import { fitTable } from "../bounded.js";
import { FOLLOW_UP_ACTIONS, FOLLOW_UP_LABELS, type Decision, type FollowUpAction, type Outbound } from "../types.js";
import { buildEmbeds, type EmbedDraft } from "./embeds.js";
import { choiceIds, ids } from "./ids.js";
import { LIMITS, chunks, clip, codeBlock, codeBlockOverhead } from "./limits.js";

// Outbound messages as Discord messages: content, embeds, buttons and files. No I/O except file sizes,
// which are injectable so tests can stay pure.

export type Row = APIActionRowComponent<APIComponentInMessageActionRow>;

export interface DiscordMessage {
  content: string;
  embeds: APIEmbed[];
  components: Row[];
  files: Array<{ attachment: string; name: string }>;
}

export interface RenderOptions {
  /** Whether the bot reads thread replies that do not mention it (the Message Content intent). */
  readsReplies: boolean;
  /** Size of a file in bytes, or null when it is missing. */
  fileSize?: (path: string) => number | null;
}

export const COLORS = { working: 0x5865f2, ok: 0x2ea043, warn: 0xd29922, bad: 0xda3633, muted: 0x8b949e } as const;

/** Leaves space for the controls row under the choices. */
const MAX_CHOICE_BUTTONS = (LIMITS.rows - 1) * LIMITS.buttonsPerRow;

type Style = ButtonStyle.Primary | ButtonStyle.Secondary | ButtonStyle.Success | ButtonStyle.Danger;

const button = (custom_id: string, label: string, style: Style = ButtonStyle.Secondary): APIButtonComponentWithCustomId => ({
  type: ComponentType.Button,
  custom_id,
  label: clip(label, LIMITS.buttonLabel) || "—",
  style,
});

const rowsOf = (buttons: APIButtonComponentWithCustomId[]): Row[] => {
  const rows: Row[] = [];
  for (let i = 0; i < buttons.length; i += LIMITS.buttonsPerRow) rows.push({ type: ComponentType.ActionRow, components: buttons.slice(i, i + LIMITS.buttonsPerRow) });
  return rows;
};

const defaultFileSize = (path: string): number | null => {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
};

export function render(message: Outbound, options: RenderOptions): DiscordMessage[] {
  switch (message.kind) {
    case "text":
      return chunks(message.text).map((content) => ({ content, embeds: [], components: [], files: [] }));
    case "question":
      return [renderQuestion(message.question, options)];
    case "plans":
      return [renderPlans(message.plans, message.notices, message.decided, options, message.reading, message.data)];
    case "status":
      return [renderStatus(message.status)];
    case "report":
      return [renderReport(message.report, options.fileSize ?? defaultFileSize, { model: message.model, followUps: message.followUps })];
    case "file":
      return [renderFile(message.path, message.name, message.lines, options.fileSize ?? defaultFileSize)];
    case "table":
      return [renderTable(message.title, message.header, message.rows, message.notes)];
  }
}

export function renderQuestion(q: Question, options: RenderOptions): DiscordMessage {
  const reply = options.readsReplies ? "reply in this thread" : "reply with a mention of me";
  const free = q.allowFreeText && q.slot !== "dataset";
  let hint: string;
  if (q.slot === "dataset") hint = `Attach the file (a CSV, or a zip of labelled images or of a graph's node and edge tables) to a message in this thread (${options.readsReplies ? "a plain reply is enough" : "mention me in it"}).`;
  else if (q.choices.length) hint = `Pick one below${free ? `, press **Type an answer…**, or ${reply}` : ""}.`;
  else hint = free ? `Press **Type an answer…**, or ${reply}.` : "";
  const content = clip([q.text, hint].filter(Boolean).join("\n"), LIMITS.content);

  const rows: Row[] = [];
  const values = q.choices.map((c) => c.value);
  if (q.choices.length > MAX_CHOICE_BUTTONS) {
    const optionValues = choiceIds("", values.slice(0, LIMITS.selectOptions), LIMITS.selectOptionValue);
    rows.push({
      type: ComponentType.ActionRow,
      components: [
        {
          type: ComponentType.StringSelect,
          custom_id: ids.pick,
          placeholder: "Choose…",
          options: q.choices.slice(0, LIMITS.selectOptions).map((c, i) => ({ label: clip(c.label, LIMITS.selectLabel) || "—", value: optionValues[i] })),
        },
      ],
    });
  } else if (q.choices.length) {
    // Choices come most likely first, so the first one stands out.
    const answerIds = choiceIds("answer", values);
    rows.push(...rowsOf(q.choices.map((c, i) => button(answerIds[i], c.label, i === 0 ? ButtonStyle.Primary : ButtonStyle.Secondary))));
  }
  const controls = [...(free ? [button(ids.free, "Type an answer…")] : []), button(ids.cancel, "Cancel", ButtonStyle.Danger)];
  rows.push(...rowsOf(controls));
  return { content, embeds: [], components: rows, files: [] };
}

/**
 * User-derived text shown as itself: markdown, masked links and `<…>` forms (mentions, channels, custom
 * emoji) escaped, @everyone and @here broken by a zero-width space, and control characters made spaces so
 * it stays on its line. Pings are off anyway (allowedMentions), but a mention would still render as one.
 */
export function plainText(text: string): string {
  return escapeMarkdown(text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " "), { maskedLink: true })
    .replace(/</g, "\\<")
    .replace(/@(everyone|here)\b/g, "@\u200b$1");
}

export function renderPlans(
  plans: Plan[],
  notices: string[],
  decided: Decision | undefined,
  options: RenderOptions,
  reading?: string,
  data: string[] = [],
): DiscordMessage {
  const n = plans.length;
  // The reading first, so a misreading is seen before anything trains, then how the data was read.
  const head = [...(reading ? [reading] : []), ...data].map(plainText).join("\n");
  const intro = decided
    ? `Decision: <@${decided.by}> ${decided.text}.`
    : `I have ${n} plan${n === 1 ? "" : "s"}. **Approve** evaluates every plan and builds the best one; **Build plan N** builds only that plan; **Revise…** re-plans with your feedback.` +
      (options.readsReplies ? ` You can also reply \`a\`, \`1\`-\`${n}\`, \`r <what to change>\` or \`c\`.` : "");
  const drafts: EmbedDraft[] = plans.map((p, i) => ({
    title: `Plan ${i + 1} — ${p.title}`,
    description: { text: p.summary },
    color: decided ? COLORS.muted : COLORS.working,
    fields: [
      { name: "Models", value: { text: p.models.map((m) => m.label).join(", ") } },
      ...(p.preprocessing.length ? [{ name: "Data", value: { text: p.preprocessing.join("; ") } }] : []),
      { name: "Training", value: { text: p.training } },
      { name: "Why", value: { text: p.rationale } },
      ...(p.notices.length ? [{ name: "Note", value: { text: p.notices.join("\n") } }] : []),
    ],
  }));
  if (notices.length) drafts.push({ title: "Notes", description: { text: notices.map((t) => `• ${t}`).join("\n") }, color: COLORS.warn });
  // "best" first, so a plan that happened to be called "best" gets its index instead.
  const [best, ...planIds] = choiceIds("approve", ["best", ...plans.slice(0, LIMITS.buttonsPerRow).map((p) => p.id)]);
  const components: Row[] = decided
    ? []
    : [
        ...rowsOf(planIds.map((id, i) => button(id, `Build plan ${i + 1}`))),
        ...rowsOf([
          button(best, "Approve (build the best)", ButtonStyle.Success),
          button(ids.revise, "Revise…", ButtonStyle.Primary),
          button(ids.cancel, "Cancel", ButtonStyle.Danger),
        ]),
      ];
  // The instructions always fit: the reading and data lines give way first.
  const content = head ? `${clip(head, LIMITS.content - intro.length - 1)}\n${intro}` : intro;
  return { content: clip(content, LIMITS.content), embeds: buildEmbeds(drafts), components, files: [] };
}

const MARKS = { pending: "·", running: "▶", done: "✓", failed: "✗" } as const;

export function renderStatus(view: StatusView): DiscordMessage {
  const running = view.stages.some((s) => s.state === "running");
  const failed = view.stages.some((s) => s.state === "failed");
  const lines: string[] = [];
  if (view.progress) lines.push(`\`${progressBar(view.progress.done, view.progress.total)}\` ${view.progress.label}`);
  if (view.stages.length) lines.push(view.stages.map((s) => `${MARKS[s.state]} ${STAGE_LABELS[s.stage]}`).join("  "));
  // Validation and test metrics are what people watch; other names (e.g. search scores) come after.
  const names = Object.keys(view.metrics).sort((a, b) => Number(!/^(valid|test)_/.test(a)) - Number(!/^(valid|test)_/.test(b)));
  const drafts: EmbedDraft[] = [
    {
      title: view.current ? STAGE_LABELS[view.current] : "Working",
      description: { text: lines.join("\n") || "Starting…" },
      color: running ? COLORS.working : failed ? COLORS.bad : COLORS.ok,
      fields: [
        ...names.slice(0, 9).map((name) => ({ name, value: { text: fmt(view.metrics[name]) }, inline: true })),
        ...(view.notices.length ? [{ name: "Notes", value: { text: view.notices.slice(-3).join("\n") } }] : []),
      ],
    },
  ];
  const components = running ? rowsOf([button(ids.stop, "Cancel job", ButtonStyle.Danger)]) : [];
  return { content: "", embeds: buildEmbeds(drafts), components, files: [] };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

const REPORT_COLORS: Record<Report["status"], number> = {
  deployed: COLORS.ok,
  trained: COLORS.ok,
  running: COLORS.working,
  needs_input: COLORS.warn,
  rejected: COLORS.warn,
  cancelled: COLORS.muted,
  failed: COLORS.bad,
};

/** A name Discord accepts for an attachment, unique within the message. */
function attachmentName(path: string, taken: Set<string>): string {
  const base = basename(path).replace(/[^A-Za-z0-9._-]/g, "_").slice(-80) || "file";
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${i}-${base}`;
  taken.add(name);
  return name;
}

/**
 * A table from data or the registry as the text of a code block that is at most `max` characters with its
 * fences: cells on one line, rows that do not fit counted in a last line (codeBlock defuses backticks).
 */
export function tableText(header: string[], rows: string[][], max: number): string {
  // Each ``` inside grows by one character once defused: count it so the block stays within `max`.
  const measure = (t: string) => t.length + (t.match(/```/g)?.length ?? 0);
  return fitTable(header, rows, { max: max - codeBlockOverhead(), measure });
}

/** A small table (the thread's models) as one message: heading, code block, notes; 2000 characters at most. */
export function renderTable(title: string, header: string[], rows: string[][], notes: string[] = []): DiscordMessage {
  const heading = `**${plainText(oneLine(title, 200))}**`;
  const after = notes.length ? clip(notes.map((n) => plainText(n)).join("\n"), 500) : "";
  const room = LIMITS.content - heading.length - (after ? after.length + 1 : 0) - 1;
  const content = [heading, codeBlock(tableText(header, rows, room)), ...(after ? [after] : [])].join("\n");
  return { content, embeds: [], components: [], files: [] };
}

/** Why a file cannot go with a message, or null when it can. */
function unattachable(size: number | null): string | null {
  if (size === null) return "missing";
  if (size > LIMITS.fileBytes) return `${(size / 1048576).toFixed(1)} MB, over the ${LIMITS.fileBytes / 1048576} MB a bot may attach`;
  return null;
}

/**
 * A file posted into the thread, with its lines as the message (the headline in bold). The lines quote file
 * names, column names and values, so they are escaped; a file that cannot be attached is named instead.
 */
export function renderFile(path: string, name: string, lines: string[], fileSize: (path: string) => number | null = defaultFileSize): DiscordMessage {
  const [headline = name, ...rest] = lines.map((l) => plainText(oneLine(l, 1000)));
  const why = unattachable(fileSize(path));
  const shown = attachmentName(name, new Set());
  const note = why ? `I couldn't attach ${shown} (${why}); it is kept on the ThreadML host.` : "";
  const body = [`**${headline}**`, ...rest].join("\n");
  const content = note ? `${clip(body, LIMITS.content - note.length - 1)}\n${note}` : clip(body, LIMITS.content);
  return { content, embeds: [], components: [], files: why ? [] : [{ attachment: path, name: shown }] };
}

/** The report's follow-up buttons, in one row. */
function followUpRow(actions: FollowUpAction[]): Row[] {
  const wanted = FOLLOW_UP_ACTIONS.filter((a) => actions.includes(a));
  return rowsOf(wanted.map((a) => button(ids.followup(a), FOLLOW_UP_LABELS[a], a === "undeploy" ? ButtonStyle.Danger : ButtonStyle.Secondary)));
}

export interface ReportExtras {
  /** The model's name in the deployment registry. */
  model?: string;
  followUps?: FollowUpAction[];
}

export function renderReport(report: Report, fileSize: (path: string) => number | null = defaultFileSize, extras: ReportExtras = {}): DiscordMessage {
  const fields: NonNullable<EmbedDraft["fields"]> = [];
  const metricNames = Object.keys(report.metrics);
  if (metricNames.length)
    fields.push({ name: "Test-split metrics", value: { code: "", text: table([["metric", "value"], ...metricNames.map((m) => [m, fmt(report.metrics[m])])]) } });
  if (report.constraints.length)
    fields.push({
      name: "Constraints",
      value: {
        code: "",
        text: table([
          ["constraint", "target", "actual", "met"],
          ...report.constraints.map((c) => [c.name, `${c.op} ${c.target}`, fmt(c.actual), c.met === null ? "not measured" : c.met ? "yes" : "NO"]),
        ]),
      },
    });
  if (report.training?.length) fields.push({ name: "How it was trained", value: { text: report.training.map((t) => `• ${plainText(t)}`).join("\n") } });
  if (report.endpoint)
    fields.push({
      name: "Endpoint",
      value: { text: `${report.endpoint.url} (${report.endpoint.serving ? "serving" : "stopped"}; check ${report.endpoint.check.ok ? "ok" : "failed"})` },
    });
  // Inline code shows the name as written; a backtick in it could end the span, so it becomes a look-alike.
  if (extras.model) fields.push({ name: "Registered as", value: { text: `\`${oneLine(extras.model, 100).replace(/`/g, "\u02cb")}\`` } });
  if (report.comparison?.header.length)
    fields.push({ name: "Compared with this thread's earlier models", value: { code: "", text: tableText(report.comparison.header, report.comparison.rows, LIMITS.fieldValue) } });

  // Plots and report.md travel as attachments; what cannot be attached is named instead.
  const taken = new Set<string>();
  const files: DiscordMessage["files"] = [];
  const skipped: string[] = [];
  const a = report.artifacts;
  // The bundle first: it is the one file that takes the model elsewhere.
  for (const path of [...(a.bundle ? [a.bundle] : []), ...a.plots, ...(a.report ? [a.report] : [])]) {
    const size = fileSize(path);
    if (size === null) skipped.push(`${basename(path)} (missing)`);
    else if (size > LIMITS.fileBytes) skipped.push(`${basename(path)} (too large to attach)`);
    else if (files.length >= LIMITS.filesPerMessage) skipped.push(`${basename(path)} (attachment limit)`);
    else files.push({ attachment: path, name: attachmentName(path, taken) });
  }
  const artifacts = [a.model && `model: ${a.model}`, a.code && `code: ${a.code}`, a.report && `report: ${a.report}`].filter(Boolean) as string[];
  if (artifacts.length) fields.push({ name: "Artifacts (on the ThreadML host)", value: { text: artifacts.join("\n") } });
  const notes = [...report.notices, ...(skipped.length ? [`Not attached: ${skipped.join(", ")}.`] : [])];
  if (notes.length) fields.push({ name: "Notes", value: { text: notes.map((t) => `• ${t}`).join("\n") } });

  const plot = files.find((f) => /\.(png|jpe?g|gif|webp)$/i.test(f.name));
  const drafts: EmbedDraft[] = [
    {
      title: report.title,
      description: { text: report.summary.join("\n") },
      color: REPORT_COLORS[report.status],
      fields,
      footer: report.llm
        ? `LLM: ${report.llm.calls} calls, ${report.llm.prompt_tokens + report.llm.completion_tokens} tokens, about $${report.llm.cost_usd.toFixed(4)}`
        : undefined,
      image: plot?.name,
    },
  ];
  if (report.curl && report.endpoint?.serving) drafts.push({ title: "Try it", description: { code: "sh", text: report.curl }, color: REPORT_COLORS[report.status] });
  return { content: "", embeds: buildEmbeds(drafts), components: followUpRow(extras.followUps ?? []), files };
}

/** The modal behind "Type an answer…" and "Revise…" (title ≤ 45 characters, one text input). */
export function renderModal(purpose: "answer" | "revise", question?: string): APIModalInteractionResponseCallbackData {
  return {
    custom_id: ids.modal(purpose),
    title: purpose === "answer" ? "Your answer" : "Revise the plans",
    components: [
      {
        type: ComponentType.Label,
        label: purpose === "answer" ? "Answer" : "What should change?",
        ...(question ? { description: clip(question, 100) } : {}),
        component: {
          type: ComponentType.TextInput,
          custom_id: ids.text,
          style: purpose === "answer" ? TextInputStyle.Short : TextInputStyle.Paragraph,
          required: true,
          min_length: 1,
          max_length: purpose === "answer" ? 200 : 1000,
          ...(purpose === "revise" ? { placeholder: "e.g. use a random forest, no logistic regression" } : {}),
        },
      },
    ],
  };
}
