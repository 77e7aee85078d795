import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";

// Promise wrappers over ssh2's SFTP client, plus the few compound operations the runner needs:
// atomic uploads (write a part file, then rename over the target) and recursive downloads.

const NO_SUCH_FILE = 2;

export function isMissing(err: unknown): boolean {
  return (err as { code?: unknown })?.code === NO_SUCH_FILE || (err as { code?: unknown })?.code === "ENOENT";
}

export function stat(sftp: SFTPWrapper, file: string): Promise<Stats | null> {
  return new Promise((resolve, reject) => sftp.stat(file, (err, st) => (err ? (isMissing(err) ? resolve(null) : reject(err)) : resolve(st))));
}

export function open(sftp: SFTPWrapper, file: string, flags: "r" | "w"): Promise<Buffer> {
  return new Promise((resolve, reject) => sftp.open(file, flags, (err, handle) => (err ? reject(err) : resolve(handle))));
}

export function closeHandle(sftp: SFTPWrapper, handle: Buffer): Promise<void> {
  return new Promise((resolve) => sftp.close(handle, () => resolve()));
}

/** Reads up to `max` bytes at `position`; an empty buffer at the end of the file. */
export function readAt(sftp: SFTPWrapper, handle: Buffer, position: number, max: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(max);
  return new Promise((resolve, reject) =>
    sftp.read(handle, buf, 0, max, position, (err, bytesRead) => (err ? reject(err) : resolve(buf.subarray(0, bytesRead)))),
  );
}

/** The last `max` bytes of a file (or all of it); null when it does not exist. */
export async function readTail(sftp: SFTPWrapper, file: string, max: number): Promise<Buffer | null> {
  const st = await stat(sftp, file);
  if (!st) return null;
  const handle = await open(sftp, file, "r");
  try {
    const start = Math.max(0, st.size - max);
    const chunks: Buffer[] = [];
    let pos = start;
    while (pos < st.size) {
      const chunk = await readAt(sftp, handle, pos, Math.min(st.size - pos, 256 * 1024));
      if (chunk.length === 0) break;
      chunks.push(chunk);
      pos += chunk.length;
    }
    return Buffer.concat(chunks);
  } finally {
    await closeHandle(sftp, handle);
  }
}

export async function readText(sftp: SFTPWrapper, file: string, max = 16 * 1024 * 1024): Promise<string | null> {
  const buf = await readTail(sftp, file, max);
  return buf === null ? null : buf.toString("utf8");
}

function rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // posix-rename replaces the target; plain SFTP rename refuses an existing one.
    const useExt = (sftp as unknown as { _extensions?: Record<string, string> })._extensions?.["posix-rename@openssh.com"] !== undefined;
    if (useExt) sftp.ext_openssh_rename(from, to, (err) => (err ? reject(err) : resolve()));
    else
      sftp.unlink(to, () =>
        sftp.rename(from, to, (err) => (err ? reject(err) : resolve())),
      );
  });
}

function partName(target: string): string {
  return `${target}.part-${randomBytes(4).toString("hex")}`;
}

/** Writes text to a remote file atomically. */
export async function writeText(sftp: SFTPWrapper, file: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const part = partName(file);
  await new Promise<void>((resolve, reject) => sftp.writeFile(part, content, { mode }, (err) => (err ? reject(err) : resolve())));
  await rename(sftp, part, file);
}

/** Uploads a local file atomically, with SFTP's parallel chunked writes. */
export async function upload(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const part = partName(remote);
  try {
    await new Promise<void>((resolve, reject) => sftp.fastPut(local, part, { concurrency: 32, chunkSize: 32 * 1024 }, (err) => (err ? reject(err) : resolve())));
    await rename(sftp, part, remote);
  } catch (err) {
    sftp.unlink(part, () => undefined);
    throw err;
  }
}

function readdir(sftp: SFTPWrapper, dir: string): Promise<Array<{ filename: string; attrs: Stats }>> {
  return new Promise((resolve, reject) => sftp.readdir(dir, (err, list) => (err ? reject(err) : resolve(list as Array<{ filename: string; attrs: Stats }>))));
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/**
 * Copies a remote folder into a local one (regular files and folders only; links are not followed,
 * so a run cannot make us fetch files from elsewhere on the host). Returns the number of bytes.
 */
export async function downloadDir(sftp: SFTPWrapper, remoteDir: string, localDir: string, maxBytes: number): Promise<number> {
  let total = 0;
  const walk = async (rdir: string, ldir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(sftp, rdir);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    await mkdir(ldir, { recursive: true });
    for (const e of entries) {
      if (e.filename === "." || e.filename === ".." || e.filename.includes("/") || e.filename.includes("\\")) continue;
      const kind = e.attrs.mode & S_IFMT;
      const r = `${rdir}/${e.filename}`;
      const l = path.join(ldir, e.filename);
      if (kind === S_IFDIR) await walk(r, l);
      else if (kind === S_IFREG) {
        total += e.attrs.size;
        if (total > maxBytes) throw new Error(`the run's artifacts exceed ${Math.round(maxBytes / 1048576)} MiB; not fetched`);
        await new Promise<void>((resolve, reject) => sftp.fastGet(r, l, { concurrency: 16 }, (err) => (err ? reject(err) : resolve())));
      }
    }
  };
  await walk(remoteDir, localDir);
  return total;
}
