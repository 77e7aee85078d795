// Numbers as people write them: number words ("ninety percent"), scale suffixes ("25k", "1.5M") and
// every number's place in the text, so the reading can account for each one.

import { createRequire } from "node:module";
import type { Span } from "./text.js";

/** Number words worth handing to the NLP library; a bare "one" is left alone (it is usually a pronoun). */
const NUMBER_WORD =
  /\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|zero|one\s+(?:hundred|thousand|million))\b/i;

type Nlp = (text: string) => {
  numbers(): { isCardinal(): { forEach(cb: (m: { text(): string; toNumber(): unknown }) => void): void } };
  text(): string;
};
let nlp: Nlp | null = null;

/**
 * "ninety five percent" → "95 percent", "twenty-five thousand" → "25000". The library is loaded on the
 * first text that needs it (it takes a few hundred milliseconds), so ordinary requests never pay for it.
 */
export function wordsToDigits(text: string): string {
  if (!NUMBER_WORD.test(text)) return text;
  nlp ??= createRequire(import.meta.url)("compromise") as Nlp;
  // only the sentences that hold number words go through the library: long pastes stay fast
  return text.replace(/[^.!?\n]+[.!?\n]*/g, (sentence) => {
    if (!NUMBER_WORD.test(sentence)) return sentence;
    const doc = nlp!(sentence);
    doc.numbers().isCardinal().forEach((m) => {
      // spans holding digits ("200 million") keep the user's words; expandScales reads those
      if (!/^(?:one|a|an)$/i.test(m.text().trim()) && !/\d/.test(m.text())) m.toNumber();
    });
    return doc.text();
  });
}

/** "25k" → "25000", "1.5M" → "1500000", "2bn" → "2000000000"; "kb", "KiB" and "ms" are units, not scales. */
export function expandScales(text: string): string {
  const words = text.replace(/(?<![\w.])(\d+(?:\.\d+)?)\s+(thousand|million|billion)\b(?!\s*(?:trainable\s+)?param)/gi, (all, num: string, scale: string) => {
    const value = Number(num) * ({ thousand: 1e3, million: 1e6, billion: 1e9 } as Record<string, number>)[scale.toLowerCase()];
    return Number.isFinite(value) ? String(Math.round(value * 1e6) / 1e6) : all;
  });
  return words.replace(/(?<![\w.])(\d+(?:\.\d+)?)\s?(k|K|M|mn|mln|bn)(?![\w])/g, (all, num: string, scale: string) => {
    const factor = /^[kK]$/.test(scale) ? 1e3 : /^(?:M|mn|mln)$/.test(scale) ? 1e6 : 1e9;
    const value = Number(num) * factor;
    return Number.isFinite(value) ? String(Math.round(value * 1e6) / 1e6) : all;
  });
}

export interface NumberMention extends Span {
  raw: string;
  value: number;
  percent: boolean;
}

/** Every number in the text with where it is, for the accountability check. */
function findNumbers(text: string): NumberMention[] {
  const out: NumberMention[] = [];
  for (const m of text.matchAll(/(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+)(\s*(?:%|percent\b|per\s*cent\b))?/gi)) {
    const start = m.index ?? 0;
    const value = Number(m[1].replace(/,/g, ""));
    if (!Number.isFinite(value)) continue;
    out.push({ start, end: start + m[0].length, raw: m[0].trim(), value, percent: Boolean(m[2]) });
  }
  return out;
}

export interface PlacedNumber extends NumberMention {
  /** What the number was read as; null when nothing could place it and it looks like a threshold. */
  use: "constraint" | "clusters" | "horizon" | "name" | "setting" | null;
}

/** Words after a number that make it a count or a setting, never a threshold: "5 folds", "seed 42", "10,000 rows". */
const SETTING_AFTER = /^\s*\)?\s*(?:is|as)\s+(?:the\s+)?positive\b|^\s*(?:-?\s*)?(?:folds?|fold\s+cv|splits?|rows?|samples?|records?|examples?|instances?|features?|columns?|classes|categories|clusters?|groups?|segments?|epochs?|trees?|estimators?|iterations?|layers?|neighbou?rs?|trials?|runs?|times|x|gb\s+of\s+ram|cores?|cpus?|gpus?|years?|months?|weeks?|days?|hours?|th|st|nd|rd)\b/i;
/** A class value, never a threshold: "positive = 1", "a positive class of 1". */
const CLASS_BEFORE = /\b(?:class|label)\s+(?:of|is|=)\s*$|\bpositive\s*[=:]\s*$/i;
/** A hyperparameter or a split, never a goal: "max depth of 5", "learning rate 0.1", "a 20% test split". */
const SETTING_NAMED_BEFORE =
  /\b(?:depth|learning\s+rate|rate|lr|alpha|lambda|gamma|dropout|momentum|epochs?|batch(?:\s+size)?|layers?|units|neurons|trees|estimators|neighbou?rs|iterations?|seed|random[_\s]state|(?:test|validation|valid|holdout|hold[\s-]out)(?:\s+(?:size|split|set|fraction|ratio))?|max[_\s]\w+|min[_\s]\w+|n[_\s]\w+|k)\s*(?:of|=|:|to|at)?\s*(?:about\s+|around\s+)?$/i;
const SETTING_NAMED_AFTER = /^\s*(?:%|percent)?\s*(?:of\s+the\s+(?:data|rows)\s+)?(?:for\s+)?(?:test(?:ing)?|validation|holdout|hold[\s-]out)\b|^\s*(?:%|percent)?\s*(?:split|learning\s+rate|dropout)\b/i;
/** Words after a bare number that make it a wish about the score: "85 would be great", "0.9 or better", "0.9+". */
const THRESHOLD_AFTER = /^\s*(?:%|percent)?\s*(?:\+|(?:would|'d|will|should)\s+be\s+(?:great|nice|good|ideal|fine|ok|okay|enough|acceptable|perfect)|or\s+(?:better|more|higher|above|less|lower|below))/i;
const SETTING_BEFORE = /\b(?:seed|random_state|version|v|python|top|k|n|fold|batch(?:\s+size)?|step|epochs?|the|of|about|around|approximately|over|than)\s*[=:]?\s*$|\b(?:19|20)$/i;
const THRESHOLD_BEFORE =
  /(?:>=|<=|[<>≥≤=]|\b(?:at\s+least|at\s+most|above|below|under|over|more\s+than|less\s+than|better\s+than|higher\s+than|lower\s+than|no\s+(?:less|more|worse|lower|higher)\s+than|min(?:imum)?|max(?:imum)?|reach(?:es)?|achieve[sd]?|hit|get|gets|target|goal|aim(?:\s+for)?|around|about|roughly|within|exceed(?:s|ing)?|beat|score\s+of|of))\s*(?:a\s+|an\s+)?$/i;

/**
 * What each number in the request was read as. A number inside a threshold, the cluster count, the
 * horizon or a name is placed; counts and settings ("5 folds", "seed 42", "2023") are recorded but not
 * asked about; what is left and looks like a threshold ("0.7 would be nice", "get it above 0.9") is
 * unplaced, and the engine asks about it rather than drop it.
 */
export function placeNumbers(
  text: string,
  read: { constraints: Span[]; clusters: number | null; horizon: string | null; covered: Span[] },
): PlacedNumber[] {
  const horizonAt = read.horizon ? text.indexOf(read.horizon) : -1;
  const horizon: Span | null = horizonAt >= 0 ? { start: horizonAt, end: horizonAt + read.horizon!.length } : null;
  const inside = (n: Span, spans: Span[]) => spans.some((s) => n.start >= s.start && n.end <= s.end + 1);
  return findNumbers(text).map((n): PlacedNumber => {
    if (inside(n, read.constraints)) return { ...n, use: "constraint" };
    if (inside(n, read.covered) || /^[\w-]/.test(text.slice(n.end, n.end + 1)) || /[\w-]$/.test(text.slice(Math.max(0, n.start - 1), n.start))) return { ...n, use: "name" };
    if (horizon && inside(n, [horizon])) return { ...n, use: "horizon" };
    const before = text.slice(Math.max(0, n.start - 40), n.start);
    const after = text.slice(n.end, n.end + 30);
    if (read.clusters !== null && n.value === read.clusters && !n.percent) return { ...n, use: "clusters" };
    if (CLASS_BEFORE.test(before) || SETTING_NAMED_BEFORE.test(before) || SETTING_NAMED_AFTER.test(after)) return { ...n, use: "setting" };
    const thresholdLike = n.percent || (n.value > 0 && n.value < 1) || THRESHOLD_BEFORE.test(before) || THRESHOLD_AFTER.test(after);
    if (SETTING_AFTER.test(after) || (!thresholdLike && SETTING_BEFORE.test(before)) || (Number.isInteger(n.value) && n.value >= 1900 && n.value <= 2100)) {
      return { ...n, use: "setting" };
    }
    return { ...n, use: thresholdLike ? null : "setting" };
  });
}
