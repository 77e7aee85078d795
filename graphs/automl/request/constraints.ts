// Thresholds and limits: a metric with its comparison and number, or a time, size or parameter limit with its subject.

import { type Constraint, METRICS_BY_TASK, type MetricName, type TaskKind, metricDirection } from "../../../src/schema/requirements.js";
import { count } from "./forecast.js";
import { METRIC_SYNONYMS, NUM_SRC, OpWord, PARAM_SCALE, PCT_SRC, SIZE_UNITS, TIME_SUBJECTS, TIME_UNITS, TRAILING_SRC, UNIT_INTERVAL_METRICS, UNIT_SRC } from "./lexicon.js";
import { OPS_SRC, Op, Span, allMatches, mask, opFromWords, parseNumber, sentenceStart, toConstraintOp } from "./text.js";

export interface MetricMention extends Span {
  metric: MetricName;
}

export function findMetricMentions(text: string): MetricMention[] {
  let work = text;
  const found: MetricMention[] = [];
  for (const { metric, re } of METRIC_SYNONYMS) {
    for (const m of allMatches(work, re)) {
      const start = m.index ?? 0;
      found.push({ metric, start, end: start + m[0].length });
    }
    work = mask(work, found);
  }
  found.sort((a, b) => a.start - b.start);
  // "coefficient of determination (R²)": a name and its abbreviation in brackets are one mention
  const merged: MetricMention[] = [];
  for (const m of found) {
    const prev = merged[merged.length - 1];
    const close = prev && prev.metric === m.metric && /^\s*\(\s*$/.test(text.slice(prev.end, m.start)) ? /^\s*\)/.exec(text.slice(m.end)) : null;
    if (close) prev.end = m.end + close[0].length;
    else merged.push({ ...m });
  }
  return merged;
}

/** Words between a metric and its comparison: "accuracy [on the test set should be] over 0.9". */
const FILLER_SRC =
  "(?:\\s*(?:\\)\\s*)?(?:,\\s*(?=(?:which|that|it|and\\s+it|should|must|has|needs|at|no|not)\\b))?\\(?(?!(?:and|but|while|whereas|training|train|time|latency|inference|size|memory|parameters|params)\\b)[a-z'_-]+\\)?){0,8}?";
const AFTER_METRIC = new RegExp(
  `^(?<fill>${FILLER_SRC})\\s*(?:\\)\\s*)?(?:,\\s*)?(?:[:=]\\s*(?=[^\\d\\s]))?\\(?\\s*(?:(?<op>${OPS_SRC})|(?<conn>(?<![\\w])(?:of|is|be|reach(?:es|ing)?|to|around|about)(?![\\w])|=|:))?\\s*(?:of\\s+)?` +
    `(?<num>${NUM_SRC})\\s*(?<pct>${PCT_SRC})?(?:\\s*(?<trail>${TRAILING_SRC})(?![\\w]))?`,
  "i",
);
const BEFORE_METRIC = new RegExp(
  `(?:(?<op>${OPS_SRC})\\s*(?:of\\s+)?)?(?<![\\w.=-])(?<num>${NUM_SRC})\\s*(?<pct>${PCT_SRC})?\\s*` +
    `(?:(?:an?|overall|test|testing|validation|classification|balanced|macro|micro|weighted|mean|average|cv|cross-validated)[\\s-]+)*$`,
  "i",
);
/** A number followed by one of these is a count or a duration, not a score. */
const NOT_A_SCORE_AFTER =
  /^\s*(?:milli\w*|ms|msecs?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|kb|mb|gb|tb|kib|mib|gib|thousand|million|billion|k|m|b|param\w*|rows?|samples?|records?|examples?|instances?|features?|columns?|classes|categories|clusters?|groups?|epochs?|trees?|iterations?|folds?|times|x)\b/i;

const PLAUSIBLE_LEAD = /\b(?:achieve[sd]?|achieving|reach(?:es|ing)?|get|gets|getting|hit|target(?:s|ing)?|with|of|at|an?|minimum|aim|want|need)\s*$/i;

function scoreValue(metric: MetricName, raw: string, percent: boolean): number {
  let v = parseNumber(raw);
  if (UNIT_INTERVAL_METRICS.has(metric) && (percent || (v > 1 && v <= 100))) v = v / 100;
  return v;
}

/** Errors in the target's units, which may carry a unit of time or size. */
const ERROR_IN_UNITS = new Set<MetricName>(["mae", "rmse"]);

export function metricConstraint(text: string, masked: string, m: MetricMention): { constraint: Constraint; start: number; end: number } | null {
  const direction = metricDirection(m.metric);
  // "top-5 accuracy" is a different measure from accuracy; leave it alone.
  if (/\btop[\s-]*\d+\s*$/i.test(text.slice(Math.max(0, m.start - 12), m.start))) return null;
  const after = AFTER_METRIC.exec(masked.slice(m.end, m.end + 300));
  if (after?.groups) {
    const g = after.groups;
    const matchEnd = m.end + after[0].length;
    // an error is measured in the target's own units: "MAE below 5 minutes" is a goal on MAE, not a time limit
    const inTargetUnits = ERROR_IN_UNITS.has(m.metric) && /^\s*(?:milli\w*|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|kb|mb|gb|k|m)\b/i.test(text.slice(matchEnd, matchEnd + 20));
    if (!NOT_A_SCORE_AFTER.test(text.slice(matchEnd, matchEnd + 40)) || g.pct || inTargetUnits) {
      let word: OpWord | null = g.trail ? opFromWords(g.trail) : g.op ? opFromWords(g.op) : null;
      // "RMSE exceeds 5" is no goal anyone sets; leave it out rather than invert it.
      if (word === "gt" && /exceed/i.test(g.op ?? "") && direction === "min") word = null;
      // With no comparison word the number must sit right after the metric or after "of"/"is"/":".
      const bare = Boolean(g.conn) || g.fill.trim() === "";
      const op: Op | null = word ? toConstraintOp(word, direction) : bare && !g.op ? (direction === "max" ? ">=" : "<=") : null;
      if (op) {
        const constraint = { name: m.metric, op, target: scoreValue(m.metric, g.num, Boolean(g.pct)), phrase: text.slice(m.start, matchEnd).trim() };
        return { constraint, start: m.start, end: matchEnd };
      }
    }
  }
  const sentStart = sentenceStart(text, m.start);
  const prefix = masked.slice(sentStart, m.start);
  const before = BEFORE_METRIC.exec(prefix);
  if (before?.groups) {
    const g = before.groups;
    const matchStart = sentStart + (before.index ?? 0);
    // Without a comparison word, a bare number counts only after a verb of aiming: "achieve 0.9 accuracy", "95% accuracy".
    const lead = text.slice(Math.max(sentStart, matchStart - 30), matchStart);
    if (!g.op && /\btop[\s-]*$/i.test(lead)) return null;
    const plausible = Boolean(g.op) || Boolean(g.pct) || PLAUSIBLE_LEAD.test(lead);
    const word = g.op ? opFromWords(g.op) : null;
    if (plausible && !(word === "gt" && direction === "min")) {
      const op: Op = word ? toConstraintOp(word, direction) : direction === "max" ? ">=" : "<=";
      const constraint = { name: m.metric, op, target: scoreValue(m.metric, g.num, Boolean(g.pct)), phrase: text.slice(matchStart, m.end).trim() };
      return { constraint, start: matchStart, end: m.end };
    }
  }
  return null;
}

const QTY_RE = new RegExp(
  `(?:(?<op>${OPS_SRC})|(?<in>(?<![\\w])in(?![\\w])))\\s*(?<subject>(?:training|train|fit|fitting|inference|prediction|latency|run|running)\\s+time\\s*(?:of|:|=|is)?\\s*)?(?:of\\s+|to\\s+)?(?:about\\s+|around\\s+|approximately\\s+|~\\s*)?` +
    `(?<num>${NUM_SRC})\\s*(?<unit>${UNIT_SRC})(?![\\w])` +
    `(?<per>\\s*(?:per|/|for\\s+each|for\\s+every|for\\s+a|each|a)\\s*(?:single\\s+)?(?:row|prediction|instance|sample|record|example|item|query|request|observation|input|customer|client|user|patient|passenger|house|listing|transaction|image|review|text|document|message|email|call|order)s?\\b)?`,
  "gi",
);
const QTY_TRAILING_RE = new RegExp(
  `(?<![\\w.])(?<num>${NUM_SRC})\\s*(?<unit>${UNIT_SRC})(?![\\w])(?<per>\\s*(?:per|\\/|for\\s+each|each)\\s*(?:row|prediction|instance|sample|record|example|query|request|observation)s?\\b)?(?:\\s*(?:of|for)\\s+(?:training|train|fitting))?\\s*(?<trail>or\\s+(?:less|fewer|lower|under|below|shorter|smaller)|at\\s+(?:the\\s+)?most|max(?:imum)?|tops)(?![\\w])`,
  "gi",
);

function unitValue(unitRaw: string, num: number): { kind: "time"; seconds: number } | { kind: "size"; mb: number } | { kind: "params"; count: number } | null {
  const unit = unitRaw.trim().replace(/\s+/g, " ");
  const param = /^(?:(thousand|million|billion|mln|bn|[kmb])\s*)?(?:trainable\s+)?param(?:eter)?s$/i.exec(unit);
  if (param) {
    const factor = param[1] ? PARAM_SCALE.find((p) => p.re.test(param[1]))?.factor ?? 1 : 1;
    return { kind: "params", count: num * factor };
  }
  const t = TIME_UNITS.find((u) => u.re.test(unit));
  if (t) return { kind: "time", seconds: num * t.seconds };
  const s = SIZE_UNITS.find((u) => u.re.test(unit));
  if (s) return { kind: "size", mb: num * s.mb };
  return null;
}

/** The clause before a limit is the part after the last "and"/comma: "..., and the prediction time for each instance is". */
function clauseOffset(prefix: string): number {
  let start = 0;
  for (const m of prefix.matchAll(/,|\band\b|\bwhile\b|\bbut\b/gi)) start = (m.index ?? 0) + m[0].length;
  return start;
}

/** Find the subject of a time limit in the words before it; returns its kind and where its phrase starts. */
function timeSubject(text: string, sentStart: number, opStart: number): { kind: string | null; phraseStart: number } {
  const prefix = text.slice(sentStart, opStart);
  const clauseStart = clauseOffset(prefix);
  const pick = (from: number): { kind: string | null; first: number } => {
    const hits: { kind: string; pos: number }[] = [];
    for (const s of TIME_SUBJECTS) for (const m of allMatches(prefix.slice(from), s.re)) hits.push({ kind: s.kind, pos: from + (m.index ?? 0) });
    if (hits.length === 0) return { kind: null, first: -1 };
    hits.sort((a, b) => a.pos - b.pos);
    // A specific word (per row, test set) outranks the bare verb "predict" anywhere in the clause.
    const specific = [...hits].reverse().find((h) => h.kind === "latency" || h.kind === "test");
    const last = hits[hits.length - 1];
    const kind = last.kind === "predict" && specific ? specific.kind : last.kind;
    return { kind, first: hits[0].pos };
  };
  const inClause = pick(clauseStart);
  if (inClause.kind) return { kind: inClause.kind, phraseStart: sentStart + inClause.first };
  const inSentence = pick(0);
  return { kind: inSentence.kind, phraseStart: opStart };
}

export function complexityConstraints(text: string): { constraint: Constraint; start: number; end: number }[] {
  const out: { constraint: Constraint; start: number; end: number }[] = [];
  const handle = (m: RegExpExecArray, opWord: OpWord | "in" | null, perRow: boolean): void => {
    const g = m.groups ?? {};
    if (opWord !== "le" && opWord !== "lt" && opWord !== "in") return; // only upper limits make sense
    const value = unitValue(g.unit, parseNumber(g.num));
    if (!value) return;
    const start = m.index ?? 0;
    const end = start + m[0].length;
    const sentStart = sentenceStart(text, start);
    const subj = timeSubject(text, sentStart, start);
    const op: Op = opWord === "lt" ? "<" : "<=";
    let phraseStart = subj.phraseStart;
    if (value.kind !== "time") {
      const prefix = text.slice(sentStart, start);
      const from = clauseOffset(prefix);
      const noun = /\b(?:model|gpu|vram|memory|size|network)\b/i.exec(prefix.slice(from));
      phraseStart = noun ? sentStart + from + (noun.index ?? 0) : start;
    }
    const phrase = text.slice(Math.min(phraseStart, start), end).trim();
    if (value.kind === "params") {
      if (opWord === "in") return;
      out.push({ start, end, constraint: { name: "n_params", op, target: value.count, phrase } });
      return;
    }
    if (value.kind === "size") {
      if (opWord === "in") return;
      const sentence = text.slice(sentStart, end);
      // the clause decides: "on the GPU, GPU memory at most 2 GB, model under 1 GB" holds two limits
      const clause = text.slice(sentStart + clauseOffset(text.slice(sentStart, start)), end);
      const gpu = /\b(?:gpu|vram|graphics\s+memory|cuda\s+memory)\b/i.test(/\bmodel\b/i.test(clause) ? clause : sentence);
      if (!gpu && /\b(?:ram|memory)\b/i.test(sentence) && !/\bmodel\b/i.test(sentence)) return;
      out.push({ start, end, constraint: { name: gpu ? "gpu_memory_mb" : "model_size_mb", op, target: value.mb, phrase } });
      return;
    }
    let kind = perRow ? "latency" : subj.kind;
    if (kind === "predict") {
      kind = /\btest(?:ing)?\s+(?:set|split|data)\b/i.test(text.slice(sentStart, end)) ? "test" : value.seconds < 1 ? "latency" : "test";
    }
    // "within 1 minute training", "5 min to train", "max training time 1h": a subject written with the limit wins
    if (!perRow && /^\s*(?:of\s+|for\s+|to\s+)?(?:training|train|fitting|fit|search|tuning)\b/i.test(text.slice(end, end + 20))) kind = "train";
    if (!perRow && /\b(?:of|for)\s+(?:training|train|fitting)\b|\b(?:training|train|fit|fitting)\s+time\b/i.test(text.slice(start, end))) kind = "train";
    // A bare duration with no subject ("within 7 days") is as likely a horizon as a limit.
    if (!kind) {
      if (value.seconds >= 1 || opWord === "in") return;
      kind = "latency";
    }
    if (kind === "latency") out.push({ start, end, constraint: { name: "latency_ms_per_row", op, target: value.seconds * 1000, phrase } });
    else if (kind === "test") out.push({ start, end, constraint: { name: "test_predict_s", op, target: value.seconds, phrase } });
    else out.push({ start, end, constraint: { name: "train_time_s", op, target: value.seconds, phrase } });
  };
  const covered: Span[] = [];
  for (const m of allMatches(text, QTY_RE)) {
    const g = m.groups ?? {};
    covered.push({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length });
    handle(m, g.in ? "in" : g.op ? opFromWords(g.op) : null, Boolean(g.per));
  }
  for (const m of allMatches(text, QTY_TRAILING_RE)) {
    const start = m.index ?? 0;
    // "under 10 minutes or less" was already read with its leading comparison.
    if (covered.some((c) => start >= c.start && start < c.end)) continue;
    handle(m, opFromWords(m.groups?.trail ?? ""), Boolean(m.groups?.per));
  }
  return out;
}

export function dedupeConstraints(list: Constraint[]): Constraint[] {
  const seen = new Set<string>();
  return list.filter((c) => {
    const key = `${c.name}|${c.op}|${c.target}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Pick the headline metric: one with a threshold, then one named as "the metric", then one fitting the task. */
export function chooseMetric(text: string, mentions: MetricMention[], constraints: Constraint[], task: TaskKind | null): MetricName | null {
  const withThreshold = constraints.find((c) => METRIC_SYNONYMS.some((m) => m.metric === c.name));
  if (withThreshold) return withThreshold.name as MetricName;
  if (mentions.length === 0) return null;
  const explicit = mentions.find((m) => {
    const before = text.slice(Math.max(0, m.start - 40), m.start);
    const after = text.slice(m.end, m.end + 12);
    return (
      /\bmetrics?\s*(?:is|will\s+be|should\s+be|=|:)\s*(?:the\s+)?$/i.test(before) ||
      /\b(?:optimi[sz]e|maximi[sz]e|minimi[sz]e)\s+(?:for\s+)?(?:the\s+)?$/i.test(before) ||
      /\b(?:measured|evaluated|judged|scored)\s+(?:by|with|using|on)\s+(?:the\s+)?$/i.test(before) ||
      /\bin\s+terms\s+of\s+$/i.test(before) ||
      /^\s*(?:metric|score)\b/i.test(after)
    );
  });
  if (explicit) return explicit.metric;
  const family = task ? METRICS_BY_TASK[task] : undefined;
  if (family) {
    const fit = mentions.find((m) => family.includes(m.metric));
    if (fit) return fit.metric;
  }
  // "evaluate its accuracy with RMSLE": a loose "accuracy" yields to a regression or clustering metric.
  const scoreLike = mentions.find((m) => !METRICS_BY_TASK.classification.includes(m.metric));
  if (scoreLike && mentions.every((m) => m.metric === "accuracy" || !METRICS_BY_TASK.classification.includes(m.metric))) return scoreLike.metric;
  return mentions[0].metric;
}
