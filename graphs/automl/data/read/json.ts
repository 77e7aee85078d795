import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { decodeBuffer, decodeFile, type TextEncoding } from "./encoding.js";
import { DataError, TABLE_FORMATS } from "./errors.js";
import { checkedHeader, type Rows } from "./rows.js";

// JSON as tables come: an array of row objects, an object holding one such array ({"data": [...]}),
// pandas' "split", "records", "columns" and "index" shapes, or JSON lines (one object per line). Nested
// objects become dotted columns ("address.city"); arrays and anything deeper stay JSON text.

const MAX_COLUMNS = 10_000;

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || ["string", "number", "boolean"].includes(typeof v);

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/** Column names in first-seen order, and each row's cells in that order. */
class Columns {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();
  constructor(private readonly name: string) {}

  private at(key: string): number {
    let i = this.index.get(key);
    if (i === undefined) {
      if (this.names.length >= MAX_COLUMNS)
        throw new DataError(`${this.name} has more than ${MAX_COLUMNS} different keys; rows of a table share their keys. Send the table as CSV.`);
      i = this.names.length;
      this.index.set(key, i);
      this.names.push(key);
    }
    return i;
  }

  /** A row object flattened one level ("address.city") into cells. */
  row(o: Obj): string[] {
    const out: string[] = [];
    const put = (key: string, v: unknown) => {
      const i = this.at(key);
      while (out.length < i) out.push("");
      out[i] = cell(v);
    };
    for (const [k, v] of Object.entries(o)) {
      if (isObject(v) && Object.keys(v).length) for (const [k2, v2] of Object.entries(v)) put(`${k}.${k2}`, v2);
      else put(k, v);
    }
    return out;
  }
}

/** The row objects a parsed JSON document holds, or null when it holds no table. */
function rowsOf(doc: unknown): Obj[] | null {
  if (Array.isArray(doc)) {
    if (doc.length && doc.every(isObject)) return doc;
    // [["a", "b"], [1, 2]]: a header row, then rows
    const [head, ...rest] = doc;
    if (Array.isArray(head) && head.length && head.every((h) => typeof h === "string") && rest.length && rest.every((r) => Array.isArray(r)))
      return rest.map((r) => Object.fromEntries(head.map((h, i) => [h, (r as unknown[])[i] ?? null])));
    return null;
  }
  if (!isObject(doc)) return null;
  const values = Object.values(doc);
  // pandas orient="split": {"columns": [...], "index": [...], "data": [[...], ...]}
  if (Array.isArray(doc.columns) && Array.isArray(doc.data) && doc.data.every((r) => Array.isArray(r))) {
    const cols = doc.columns.map(String);
    return doc.data.map((r) => Object.fromEntries(cols.map((c, i) => [c, (r as unknown[])[i] ?? null])));
  }
  // {"data": [{...}, ...]} (and other keys beside it holding no rows)
  const held = values.filter((v) => Array.isArray(v) && v.length > 0 && v.every(isObject)) as Obj[][];
  if (held.length === 1) return held[0];
  if (!values.length) return null;
  // column-oriented: {"a": [1, 2], "b": [3, 4]}
  if (values.every((v) => Array.isArray(v) && v.every(isScalar))) {
    const n = (values[0] as unknown[]).length;
    if (n === 0 || values.some((v) => (v as unknown[]).length !== n)) return null;
    return Array.from({ length: n }, (_, i) => Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, (v as unknown[])[i]])));
  }
  if (values.every(isObject)) {
    const keys = Object.keys(doc);
    // pandas orient="index" ({"0": {"a": 1}}) has row labels outside; orient="columns" ({"a": {"0": 1}}) has them inside
    if (keys.every((k) => /^\d+$/.test(k))) return values as Obj[];
    const labels = [...new Set(values.flatMap((v) => Object.keys(v as Obj)))];
    if (!values.every((v) => Object.values(v as Obj).every(isScalar))) return null;
    return labels.map((label) => Object.fromEntries(keys.map((k) => [k, (doc[k] as Obj)[label] ?? null])));
  }
  return null;
}

/** A whole JSON document read as a table. */
export async function jsonRows(file: string, name: string): Promise<Rows & { encoding: TextEncoding }> {
  const { text, encoding } = decodeBuffer(await readFile(file));
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const why = (err as Error).message.slice(0, 160);
    throw new DataError(`${name} is not valid JSON (${why}); it may be cut short. Send the complete file, or the table as CSV.`);
  }
  const objects = rowsOf(doc);
  if (!objects)
    throw new DataError(
      `${name} holds JSON but no table: I read an array of objects (one per row), an object holding such an array, column lists, or JSON lines. Send the rows in one of those shapes, or as ${TABLE_FORMATS}.`,
    );
  const columns = new Columns(name);
  const rows = objects.map((o) => columns.row(o));
  const header = checkedHeader(columns.names, name);
  return { encoding, header: () => header, read: async function* () { yield* rows; } };
}

/** JSON lines, one object per line, streamed: the first read finds the columns. */
export function jsonLinesRows(file: string, name: string, encoding: TextEncoding): Rows {
  const columns = new Columns(name);
  return {
    header: () => checkedHeader(columns.names, name),
    async *read() {
      const lines = createInterface({ input: Readable.from(decodeFile(file, encoding)), crlfDelay: Infinity });
      let n = 0;
      let rows = 0;
      for await (const line of lines) {
        n++;
        const text = line.trim();
        if (!text) continue;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (err) {
          throw new DataError(`${name} line ${n} is not valid JSON (${(err as Error).message.slice(0, 120)}). Each line must hold one complete JSON object.`);
        }
        if (!isObject(value)) throw new DataError(`${name} line ${n} holds ${Array.isArray(value) ? "an array" : "a single value"}, not an object; JSON lines hold one row object per line.`);
        rows++;
        yield columns.row(value);
      }
      if (!rows) throw new DataError(`${name} holds no JSON objects: it has no rows.`);
    },
  };
}

/** JSON lines rather than one document: the first line is a whole object and more lines follow. */
export function isJsonLines(head: string): boolean {
  const lines = head.trimStart().split(/\r?\n/);
  if (lines.length < 2 || !lines.slice(1).some((l) => l.trim())) return false;
  try {
    return isObject(JSON.parse(lines[0]));
  } catch {
    return false;
  }
}
