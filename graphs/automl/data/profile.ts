import { createReadStream, promises as fs } from "node:fs";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { parse } from "csv-parse";
import type { ColumnProfile, DataProfile } from "../agents/types.js";

/** A problem with the user's data, phrased for the user. */
/** Fewer data rows than this cannot be split into training, validation and test rows. */
export const MIN_ROWS = 20;

export class DataError extends Error {
  override name = "DataError";
}

const MISSING = new Set(["", "na", "n/a", "nan", "null", "none", "?", "-"]);

/** A cell the profile counts as missing. */
export function isMissing(value: string): boolean {
  return MISSING.has(value.trim().toLowerCase());
}
const UNIQUE_CAP = 2000;
const TARGET_HINTS = /^(target|label|labels|class|y|outcome|result|quality|price|churn|status|grade|category|species|age|score|defects?)$/i;
const ID_NAME = /(^id$|_id$|^id_|uuid|^index$|^unnamed: ?0$|^row ?(id|number)$|^customer ?id$)/i;
const DATE_LIKE = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?/;
// Free text, the same rule as the harness's (runners/python/harness.py, looks_like_text): values
// longer than this on average, and more distinct than this share of the filled cells.
const TEXT_MIN_MEAN_LENGTH = 25;
const TEXT_MIN_UNIQUE_RATIO = 0.3;

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
  if (MISSING.has(value.toLowerCase())) {
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

function sniffDelimiter(head: string): string {
  const line = head.split(/\r?\n/, 1)[0] ?? "";
  const counts: Array<[string, number]> = [",", ";", "\t", "|"].map((d) => [d, line.split(d).length - 1]);
  counts.sort((a, b) => b[1] - a[1]);
  return counts[0][1] > 0 ? counts[0][0] : ",";
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
  else if (
    unique === present &&
    present === rows &&
    (ID_NAME.test(name) || (kind === "numeric" && acc.integer === present && acc.max - acc.min === present - 1))
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

/** A delimited table to profile: a file, or a member of an archive held in memory. */
export interface TableSource {
  /** What `DataProfile.file` records (the file, or the archive holding the member). */
  file: string;
  /** The name the user knows it by. */
  name: string;
  bytes: number;
  head(bytes: number): Promise<string>;
  stream(): Readable;
}

export function fileSource(file: string, bytes: number): TableSource {
  return { file, name: basename(file), bytes, head: (n) => readHead(file, n), stream: () => createReadStream(file) };
}

export function bufferSource(file: string, name: string, data: Buffer): TableSource {
  return {
    file,
    name,
    bytes: data.length,
    head: async (n) => data.subarray(0, n).toString("utf8"),
    stream: () => Readable.from([data]),
  };
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

export const TABLE_EXTENSION = /\.(csv|tsv|txt|data)$/i;

/** Reads a delimited text file and profiles every column. Throws DataError with a user-facing message. */
export async function profileCsv(file: string, options: { maxBytes: number }): Promise<DataProfile> {
  const bytes = await checkedFile(file, options.maxBytes);
  if (!TABLE_EXTENSION.test(file))
    throw new DataError(`${basename(file)} is not a CSV file. The offline engine reads comma- or tab-separated text with a header row.`);
  return profileTable(fileSource(file, bytes));
}

/** Profiles every column of a delimited table. */
export async function profileTable(source: TableSource): Promise<DataProfile> {
  const name = source.name;
  const head = await source.head(65536);
  if (head.includes("\u0000")) throw new DataError(`${name} looks binary, not like CSV text.`);
  const delimiter = sniffDelimiter(head);

  let header: string[] | null = null;
  let accs: Acc[] = [];
  let rows = 0;
  const seenRows = new Set<string>();
  let duplicateRows = 0;
  const parser = source.stream().pipe(parse({ delimiter, bom: true, skip_empty_lines: true, relax_quotes: false, trim: false }));
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (!header) {
        header = record.map((h, i) => h.trim() || `column_${i + 1}`);
        const dup = header.find((h, i) => header!.indexOf(h) !== i);
        if (dup) throw new DataError(`${name} has the column name "${dup}" twice; column names must be unique.`);
        accs = header.map(() => newAcc());
        continue;
      }
      rows++;
      for (let i = 0; i < accs.length; i++) observe(accs[i], record[i] ?? "");
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
      const header = record.map((h, i) => h.trim() || `column_${i + 1}`);
      index = columns.map((c) => header.indexOf(c));
      continue;
    }
    yield index.map((i) => (i >= 0 ? (record[i] ?? "").trim() : ""));
  }
}

async function readHead(file: string, bytes: number): Promise<string> {
  const handle = await fs.open(file, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}
