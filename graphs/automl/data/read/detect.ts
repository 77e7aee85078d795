import { open } from "node:fs/promises";
import { extname } from "node:path";
import { readZipDirectory } from "../zip.js";
import { looksBinary, sniffEncoding, textDecoder, type TextEncoding } from "./encoding.js";
import { DataError, TABLE_FORMATS } from "./errors.js";
import { isJsonLines } from "./json.js";
import { readHead } from "./source.js";

// What a file is, from its bytes first and its name second: a workbook is a zip holding xl/workbook.xml
// whatever it is called, Parquet starts with PAR1, an old .xls or a password-protected workbook is an
// OLE compound file, and text starting with [ or { is JSON. Files of a kind no reader handles are
// refused here with what to send instead.

/** Names that may hold a table (text formats need one; binary formats are known by their bytes). */
export const TABLE_EXTENSION = /\.(csv|tsv|tab|txt|data|psv|xlsx|xlsm|json|jsonl|ndjson|parquet)$/i;

export const HEAD_BYTES = 65536;

export type Detected =
  | { kind: "excel" }
  | { kind: "parquet" }
  | { kind: "json"; encoding: TextEncoding }
  | { kind: "jsonl"; encoding: TextEncoding }
  | { kind: "text"; encoding: TextEncoding; head: string; complete: boolean };

const OLE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const utf16 = (s: string) => Buffer.from(s, "utf16le");

/** True for a zip holding a spreadsheet (Excel or OpenDocument), which is a table, not an archive of data. */
export async function isOfficeZip(file: string): Promise<boolean> {
  try {
    const names = new Set((await readZipDirectory(file)).map((e) => e.name));
    return names.has("[Content_Types].xml") || names.has("xl/workbook.xml") || names.has("mimetype");
  } catch {
    return false;
  }
}

async function zipKind(file: string, name: string): Promise<Detected> {
  const names = new Set((await readZipDirectory(file)).map((e) => e.name));
  if (names.has("xl/workbook.xml")) return { kind: "excel" };
  if (names.has("xl/workbook.bin")) throw new DataError(`${name} is a binary Excel workbook (.xlsb); save it as .xlsx or CSV and send it again.`);
  if (names.has("mimetype") && names.has("content.xml"))
    throw new DataError(`${name} is an OpenDocument file (.ods); save it as .xlsx or CSV and send it again.`);
  if (names.has("[Content_Types].xml")) throw new DataError(`${name} is an Office document without a workbook; send the table as ${TABLE_FORMATS}.`);
  throw new DataError(`${name} is a zip archive, not a table; send the table itself, or images or a node table with its edge list in the archive.`);
}

/** An OLE file: an old .xls, or a workbook encrypted with a password (Office wraps those in OLE too). */
async function oleKind(file: string, name: string): Promise<never> {
  const handle = await open(file, "r");
  let encrypted = false;
  try {
    // the stream names sit in the directory sectors, anywhere in the file: search it in overlapping chunks
    const marker = utf16("EncryptionInfo");
    const chunk = Buffer.alloc(1 << 20);
    for (let pos = 0; !encrypted; pos += chunk.length - marker.length) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, pos);
      if (chunk.subarray(0, bytesRead).includes(marker)) encrypted = true;
      if (bytesRead < chunk.length) break;
    }
  } finally {
    await handle.close();
  }
  if (encrypted || /^\.xls[xmb]$/i.test(extname(name)))
    throw new DataError(`${name} is a password-protected Excel workbook; remove the password in Excel (File > Info > Protect Workbook) and send it again, or send the table as CSV.`);
  throw new DataError(`${name} is an old-style Excel file (.xls); save it as .xlsx or CSV and send it again.`);
}

export async function detectFormat(file: string, name: string, bytes: number): Promise<Detected> {
  const head = await readHead(file, HEAD_BYTES);
  const magic = head.subarray(0, 4).toString("latin1");
  if (magic === "PK\u0003\u0004" || magic === "PK\u0005\u0006") return zipKind(file, name);
  if (magic === "PAR1") return { kind: "parquet" };
  if (head.subarray(0, 8).equals(OLE)) return oleKind(file, name);
  if (head[0] === 0x1f && head[1] === 0x8b)
    throw new DataError(`${name} is gzip-compressed; decompress it and send the table inside (${TABLE_FORMATS}).`);
  const encoding = sniffEncoding(head);
  const decoder = textDecoder(encoding);
  const text = decoder.write(head.subarray(encoding.skip));
  if (looksBinary(text)) throw new DataError(`${name} is a binary file, not a table I can read; send ${TABLE_FORMATS}.`);
  if (!TABLE_EXTENSION.test(name)) throw new DataError(`${name} is not a file type I read as a table; send ${TABLE_FORMATS}.`);
  // "[{", "[1", '{"': JSON; "[id],[name]" (a header from a SQL export) is not
  if (/^\s*(?:\[\s*[[{"\d\-\]]|\{\s*["}])/.test(text)) {
    const lines = /\.(jsonl|ndjson)$/i.test(name) || isJsonLines(text);
    return { kind: lines ? "jsonl" : "json", encoding };
  }
  return { kind: "text", encoding, head: text, complete: head.length >= bytes };
}
