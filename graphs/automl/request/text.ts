// Text utilities for the request readers: offset-keeping normalisation and masking, sentence bounds.

import { distance } from "fastest-levenshtein";
import { stemmer } from "stemmer";
import { type Constraint } from "../../../src/schema/requirements.js";
import { OP_PHRASES, OpWord, TRAILING_OPS } from "./lexicon.js";
import { ParsedRequest } from "./parse.js";

export type Intent = ParsedRequest["intent"];
export type Op = Constraint["op"];
export type Span = { start: number; end: number };


/** A few French words and chat shorthands ("pred", "x n y") read as the English the readers know. */
const REWRITES: [RegExp, string][] = [
  [/\bpr[ée]dire\b/gi, "predict"],
  [/\bau\s+moins\b/gi, "at least"],
  [/\bau\s+plus\b/gi, "at most"],
  [/\bmoins\s+de\b/gi, "less than"],
  [/\bplus\s+de\b/gi, "more than"],
  [/\bsans\s+utiliser\b/gi, "without using"],
  [/\bpred\b(?=\s+\p{L})/giu, "predict"],
  [/(?<=\p{L})\s+n\s+(?=\p{L})/gu, " and "],
  [/\bsans\b/gi, "without"],
  [/\bni\b/gi, "nor"],
  [/\bcolonne\b/gi, "column"],
  [/\bmod[èe]le\b/gi, "model"],
];

export function normalizeText(text: string): string {
  let out = text;
  for (const [re, en] of REWRITES) out = out.replace(re, en);
  // "$30,000" is 30,000; "one minute" is 1 minute (a bare "one" is left to the number reader)
  out = out
    .replace(/\bhalf\s+an?\s+(hour|minute)\b/gi, (_m, u: string) => (u.toLowerCase() === "hour" ? "30 minutes" : "30 seconds"))
    .replace(/\bsquare\s+f(?:oo|ee)t\b/gi, "sqft")
    .replace(/\bsquare\s+met(?:er|re)s?\b/gi, "sqm")
    .replace(/[$€£](?=\d)/g, "").replace(/\bone\s+(?=(?:minute|hour|second|day|millisecond|ms|gb|mb|kb|gigabyte|megabyte|kilobyte|percent)s?\b)/gi, "1 ");
  return out
    .replace(/[\u2018\u2019\u02BC]/g, "'")
    .replace(/[\u201C\u201D]/g, '"')
    .replace(/[\u00A0\u2007\u202F]/g, " ")
    .replace(/[\u2013\u2014]/g, "-");
}

export function parseNumber(raw: string): number {
  return Number(raw.replace(/,/g, ""));
}

export function allMatches(text: string, re: RegExp): RegExpExecArray[] {
  const flags = re.flags.includes("g") ? re.flags : re.flags + "g";
  return [...text.matchAll(new RegExp(re.source, flags))];
}

/** Blank out spans with a filler character, keeping offsets. */
export function mask(text: string, spans: Span[], fill = " "): string {
  if (spans.length === 0) return text;
  const chars = text.split("");
  for (const s of spans) for (let i = Math.max(0, s.start); i < Math.min(chars.length, s.end); i++) chars[i] = fill;
  return chars.join("");
}

export function opFromWords(words: string): OpWord | null {
  const w = words.trim().replace(/\s+/g, " ");
  for (const e of OP_PHRASES) if (new RegExp(`^(?:${e.src})$`, "i").test(w)) return e.op;
  for (const t of TRAILING_OPS) if (t.re.test(w)) return t.op;
  return null;
}

export const OPS_SRC = OP_PHRASES.map((e) => (e.word ? `(?<![\\w'])(?:${e.src})(?![\\w])` : `(?:${e.src})`)).join("|");

export function toConstraintOp(word: OpWord, direction: "max" | "min"): Op {
  if (word === "better") return direction === "max" ? ">" : "<";
  return ({ ge: ">=", gt: ">", le: "<=", lt: "<" } as const)[word];
}

/** Where the sentence holding `pos` starts; looks back a bounded distance so long texts stay fast. */
export function sentenceStart(text: string, pos: number, maxBack = 400): number {
  const from = Math.max(0, pos - maxBack);
  const before = text.slice(from, pos);
  let start = from;
  for (const m of before.matchAll(/[.!?;](?=\s)|\n/g)) start = from + (m.index ?? 0) + 1;
  return start;
}

export function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Words the readers key on; a misspelling of one of these ("predcit", "acuracy") is read as the word. */
const KEYWORDS = (
  "predict prediction predicting classify classifier classification clustering cluster clusters accuracy precision recall " +
  "regression regressor estimate forecast exclude excluding ignore ignoring target column columns without minutes seconds " +
  "latency percent maximum minimum segment training silhouette adjusted between whether"
).split(" ");
const KEYWORD_SET = new Set(KEYWORDS);

/**
 * Mend misspelt keywords: one letter added, dropped or changed (words of six letters or more) or two
 * neighbours swapped (five or more). Column names and their words are never touched, and a word that
 * is near two keywords is left as written.
 */
export function fixTypos(text: string, keep: (word: string) => boolean): string {
  return text.replace(/\p{L}{5,}/gu, (word) => {
    const w = word.toLowerCase();
    if (KEYWORD_SET.has(w) || keep(w)) return word;
    const swapped = new Set<string>();
    for (let i = 0; i + 1 < w.length; i++) swapped.add(w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2));
    const near = KEYWORDS.filter((k) => swapped.has(k) || (w.length >= 6 && Math.abs(k.length - w.length) <= 1 && distance(k, w) === 1));
    // "segments" is a form of "segment", not a misspelling of it
    if (near.some((k) => stemmer(k) === stemmer(w))) return word;
    return near.length === 1 ? near[0] : word;
  });
}
