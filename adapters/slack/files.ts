import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { link, mkdir, rm } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { ThreadRef } from "../types.js";
import { UPLOAD_EXTENSIONS, UPLOAD_FORMATS } from "../../graphs/automl/data/read/errors.js";
import type { SlackFile } from "./payloads.js";

// Files people attach: checked (type, size, origin), downloaded with the bot token and stored under a
// safe name in the conversation's upload folder.

/** Tables in the formats the readers take (text, Excel, JSON, Parquet), and zip archives (images, or a graph's tables). */
const ACCEPTED = new Set(UPLOAD_EXTENSIONS);
const MAX_REDIRECTS = 3;

export type FileOutcome = { ok: true; name: string; path: string } | { ok: false; name: string; reason: string };

export interface DownloadOptions {
  token: string;
  /** The conversation's upload folder (created when missing). */
  dir: string;
  maxBytes: number;
  /** Origins the bot token may be sent to. */
  trusted: (url: URL) => boolean;
}

/** Origins that may receive the bot token: Slack itself, and the configured Web API base (a proxy, or a test's fake). */
export function trustedOrigins(apiUrl: string | undefined): (url: URL) => boolean {
  const extra = apiUrl ? new URL(apiUrl).origin : null;
  return (url) => (url.protocol === "https:" && (url.hostname === "slack.com" || url.hostname.endsWith(".slack.com"))) || url.origin === extra;
}

/** A name safe on any file system: no folders, no leading dots, only plain characters, at most 100 of them. */
export function safeFileName(name: string): string {
  const base = basename(name.replace(/\\/g, "/"));
  const ext = extname(base).toLowerCase().replace(/[^.a-z0-9]/g, "");
  const stem = base
    .slice(0, base.length - extname(base).length)
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._-]+|[._-]+$/g, "")
    .slice(0, 100 - ext.length);
  return `${stem || "file"}${ext}`;
}

/** The folder of one conversation's uploads under the adapter's uploads root. */
export const threadFolder = (root: string, thread: ThreadRef) => join(root, safeFileName(`${thread.channel}-${thread.thread}`.replace(/\./g, "_")));

const displayName = (file: SlackFile) => file.name ?? file.title ?? file.id;

const mb = (bytes: number) => (bytes < 1048576 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0)} MB`);

/** Why a file cannot be used, before downloading it; null when it can. */
export function refusal(file: SlackFile, maxBytes: number): string | null {
  if (file.mode === "tombstone" || file.mode === "hidden_by_limit") return "it was deleted or is hidden by the workspace's plan";
  const ext = extname(displayName(file)).toLowerCase();
  if (!ACCEPTED.has(ext)) return `I read tables with a header row as ${UPLOAD_FORMATS}; attach the data as one of those`;
  if (file.size != null && file.size > maxBytes) return `it is ${mb(file.size)} and the limit is ${mb(maxBytes)}`;
  if (!file.url_private_download && !file.url_private) return "Slack gave no download link for it";
  return null;
}

/** Counts bytes and fails past the limit, so a file without a (truthful) size cannot fill the disk. */
function limiter(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > maxBytes) done(new TooLarge());
      else done(null, chunk);
    },
  });
}

class TooLarge extends Error {}

/** GETs `url` with the token, following redirects only to trusted origins. */
async function fetchTrusted(url: URL, options: DownloadOptions): Promise<Response> {
  for (let hop = 0; ; hop++) {
    if (!options.trusted(url)) throw new Error(`its download link points outside Slack (${url.origin})`);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${options.token}` }, redirect: "manual" });
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location && hop < MAX_REDIRECTS) {
      await res.body?.cancel();
      url = new URL(location, url);
      continue;
    }
    return res;
  }
}

/** Moves the finished download to `name` in `dir`, or to `name-2`, `name-3`… when taken; `link` claims a name atomically. */
async function claim(part: string, dir: string, name: string): Promise<string> {
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 1; ; i++) {
    const candidate = join(dir, i === 1 ? name : `${stem}-${i}${ext}`);
    try {
      await link(part, candidate);
      await rm(part, { force: true });
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

export async function downloadFile(file: SlackFile, options: DownloadOptions): Promise<FileOutcome> {
  const name = displayName(file);
  const why = refusal(file, options.maxBytes);
  if (why) return { ok: false, name, reason: why };
  await mkdir(options.dir, { recursive: true });
  const part = join(options.dir, `.part-${randomBytes(6).toString("hex")}`);
  try {
    const res = await fetchTrusted(new URL((file.url_private_download ?? file.url_private)!), options);
    if (res.status !== 200) {
      await res.body?.cancel();
      return { ok: false, name, reason: `Slack answered HTTP ${res.status} when I downloaded it` };
    }
    if ((res.headers.get("content-type") ?? "").startsWith("text/html")) {
      await res.body?.cancel();
      return { ok: false, name, reason: "Slack sent a web page instead of the file; the app may be missing the files:read scope" };
    }
    if (!res.body) return { ok: false, name, reason: "Slack sent no content for it" };
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), limiter(options.maxBytes), createWriteStream(part, { flags: "wx" }));
    const path = await claim(part, options.dir, safeFileName(name));
    return { ok: true, name, path };
  } catch (err) {
    await rm(part, { force: true });
    if (err instanceof TooLarge) return { ok: false, name, reason: `it is larger than the limit of ${mb(options.maxBytes)}` };
    const cause = (err as Error & { cause?: Error }).cause;
    return { ok: false, name, reason: cause?.message ? `${(err as Error).message}: ${cause.message}` : (err as Error).message };
  }
}
