import { createReadStream, promises as fs } from "node:fs";
import { basename } from "node:path";
import { Readable } from "node:stream";

/** A delimited UTF-8 table to profile: a file, or a member of an archive held in memory. */
export interface TableSource {
  /** What `DataProfile.file` records (the file, or the archive holding the member). */
  file: string;
  /** The name the user knows it by. */
  name: string;
  bytes: number;
  /** Set when the separator is known (a canonical file); otherwise it is sniffed from the head. */
  delimiter?: string;
  head(bytes: number): Promise<string>;
  stream(): Readable;
}

export function fileSource(file: string, bytes: number, extra: { name?: string; delimiter?: string } = {}): TableSource {
  return {
    file,
    name: extra.name ?? basename(file),
    bytes,
    ...(extra.delimiter ? { delimiter: extra.delimiter } : {}),
    head: async (n) => (await readHead(file, n)).toString("utf8"),
    stream: () => createReadStream(file),
  };
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

/** The first `bytes` bytes of a file (fewer when it is shorter). */
export async function readHead(file: string, bytes: number): Promise<Buffer> {
  const handle = await fs.open(file, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
