// Written names to real columns: quoted or plain names read at an anchor, matched by case, form and stem.

import { GENERIC_NAME_TAIL, METRIC_SYNONYMS, MODEL_SYNONYMS, NAME_STOP } from "./lexicon.js";
import { distance } from "fastest-levenshtein";
import { stemmer } from "stemmer";
import { allMatches } from "./text.js";

const QUOTE_PAIRS: Record<string, string> = { "'": "'", '"': '"', "`": "`" };

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
  const wordRe = /[\p{L}_][\p{L}\p{N}_.-]*/uy;
  let j = i;
  while (words.length < maxWords) {
    wordRe.lastIndex = j;
    const m = wordRe.exec(text);
    if (!m) break;
    const w = m[0].replace(/[.-]+$/, "");
    if (NAME_STOP.has(w.toLowerCase())) break;
    // A possessive only qualifies what follows: "next month's sales", "customer's churn".
    const possessive = text.startsWith("'s ", j + w.length) ? 3 : /s$/i.test(w) && text.startsWith("' ", j + w.length) ? 2 : 0;
    if (possessive) {
      words.length = 0;
      j += w.length + possessive;
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

/** Lower case without accents: "Région" and "region" are the same word to a reader. */
export function fold(s: string): string {
  return s.normalize("NFD").replace(/\p{M}+/gu, "").toLowerCase();
}

export function squash(s: string): string {
  return fold(s).replace(/[^\p{L}\p{N}]+/gu, "");
}

export function stem(s: string): string {
  return s.replace(/(?:ies)$/, "y").replace(/(?:es|s|ed|ing)$/, "");
}

/** One word's key: folded and singular, so "charges" meets "Charges" and "varieties" meets "variety". */
export function wordKey(word: string): string {
  let w = fold(word);
  if (w.length > 4 && w.endsWith("ies")) w = w.slice(0, -3) + "y";
  else if (w.length > 3 && w.endsWith("s") && !/(?:ss|us|is)$/.test(w)) w = w.slice(0, -1);
  // one spelling for British and American forms: colour/color, odour/odor, centre/center
  return w.length >= 5 ? w.replace(/our$/, "or").replace(/([^aeiou])re$/, "$1er") : w;
}

/** A noun and its verb form share a long root: "readmission" and "readmitted", "conversion" and "converted". */
function sameRoot(a: string, b: string): boolean {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const shorter = Math.min(stemKey(a).length, stemKey(b).length);
  return (i >= 6 && i >= 0.75 * shorter) || (i >= 5 && i >= 0.8 * shorter);
}

/** A column word written without its vowels is an abbreviation: `cnt` of count, `amt` of amount, `qty` of quantity. */
function abbreviates(short: string, long: string): boolean {
  if (short.length < 3 || short.length > 4 || long.length <= short.length || short[0] !== long[0]) return false;
  if (/[aeiou]/.test(short.slice(1).replace(/y$/, "")) || short[short.length - 1] !== long[long.length - 1]) return false;
  let i = 0;
  for (const ch of long) if (ch === short[i]) i++;
  return i === short.length;
}

/** A word's stem (Porter), so "survival" meets "Survived" and "embarked" meets "embark". */
export function stemKey(word: string): string {
  return remember(stems, word, () => stemmer(fold(word)));
}

// Column names and words repeat across a conversation's readings: their analyses are kept (bounded).
const stems = new Map<string, string>();
const words = new Map<string, string[]>();
function remember<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size > 20_000) cache.clear();
    v = make();
    cache.set(key, v);
  }
  return v;
}

/** A column name as words: camelCase, snake_case, dots, dashes and spaces split; a unit in brackets dropped. */
export function nameWords(name: string): string[] {
  return remember(words, name, () =>
    name
      .replace(/\([^)]*\)|\[[^\]]*\]/g, " ")
      .split(/[^\p{L}\p{N}]+/u)
      .flatMap(pieces)
      .map(wordKey),
  );
}

/**
 * One written word in pieces: "SalePrice" → Sale, Price; "customerID" → customer, ID; "x2" → x, 2.
 * A single lower-case letter before capitals is a prefix, not a word: "kWh" and "pH" stay whole.
 */
function pieces(word: string): string[] {
  const spaced = word
    .replace(/(?<=\p{Ll}{2}|\p{Lu}\p{Ll}|[^\p{L}]\p{Ll})(?=\p{Lu})/gu, " ")
    .replace(/(?<=\p{Lu})(?=\p{Lu}\p{Ll})/gu, " ")
    .replace(/(?<=\p{L})(?=\p{N})|(?<=\p{N})(?=\p{L})/gu, " ");
  return spaced.split(" ").filter(Boolean);
}

/** The words of a column's bracketed unit: `Energy Use (kWh)` → kwh. */
function unitWords(name: string): string[] {
  return [...name.matchAll(/\(([^)]*)\)|\[([^\]]*)\]/g)].flatMap((m) => (m[1] ?? m[2]).split(/[^\p{L}\p{N}]+/u)).filter((w) => w.length >= 2).map(wordKey);
}

/** Candidate spellings of a name, most specific first: the whole phrase, then its trailing words. */
function nameVariants(name: string): string[] {
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

/** Words too common to name a column on their own, even when one column holds them. */
const GENERIC_WORDS = "data value number count type class label target feature column variable name";
/** Words that ask for a task; a part of them ("class" in "classifier") is never a column. */
const TASK_WORDS = /^(?:classif\w*|predict\w*|regress\w*|cluster\w*|forecast\w*|estimat\w*|model\w*|segment\w*|categori[sz]\w*)$/;
/** At an anchor ("predict the …", "ignore the …") the context says a column is meant. */
const WEAK_AT_ANCHOR = new Set(GENERIC_WORDS.split(" "));
/** Anywhere else a lone word must be more telling: "model size" is not `size_mm`. */
const WEAK_PARTIAL = new Set(
  (GENERIC_WORDS + " rate score total mean average amount level time size model set test train group cluster code index flag status info").split(" "),
);

/**
 * The columns a written name may mean: exact, then the same letters in another form (snake, camel,
 * spaced, accents), then the same stem, then a word that belongs to exactly one column ("price" for
 * `SalePrice`). Several columns come back when the words fit more than one equally well.
 */
export function columnCandidates(raw: string, columns: string[]): string[] {
  const name = raw.trim().replace(/^['"`]+|['"`.,;:!?)]+$/g, "").trim();
  if (!name) return [];
  const variants = nameVariants(name);
  for (const v of variants) {
    const exact = columns.filter((c) => c.toLowerCase() === v.toLowerCase());
    if (exact.length) return exact.slice(0, 1);
    const sq = columns.filter((c) => squash(c) === squash(v));
    if (sq.length) return sq;
    const byWords = columns.filter((c) => nameWords(c).join(" ") === nameWords(v).join(" "));
    if (byWords.length && nameWords(v).length) return byWords;
  }
  for (const v of variants) {
    const sv = stem(squash(v));
    if (sv.length < 4) continue;
    const hits = columns.filter((c) => stem(squash(c)) === sv);
    if (hits.length) return hits;
  }
  const written = name.split(/\s+/).filter(Boolean);
  // Same stems word for word: "survival" → Survived, "passenger survives" → nothing.
  const stems = written.map(stemKey).join(" ");
  const byStem = columns.filter((c) => nameWords(c).map(stemKey).join(" ") === stems);
  if (byStem.length) return byStem;
  // Initials and the last word, or initials alone: "passenger class" → Pclass, "blood pressure" → BP.
  if (written.length >= 2) {
    const initials = written.slice(0, -1).map((w) => fold(w)[0]).join("");
    const forms = [initials + fold(written[written.length - 1]), initials + fold(written[written.length - 1])[0]];
    const hits = columns.filter((c) => forms.includes(squash(c)));
    if (hits.length) return hits;
  }
  // A single word that is part of a column's name; the last word first ("tumour size" → size_mm).
  for (const w of [...written].reverse()) {
    const key = wordKey(w);
    if (key.length < 2 || NAME_STOP.has(key) || WEAK_AT_ANCHOR.has(key)) continue;
    const hits = columns.filter((c) => partOf(c, w));
    if (hits.length) return hits;
  }
  return [];
}

/**
 * Everyday words for the same column, as data scientists name them: "species" of flowers is the
 * `variety` column, "who lived" asks for `Survived`, "gender" is `Sex`. Keys, as wordKey gives them.
 */
const SAME_THING: readonly (readonly string[])[] = [
  ["species", "variety", "breed", "strain", "cultivar"],
  ["survived", "survive", "survival", "survivor", "lived", "died", "death", "dead", "alive"],
  ["churn", "churned", "attrition", "cancel", "cancellation", "cancelled", "canceled", "quit"],
  ["sex", "gender"],
  ["marital", "married", "marriage"],
  ["income", "salary", "earning", "wage"],
  ["mpg", "mileage"],
  ["fraud", "fraudulent"],
  ["satisfaction", "satisfied"],
  ["default", "defaulted"],
];

function sameThing(a: string, b: string): boolean {
  return SAME_THING.some((g) => g.includes(a) && g.includes(b));
}

/** Words that make a column an identifier: its other word names the rows ("passengers" is not PassengerId). */
const ID_WORDS = new Set(["id", "ids", "no", "nr", "key", "uuid", "identifier"]);

/**
 * Is a written word part of a column's name? The same word or stem ("rooms" in num-rooms), or an
 * abbreviation the column uses ("temperature" for Temp). The entity word of an identifier column does
 * not count: "passengers" are the rows, not `PassengerId`.
 */
function partOf(column: string, written: string): boolean {
  // a unit in brackets is part of the name here: "kWh usage" for `Energy Use (kWh)`
  const words = [...nameWords(column), ...unitWords(column)];
  const key = wordKey(written);
  const stem = stemKey(written);
  const hit = words.findIndex(
    (w) =>
      w === key ||
      sameThing(w, key) ||
      stemKey(w) === stem ||
      (w.length >= 4 && key.length > w.length && key.startsWith(w)) ||
      (stemKey(w).length >= 5 && stem.startsWith(stemKey(w))) ||
      abbreviates(w, key) ||
      sameRoot(w, key) ||
      (w.length >= 8 && distance(w, key) === 1),
  );
  if (hit < 0) return false;
  // `FlightNum`, `TicketNo`: a number word last makes an identifier too (`num-rooms` counts rooms)
  const idLike = words.length === 2 && (words.some((w) => ID_WORDS.has(w)) || ["num", "number", "nr", "no", "code", "ref", "reference", "tag"].includes(words[1]));
  return !(idLike && hit === 0);
}

/** Resolve a written name to one column; null when none fits or several fit equally. */
export function resolveColumn(raw: string, columns?: string[]): string | null {
  const name = raw.trim().replace(/^['"`]+|['"`.,;:!?)]+$/g, "").trim();
  if (!name) return null;
  if (!columns || columns.length === 0) return name;
  const hits = columnCandidates(name, columns);
  return hits.length === 1 ? hits[0] : null;
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

export interface ColumnMention {
  column: string;
  start: number;
  end: number;
  /** The words as written. */
  written: string;
  how: "quoted" | "name" | "partial";
}

interface Token {
  key: string;
  start: number;
  end: number;
  first: boolean; // first piece of a written word
  last: boolean; // last piece of a written word
}

/** Written words split into pieces the way column names are ("SalePrice" → sale, price), with offsets. */
function tokens(text: string): Token[] {
  const out: Token[] = [];
  for (const w of text.matchAll(/[\p{L}\p{N}]+(?:[_.'-][\p{L}\p{N}]+)*/gu)) {
    const base = w.index ?? 0;
    const parts: { text: string; at: number }[] = [];
    for (const seg of w[0].matchAll(/[\p{L}\p{N}]+/gu)) {
      let at = seg.index ?? 0;
      for (const p of pieces(seg[0])) {
        parts.push({ text: p, at });
        at += p.length;
      }
    }
    parts.forEach((p, i) => {
      const start = base + p.at;
      out.push({ key: wordKey(p.text), start, end: start + p.text.length, first: i === 0, last: i === parts.length - 1 });
    });
  }
  return out;
}

/**
 * Every place the text names a column: quoted names first, then whole written words that spell a
 * column in any form (longest first), then a word that belongs to exactly one column. `skip` holds
 * spans already read as something else (metric and model names, file names).
 */
export function findColumnMentions(text: string, columns: string[], skip: { start: number; end: number }[] = []): ColumnMention[] {
  if (columns.length === 0) return [];
  // characters already read as something else or as another column
  const covered = new Uint8Array(text.length + 1);
  const cover = (x: { start: number; end: number }) => covered.fill(1, Math.max(0, x.start), Math.min(text.length, x.end));
  skip.forEach(cover);
  const taken = (s: number, e: number) => covered.subarray(s, e).includes(1);
  const found: ColumnMention[] = [];
  const push = (m: ColumnMention) => {
    found.push(m);
    cover(m);
  };
  for (const m of text.matchAll(/(['"`])([^'"`\n]{1,80}?)\1/g)) {
    const start = m.index ?? 0;
    const hits = columnCandidates(m[2], columns).filter(() => exactish(m[2], columns));
    if (hits.length === 1 && !taken(start, start + m[0].length)) push({ column: hits[0], start, end: start + m[0].length, written: m[2], how: "quoted" });
  }
  const toks = tokens(text);
  const shapes = columns.map((c) => ({ column: c, words: nameWords(c) })).filter((s) => s.words.length > 0);
  shapes.sort((a, b) => b.words.length - a.words.length);
  for (const { column, words } of shapes) {
    for (let i = 0; i + words.length <= toks.length; i++) {
      if (!toks[i].first || toks[i].key !== words[0]) continue;
      const seq = toks.slice(i, i + words.length);
      if (!seq[seq.length - 1].last) continue;
      if (!seq.every((t, k) => t.key === words[k])) continue;
      // pieces must be neighbours: one word, or words apart by a space, dash, dot or underscore
      if (!seq.every((t, k) => k === 0 || /^[\s_.'-]{0,2}$/.test(text.slice(seq[k - 1].end, t.start)))) continue;
      const start = seq[0].start;
      const end = seq[seq.length - 1].end;
      if (taken(start, end)) continue;
      // "Temp (°C)" written in full: the bracketed unit belongs to the mention
      const at = column.search(/[([]/);
      const unit = at > 0 ? column.slice(at) : "";
      const gap = /^\s*/.exec(text.slice(end))?.[0].length ?? 0;
      const full = unit && text.slice(end + gap).toLowerCase().startsWith(unit.toLowerCase()) ? end + gap + unit.length : end;
      push({ column, start, end: full, written: text.slice(start, full), how: "name" });
    }
  }
  // "number of rooms" for `num-rooms`, "size in mm" for `size_mm`: the column's words in order, each
  // written in full or abbreviated by the column, with "in", "of", "per" or "by" allowed between them
  for (const { column, words } of shapes) {
    if (words.length < 2) continue;
    for (let i = 0; i < toks.length; i++) {
      if (!toks[i].first) continue;
      let k = 0;
      let j = i;
      const seq: Token[] = [];
      while (k < words.length && j < toks.length) {
        if (!sameWord(toks[j].key, words[k])) break;
        seq.push(toks[j]);
        k++;
        j++;
        if (k < words.length && j < toks.length && /^(?:in|of|per|by)$/.test(toks[j].key) && toks[j].first && toks[j].last) j++;
      }
      // a unit at the end of the name may go unwritten: "distance to centre" for `dist-to-center-km`
      if (k === words.length - 1 && k >= 2 && UNIT_WORDS.has(words[k])) k++;
      if (k < words.length || !seq[seq.length - 1].last) continue;
      const start = seq[0].start;
      const end = seq[seq.length - 1].end;
      if (!taken(start, end)) push({ column, start, end, written: text.slice(start, end), how: "name" });
    }
  }
  // "horse power" for `horsepower`: two or three written words that run together into a column's name
  const squashed = new Map(columns.map((c) => [squash(c), c]));
  for (let i = 0; i < toks.length; i++) {
    for (let n = 2; n <= 3 && i + n <= toks.length; n++) {
      const seq = toks.slice(i, i + n);
      if (!seq[0].first || !seq[n - 1].last || !seq.every((t, k) => k === 0 || /^\s$/.test(text.slice(seq[k - 1].end, t.start)))) continue;
      const joined = squash(text.slice(seq[0].start, seq[n - 1].end));
      // "weather situation" for `weathersit`: the column is the run-together words cut short
      const head = squash(text.slice(seq[0].start, seq[n - 2].end));
      const column = squashed.get(joined) ?? [...squashed].find(([sq]) => sq.length >= 6 && joined.startsWith(sq) && sq.length > head.length)?.[1];
      if (column && !taken(seq[0].start, seq[n - 1].end)) push({ column, start: seq[0].start, end: seq[n - 1].end, written: text.slice(seq[0].start, seq[n - 1].end), how: "name" });
    }
  }
  const partials = new Map<string, string[]>();
  for (const t of toks) {
    if (!(t.first && t.last) || t.key.length < 2 || NAME_STOP.has(t.key) || WEAK_PARTIAL.has(t.key) || TASK_WORDS.test(t.key) || taken(t.start, t.end)) continue;
    const written = text.slice(t.start, t.end);
    const cols = remember(partials, written.toLowerCase(), () => columns.filter((c) => partOf(c, written)));
    if (cols.length !== 1) continue;
    push({ column: cols[0], start: t.start, end: t.end, written, how: "partial" });
  }
  // "a text classifier", "image classification": the task's name, not the column called "text"
  const taskName = (m: ColumnMention) =>
    /^(?:text|texts|image|images|graph|node|nodes|time)$/i.test(m.written) && /^\s+(?:classif\w*|model\w*|series)\b/i.test(text.slice(m.end, m.end + 20));
  return found.filter((m) => !taskName(m)).sort((a, b) => a.start - b.start);
}

const UNIT_WORDS = new Set(["km", "m", "mm", "cm", "kg", "g", "lb", "lbs", "usd", "eur", "pct", "kwh", "s", "sec", "min", "h", "hr", "ms", "mb", "gb", "c", "f"]);

/** Two written words for the same thing: equal, the same stem, or one the other's abbreviation ("num", "number"). */
function sameWord(written: string, column: string): boolean {
  if (written === column || stemKey(written) === stemKey(column)) return true;
  const [short, long] = written.length < column.length ? [written, column] : [column, written];
  // "centre" and "center", "colour" and "color": spellings two letters apart in long words
  return (short.length >= 3 && long.startsWith(short)) || abbreviates(column, written) || sameRoot(written, column) || (short.length >= 6 && distance(short, long) <= 2);
}

/** A quoted string counts as a column mention only when it spells one (not a partial word). */
function exactish(raw: string, columns: string[]): boolean {
  return columns.some((c) => squash(c) === squash(raw) || nameWords(c).join(" ") === nameWords(raw).join(" "));
}
