import { basename } from "node:path";
import { taskSpec } from "../../src/schema/tasks.js";
import type { ColumnProfile } from "./agents/types.js";
import type { ModelMeta, Requirements as BundleRequirements } from "./bundle.js";
import { serveArgs, SERVE_PORT } from "./bundle.js";
import { dataCard } from "./data-card.js";
import { fmt, oneLine } from "./format.js";
import { curlExample } from "./report.js";
import type { Report, State } from "./state.js";

// MODEL_CARD.md of the portable bundle: what the model is, what it was trained on, how well it did on
// rows it never saw, what it was asked for, where it stops being trustworthy, and how to run it.
// Column names, values, the request and notices are user or sandbox text: every one is put on one line
// and its markdown characters escaped, and code blocks are fenced longer than any backtick run inside.

export interface CardInput {
  state: State;
  report: Report;
  meta: ModelMeta;
  /** The bundle's name (its zip and top folder), also the image name in the examples. */
  name: string;
  outDir: string;
  python: string;
  requirements: BundleRequirements;
  /** What the bundle lacks and why, one sentence each. */
  missing: string[];
  files: string[];
  when: Date;
}

/** Names shown before "+N more". */
const SHOWN_FEATURES = 60;
const SHOWN_RANGES = 40;
const SHOWN_VALUES = 8;

/** User or sandbox text on one line, markup characters shown as themselves. */
export const md = (text: string, max = 200) => oneLine(text, max).replace(/[\\`*_{}[\]<>()#+!|~&]/g, "\\$&");

const json = (v: unknown, max = 400) => md(JSON.stringify(v) ?? "null", max);

/** A fenced code block whose fence no backtick run in the body can close. */
function fenced(body: string, lang = ""): string[] {
  const longest = Math.max(0, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return [`${fence}${lang}`, body, fence];
}

function listOf(items: string[], shown: number, rest: string): string {
  return items.length > shown ? `${items.slice(0, shown).join(", ")} (+${items.length - shown} more, ${rest})` : items.join(", ");
}

function modelSection({ state, meta, report }: CardInput): string[] {
  const best = state.best!;
  const req = state.requirements;
  const lines = [`- **Model:** ${md(best.description)}`];
  if (req) lines.push(`- **Task:** ${taskSpec(req.task).label}${meta.variant ? ` (${md(meta.variant)} variant)` : ""}`);
  if (req?.target) lines.push(`- **Predicts:** ${md(req.target)}`);
  const classes = best.result.classes ?? meta.classes;
  if (classes?.length) lines.push(`- **Classes:** ${listOf(classes.map((c) => md(String(c), 60)), 30, "in model_meta.json")}`);
  const threshold = best.result.threshold;
  if (threshold) {
    const positive = meta.positive_class ?? req?.positive_class;
    lines.push(
      `- **Decision threshold:** ${fmt(threshold.value)}${positive !== undefined && positive !== null ? ` on the probability of ${md(String(positive), 60)}` : ""}, chosen on the validation rows for ${md(threshold.metric)} (${fmt(threshold.valid_default)} at 0.5 → ${fmt(threshold.valid_chosen)}); the server applies it.`,
    );
  }
  lines.push(`- **Status when bundled:** ${report.status}`);
  return ["## Model", "", ...lines, ""];
}

/** Why each column of the file is not an input: the user's word, leakage, the profile or the harness. */
function leftOut(state: State, meta: ModelMeta): string[] {
  const profile = state.profile;
  const req = state.requirements;
  if (!profile || profile.images || !req) return [];
  const used = new Set(meta.features);
  const special = new Set([req.target, req.labels_column, req.forecast?.time_column, req.forecast?.id_column].filter(Boolean));
  const why = new Map<string, string>();
  const aside = Array.isArray(state.best?.result.details.set_aside) ? (state.best!.result.details.set_aside as Array<{ column?: unknown; reason?: unknown }>) : [];
  for (const a of aside) if (typeof a?.column === "string") why.set(a.column, `set aside by the harness (${String(a.reason ?? "").replace(/_/g, " ")})`);
  for (const name of req.drop_columns) {
    const col = profile.columns.find((c) => c.name === name);
    why.set(name, col?.suspect === "id" ? "an identifier" : col?.suspect === "constant" ? "constant" : col?.suspect === "mostly_missing" ? "mostly empty" : "left out as asked");
  }
  for (const l of req.leakage ?? []) if (!l.kept) why.set(l.column, `gives the target away: ${l.reason}`);
  for (const c of profile.columns) if (c.kind === "empty" && !why.has(c.name)) why.set(c.name, "empty");
  return profile.columns
    .filter((c) => !used.has(c.name) && !special.has(c.name))
    .map((c) => `${md(c.name, 60)} — ${md(why.get(c.name) ?? "not used by the model", 240)}`);
}

function rangeOf(c: ColumnProfile): string {
  if (c.stats) return `${fmt(c.stats.min)} … ${fmt(c.stats.max)}`;
  if (c.kind === "text") return "free text";
  if (c.kind === "datetime") return `dates such as ${c.examples.slice(0, 2).map((e) => md(e, 40)).join(", ")}`;
  const seen = c.top.map((t) => md(t.value, 40));
  return seen.length ? `${listOf(seen, SHOWN_VALUES, `${c.unique} values in all`)}` : `${c.unique} values`;
}

function dataSection({ state, meta }: CardInput): string[] {
  const lines = ["## Data", ""];
  for (const l of dataCard(state.profile, state.requirements)) lines.push(`- ${md(l, 700)}`);
  const rows = state.best!.result.rows;
  if (rows) lines.push(`- **Split:** ${rows.train} training rows, ${rows.valid} validation rows, ${rows.test} held-out test rows.`);
  if (meta.features.length) lines.push(`- **Features the server expects (${meta.features.length}):** ${listOf(meta.features.map((f) => md(f, 60)), SHOWN_FEATURES, `all in ${"`"}model_meta.json${"`"}`)}`);
  const out = leftOut(state, meta);
  if (out.length) lines.push("- **Columns left out:**", ...out.map((o) => `  - ${o}`));
  const columns = (state.profile?.columns ?? []).filter((c) => meta.features.includes(c.name));
  if (columns.length) {
    lines.push("", "What the data file held for each feature (the model has seen nothing outside it):", "", "| feature | values in the data |", "|---|---|");
    for (const c of columns.slice(0, SHOWN_RANGES)) lines.push(`| ${md(c.name, 60)} | ${rangeOf(c)} |`);
    if (columns.length > SHOWN_RANGES) lines.push(`| … | ${columns.length - SHOWN_RANGES} more |`);
  }
  return [...lines, ""];
}

function resultsSection({ state, report }: CardInput): string[] {
  const lines: string[] = [];
  if (Object.keys(report.metrics).length) {
    lines.push("## Metrics (held-out test split)", "", "| metric | value |", "|---|---|");
    for (const [k, v] of Object.entries(report.metrics)) lines.push(`| ${md(k, 60)} | ${fmt(v)} |`);
    lines.push("");
  }
  const asked = state.requirements?.constraints ?? [];
  lines.push("## Constraints", "");
  if (!report.constraints.length) lines.push("No constraints were given.", "");
  else {
    lines.push("| constraint | as asked | target | actual | met |", "|---|---|---|---|---|");
    for (const c of report.constraints) {
      const phrase = asked.find((a) => a.name === c.name && a.op === c.op && a.target === c.target)?.phrase;
      const met = c.met === null ? "not measured" : c.met ? "yes" : "**no**";
      lines.push(`| ${md(c.name, 60)} | ${phrase ? `“${md(phrase, 120)}”` : ""} | ${c.op} ${c.target} | ${fmt(c.actual)} | ${met} |`);
    }
    lines.push("");
  }
  const cost = state.best!.result.complexity;
  if (Object.keys(cost).length) lines.push("Measured by the harness: " + Object.entries(cost).map(([k, v]) => `${md(k, 40)} ${fmt(v)}`).join(", ") + ".", "");
  return lines;
}

function useSection({ state, when }: CardInput): string[] {
  const [request, ...answers] = state.messages;
  const lines = ["## Intended use", ""];
  if (request) lines.push("Asked for in these words:", "", `> ${md(request, 1500)}`, "");
  if (answers.length) lines.push(`Answers given on the way: ${answers.map((a) => `“${md(a, 200)}”`).join("; ")}.`, "");
  lines.push(`- **Asked by:** ${state.requester ? md(state.requester, 80) : "not recorded (a run without a chat user)"}`);
  lines.push(`- **Trained and bundled:** ${when.toISOString().slice(0, 16).replace("T", " ")} UTC`);
  const target = state.requirements?.target;
  lines.push(
    `- Made for rows like those of the data file${target ? `, to predict ${md(target, 60)}` : ""}. Anything beyond that request (other populations, later periods, decisions about people) was not evaluated.`,
    "",
  );
  return lines;
}

function limitsSection({ state, report, meta, requirements, missing }: CardInput): string[] {
  const result = state.best!.result;
  const lines = ["## Limits", ""];
  const rows = result.rows;
  if (rows) lines.push(`- Trained on ${rows.train} rows; every metric above comes from ${rows.test} test rows, a small sample: expect some difference on new data.`);
  const classes = result.classes ?? meta.classes;
  if (classes?.length) lines.push(`- It only ever predicts the ${classes.length} classes it saw in training.`);
  lines.push(
    "- The server checks only that each feature is there and that numbers are numbers. Values outside the ranges above, and categories it never saw, are accepted, and predictions for them are unvalidated.",
  );
  if (!requirements.pinned) lines.push("- `requirements.txt` is not fully pinned: the versions the model was trained with were not all recorded, and a pickled model may not load under other versions.");
  for (const m of missing) lines.push(`- Not in this bundle: ${md(m, 300)}.`);
  for (const n of report.notices) lines.push(`- ${md(n, 600)}`);
  return [...lines, ""];
}

function runSection({ state, name, outDir, python }: CardInput): string[] {
  const sample = state.best!.result.sample;
  const local = `http://localhost:${SERVE_PORT}`;
  const row = sample?.rows[0] as Record<string, unknown> | undefined;
  const curl = curlExample(local, row, sample?.request);
  const expected = sample ? (sample.request !== undefined ? sample.predictions : sample.predictions.slice(0, 1)) : null;
  const lines = [
    "## How to run",
    "",
    "With Docker:",
    "",
    ...fenced([`docker build -t ${name} .`, `docker run --rm -p ${SERVE_PORT}:${SERVE_PORT} ${name}`].join("\n"), "sh"),
    "",
    `Or with Python ${python} (other versions may not load the pickled model):`,
    "",
    ...fenced(["python3 -m venv .venv && . .venv/bin/activate", "pip install -r requirements.txt", `python ${serveArgs(outDir, "127.0.0.1").join(" ")}`].join("\n"), "sh"),
    "",
    "Then ask it:",
    "",
    ...fenced([`curl -s ${local}/health`, curl, ...(sample ? [`curl -s -X POST ${local}/predict -H 'Content-Type: application/json' -d @example.json`] : [])].join("\n"), "sh"),
    "",
  ];
  if (expected) lines.push(`The first request answers \`{"predictions": …}\`; for this row the model answered ${json(expected)} when it was trained.`, "");
  lines.push(
    "With `THREADML_SERVE_TOKEN` set (`docker run -e THREADML_SERVE_TOKEN=…`) every request needs `Authorization: Bearer <token>`, else 401. Keep the token out of shell history and images.",
    "",
  );
  return lines;
}

export function modelCard(input: CardInput): string {
  const best = input.state.best!;
  const file = input.state.profile ? md(basename(input.state.profile.source?.original || input.state.profile.name), 80) : null;
  return [
    `# Model card — ${md(best.description)}`,
    "",
    `Trained by ThreadML${file ? ` on ${file}` : ""}. This folder runs the model anywhere Python or Docker runs.`,
    "",
    ...modelSection(input),
    ...dataSection(input),
    ...resultsSection(input),
    ...useSection(input),
    ...limitsSection(input),
    ...runSection(input),
    "## Files",
    "",
    ...input.files.map((f) => `- \`${f}\``),
    "",
  ].join("\n");
}
