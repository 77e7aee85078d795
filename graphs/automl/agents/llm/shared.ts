import { basename } from "node:path";
import type { z } from "zod";
import type { LlmRole } from "../../../../config/schema.js";
import type { LlmClient } from "../../../../src/llm/client.js";
import { LlmOutputError } from "../../../../src/llm/errors.js";
import { quote, renderPrompt, type PromptVars } from "../../../../src/llm/prompts.js";
import type { Requirements } from "../../../../src/schema/requirements.js";
import { TASK_KINDS, asTaskKind, isPlainTask, taskSpec, type TaskKind } from "../../../../src/schema/tasks.js";
import { recipesFor, type Family } from "../../knowledge/index.js";
import { parseRequest } from "../../request/parse.js";
import type { Conversation, DataProfile } from "../types.js";

// Pieces the LLM agents share: one way to call a prompt, compact views of the profile and the
// requirements for prompts (always quoted: they carry column names and the user's words).

export type Client = Pick<LlmClient, "json" | "text">;

/** Calls a prompt file in JSON mode; the step name is the prompt's name. */
export function askJson<T>(client: Client, role: LlmRole, name: string, vars: PromptVars, schema: z.ZodType<T>, maxTokens?: number): Promise<T> {
  const { system, user } = renderPrompt(name, vars);
  return client.json<T>({ role, step: name, system, user, schema, ...(maxTokens ? { maxTokens } : {}) });
}

/** Calls a prompt file for free text (code). */
export function askText(client: Client, role: LlmRole, name: string, vars: PromptVars, maxTokens?: number): Promise<string> {
  const { system, user } = renderPrompt(name, vars);
  return client.text({ role, step: name, system, user, ...(maxTokens ? { maxTokens } : {}) });
}

/**
 * Runs an LLM step and, when its output stays unusable after the client's repair round, returns the
 * offline result instead. An unreachable endpoint (LlmUnavailableError) is not hidden: it propagates.
 */
export async function orOffline<T>(llm: () => Promise<T>, offline: () => Promise<T>): Promise<T> {
  try {
    return await llm();
  } catch (err) {
    if (err instanceof LlmOutputError || (err as Error)?.name === "LlmOutputError") return offline();
    throw err;
  }
}

export function isOutputError(err: unknown): boolean {
  return err instanceof LlmOutputError || (err as Error)?.name === "LlmOutputError";
}

/** One line, at most `max` characters: for LLM text that ends up in notes and reasons. */
export function clip(text: unknown, max = 300): string {
  const s = String(text ?? "").replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Non-empty clipped lines, at most `n` of them. */
export function clipAll(list: readonly unknown[], n: number, max = 300): string[] {
  return list.map((x) => clip(x, max)).filter((x) => x.length > 0).slice(0, n);
}

export const MAX_COLUMNS_IN_PROMPT = 80;

/** A compact view of the real profile, quoted for a prompt. */
export function profileForPrompt(profile: DataProfile, maxChars = 6000): string {
  const columns = profile.columns.slice(0, MAX_COLUMNS_IN_PROMPT).map((c) => ({
    name: c.name,
    kind: c.kind,
    missing: c.missing,
    unique: c.unique,
    ...(c.stats ? { min: c.stats.min, max: c.stats.max, mean: round(c.stats.mean), integer: c.stats.integer } : {}),
    ...(c.top.length && c.kind !== "numeric" ? { top: c.top.slice(0, 5).map((t) => `${t.value.slice(0, 30)} (${t.count})`) } : {}),
    ...(c.examples.length && !c.top.length ? { examples: c.examples.slice(0, 3).map((e) => e.slice(0, 30)) } : {}),
    ...(c.suspect ? { suspect: c.suspect } : {}),
  }));
  const view = {
    file: profile.name,
    rows: profile.rows,
    sampled: profile.sampled,
    column_count: profile.columns.length,
    ...(profile.columns.length > MAX_COLUMNS_IN_PROMPT ? { columns_not_shown: profile.columns.length - MAX_COLUMNS_IN_PROMPT } : {}),
    duplicate_rows: profile.duplicateRows,
    likely_targets: profile.candidateTargets.slice(0, 5),
    ...variantView(profile),
    columns,
  };
  return quote(JSON.stringify(view), maxChars, "data profile");
}

/** What the profile found beyond a table: a time axis, an edge list, images. */
function variantView(profile: DataProfile): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const t = profile.time;
  if (t) out.time_axis = { column: t.column, step: t.label, series_column: t.idColumn, series: t.series, points_per_series: t.points, from: t.start, to: t.end };
  const g = profile.graph;
  if (g) out.graph = { node_id_column: g.nodeIdColumn, edges: g.edges, nodes: g.nodes, edge_columns: [g.sourceColumn, g.targetColumn] };
  const im = profile.images;
  if (im) out.images = { count: im.images, formats: im.formats, labels: im.layout, filename_column: im.filenameColumn, unlabelled: im.unlabelled };
  return out;
}

/** Column names only, quoted (names come from the data file). */
export function columnsForPrompt(profile: DataProfile, maxChars = 3000): string {
  return quote(JSON.stringify(profile.columns.map((c) => c.name)), maxChars, "column names");
}

/** The requirements fields that steer planning and checking, quoted (they hold the user's words). */
export function requirementsForPrompt(req: Requirements, maxChars = 4000): string {
  const view = {
    task: req.task,
    target: req.target,
    metric: req.metric,
    constraints: req.constraints.map((c) => ({ name: c.name, op: c.op, target: c.target })),
    positive_class: req.positive_class,
    n_clusters: req.n_clusters,
    labels_column: req.labels_column,
    drop_columns: req.drop_columns,
    requested_models: req.requested_models,
    domain: req.problem.application_domain,
    request: req.problem.description.slice(0, 1200),
    wishes: nonNumericWishes(req),
    ...(req.forecast ? { forecast: { time_column: req.forecast.time_column, series_column: req.forecast.id_column, horizon: req.forecast.horizon, inputs: req.forecast.exogenous } } : {}),
    ...(req.graph ? { graph: req.graph } : {}),
    ...(req.images ? { images: req.images } : {}),
  };
  return quote(JSON.stringify(view), maxChars, "requirements");
}

/**
 * Requirements that no number from the harness can check: requested model families, visualisation,
 * preprocessing or feature-engineering wishes, a demo or a particular inference engine.
 */
export function nonNumericWishes(req: Requirements): string[] {
  const wishes: string[] = [];
  if (req.requested_models.length) wishes.push(`model families asked for: ${req.requested_models.join(", ")}`);
  for (const d of req.dataset) {
    for (const v of d.visualization) wishes.push(`visualisation: ${v}`);
    for (const p of d.preprocessing) wishes.push(`preprocessing: ${p}`);
    for (const a of d.augmentation) wishes.push(`augmentation: ${a}`);
  }
  for (const f of req.service.feature_engineering) wishes.push(`feature engineering: ${f}`);
  if (req.service.demonstration.trim()) wishes.push(`demonstration: ${req.service.demonstration}`);
  const engines = req.service.inference_engine.filter((e) => !/^(?:scikit[-_ ]?learn|sklearn)$/i.test(e.trim()));
  for (const e of engines) wishes.push(`inference engine: ${e}`);
  if (req.service.target_device && !/^cpu$/i.test(req.service.target_device.trim())) wishes.push(`target device: ${req.service.target_device}`);
  return wishes.map((w) => clip(w, 200));
}

/** The recipe family a requested-model key refers to (by id or alias). */
export function familyForKey(task: string, key: string): Family | undefined {
  const families = recipesFor(task)?.families ?? [];
  return families.find((f) => f.id === key) ?? families.find((f) => f.aliases.includes(key));
}

/** Normalised model keys ("xgboost", "random_forest") for names as an LLM or a user wrote them. */
export function modelKeys(task: string, names: readonly string[]): string[] {
  const families = recipesFor(task)?.families ?? [];
  const out: string[] = [];
  for (const raw of names) {
    const name = String(raw).trim();
    if (!name) continue;
    const snake = name.toLowerCase().replace(/[\s-]+/g, "_");
    const direct = families.find((f) => f.id === snake || f.aliases.includes(snake));
    const keys = direct ? [snake] : parseRequest(`use ${name}`).requestedModels;
    for (const k of keys) if (!out.includes(k)) out.push(k);
  }
  return out;
}

/** Model keys a revision message refuses ("no logistic regression", "avoid SVMs"). */
export function refusedKeys(feedback: readonly string[]): Set<string> {
  const refused = new Set<string>();
  const text = feedback.join("\n");
  for (const m of text.matchAll(/\b(?:no|not|avoid|without|don'?t\s+use|do\s+not\s+use|skip|drop)\s+(?:any\s+|the\s+)?([a-z][\w\s-]{1,40})/gi)) {
    for (const key of parseRequest(`use ${m[1]}`).requestedModels) refused.add(key);
  }
  return refused;
}

// The specific kinds first, since their names hold the plain ones' words ("image classification"), and
// plain classification, the most general word, last of all.
const NAMING_ORDER: readonly TaskKind[] = [...TASK_KINDS.filter((k) => !isPlainTask(k)), ...TASK_KINDS.filter(isPlainTask).reverse()];

/** A task kind from free wording ("binary classification", "Regression", "k-means clustering"). */
export function normaliseTask(value: unknown): TaskKind | null {
  if (value === null || value === undefined) return null;
  const s = String(value).toLowerCase().replace(/[\s-]+/g, "_").trim();
  if (!s || s === "null" || s === "none" || s === "unknown") return null;
  return asTaskKind(s) ?? NAMING_ORDER.find((k) => new RegExp(taskSpec(k).synonyms).test(s)) ?? null;
}

function round(x: number): number {
  return Math.abs(x) >= 100 ? Math.round(x) : Number(x.toPrecision(4));
}

/** The conversation as prompt variables: messages, answers and file names, each quoted. */
export function conversationForPrompt(conversation: Conversation): { messages: string; answers: string; files: string } {
  return {
    messages: quote(conversation.messages.join("\n\n"), 6000, "user messages"),
    answers: quote(JSON.stringify(conversation.answers), 1500, "answers already given"),
    files: quote(conversation.files.map((f) => basename(f)).join("\n") || "(none)", 1000, "attached files"),
  };
}
