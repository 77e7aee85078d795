// Text utilities for the request readers: offset-keeping normalisation and masking, sentence bounds.

import { type Constraint } from "../../../src/schema/requirements.js";
import { OP_PHRASES, OpWord, TRAILING_OPS } from "./lexicon.js";
import { ParsedRequest } from "./parse.js";

export type Intent = ParsedRequest["intent"];
export type Op = Constraint["op"];
export type Span = { start: number; end: number };


export function normalizeText(text: string): string {
  // Single-character replacements only, so offsets stay valid against the original text.
  return text
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
