import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { inflateRawSync } from "node:zlib";
import { DataError } from "./read/errors.js";

// Just enough of the zip format to profile an upload: the central directory (names and sizes) and the
// bytes of a small member (a labels or edges CSV). Nothing is extracted to disk. ZIP64 archives (over
// 4 GB or 65,535 entries) are refused with a message; the upload limit keeps archives far below that.

export interface ZipEntry {
  name: string;
  size: number;
  compressedSize: number;
  method: number;
  localOffset: number;
  dir: boolean;
  encrypted: boolean;
  link: boolean;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const UNIX = 3;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

async function readAt(file: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** True when the file starts like a zip archive. */
export async function isZip(file: string): Promise<boolean> {
  const head = await readAt(file, 0, 4);
  return head.length === 4 && (head.readUInt32LE(0) === LOCAL || head.readUInt32LE(0) === EOCD);
}

/** The archive's entries, from its central directory. */
export async function readZipDirectory(file: string): Promise<ZipEntry[]> {
  const name = basename(file);
  const { size } = await stat(file);
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = await readAt(file, size - tailLength, tailLength);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new DataError(`${name} is not a readable zip archive (no central directory).`);
  const count = tail.readUInt16LE(at + 10);
  const cdSize = tail.readUInt32LE(at + 12);
  const cdOffset = tail.readUInt32LE(at + 16);
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff)
    throw new DataError(`${name} is a ZIP64 archive, which ThreadML does not read; send a smaller archive or a folder.`);
  if (cdOffset + cdSize > size) throw new DataError(`${name} is a truncated zip archive.`);
  const cd = await readAt(file, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) throw new DataError(`${name} has a damaged central directory.`);
    const madeBy = cd.readUInt16LE(p + 4) >> 8;
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const compressedSize = cd.readUInt32LE(p + 20);
    const entrySize = cd.readUInt32LE(p + 24);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    const external = cd.readUInt32LE(p + 38);
    const localOffset = cd.readUInt32LE(p + 42);
    const entryName = cd.subarray(p + 46, p + 46 + nameLength).toString(flags & 0x800 ? "utf8" : "latin1");
    entries.push({
      name: entryName.replace(/\\/g, "/"),
      size: entrySize,
      compressedSize,
      method,
      localOffset,
      dir: entryName.endsWith("/"),
      encrypted: (flags & 1) === 1,
      link: madeBy === UNIX && ((external >>> 16) & S_IFMT) === S_IFLNK,
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** One member's bytes (stored or deflated); refuses members larger than `maxBytes`. */
export async function readZipEntry(file: string, entry: ZipEntry, maxBytes: number): Promise<Buffer> {
  const name = `${entry.name} in ${basename(file)}`;
  if (entry.encrypted) throw new DataError(`${name} is encrypted; send an archive without a password.`);
  if (entry.size > maxBytes) throw new DataError(`${name} is ${(entry.size / 1048576).toFixed(1)} MB, over the ${Math.round(maxBytes / 1048576)} MB limit.`);
  const header = await readAt(file, entry.localOffset, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== LOCAL) throw new DataError(`${name} has a damaged header.`);
  const start = entry.localOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  const data = await readAt(file, start, entry.compressedSize);
  if (entry.method === 0) return data;
  if (entry.method !== 8) throw new DataError(`${name} uses a compression method ThreadML does not read (${entry.method}).`);
  try {
    return inflateRawSync(data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (err) {
    throw new DataError(`${name} could not be decompressed: ${(err as Error).message}`);
  }
}
