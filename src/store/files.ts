import { randomUUID } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { link, lstat, mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

// Small files that several ThreadML processes on one machine read and replace: a reader sees the old
// file or the new one, never half of one, because every write goes to a temporary file in the same
// folder that is then renamed (or linked) onto the final name. Folders are private to the user.

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
// Reads never follow a link planted where a state file belongs (O_NOFOLLOW is 0 where unsupported).
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

// File names are limited to 255 bytes on common file systems; leave room for the extension.
const MAX_NAME = 240;

/**
 * `<encodeURIComponent(id)>.json`: "/" and "\" are encoded, so no id reaches outside its folder, and
 * "." or ".." only ever become part of a longer name. `what` names the id in the error for a long one.
 */
export function jsonFileName(what: string, id: string): string {
  const name = encodeURIComponent(id);
  if (name.length > MAX_NAME) throw new Error(`${what} ${id.slice(0, 80)}… is too long to be kept in a file (${name.length} characters encoded, at most ${MAX_NAME})`);
  return `${name}.json`;
}

/** Temporary files end like this, so listings (which take `*.json`) never see them. */
const TEMP_SUFFIX = ".tmp";

/**
 * The ids of the `*.json` files in a folder (none while it does not exist), sorted. A name that is not
 * an encoded id was not written here: it is passed to `skipped` and left out.
 */
export async function jsonFileIds(dir: string, skipped?: (file: string) => void): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
  const ids: string[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith(".json") || entry.name.startsWith(".")) continue;
    try {
      ids.push(decodeURIComponent(entry.name.slice(0, -".json".length)));
    } catch {
      skipped?.(entry.name);
    }
  }
  return ids.sort();
}

/** Identifies one version of a file: a replaced file is a new inode with its own mtime. */
export const signatureOf = (s: Stats) => `${s.ino}:${s.size}:${s.mtimeMs}`;

export const isMissing = (err: unknown) => (err as NodeJS.ErrnoException)?.code === "ENOENT";

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
}

// Written and flushed before it gets its final name, so a crash leaves the old version or the new one.
async function writeTemp(path: string, data: string): Promise<{ temp: string; stats: Stats }> {
  const dir = dirname(path);
  await ensureDir(dir);
  const temp = join(dir, `.${basename(path)}.${randomUUID()}${TEMP_SUFFIX}`);
  const handle = await open(temp, "wx", FILE_MODE);
  try {
    await handle.writeFile(data, "utf8");
    await handle.sync();
    return { temp, stats: await handle.stat() };
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  } finally {
    await handle.close();
  }
}

/** Replaces `path` with `data` in one step; returns the new file's signature. */
export async function writeAtomic(path: string, data: string): Promise<string> {
  const { temp, stats } = await writeTemp(path, data);
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  return signatureOf(stats);
}

/**
 * Creates `path` with `data` unless it exists; false when it does. `link` fails with EEXIST when the
 * name is taken, so of two processes creating the same name at once exactly one wins, and the winner's
 * file is complete from the moment it has its name.
 */
export async function createExclusive(path: string, data: string): Promise<boolean> {
  const { temp } = await writeTemp(path, data);
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/**
 * The file's text and signature, or null when it does not exist. With `known`, a file whose signature
 * equals it is not read again (text is null).
 */
export async function readFileState(path: string, known?: string): Promise<{ text: string | null; signature: string } | null> {
  let handle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  try {
    const signature = signatureOf(await handle.stat());
    if (signature === known) return { text: null, signature };
    return { text: await handle.readFile("utf8"), signature };
  } finally {
    await handle.close();
  }
}

/**
 * Removes `path` if it is still the version read (`signature`): another process may have written a
 * fresh one since, which must stay. (A replacement in the instant between the check and the unlink is
 * not caught; it only costs that write.)
 */
export async function removeIfUnchanged(path: string, signature: string): Promise<void> {
  try {
    if (signatureOf(await lstat(path)) === signature) await unlink(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if (!isMissing(err)) throw err;
  });
}
