import { createReadStream } from "node:fs";

// Text encodings as uploads really come: UTF-8 (with or without a byte-order mark), UTF-16 from Windows
// tools (with a mark, or recognised by its NUL bytes), and anything else taken as cp1252, the Windows
// superset of Latin-1 that Excel writes in Western Europe. Any byte sequence is valid cp1252, so that
// is the last resort, never a guess made before UTF-8 failed.

export type EncodingLabel = "UTF-8" | "UTF-8 with BOM" | "UTF-16 LE" | "UTF-16 BE" | "cp1252 (Latin-1)";

export interface TextEncoding {
  label: EncodingLabel;
  codec: "utf-8" | "utf-16le" | "utf-16be" | "cp1252";
  /** Bytes of byte-order mark to skip. */
  skip: number;
}

export const UTF8: TextEncoding = { label: "UTF-8", codec: "utf-8", skip: 0 };
export const CP1252: TextEncoding = { label: "cp1252 (Latin-1)", codec: "cp1252", skip: 0 };

// Node's TextDecoder reads "windows-1252" as plain Latin-1; these are the 27 places where they differ.
const CP1252_HIGH: Record<number, string> = {
  0x80: "\u20ac", 0x82: "\u201a", 0x83: "\u0192", 0x84: "\u201e", 0x85: "\u2026", 0x86: "\u2020", 0x87: "\u2021",
  0x88: "\u02c6", 0x89: "\u2030", 0x8a: "\u0160", 0x8b: "\u2039", 0x8c: "\u0152", 0x8e: "\u017d", 0x91: "\u2018",
  0x92: "\u2019", 0x93: "\u201c", 0x94: "\u201d", 0x95: "\u2022", 0x96: "\u2013", 0x97: "\u2014", 0x98: "\u02dc",
  0x99: "\u2122", 0x9a: "\u0161", 0x9b: "\u203a", 0x9c: "\u0153", 0x9e: "\u017e", 0x9f: "\u0178",
};

function decodeCp1252(chunk: Buffer): string {
  return chunk.toString("latin1").replace(/[\u0080-\u009f]/g, (c) => CP1252_HIGH[c.charCodeAt(0)] ?? c);
}

/** UTF-16 without a mark: ASCII-range text has a NUL in every other byte. */
function utf16ByNuls(head: Buffer): "utf-16le" | "utf-16be" | null {
  const n = Math.min(head.length, 4096) & ~1;
  if (n < 4) return null;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) even++;
    if (head[i + 1] === 0) odd++;
  }
  const pairs = n / 2;
  if (odd > pairs * 0.4 && even < pairs * 0.05) return "utf-16le";
  if (even > pairs * 0.4 && odd < pairs * 0.05) return "utf-16be";
  return null;
}

/** True when the bytes are valid UTF-8 (a sequence cut at the end of a head is allowed). */
export function validUtf8Head(head: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** The encoding the first bytes of a file show. UTF-8 here means "the head is UTF-8": confirm it with `confirmUtf8`. */
export function sniffEncoding(head: Buffer): TextEncoding {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { label: "UTF-8 with BOM", codec: "utf-8", skip: 3 };
  if (head[0] === 0xff && head[1] === 0xfe) return { label: "UTF-16 LE", codec: "utf-16le", skip: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { label: "UTF-16 BE", codec: "utf-16be", skip: 2 };
  const wide = utf16ByNuls(head);
  if (wide === "utf-16le") return { label: "UTF-16 LE", codec: wide, skip: 0 };
  if (wide === "utf-16be") return { label: "UTF-16 BE", codec: wide, skip: 0 };
  return validUtf8Head(head) ? UTF8 : CP1252;
}

/** UTF-8 past the head too? A file that breaks UTF-8 anywhere is read as cp1252. */
export async function confirmUtf8(file: string, encoding: TextEncoding): Promise<TextEncoding> {
  if (encoding.codec !== "utf-8") return encoding;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  try {
    for await (const chunk of createReadStream(file, { start: encoding.skip })) decoder.decode(chunk as Buffer, { stream: true });
    decoder.decode();
    return encoding;
  } catch {
    return CP1252;
  }
}

/** A streaming decoder: chunks in, text out; multi-byte characters cut between chunks are kept whole. */
export function textDecoder(encoding: TextEncoding): { write(chunk: Buffer): string; end(): string } {
  if (encoding.codec === "cp1252") return { write: decodeCp1252, end: () => "" };
  const decoder = new TextDecoder(encoding.codec, { ignoreBOM: true });
  return { write: (chunk) => decoder.decode(chunk, { stream: true }), end: () => decoder.decode() };
}

/** The file's text, chunk by chunk. */
export async function* decodeFile(file: string, encoding: TextEncoding): AsyncGenerator<string> {
  const decoder = textDecoder(encoding);
  for await (const chunk of createReadStream(file, { start: encoding.skip })) {
    const text = decoder.write(chunk as Buffer);
    if (text) yield text;
  }
  const rest = decoder.end();
  if (rest) yield rest;
}

/** A whole buffer as text, in the encoding it shows. */
export function decodeBuffer(data: Buffer): { text: string; encoding: TextEncoding } {
  let encoding = sniffEncoding(data);
  if (encoding.codec === "utf-8") {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(encoding.skip));
    } catch {
      encoding = CP1252;
    }
  }
  const decoder = textDecoder(encoding);
  return { text: decoder.write(data.subarray(encoding.skip)) + decoder.end(), encoding };
}

/** Control characters (other than tab and line breaks) in more than 1% of the text: not a text file. */
export function looksBinary(text: string): boolean {
  if (text.includes("\u0000")) return true;
  const controls = text.match(/[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f\u0081\u008d\u008f\u0090\u009d]/g)?.length ?? 0;
  return controls > Math.max(2, text.length * 0.01);
}
