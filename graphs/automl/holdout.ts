import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse";
import { DEFAULT_SPLIT, type HarnessSpecInput } from "../../runners/contract.js";

// The held-out test split of a table, made on the host before any generated code runs. Runs that load
// generated code get only the training rows and the test rows' features; the test rows with their
// labels go to the scorer alone, a harness process that loads no generated code (docs/security.md).
// The file is handled as bytes (latin1 maps each byte to one character), so the training and test
// files keep the original encoding, quoting and line endings of every row byte for byte.

/** Rows in the training file (training and validation) and in the test files, headers not counted. */
export type HoldoutRows = { trainValid: number; test: number };

export interface HoldoutOptions {
  file: string;
  delimiter: string;
  /** Columns the generated code must not see for test rows (the target, the clustering labels). */
  hidden: string[];
  /** Stratify on this column (classification's target). */
  stratify: string | null;
  /** Fraction of rows held out (the harness's split.test). */
  testFraction: number;
  seed: number;
  /** Host-owned folder for the three files. */
  dir: string;
}

/** File digests by path, size, time and inode, so an unchanged file is read once per process. */
const digests = new Map<string, string>();

/** sha256 of a file, streamed. */
async function fileDigest(file: string) {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash;
}

/** mulberry32, a small seeded generator: the same seed gives the same split on every host. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Header names as the harness compares them: stripped, and decoded as UTF-8 when the bytes are UTF-8. */
function names(fields: string[]): string[] {
  return fields.map((f, i) => {
    let s = i === 0 ? f.replace(/^\u00ef\u00bb\u00bf/, "") : f;
    const bytes = Buffer.from(s, "latin1");
    const utf8 = bytes.toString("utf8");
    if (!utf8.includes("\uFFFD")) s = utf8;
    return s.trim();
  });
}

/** One CSV field, quoted when it must be. */
function field(value: string, delimiter: string): string {
  return value.includes(delimiter) || /["\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A raw record as one line ending in the file's line break (empty lines before it dropped). */
function asLine(raw: string, eol: string): string {
  const body = raw.replace(/^[\r\n]+/, "");
  return /\r?\n$/.test(body) ? body : body + eol;
}

type Row = { record: string[]; raw: string };

/** The file's records as raw text (latin1: byte for byte), streamed so a large file never blocks the process. */
function records(file: string, delimiter: string): AsyncIterable<Row> {
  return createReadStream(file).pipe(
    parse({ delimiter, encoding: "latin1", raw: true, skip_empty_lines: true, relax_column_count: true }),
  ) as unknown as AsyncIterable<Row>;
}

/** Which rows (0-based, header excluded) form the test split: seeded, stratified when asked. */
async function chooseTestRows(opts: HoldoutOptions): Promise<{ test: Set<number>; eol: string }> {
  let header: string[] | null = null;
  let eol = "\n";
  let stratIndex = -1;
  const groups = new Map<string, number[]>();
  let labelled = 0;
  let i = 0;
  for await (const r of records(opts.file, opts.delimiter)) {
    if (!header) {
      header = names(r.record);
      eol = /\r\n$/.test(r.raw) ? "\r\n" : "\n";
      stratIndex = opts.stratify === null ? -1 : header.indexOf(opts.stratify.trim());
      continue;
    }
    const key = stratIndex >= 0 ? (r.record[stratIndex] ?? "").trim() : "";
    // Rows without a target never reach the test split: the harness drops them anyway.
    if (!(opts.stratify !== null && stratIndex >= 0 && key === "")) {
      const group = groups.get(key);
      if (group) group.push(i);
      else groups.set(key, [i]);
      labelled++;
    }
    i++;
  }
  if (!header || i === 0) throw new Error("the table has no rows to split");
  const rand = mulberry32(opts.seed);
  const nTest = Math.max(1, Math.round(labelled * opts.testFraction));
  // Each group gives its share; the largest remainders fill up to nTest.
  const shares = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, idx]) => {
      const exact = (idx.length * nTest) / labelled;
      return { idx: shuffle(idx, rand), take: Math.floor(exact), rest: exact - Math.floor(exact) };
    });
  let missing = nTest - shares.reduce((s, g) => s + g.take, 0);
  for (const g of [...shares].sort((a, b) => b.rest - a.rest)) {
    if (missing <= 0) break;
    if (g.take < g.idx.length) {
      g.take++;
      missing--;
    }
  }
  const test = new Set<number>();
  for (const g of shares) for (const k of g.idx.slice(0, g.take)) test.add(k);
  return { test, eol };
}

/** Writes the three files of a split into `out` (names given); returns the row counts. */
export async function writeSplit(opts: HoldoutOptions, out: { train: string; features: string; truth: string }): Promise<HoldoutRows> {
  const { test, eol } = await chooseTestRows(opts);
  const streams = { train: createWriteStream(out.train), features: createWriteStream(out.features), truth: createWriteStream(out.truth) };
  const write = async (w: WriteStream, text: string) => {
    if (!w.write(Buffer.from(text, "latin1"))) await once(w, "drain");
  };
  let keep: number[] | null = null;
  let i = 0;
  for await (const r of records(opts.file, opts.delimiter)) {
    if (!keep) {
      const hidden = new Set(opts.hidden.map((h) => h.trim()));
      keep = names(r.record)
        .map((h, k) => (hidden.has(h) ? -1 : k))
        .filter((k) => k >= 0);
      const line = asLine(r.raw, eol);
      await write(streams.train, line);
      await write(streams.truth, line);
      await write(streams.features, keep.map((k) => field(r.record[k] ?? "", opts.delimiter)).join(opts.delimiter) + eol);
      continue;
    }
    if (test.has(i)) {
      await write(streams.truth, asLine(r.raw, eol));
      await write(streams.features, keep.map((k) => field(r.record[k] ?? "", opts.delimiter)).join(opts.delimiter) + eol);
    } else {
      await write(streams.train, asLine(r.raw, eol));
    }
    i++;
  }
  await Promise.all(Object.values(streams).map((w) => new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())))));
  return { trainValid: i - test.size, test: test.size };
}

export interface HoldoutFiles {
  /** Header plus the training and validation rows: what every run gets in place of the table. */
  train: string;
  /** Header plus the test rows without the hidden columns: what a full run predicts. */
  features: string;
  /** Header plus the test rows as they were: the scorer's alone. */
  truth: string;
  rows: HoldoutRows;
}

/**
 * Makes (or reuses) the holdout files of a table in `dir`. The folder name carries a digest of the file
 * and the settings, so a changed file or target gives a new split and a repeat gives the same one.
 */
export async function holdoutFiles(opts: HoldoutOptions): Promise<HoldoutFiles> {
  // Every run of a conversation asks again: the file's digest is computed once per file version.
  const st = await stat(opts.file);
  const version = `${path.resolve(opts.file)}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  let digest = digests.get(version);
  if (!digest) {
    digest = (await fileDigest(opts.file)).digest("hex");
    if (digests.size >= 256) digests.clear();
    digests.set(version, digest);
  }
  const key = createHash("sha256")
    .update(digest)
    .update(JSON.stringify([opts.delimiter, opts.hidden, opts.stratify, opts.testFraction, opts.seed]))
    .digest("hex")
    .slice(0, 16);
  const dir = path.join(opts.dir, key);
  // Fixed names: the same content under another file name reuses the folder.
  const files = {
    train: path.join(dir, "train.csv"),
    features: path.join(dir, "test-features.csv"),
    truth: path.join(dir, "test.csv"),
    meta: path.join(dir, "rows.json"),
  };
  const had = await readFile(files.meta, "utf8").catch(() => null);
  // Touched on reuse: retention removes splits no conversation has used for a while.
  if (had) await utimes(dir, new Date(), new Date()).catch(() => undefined);
  if (had) return { train: files.train, features: files.features, truth: files.truth, rows: JSON.parse(had) as HoldoutRows };
  // Unique per call: the plans' searches on a cluster ask for the same split at the same moment.
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  await mkdir(tmp, { recursive: true });
  const named = (f: string) => path.join(tmp, path.basename(f));
  const rows = await writeSplit(opts, { train: named(files.train), features: named(files.features), truth: named(files.truth) });
  await writeFile(path.join(tmp, "rows.json"), JSON.stringify(rows));
  await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
    // Another process made the same split first: identical content, keep theirs.
    await rm(tmp, { recursive: true, force: true });
    if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
  });
  return { train: files.train, features: files.features, truth: files.truth, rows };
}

/** Where a full run finds the held-out rows' features in its workspace. */
export const HELD_FEATURES = "data/held-out-features.csv";

/**
 * Puts a plain table's holdout into a run's inputs: the table's file is replaced by the training rows,
 * a full run also gets the held-out features, and the spec says so. Other variants split in the harness.
 */
export async function applyHoldout(
  inputs: { files: Array<{ source: string; dest: string }>; spec: Omit<HarnessSpecInput, "mode"> },
  o: { file: string; seed: number; dir: string; full: boolean },
): Promise<HoldoutFiles | null> {
  const spec = inputs.spec;
  if ((spec.variant ?? "tabular") !== "tabular") return null;
  const held = await holdoutFiles({
    file: o.file,
    delimiter: spec.delimiter ?? ",",
    hidden: [spec.target, spec.labels_column].filter((c): c is string => typeof c === "string"),
    stratify: spec.task === "classification" ? (spec.target ?? null) : null,
    testFraction: DEFAULT_SPLIT.test,
    seed: o.seed,
    dir: o.dir,
  });
  inputs.files = inputs.files.map((f) => (path.resolve(f.source) === path.resolve(o.file) ? { ...f, source: held.train } : f));
  if (o.full) inputs.files.push({ source: held.features, dest: HELD_FEATURES });
  spec.holdout = { features: o.full ? HELD_FEATURES : null };
  return held;
}
