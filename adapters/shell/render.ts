import type { Plan, Question } from "../../graphs/automl/agents/types.js";
import { fmt } from "../../graphs/automl/format.js";
import type { Report } from "../../graphs/automl/state.js";
import { STAGE_LABELS, progressBar, type StatusView } from "../../src/conversation/status.js";
import { FOLLOW_UP_ACTIONS, type Decision, type FollowUpAction } from "../types.js";

// Plain-text renderings for the terminal. Kept free of I/O so they are easy to test.

export function renderQuestion(q: Question): string {
  const lines = [q.text];
  q.choices.forEach((c, i) => lines.push(`  ${i + 1}) ${c.label}`));
  if (q.choices.length) lines.push(q.allowFreeText ? "Type a number, or type your answer." : "Type a number.");
  return lines.join("\n");
}

/** One line of user-derived text for the terminal: control characters (escape sequences, line breaks) become spaces. */
const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");

export function renderPlans(plans: Plan[], notices: string[], decided?: Decision, reading?: string, data: string[] = []): string {
  const lines: string[] = [];
  // The reading comes first, so a misread target or threshold is seen before anything trains; then how the
  // data was read, so a wrongly typed or set-aside column is seen too.
  if (reading) lines.push(oneLine(reading));
  lines.push(...data.map(oneLine));
  if (lines.length) lines.push("");
  lines.push(`I have ${plans.length} plan${plans.length === 1 ? "" : "s"}:`);
  plans.forEach((p, i) => {
    lines.push("", `Plan ${i + 1} — ${p.title}`, `  ${p.summary}`);
    if (p.preprocessing.length) lines.push(`  Data: ${p.preprocessing.join("; ")}`);
    lines.push(`  Training: ${p.training}`, `  Why: ${p.rationale}`);
  });
  if (notices.length) lines.push("", ...notices.map((n) => `Note: ${oneLine(n)}`));
  if (decided) lines.push("", `Decision: ${decided.by} ${decided.text}.`);
  else
    lines.push(
      "",
      `Reply a to approve (I evaluate every plan and build the best), 1-${plans.length} to build one plan, r <what to change> to revise, c to cancel.`,
    );
  return lines.join("\n");
}

export function renderStatusLine(view: StatusView): string {
  const stage = view.current ? STAGE_LABELS[view.current] : "Working";
  const bar = view.progress ? ` ${progressBar(view.progress.done, view.progress.total)} ${view.progress.label}` : "";
  const metrics = Object.entries(view.metrics)
    .filter(([k]) => k.startsWith("valid_") || k.startsWith("test_"))
    .slice(-3)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(", ");
  return `${stage}${bar}${metrics ? ` · ${metrics}` : ""}`;
}

export function renderStatusFull(view: StatusView): string {
  const mark = { pending: " ", running: "…", done: "✓", failed: "✗" } as const;
  return view.stages.map((s) => `[${mark[s.state]}] ${STAGE_LABELS[s.stage]}`).join("  ");
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, j) => {
    // Only inner columns need padding; padding the last one leaves trailing spaces on every row.
    const line = r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd();
    return j === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
  });
}

/** A cell or name from data or the registry: on one line, at most 60 characters. */
const cell = (text: unknown) => {
  const line = oneLine(typeof text === "string" ? text : String(text ?? "")).trim();
  return line.length <= 60 ? line : `${line.slice(0, 59)}…`;
};

/** A table whose cells come from data or the registry; rows are fitted to the header's columns. */
const dataTable = (header: string[], rows: string[][]) => table([header, ...rows].map((r) => header.map((_, i) => cell(r[i]))));

export function renderTable(title: string, header: string[], rows: string[][], notes: string[] = []): string {
  const lines = [`${oneLine(title)}:`, ...(header.length ? dataTable(header, rows) : []), ...notes.map(oneLine)];
  return lines.join("\n");
}

/** A file the conversation wrote (predictions, a plot): what it is, and where it is. */
export function renderFile(path: string, lines: string[]): string {
  return [...lines.map(oneLine), `File: ${oneLine(path)}`].join("\n");
}

export interface ReportExtras {
  model?: string;
  followUps?: FollowUpAction[];
}

/** What can be typed after a report: the follow-ups it offers, the registry, and a file to score. */
export function nextHint(followUps: FollowUpAction[]): string {
  const words = [...FOLLOW_UP_ACTIONS.filter((a) => followUps.includes(a)), "models"].map((w) => `\`${w}\``);
  return `Next: type ${words.join(", ")}, or a file path to score, or a change to retrain with.`;
}

export function renderReport(report: Report, extras: ReportExtras = {}): string {
  const lines = [`== ${report.title} ==`, ...report.summary];
  const metricNames = Object.keys(report.metrics);
  if (metricNames.length) {
    lines.push("", "Test-split metrics:", ...table([["metric", "value"], ...metricNames.map((m) => [m, fmt(report.metrics[m])])]));
  }
  if (report.constraints.length) {
    lines.push(
      "",
      "Constraints:",
      ...table([
        ["constraint", "target", "actual", "met"],
        ...report.constraints.map((c) => [c.name, `${c.op} ${c.target}`, fmt(c.actual), c.met === null ? "not measured" : c.met ? "yes" : "NO"]),
      ]),
    );
  }
  if (report.training?.length) lines.push("", "How it was trained:", ...report.training.map((t) => `  ${oneLine(t)}`));
  if (report.endpoint) {
    lines.push("", `Endpoint: ${report.endpoint.url} (${report.endpoint.serving ? "serving" : "stopped"}; check ${report.endpoint.check.ok ? "ok" : "failed"})`);
    if (report.curl && report.endpoint.serving) lines.push(`Try it: ${report.curl}`);
  }
  if (extras.model) lines.push("", `Registered as ${cell(extras.model)}`);
  if (report.comparison?.header.length) lines.push("", "Compared with this thread's earlier models:", ...dataTable(report.comparison.header, report.comparison.rows));
  const a = report.artifacts;
  const files = [a.model && `model: ${a.model}`, a.code && `code: ${a.code}`, a.report && `report: ${a.report}`, ...a.plots.map((p) => `plot: ${p}`), a.bundle && `bundle: ${a.bundle}`].filter(Boolean);
  if (files.length) lines.push("", "Artifacts:", ...files.map((f) => `  ${f}`));
  if (report.llm)
    lines.push("", `LLM: ${report.llm.calls} calls, ${report.llm.prompt_tokens + report.llm.completion_tokens} tokens, about $${report.llm.cost_usd.toFixed(4)}`);
  if (report.notices.length) lines.push("", ...report.notices.map((n) => `Note: ${oneLine(n)}`));
  if (extras.followUps) lines.push("", nextHint(extras.followUps));
  return lines.join("\n");
}
