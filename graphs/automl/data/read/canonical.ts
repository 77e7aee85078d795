import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
import { stringify } from "csv-stringify/sync";
import { DataProfile } from "../../agents/types.js";
import { canonicalCell, type ReadPlan } from "./scan.js";

// The canonical table every later step reads: UTF-8 without a byte-order mark, comma separated, RFC 4180
// quoting, "." decimals, ISO dates. Written once per upload, named by the sha256 of the source bytes and
// the reader's options, with the reading beside it; the same upload is found again after a restart.

export type SourceInfo = NonNullable<DataProfile["source"]>;
const SourceInfo = DataProfile.shape.source.unwrap();

/** Bumped when the conversion changes, so files converted the old way are not reused. */
const CONVERTER_VERSION = 1;

export interface Converted {
  file: string;
  bytes: number;
  source: SourceInfo;
}

/** sha256 of the source's bytes and of the options that change what is read from them. */
export async function sourceKey(file: string, options: Record<string, unknown>): Promise<string> {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ v: CONVERTER_VERSION, ...options }));
  hash.update("\n");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The conversion made earlier from the same bytes, if it is complete. */
export async function cachedConversion(dir: string, key: string): Promise<Converted | null> {
  const file = join(dir, `${key}.csv`);
  try {
    const source = SourceInfo.parse(JSON.parse(await readFile(join(dir, `${key}.json`), "utf8")));
    return { file, bytes: (await stat(file)).size, source };
  } catch {
    return null;
  }
}

/** Writes the canonical file (then its reading, which marks it complete) and returns it. */
export async function writeCanonical(
  dir: string,
  key: string,
  header: readonly string[],
  rows: AsyncIterable<string[]>,
  plan: ReadPlan,
  source: SourceInfo,
): Promise<Converted> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${key}.csv`);
  const partial = join(dir, `${key}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const width = header.length;
  const out = createWriteStream(partial);
  const failed = new Promise<never>((_, reject) => out.once("error", reject));
  failed.catch(() => {});
  // records go out in batches: a stream step per record costs more than the quoting itself
  const write = async (batch: string[][]) => {
    if (!out.write(stringify(batch, { record_delimiter: "\n" }))) await Promise.race([once(out, "drain"), failed]);
  };
  try {
    let batch: string[][] = [[...header]];
    for await (const row of rows) {
      const cells = new Array<string>(width);
      for (let i = 0; i < width; i++) cells[i] = canonicalCell(plan.columns[i], row[i] ?? "");
      batch.push(cells);
      if (batch.length >= 2000) {
        await write(batch);
        batch = [];
      }
    }
    if (batch.length) await write(batch);
    out.end();
    await Promise.race([once(out, "finish"), failed]);
    await rename(partial, file);
  } catch (err) {
    out.destroy();
    await rm(partial, { force: true });
    throw err;
  }
  const marker = `${join(dir, key)}.json`;
  const markerPartial = `${marker}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(markerPartial, JSON.stringify(source));
  await rename(markerPartial, marker);
  return { file, bytes: (await stat(file)).size, source };
}
