import { z } from "zod";
import type { MetricName } from "../../src/schema/requirements.js";
import { fmt, oneLine } from "./format.js";
import { recipesFor } from "./knowledge/index.js";
import { METRIC_LABELS } from "./request/reading.js";
import type { State } from "./state.js";

// The report's "how it was trained" lines, from the harness's own results (never from generated code's
// claims): the search that found the model, the decision threshold, date features and set-aside columns.

const SHOWN_NAMES = 5;
const SHOWN_PARAMS = 4;
const SAMPLERS: Record<string, string> = { tpe: "Optuna TPE search", random: "Random search" };
const SetAside = z.array(z.object({ column: z.string(), reason: z.string() }));

/** A name from the data or the harness on one line, short. */
const clean = (name: string) => oneLine(name, 40);

/** A list cut with "+N". */
function listOf(items: string[]): string {
  return items.length > SHOWN_NAMES ? `${items.slice(0, SHOWN_NAMES).join(", ")} (+${items.length - SHOWN_NAMES})` : items.join(", ");
}

const metricLabel = (name: string) => METRIC_LABELS[name as MetricName] ?? clean(name);

function value(v: unknown): string {
  if (v === null || v === undefined) return "none";
  if (typeof v === "number") return String(Number(v.toPrecision(3)));
  return oneLine(typeof v === "string" ? v : JSON.stringify(v), 30);
}

/** "Optuna TPE search: 23 trials (4 pruned) over 2 models; best: XGBoost learning_rate=0.08, max_depth=5". */
function searchLine(state: State): string | null {
  const searches = state.runs.filter((r) => r.kind === "search" && r.result?.search).map((r) => r.result!.search!);
  if (searches.length === 0) return null;
  const candidates = searches.flatMap((s) => s.candidates);
  const trials = candidates.flatMap((c) => c.trials);
  if (trials.length === 0) return null;
  const pruned = trials.filter((t) => t.pruned).length;
  const sampler = SAMPLERS[searches.at(-1)!.sampler ?? ""] ?? "Search";
  let line = `${sampler}: ${trials.length} trial${trials.length === 1 ? "" : "s"}${pruned ? ` (${pruned} pruned)` : ""} over ${candidates.length} model${candidates.length === 1 ? "" : "s"}`;
  const built = state.best?.candidateId;
  const record = built ? candidates.find((c) => c.id === built && c.best_params) : undefined;
  if (record) {
    // Executions outlive a re-plan (model plans do not), so the label and fixed settings come from there.
    const ranked = state.executions.flatMap((e) => e.candidates).find((c) => c.id === built);
    const planned = state.modelPlans.flatMap((m) => m.candidates).find((c) => c.id === built);
    const family = recipesFor(state.requirements?.task ?? "")?.families.find((f) => built!.endsWith(`:${f.id}`));
    const label = ranked?.label ?? family?.label ?? built!;
    // Only what the search chose: the family's fixed settings are not news.
    const fixed = planned?.params ?? family?.params ?? {};
    const searched = Object.entries(record.best_params ?? {}).filter(([k, v]) => !(k in fixed) || JSON.stringify(fixed[k]) !== JSON.stringify(v));
    const params = searched.slice(0, SHOWN_PARAMS).map(([k, v]) => `${k}=${value(v)}`);
    const greater = searches.at(-1)!.greater_is_better;
    const top = candidates.filter((c) => c.best_score !== null).every((c) => (greater ? c.best_score! <= record.best_score! : c.best_score! >= record.best_score!));
    line += `; ${top ? "best" : "built"}: ${label} ${params.length ? params.join(", ") : "with its default settings"}`;
  }
  return line;
}

/** The report's lines on how the model was found and trained. */
export function trainingLines(state: State): string[] {
  const lines: string[] = [];
  const search = searchLine(state);
  if (search) lines.push(search);
  const result = state.best?.result;
  if (!result) return lines;
  const t = result.threshold;
  if (t)
    lines.push(`Decision threshold ${value(t.value)}, chosen on the validation split: ${metricLabel(t.metric)} ${fmt(t.valid_default)} → ${fmt(t.valid_chosen)}`);
  const dates = result.features?.dates ?? [];
  if (dates.length) lines.push(`Date columns turned into calendar features: ${listOf(dates.map(clean))}`);
  const aside = SetAside.safeParse(result.details.set_aside ?? []);
  if (aside.success && aside.data.length)
    lines.push(`Set aside by the harness: ${listOf(aside.data.map((a) => `${clean(a.column)} (${clean(a.reason.replace(/_/g, " "))})`))}`);
  return lines;
}
