import { type Constraint, type MetricName, type TaskKind } from "../../../src/schema/requirements.js";
import { chooseMetric, complexityConstraints, dedupeConstraints, findMetricMentions, metricConstraint } from "./constraints.js";
import { findColumnMentions, nameWords, wordKey, type ColumnMention } from "./columns.js";
import { findClusterCount, findDataPaths, findDomain, findDropColumns, findLabelsColumn, findModels, findModelSpans, findPathSpans, findPositiveClass, findTarget } from "./fields.js";
import { findHorizon, findSeriesColumn, findTimeColumn } from "./forecast.js";
import { RELEVANT_RE, detectIntent, detectTask, isRelevant, taskFromMetrics } from "./intent.js";
import { expandScales, placeNumbers, wordsToDigits, type PlacedNumber } from "./numbers.js";
import { dropsFromMentions, groupDrops, keptFromMentions, labelsFromMentions, onlyColumns, positiveFromGoal, rivalTargets, soleColumn, targetFromValues } from "./roles.js";
import { fixTypos, mask, normalizeText } from "./text.js";

// Rule-based reading of a chat request for the offline engine. Every rule prefers leaving a field
// empty over guessing wrong: later stages can look at the data, but cannot undo a wrong target.

export interface ParsedRequest {
  /** Is this about building/consulting on a machine-learning model or data analysis at all? */
  relevant: boolean;
  intent: "build" | "consult-build" | "consult" | "inquire" | "unclear";
  task: TaskKind | null; // null when the text does not say (the data decides later)
  target: string | null; // resolved to the exact column name when columns are given
  metric: MetricName | null;
  positiveClass: string | null;
  nClusters: number | null;
  labelsColumn: string | null; // clustering: column of known groups to evaluate against
  dropColumns: string[]; // "ignore the id column", "exclude X and Y", "don't use X"
  keepColumns: string[]; // "keep approved_code", "use X anyway", "X is fine": inputs asked for by name
  constraints: Constraint[]; // metric thresholds and complexity limits, in harness units
  requestedModels: string[]; // normalized keys
  dataPaths: string[]; // file paths/names mentioned, in order, deduped (folders end with "/")
  domain: string; // e.g. "agriculture" when words hint at it, else ""
  /** Forecasting: how far ahead, as written ("14 days ahead" → 14 day); `step` when no time unit was given. */
  horizon: { value: number; unit: HorizonUnit; phrase: string } | null;
  /** Forecasting: the time column named ("the date column", "indexed by timestamp"). */
  timeColumn: string | null;
  /** Forecasting: the column that separates series ("one series per store"); only names of real columns. */
  seriesColumn: string | null;
  /** Several columns named as the target ("predict X or Y"): the engine asks which. */
  targetChoices: string[];
  /** The text as read: number words as digits, "25k" as 25000. */
  text: string;
  /** Every place the text names a column of the data. */
  columnMentions: ColumnMention[];
  /** Every number in the text and what it was read as; `use: null` marks one nothing could place. */
  numbers: PlacedNumber[];
}

export type HorizonUnit = "step" | "second" | "minute" | "hour" | "day" | "week" | "month" | "quarter" | "year";

function emptyResult(): ParsedRequest {
  return {
    relevant: false,
    intent: "unclear",
    task: null,
    target: null,
    metric: null,
    positiveClass: null,
    nClusters: null,
    labelsColumn: null,
    dropColumns: [],
    keepColumns: [],
    constraints: [],
    requestedModels: [],
    dataPaths: [],
    domain: "",
    horizon: null,
    timeColumn: null,
    seriesColumn: null,
    targetChoices: [],
    text: "",
    columnMentions: [],
    numbers: [],
  };
}

/** Read a chat request into the fields the offline engine needs. Never throws. */
export function parseRequest(text: string, columns?: string[], values?: Record<string, readonly string[]>): ParsedRequest {
  const result = emptyResult();
  if (typeof text !== "string" || text.trim() === "") return result;
  const cols = Array.isArray(columns) ? columns.filter((c): c is string => typeof c === "string" && c.trim() !== "") : undefined;
  const colsOrUndef = cols && cols.length > 0 ? cols : undefined;
  try {
    const keep = new Set((colsOrUndef ?? []).flatMap((c) => [c.toLowerCase(), ...nameWords(c)]));
    const norm = expandScales(wordsToDigits(fixTypos(normalizeText(text), (w) => keep.has(w) || keep.has(wordKey(w)))));
    result.text = norm;
    const dataPaths = findDataPaths(norm);
    // File names are blanked so "banana_quality.csv" is not read as words or numbers by the other rules.
    const pathSpans = findPathSpans(norm);
    const noPaths = mask(norm, pathSpans);

    const mentions = findMetricMentions(noPaths);
    const metricMasked = mask(noPaths, mentions, "§");
    const located: { c: Constraint; start: number; end: number }[] = [];
    for (const m of mentions) {
      const c = metricConstraint(noPaths, metricMasked, m);
      if (c) located.push({ c: c.constraint, start: c.start, end: c.end });
    }
    // a limit inside a metric's goal ("MAE below 5 minutes") is that goal's unit, not a second constraint
    for (const x of complexityConstraints(noPaths)) {
      if (!located.some((l) => x.start < l.end && x.end > l.start)) located.push({ c: x.constraint, start: x.start, end: x.end });
    }
    located.sort((a, b) => a.start - b.start);
    const constraints = dedupeConstraints(located.map((x) => x.c));
    const requestedModels = findModels(noPaths);
    const modelSpans = findModelSpans(noPaths);

    result.dataPaths = dataPaths;
    result.requestedModels = requestedModels;
    // Columns are found where the text names them, never guessed from free noun phrases.
    // A lone word inside a limit ("model size under 2 MB") is not a column.
    const inLimit = (m: ColumnMention) => located.some((x) => m.start < x.end && m.end > x.start);
    const columnMentions = colsOrUndef ? findColumnMentions(noPaths, colsOrUndef, [...mentions, ...modelSpans]) : [];
    const kept = columnMentions.filter((m) => m.how !== "partial" || !inLimit(m));
    // "the reviewer name": a partial word right before another column's name only describes it
    result.columnMentions = kept.filter((m, i) => !(m.how === "partial" && kept[i + 1] && kept[i + 1].column !== m.column && /^ $/.test(noPaths.slice(m.end, kept[i + 1].start))));

    // Naming a column of the data, or setting a threshold, is about the data even without ML words.
    const signals = dataPaths.length > 0 || mentions.length > 0 || requestedModels.length > 0 || constraints.length > 0 || result.columnMentions.some((m) => m.how !== "partial");
    result.relevant = isRelevant(noPaths, signals);
    if (!result.relevant) return result;
    result.constraints = constraints;

    const task = detectTask(noPaths) ?? taskFromMetrics(mentions);
    result.task = task;
    result.intent = detectIntent(noPaths);
    result.metric = chooseMetric(noPaths, mentions, constraints, task);
    const byValue = colsOrUndef && values ? targetFromValues(noPaths, values) : null;
    if (task === "clustering") {
      result.labelsColumn = findLabelsColumn(noPaths, colsOrUndef) ?? labelsFromMentions(noPaths, result.columnMentions);
      result.target = null;
    } else {
      result.target = findTarget(noPaths, colsOrUndef, task, result.columnMentions, byValue?.column ?? null);
      // "predict Churn and TotalCharges": two targets named; the engine asks which.
      const rivals = result.target ? rivalTargets(noPaths, result.columnMentions, result.target) : [];
      if (rivals.length) {
        result.targetChoices = rivals;
        result.target = null;
      }
    }
    const targetValues = result.target ? values?.[result.target] : undefined;
    result.positiveClass =
      findPositiveClass(noPaths) ??
      (byValue?.value && byValue.column === result.target ? byValue.value : null) ??
      (targetValues ? positiveFromGoal(noPaths, targetValues) : null);
    result.nClusters = findClusterCount(noPaths, task);
    const only = colsOrUndef ? onlyColumns(noPaths, result.columnMentions, colsOrUndef) : [];
    const drops = [
      ...findDropColumns(noPaths, colsOrUndef),
      ...(colsOrUndef ? dropsFromMentions(noPaths, result.columnMentions) : []),
      ...(only.length ? colsOrUndef!.filter((c) => !only.includes(c)) : []),
      ...(colsOrUndef ? groupDrops(noPaths, colsOrUndef) : []),
    ];
    result.dropColumns = [...new Set(drops)].filter((c) => c !== result.target && c !== result.labelsColumn);
    result.keepColumns = colsOrUndef ? keptFromMentions(noPaths, result.columnMentions).filter((c) => !result.dropColumns.includes(c)) : [];
    if (task !== "clustering" && !result.target && !result.targetChoices.length && colsOrUndef) {
      // "keep approved_code" names an input, not what to predict
      result.target = soleColumn(noPaths, result.columnMentions, [...result.dropColumns, ...result.keepColumns]);
      const rivals = result.target ? rivalTargets(noPaths, result.columnMentions, result.target) : [];
      if (rivals.length) {
        result.targetChoices = rivals;
        result.target = null;
      }
      if (result.target) result.dropColumns = result.dropColumns.filter((c) => c !== result.target);
    }
    result.keepColumns = result.keepColumns.filter((c) => c !== result.target && c !== result.labelsColumn);
    result.domain = findDomain(norm.replace(/[_.]/g, " "));
    result.horizon = findHorizon(noPaths);
    result.timeColumn = findTimeColumn(noPaths, colsOrUndef);
    result.seriesColumn = colsOrUndef ? findSeriesColumn(noPaths, colsOrUndef) : null;
    result.numbers = placeNumbers(noPaths, {
      constraints: located,
      clusters: result.nClusters,
      horizon: result.horizon?.phrase ?? null,
      covered: [...pathSpans, ...modelSpans, ...result.columnMentions],
    });
    return result;
  } catch {
    // A malformed message must not stop the conversation; fall back to what is certain.
    const fallback = emptyResult();
    fallback.relevant = RELEVANT_RE.test(text);
    return fallback;
  }
}
