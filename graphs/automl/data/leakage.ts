import { oneLine } from "../format.js";
import { mulberry32 } from "../holdout.js";
import type { DataProfile } from "../agents/types.js";
import type { Requirements, TaskKind } from "../../../src/schema/requirements.js";
import { fileSource, isMissing, tableRows } from "./profile.js";
import { groupR2, mapping, purity, purityFloor, separation, spearman, type Groups, type Moments } from "./leakage-stats.js";

// Target leakage: a column that alone gives the answer away (the target recoded, a unit change of it, a
// field only filled in once the outcome is known). A model trained with it scores near perfectly and
// learns nothing it could use on new rows, so such columns are left out unless the user keeps them.
//
// Every rule judges one column against the target on a seeded sample of rows, and asks for more than
// "strong": a relabelling, a monotone recoding, classes that do not overlap at all. Group rules are
// leave-one-out, so a column of near-unique values (a zip code, a name) cannot look pure by chance.

export interface Leak {
  column: string;
  /** In plain words, starting with the column's name in quotes. */
  reason: string;
  /** How completely it predicts the target: an accuracy, a ROC AUC, |rank correlation| or R². */
  score: number;
}

const TASKS: ReadonlySet<TaskKind> = new Set<TaskKind>(["classification", "text_classification", "regression"]);
/** Rows read at most: a seeded sample past this many. */
export const LEAK_SAMPLE_ROWS = 50_000;
/** Fewer rows with a target than this say nothing beyond chance. */
const MIN_ROWS = 30;
/** A column is judged on its values only where it is filled in this share of the rows or more. */
const MIN_FILLED = 0.5;
/** Columns with more distinct values than this (or than half the rows) are not judged as groups. */
const MAX_GROUPS = 1000;
const MAX_CLASSES = 50;
/** Classes with fewer rows than this are not judged by a number's separation (see separation()). */
const MIN_CLASS_ROWS = 25;
const MIN_PURITY = 0.99;
const MIN_AUC = 0.995;
const MIN_RANK_CORRELATION = 0.995;
const MIN_R2 = 0.99;
/** A column is judged as groups on its repeated values, which must cover this share of the rows. */
const MIN_REPEATED = 0.9;
const EMPTY = "(empty)";

/** A missing cell; every word the profile reads as missing is short, so longer cells skip the lookup. */
const blank = (v: string) => v.length <= 4 && isMissing(v);

/** Feature columns that alone predict the target almost perfectly, most complete first. */
export async function findLeaks(profile: DataProfile, req: Requirements, options: { maxRows?: number; seed?: number } = {}): Promise<Leak[]> {
  const target = req.target ? profile.columns.find((c) => c.name === req.target) : undefined;
  if (!target || !TASKS.has(req.task) || profile.images || profile.graph) return [];
  const skip = new Set([req.target, req.labels_column, ...req.drop_columns]);
  const candidates = profile.columns.filter((c) => !skip.has(c.name) && c.suspect === null && c.kind !== "text" && c.kind !== "empty");
  if (candidates.length === 0) return [];
  const sample = await sampleRows(profile, [target.name, ...candidates.map((c) => c.name)], options.maxRows ?? LEAK_SAMPLE_ROWS, options.seed ?? 7);
  const regression = req.task === "regression";
  // rows without a target teach nothing and are never scored
  const rows = sample.filter((r) => !blank(r[0]) && (!regression || Number.isFinite(Number(r[0]))));
  if (rows.length < MIN_ROWS) return [];
  const scored = { name: target.name, values: rows.map((r) => r[0]) };
  const judge = regression ? regressionJudge(scored) : classJudge(scored);
  if (!judge) return [];
  const leaks: Leak[] = [];
  candidates.forEach((col, j) => {
    const leak = judge(col.name, rows.map((r) => r[j + 1]), col.kind === "numeric");
    if (leak) leaks.push(leak);
  });
  return leaks.sort((a, b) => b.score - a.score);
}

/** The named columns of up to `max` rows: all of them, or a seeded reservoir sample of a longer table. */
async function sampleRows(profile: DataProfile, columns: string[], max: number, seed: number): Promise<string[][]> {
  const rand = mulberry32(seed);
  const kept: string[][] = [];
  let seen = 0;
  for await (const row of tableRows(fileSource(profile.file, profile.bytes), profile.delimiter, columns)) {
    seen++;
    if (kept.length < max) kept.push(row);
    else {
      const k = Math.floor(rand() * seen);
      if (k < max) kept[k] = row;
    }
  }
  return kept;
}

type Judge = (name: string, x: string[], numeric: boolean) => Leak | null;

/** " where it is filled in" when a few cells are empty: the rule looked at the others. */
function where(filled: number, rows: number): string {
  return filled < rows * 0.99 ? " where it is filled in" : "";
}

// ---- classification ----

function classJudge(target: { name: string; values: string[] }): Judge | null {
  const classes = [...new Set(target.values)];
  if (classes.length < 2 || classes.length > MAX_GROUPS) return null;
  const index = new Map(classes.map((c, k) => [c, k]));
  const y = Int32Array.from(target.values, (v) => index.get(v)!);
  const K = classes.length;
  const T = show(target.name);

  return (name, x, numeric) => {
    const N = show(name);
    const limit = Math.min(MAX_GROUPS, x.length * 0.5);
    const empty = new Float64Array(K);
    const filledByClass = new Float64Array(K);
    let groups: Groups | null = new Map();
    const numbers = numeric && K <= MAX_CLASSES ? classes.map(() => [] as number[]) : null;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (blank(v)) {
        empty[y[i]]++;
        continue;
      }
      filledByClass[y[i]]++;
      numbers?.[y[i]].push(Number(v));
      if (groups) {
        let counts = groups.get(v);
        if (!counts) {
          if (groups.size >= limit) groups = null;
          else groups.set(v, (counts = new Float64Array(K)));
        }
        if (counts) counts[y[i]]++;
      }
    }
    const filled = filledByClass.reduce((s, n) => s + n, 0);
    // empty exactly when the outcome is one class (a date only set once a customer has left)
    if (filled < x.length) {
      const flags: Groups = new Map([[EMPTY, empty], ["filled", filledByClass]]);
      const all = Float64Array.from(empty, (n, k) => n + filledByClass[k]);
      const p = purity(flags, MIN_REPEATED);
      if (p !== null && p >= purityFloor(all, MIN_PURITY)) {
        const cls = mapping(flags, classes).find((m) => m.value === EMPTY)!.cls;
        return { column: name, score: p, reason: `"${N}" is empty exactly when "${T}" is ${show(cls)}, so it gives the answer away` };
      }
    }
    if (filled < Math.max(MIN_ROWS, x.length * MIN_FILLED)) return null;
    const floor = purityFloor(filledByClass, MIN_PURITY);
    const p = groups ? purity(groups, MIN_REPEATED) : null;
    if (groups && p !== null && p >= floor) {
      const map = mapping(groups, classes);
      const present = filledByClass.filter((n) => n > 0).length;
      const oneToOne = map.length === present && new Set(map.map((m) => m.cls)).size === map.length;
      const how = oneToOne ? `maps one-to-one onto "${T}"` : `determines "${T}" in ${percent(p)} of the rows`;
      return { column: name, score: p, reason: `"${N}" ${how}${where(filled, x.length)} (${mappingWords(map)})` };
    }
    const auc = numbers ? separation(numbers.map((vs) => Float64Array.from(vs)), MIN_CLASS_ROWS) : null;
    if (auc !== null && auc >= MIN_AUC) {
      const how = K > 2 ? `ROC AUC ≥ ${auc.toFixed(3)} between neighbouring classes` : `ROC AUC ${auc.toFixed(3)}`;
      return { column: name, score: auc, reason: `"${N}" alone separates the classes of "${T}"${where(filled, x.length)} (${how})` };
    }
    return null;
  };
}

// ---- regression ----

function regressionJudge(target: { name: string; values: string[] }): Judge | null {
  const y = Float64Array.from(target.values, Number);
  const T = show(target.name);
  return (name, x, numeric) => {
    const N = show(name);
    const limit = Math.min(MAX_GROUPS, x.length * 0.5);
    const xs: number[] = [];
    const ys: number[] = [];
    let groups: Moments | null = new Map();
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (blank(v)) continue;
      ys.push(y[i]);
      if (numeric) xs.push(Number(v));
      if (groups) {
        let g = groups.get(v);
        if (!g) {
          if (groups.size >= limit) groups = null;
          else groups.set(v, (g = { n: 0, sum: 0, sq: 0 }));
        }
        if (g) {
          g.n++;
          g.sum += y[i];
          g.sq += y[i] * y[i];
        }
      }
    }
    const filled = ys.length;
    if (filled < Math.max(MIN_ROWS, x.length * MIN_FILLED)) return null;
    const rho = numeric ? spearman(Float64Array.from(xs), Float64Array.from(ys)) : null;
    if (rho !== null && Math.abs(rho) >= MIN_RANK_CORRELATION)
      return { column: name, score: Math.abs(rho), reason: `"${N}" alone predicts "${T}" almost perfectly${where(filled, x.length)} (rank correlation ${rho.toFixed(3)})` };
    const r2 = groups ? groupR2(groups, MIN_REPEATED) : null;
    if (r2 !== null && r2 >= MIN_R2)
      return { column: name, score: r2, reason: `"${N}" alone predicts "${T}" almost perfectly${where(filled, x.length)} (its values explain ${percent(r2)} of the variance)` };
    return null;
  };
}

// ---- words ----

/** A name or value from the file, safe and short enough for one line of a plan card. */
function show(s: string, max = 40): string {
  return oneLine(s, max) || EMPTY;
}

function mappingWords(map: Array<{ value: string; cls: string }>): string {
  const shown = map.slice(0, 4).map((m) => `${show(m.value, 24)} → ${show(m.cls, 24)}`);
  return map.length > 4 ? `${shown.join(", ")}, …` : shown.join(", ");
}

/** Rounded down, so 99.96% never reads as 100%. */
function percent(v: number): string {
  return `${(Math.floor(v * 1000) / 10).toFixed(1)}%`;
}

/** The plan card's notice for a flagged column: left out (and how to keep it), or kept at the user's request. */
export function leakNotice(entry: { column: string; reason: string; kept: boolean }): string {
  const name = show(entry.column);
  const head = `"${name}" `;
  const it = entry.reason.startsWith(head) ? `it ${entry.reason.slice(head.length)}` : entry.reason;
  if (entry.kept) return `Kept "${name}" at your request, although ${it}: expect scores that new data will not match.`;
  return `Left out "${name}": ${it}, so a model would learn nothing real. Reply "keep ${name}" with Revise to use it anyway.`;
}
