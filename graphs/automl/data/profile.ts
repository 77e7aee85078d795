import { promises as fs } from "node:fs";
import { basename } from "node:path";
import { parse } from "csv-parse";
import type { ColumnProfile, DataProfile } from "../agents/types.js";
import { duplicateName, headerNames, isMissing } from "./read/cells.js";
import { sniffDialect } from "./read/dialect.js";
import { HEAD_BYTES } from "./read/detect.js";
import { DataError } from "./read/errors.js";
import { readTable, type ReadOptions } from "./read/index.js";
import type { TableSource } from "./read/source.js";

export { isMissing } from "./read/cells.js";
export { TABLE_EXTENSION } from "./read/detect.js";
export { DataError } from "./read/errors.js";
export type { ReadOptions } from "./read/index.js";
export { bufferSource, fileSource, type TableSource } from "./read/source.js";

/** Fewer data rows than this cannot be split into training, validation and test rows. */
export const MIN_ROWS = 20;
const UNIQUE_CAP = 2000;
const TARGET_HINTS = /^(target|label|labels|class|y|outcome|result|quality|price|churn|status|grade|category|species|age|score|defects?)$/i;
const ID_NAME = /(^id$|_id$|^id_|uuid|^index$|^unnamed: ?0$|^row ?(id|number)$|^customer ?id$)/i;
const DATE_LIKE = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?/;
// Free text, the same rule as the harness's (runners/python/harness.py, looks_like_text): values
// longer than this on average, and more distinct than this share of the filled cells.
const TEXT_MIN_MEAN_LENGTH = 25;
const TEXT_MIN_UNIQUE_RATIO = 0.3;
// Short strings that nearly never repeat (names, emails, order codes) identify a row; they carry
// nothing a model can reuse on new rows. Too few rows say nothing about repetition.
const ID_MIN_ROWS = 50;
const ID_MIN_UNIQUE_RATIO = 0.95;
// Dates written other than ISO ("15/03/2024", "Mar 15 2024 10:00") are read as categories, yet are times.
const MONTH = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\\p{L}{0,6}\\.?";
const DATE_WRITTEN = new RegExp(
  `^(?:\\d{1,4}[-/.]\\d{1,2}[-/.]\\d{1,4}|\\d{1,2}[ -]?${MONTH}[-, ]*\\d{2,4}|${MONTH} \\d{1,2},? \\d{2,4})(?:[ T,]+\\d{1,2}[:h.]\\d{2}(?::\\d{2})?)?`,
  "iu",
);

interface Acc {
  missing: number;
  numeric: number;
  integer: number;
  min: number;
  max: number;
  sum: number;
  dates: number;
  totalLength: number;
  counts: Map<string, number>;
  overflow: boolean;
}

function newAcc(): Acc {
  return { missing: 0, numeric: 0, integer: 0, min: Infinity, max: -Infinity, sum: 0, dates: 0, totalLength: 0, counts: new Map(), overflow: false };
}

function observe(acc: Acc, raw: string): void {
  const value = raw.trim();
  if (isMissing(value)) {
    acc.missing++;
    return;
  }
  const n = Number(value);
  if (Number.isFinite(n)) {
    acc.numeric++;
    if (Number.isInteger(n)) acc.integer++;
    if (n < acc.min) acc.min = n;
    if (n > acc.max) acc.max = n;
    acc.sum += n;
  } else if (DATE_LIKE.test(value)) acc.dates++;
  acc.totalLength += value.length;
  const seen = acc.counts.get(value);
  if (seen !== undefined) acc.counts.set(value, seen + 1);
  else if (acc.counts.size < UNIQUE_CAP) acc.counts.set(value, 1);
  else acc.overflow = true;
}

/**
 * Nearly every filled cell differs. Past the distinct-value cap the share is unknown; the values kept
 * under the cap were counted over the whole file, so their average count stands for the column's.
 */
function nearlyUnique(acc: Acc, present: number): boolean {
  if (!acc.overflow) return acc.counts.size >= present * ID_MIN_UNIQUE_RATIO;
  let seen = 0;
  for (const n of acc.counts.values()) seen += n;
  return seen / acc.counts.size <= 1 / ID_MIN_UNIQUE_RATIO;
}

function looksLikeTimes(acc: Acc): boolean {
  const values = [...acc.counts.keys()].slice(0, 200);
  return values.filter((v) => DATE_WRITTEN.test(v)).length >= values.length * 0.9;
}

function columnProfile(name: string, acc: Acc, rows: number): ColumnProfile {
  const present = rows - acc.missing;
  const unique = acc.overflow ? Math.max(UNIQUE_CAP, acc.counts.size) : acc.counts.size;
  let kind: ColumnProfile["kind"];
  const lowered = [...acc.counts.keys()].map((k) => k.toLowerCase());
  if (present === 0) kind = "empty";
  else if (acc.numeric === present) kind = "numeric";
  else if (lowered.every((v) => ["true", "false", "yes", "no"].includes(v))) kind = "boolean";
  else if (acc.dates === present) kind = "datetime";
  // past the distinct-value cap the ratio is unknown, but thousands of distinct long values are text
  else if (acc.totalLength / present > TEXT_MIN_MEAN_LENGTH && (unique > present * TEXT_MIN_UNIQUE_RATIO || acc.overflow)) kind = "text";
  else kind = "categorical";

  let suspect: ColumnProfile["suspect"] = null;
  if (unique <= 1) suspect = "constant";
  // Free text is a feature even when every value differs or many are empty: it is not an identifier.
  else if (kind === "text") suspect = null;
  else if (acc.missing > rows * 0.5) suspect = "mostly_missing";
  // Nor is a time: every timestamp may differ, but it says when, and a forecast needs it.
  else if (kind === "datetime") suspect = null;
  else if (
    unique === present &&
    present === rows &&
    (ID_NAME.test(name) || (kind === "numeric" && acc.integer === present && acc.max - acc.min === present - 1))
  )
    suspect = "id";
  else if (
    kind === "categorical" &&
    present >= ID_MIN_ROWS &&
    nearlyUnique(acc, present) &&
    acc.totalLength / present < TEXT_MIN_MEAN_LENGTH &&
    !looksLikeTimes(acc)
  )
    suspect = "id";

  const top = [...acc.counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([value, count]) => ({ value, count }));
  return {
    name,
    kind,
    missing: acc.missing,
    unique,
    examples: [...acc.counts.keys()].slice(0, 5),
    stats:
      kind === "numeric" && present > 0
        ? { min: acc.min, max: acc.max, mean: acc.sum / present, integer: acc.integer === present }
        : null,
    top: unique <= 50 ? top : top.slice(0, 5),
    suspect,
  };
}

/** Free-text feature columns: the profile's text columns other than the target, labels and dropped ones. */
export function textFeatureColumns(
  profile: DataProfile,
  req: { target: string | null; labels_column?: string | null; drop_columns: readonly string[] },
): string[] {
  return profile.columns
    .filter((c) => c.kind === "text" && c.name !== req.target && c.name !== req.labels_column && !req.drop_columns.includes(c.name))
    .map((c) => c.name);
}

/** Columns that could be a prediction target, most likely first. */
export function rankTargets(columns: ColumnProfile[]): string[] {
  const usable = columns.filter((c) => c.suspect === null && c.kind !== "text" && c.kind !== "empty" && c.kind !== "datetime");
  const score = (c: ColumnProfile, index: number): number => {
    let s = 0;
    if (TARGET_HINTS.test(c.name.trim())) s += 10;
    if (index === columns.length - 1) s += 4;
    if (c.kind !== "numeric" && c.unique <= 20) s += 2;
    if (c.kind === "numeric" && c.stats?.integer && c.unique <= 10) s += 2;
    return s;
  };
  return usable
    .map((c) => ({ c, s: score(c, columns.indexOf(c)) }))
    .sort((a, b) => b.s - a.s)
    .map(({ c }) => c.name);
}

/** Checks the file a user named before reading it: present, a file, within the size limit, not empty. */
export async function checkedFile(file: string, maxBytes: number): Promise<number> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    throw new DataError(`I can't find the data file ${file}. Check the path, or attach the file again.`);
  }
  if (!stat.isFile()) throw new DataError(`${file} is not a file.`);
  const limitMb = Math.round(maxBytes / 1048576);
  if (stat.size > maxBytes)
    throw new DataError(
      `${basename(file)} is ${(stat.size / 1048576).toFixed(1)} MB, over the ${limitMb} MB limit. Send a smaller sample or raise limits.maxUploadMb.`,
    );
  if (stat.size === 0) throw new DataError(`${basename(file)} is empty: it has no header and no rows.`);
  return stat.size;
}

/**
 * Reads a table the user sent (delimited text in any common encoding, Excel, JSON, JSON lines, Parquet)
 * and profiles every column of its canonical form. Throws DataError with a user-facing message.
 */
export async function profileCsv(file: string, options: ReadOptions): Promise<DataProfile> {
  const bytes = await checkedFile(file, options.maxBytes);
  return readTable(file, bytes, options, profileTable);
}

/** Profiles every column of a delimited UTF-8 table; `onRecord` sees each data record too. */
export async function profileTable(source: TableSource, onRecord?: (record: string[]) => void): Promise<DataProfile> {
  const name = source.name;
  const head = await source.head(HEAD_BYTES);
  if (head.includes("\u0000")) throw new DataError(`${name} looks binary, not like CSV text.`);
  const dialect = source.delimiter ? { delimiter: source.delimiter, skipLines: 0 } : sniffDialect(head, source.bytes <= HEAD_BYTES);
  const delimiter = dialect.delimiter;

  let header: string[] | null = null;
  let accs: Acc[] = [];
  let rows = 0;
  const seenRows = new Set<string>();
  let duplicateRows = 0;
  const parser = source
    .stream()
    .pipe(parse({ delimiter, from_line: dialect.skipLines + 1, bom: true, skip_empty_lines: true, relax_quotes: false, trim: false }));
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (!header) {
        header = headerNames(record);
        const dup = duplicateName(header);
        if (dup) throw new DataError(`${name} has the column name "${dup}" twice; column names must be unique.`);
        accs = header.map(() => newAcc());
        continue;
      }
      rows++;
      for (let i = 0; i < accs.length; i++) observe(accs[i], record[i] ?? "");
      onRecord?.(record);
      if (rows <= 200_000) {
        const key = record.join("\u0001");
        if (seenRows.has(key)) duplicateRows++;
        else seenRows.add(key);
      }
    }
  } catch (err) {
    if (err instanceof DataError) throw err;
    const message = (err as Error).message.replace(/^Invalid Record Length: /, "");
    throw new DataError(`${name} is not valid CSV: ${message}`);
  }
  if (!header) throw new DataError(`${name} is empty: it has no header and no rows.`);
  if (rows === 0) throw new DataError(`${name} has a header but no data rows.`);
  const columns = header.map((col, i) => columnProfile(col, accs[i], rows));
  return {
    file: source.file,
    name,
    bytes: source.bytes,
    rows,
    sampled: false,
    columns,
    candidateTargets: rankTargets(columns),
    duplicateRows,
    delimiter,
  };
}

/** Rows of a table as records of the named columns (the profile's second pass for times, ids and edges). */
export async function* tableRows(source: TableSource, delimiter: string, columns: string[]): AsyncGenerator<string[]> {
  const parser = source.stream().pipe(parse({ delimiter, bom: true, skip_empty_lines: true, relax_quotes: false, trim: false, relax_column_count: true }));
  let index: number[] | null = null;
  for await (const record of parser as AsyncIterable<string[]>) {
    if (!index) {
      const header = headerNames(record);
      index = columns.map((c) => header.indexOf(c));
      continue;
    }
    yield index.map((i) => (i >= 0 ? (record[i] ?? "").trim() : ""));
  }
}
