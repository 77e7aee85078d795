import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { hasTimeOfDay, isoOfDate } from "./dates.js";
import { DataError } from "./errors.js";
import { checkedHeader, type Rows } from "./rows.js";

// Parquet read on the host (hyparquet, pure JavaScript) and converted like any other upload, so the
// runners need no Parquet library of their own. One row group is in memory at a time.

/** Uncompressed bytes a file may declare; beyond it a small upload could expand without bound. */
const MAX_UNCOMPRESSED = 2 * 1024 ** 3;

function unreadable(name: string, reason: string): DataError {
  return new DataError(
    `${name} is a Parquet file I could not read (${reason.slice(0, 200)}); send it as CSV (e.g. df.to_csv) or as Parquet with snappy, gzip or zstd compression.`,
  );
}

function text(v: unknown, withTime: boolean): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "";
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return isoOfDate(v, withTime);
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
}

export async function parquetRows(file: string, name: string): Promise<Rows> {
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: FileMetaData;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw unreadable(name, (err as Error).message);
  }
  const declared = metadata.row_groups.reduce((s, g) => s + Number(g.total_byte_size), 0);
  if (declared > MAX_UNCOMPRESSED)
    throw new DataError(`${name} holds ${(declared / 1024 ** 3).toFixed(1)} GB of uncompressed data, over the 2 GB I read; send a sample of the rows.`);
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const header = checkedHeader(columns, name);
  // a column of timestamps all at midnight is a column of dates: learnt on the first read, used when writing
  const timeOfDay = columns.map(() => false);
  return {
    header: () => header,
    async *read() {
      let start = 0;
      for (const group of metadata.row_groups) {
        const end = start + Number(group.num_rows);
        let objects: Array<Record<string, unknown>>;
        try {
          objects = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end, compressors });
        } catch (err) {
          throw unreadable(name, (err as Error).message);
        }
        for (const o of objects) {
          yield columns.map((c, i) => {
            const v = o[c];
            if (v instanceof Date && !timeOfDay[i] && hasTimeOfDay(v)) timeOfDay[i] = true;
            return text(v, timeOfDay[i]);
          });
        }
        start = end;
      }
    },
  };
}
