import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { DataProfile } from "../../agents/types.js";
import { cachedConversion, sourceKey, writeCanonical, type Converted, type SourceInfo } from "./canonical.js";
import { detectFormat, HEAD_BYTES } from "./detect.js";
import { sniffDialect } from "./dialect.js";
import { confirmUtf8, textDecoder, UTF8 } from "./encoding.js";
import { jsonLinesRows, jsonRows } from "./json.js";
import type { Rows } from "./rows.js";
import { Scanner, type ReadPlan } from "./scan.js";
import { fileSource, readHead, type TableSource } from "./source.js";
import { textRows } from "./text.js";

// Every table a user sends is read once into the canonical CSV (./canonical.ts) and profiled from it,
// so the holdout, the harness, the other profilers and the uploads all read one format one way. A
// UTF-8, comma-separated file whose numbers and dates are already plain is used as it is: it is
// profiled in place, and the check that nothing needs rewriting rides on that same pass.

export interface ReadOptions {
  maxBytes: number;
  /** Where canonical copies are kept (<dataDir>/converted); a folder of this process's own when unset. */
  convertedDir?: string;
  /** The workbook sheet to read (the user's answer); the first sheet holding a table when unset. */
  sheet?: string | null;
}

/** Profiles a delimited UTF-8 table; `onRecord` sees every data record. */
export type Profiler = (source: TableSource, onRecord?: (record: string[]) => void) => Promise<DataProfile>;

let ownDir: string | null = null;
function convertedDir(options: ReadOptions): string {
  if (options.convertedDir) return options.convertedDir;
  ownDir ??= mkdtempSync(join(tmpdir(), "threadml-converted-"));
  return ownDir;
}

/** Decides each column's writing in one pass over `rows`, then writes the canonical file. */
async function convert(dir: string, key: string, rows: Rows, source: SourceInfo, delimiter: string | null): Promise<Converted> {
  const scanner = new Scanner(delimiter);
  for await (const row of rows.read()) scanner.observe(row);
  const header = rows.header();
  const plan = scanner.plan(header);
  return writeCanonical(dir, key, header, rows.read(), plan, withPlan(source, plan));
}

function withPlan(source: SourceInfo, plan: ReadPlan): SourceInfo {
  return { ...source, decimal: plan.decimal, thousands: plan.thousands, dates: [...source.dates, ...plan.dates] };
}

/** Reads any table the user sent and profiles it in its canonical form; `profile.source` says how it was read. */
export async function readTable(file: string, bytes: number, options: ReadOptions, profile: Profiler): Promise<DataProfile> {
  const name = basename(file);
  const dir = convertedDir(options);
  const detected = await detectFormat(file, name, bytes);
  const sheet = detected.kind === "excel" ? (options.sheet ?? null) : null;
  const base: SourceInfo = { format: "csv", original: file, encoding: null, delimiter: null, decimal: ".", thousands: null, sheet: null, sheets: [], dates: [] };
  const profiled = async (c: Converted): Promise<DataProfile> => ({
    ...(await profile(fileSource(c.file, c.bytes, { name, delimiter: "," }))),
    source: { ...c.source, original: file },
  });
  // the cache key hashes the whole upload: computed once, and only for files that need converting
  const key = () => sourceKey(file, { sheet });

  if (detected.kind === "text") {
    const encoding = await confirmUtf8(file, detected.encoding);
    const head = encoding === detected.encoding ? detected.head : textDecoder(encoding).write(await readHead(file, HEAD_BYTES));
    const dialect = sniffDialect(head, detected.complete);
    const source: SourceInfo = { ...base, encoding: encoding.label, delimiter: dialect.delimiter };
    if (encoding === UTF8 && dialect.delimiter === "," && dialect.skipLines === 0) {
      const scanner = new Scanner(",");
      const asIs = await profile(fileSource(file, bytes, { delimiter: "," }), scanner.observe);
      const header = asIs.columns.map((c) => c.name);
      const plan = scanner.plan(header);
      if (!plan.rewrite) return { ...asIs, source };
      const k = await key();
      const done = (await cachedConversion(dir, k)) ?? (await writeCanonical(dir, k, header, textRows(file, name, encoding, dialect).read(), plan, withPlan(source, plan)));
      return profiled(done);
    }
    const k = await key();
    return profiled((await cachedConversion(dir, k)) ?? (await convert(dir, k, textRows(file, name, encoding, dialect), source, dialect.delimiter)));
  }

  const k = await key();
  const hit = await cachedConversion(dir, k);
  if (hit) return profiled(hit);
  // the Excel and Parquet readers (and Parquet's WebAssembly decompressors) load only when a file needs them
  if (detected.kind === "excel") {
    const { readWorkbook } = await import("./excel.js");
    const book = await readWorkbook(file, name, sheet);
    return profiled(await convert(dir, k, book.rows, { ...base, format: "excel", sheet: book.sheet, sheets: book.sheets, dates: book.dates }, null));
  }
  if (detected.kind === "parquet") {
    const { parquetRows } = await import("./parquet.js");
    return profiled(await convert(dir, k, await parquetRows(file, name), { ...base, format: "parquet" }, null));
  }
  if (detected.kind === "json") {
    const rows = await jsonRows(file, name);
    return profiled(await convert(dir, k, rows, { ...base, format: "json", encoding: rows.encoding.label }, null));
  }
  const encoding = await confirmUtf8(file, detected.encoding);
  return profiled(await convert(dir, k, jsonLinesRows(file, name, encoding), { ...base, format: "jsonl", encoding: encoding.label }, null));
}
