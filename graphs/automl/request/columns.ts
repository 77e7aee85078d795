// Written names to real columns: quoted or plain names read at an anchor, matched by case, form and stem.

import { GENERIC_NAME_TAIL, METRIC_SYNONYMS, MODEL_SYNONYMS, NAME_STOP } from "./lexicon.js";
import { allMatches } from "./text.js";

export const QUOTE_PAIRS: Record<string, string> = { "'": "'", '"': '"', "`": "`" };

/**
 * Read a name starting at `pos`: a quoted string, or up to `maxWords` plain words that are not
 * stop words. Returns the raw name and where it ended.
 */
export function readName(text: string, pos: number, maxWords = 3): { name: string; end: number; quoted: boolean } | null {
  let i = pos;
  while (i < text.length && text[i] === " ") i++;
  const q = text[i];
  if (q && QUOTE_PAIRS[q]) {
    const close = text.indexOf(QUOTE_PAIRS[q], i + 1);
    if (close > i + 1 && close - i < 80 && !text.slice(i + 1, close).includes("\n")) {
      return { name: text.slice(i + 1, close).trim(), end: close + 1, quoted: true };
    }
    return null;
  }
  const words: string[] = [];
  let end = i;
  const wordRe = /[A-Za-z_][\w-]*/y;
  let j = i;
  while (words.length < maxWords) {
    wordRe.lastIndex = j;
    const m = wordRe.exec(text);
    if (!m) break;
    const w = m[0].replace(/-+$/, "");
    if (NAME_STOP.has(w.toLowerCase())) break;
    // A possessive only qualifies what follows: "next month's sales", "customer's churn".
    if (text.startsWith("'s ", j + w.length)) {
      words.length = 0;
      j += w.length + 3;
      continue;
    }
    words.push(w);
    end = j + w.length;
    // Names continue only across single spaces; punctuation ends them.
    if (text[end] !== " ") break;
    j = end + 1;
  }
  if (words.length === 0) return null;
  while (words.length > 1 && GENERIC_NAME_TAIL.test(words[words.length - 1])) words.pop();
  return { name: words.join(" "), end, quoted: false };
}

export function squash(s: string): string {
  return s.toLowerCase().replace(/[\s_\-.]+/g, "");
}

export function stem(s: string): string {
  return s.replace(/(?:ies)$/, "y").replace(/(?:es|s|ed|ing)$/, "");
}

/** Candidate spellings of a name, most specific first: the whole phrase, then its trailing words. */
export function nameVariants(name: string): string[] {
  const words = name.split(/\s+/).filter(Boolean);
  const out: string[] = [name];
  for (let k = 1; k < words.length; k++) out.push(words.slice(k).join(" "));
  for (let k = words.length - 1; k >= 1; k--) out.push(words.slice(0, k).join(" "));
  const withSingular: string[] = [];
  for (const v of out) {
    withSingular.push(v);
    if (/ies$/i.test(v)) withSingular.push(v.replace(/ies$/i, "y"));
    if (/s$/i.test(v) && v.length > 3) withSingular.push(v.replace(/s$/i, ""));
  }
  return [...new Set(withSingular)];
}

/** Resolve a written name to one of the columns (exact, then squashed, then stemmed); null if none fits. */
export function resolveColumn(raw: string, columns?: string[]): string | null {
  const name = raw.trim().replace(/^['"`]+|['"`.,;:!?)]+$/g, "").trim();
  if (!name) return null;
  if (!columns || columns.length === 0) return name;
  const variants = nameVariants(name);
  for (const v of variants) {
    const exact = columns.find((c) => c.toLowerCase() === v.toLowerCase());
    if (exact) return exact;
    const sq = columns.find((c) => squash(c) === squash(v));
    if (sq) return sq;
  }
  for (const v of variants) {
    const sv = stem(squash(v));
    if (sv.length < 4) continue;
    const hits = columns.filter((c) => stem(squash(c)) === sv);
    if (hits.length === 1) return hits[0];
  }
  return null;
}

/** Names that cannot be columns: numbers, or phrases holding a metric or model name ("high accuracy"). */
export function looksLikeNonColumn(name: string): boolean {
  if (!/[A-Za-z]/.test(name)) return true;
  const probe = (re: RegExp) => new RegExp(re.source, "i").test(name);
  return METRIC_SYNONYMS.some((m) => probe(m.re)) || MODEL_SYNONYMS.some((m) => probe(m.re));
}

/** Run anchor regexes; at each anchor's end read a name and return the first that resolves. */
export function firstNameAfter(
  text: string,
  anchors: RegExp[],
  columns: string[] | undefined,
  opts: { maxWords?: number; quotedOnly?: boolean; accept?: (name: string, rest: string) => boolean } = {},
): string | null {
  for (const anchor of anchors) {
    for (const m of allMatches(text, anchor)) {
      const end = (m.index ?? 0) + m[0].length;
      const got = readName(text, end, opts.maxWords ?? 3);
      if (!got) continue;
      if (opts.quotedOnly && !got.quoted) continue;
      if (!got.quoted && looksLikeNonColumn(got.name)) continue;
      if (opts.accept && !opts.accept(got.name, text.slice(got.end, got.end + 40))) continue;
      const resolved = resolveColumn(got.name, columns);
      if (resolved) return resolved;
    }
  }
  return null;
}
