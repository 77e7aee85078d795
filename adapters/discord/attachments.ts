import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { extname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { UPLOAD_EXTENSIONS, UPLOAD_FORMATS } from "../../graphs/automl/data/read/errors.js";

// Data files users attach: checked by name, type and size before any byte is fetched, downloaded with the
// size enforced on the stream too (the declared size is the sender's word), stored under a safe name.

export const Attachment = z.object({
  id: z.string().regex(/^\d{1,25}$/),
  name: z.string().min(1).max(1024),
  size: z.number().int().nonnegative(),
  /** Discord's signed CDN URL; its query string is part of the signature and must be kept. */
  url: z.url({ protocol: /^https?$/ }),
  contentType: z.string().nullable().optional(),
});
export type Attachment = z.infer<typeof Attachment>;

const DATA_TYPES =
  /^(text\/[\w.+-]+|application\/(csv|vnd\.ms-excel|vnd\.openxmlformats-officedocument\.spreadsheetml\.sheet|vnd\.ms-excel\.sheet\.macroenabled\.12|json|x-ndjson|jsonl|x-jsonlines|vnd\.apache\.parquet|x-parquet|octet-stream|zip|x-zip-compressed))(\s*;.*)?$/i;

export type Verdict = { ok: true } | { ok: false; reason: string };

export function checkAttachment(a: Attachment, maxBytes: number): Verdict {
  const ext = extname(a.name).toLowerCase();
  if (!UPLOAD_EXTENSIONS.includes(ext)) return { ok: false, reason: `${a.name} is not a data file I can read (send ${UPLOAD_FORMATS})` };
  if (a.contentType && !DATA_TYPES.test(a.contentType)) return { ok: false, reason: `${a.name} is ${a.contentType}, not a data file I can read` };
  if (a.size > maxBytes) return { ok: false, reason: `${a.name} is ${mb(a.size)}, over the ${mb(maxBytes)} limit` };
  if (a.size === 0) return { ok: false, reason: `${a.name} is empty` };
  return { ok: true };
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(bytes < 1048576 ? 2 : 0)} MB`;

/** A file name with no path parts or odd characters, keeping the extension the profiler looks at. */
export function safeFileName(name: string): string {
  const ext = extname(name).toLowerCase().replace(/[^a-z0-9.]/g, "");
  const stem = name
    .slice(0, name.length - extname(name).length)
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^A-Za-z0-9_-]+/g, "_")
    .replace(/^[_-]+|_+$/g, "")
    .slice(0, 80);
  return `${stem || "data"}${ext}`;
}

export class DownloadError extends Error {}

/** Downloads an accepted attachment into `dir` under a safe version of its name; rejects past `maxBytes`. */
export async function download(a: Attachment, dir: string, maxBytes: number, timeoutMs = 120_000): Promise<string> {
  await mkdir(dir, { recursive: true });
  const target = join(dir, safeFileName(a.name));
  const partial = `${target}.part`;
  const res = await fetch(a.url, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: Error) => {
    throw new DownloadError(`could not download ${a.name}: ${err.message}`);
  });
  if (!res.ok || !res.body) throw new DownloadError(`could not download ${a.name}: HTTP ${res.status}`);
  const declared = Number(res.headers.get("content-length") ?? 0);
  if (declared > maxBytes) {
    await res.body.cancel();
    throw new DownloadError(`${a.name} is ${mb(declared)}, over the ${mb(maxBytes)} limit`);
  }
  let received = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (received > maxBytes) done(new DownloadError(`${a.name} is over the ${mb(maxBytes)} limit`));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), limit, createWriteStream(partial));
    await rename(partial, target);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof DownloadError) throw err;
    throw new DownloadError(`could not download ${a.name}: ${(err as Error).message}`);
  }
  return target;
}
