import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { isOfficeZip } from "./read/detect.js";
import { DataError } from "./read/errors.js";
import { isZip, readZipDirectory, readZipEntry } from "./zip.js";

// A folder or a zip archive the user sent as data, seen as a flat list of files with relative names.
// Nothing is extracted. Unsafe entries (absolute paths, '..', links inside an archive) are refused,
// links inside a folder are skipped and counted; hidden files and macOS resource forks are ignored.

export interface ContainerEntry {
  /** Posix path relative to the container's root. */
  name: string;
  size: number;
}

export interface Container {
  path: string;
  kind: "zip" | "folder";
  entries: ContainerEntry[];
  /** Symbolic links in a folder, which are never followed. */
  links: number;
  read(name: string, maxBytes: number): Promise<Buffer>;
}

const MAX_ENTRIES = 200_000;

function ignored(name: string): boolean {
  return name.split("/").some((p) => p === "__MACOSX" || p.startsWith("."));
}

function unsafe(name: string): boolean {
  return name.startsWith("/") || /^[A-Za-z]:/.test(name) || name.split("/").includes("..");
}

/** True for a folder or a zip archive; a workbook is a zip too, but it is one table, not a container. */
export async function isContainer(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isDirectory() || (s.isFile() && s.size >= 22 && (await isZip(path)) && !(await isOfficeZip(path)));
  } catch {
    return false;
  }
}

export async function openContainer(path: string, maxBytes: number): Promise<Container> {
  const s = await stat(path);
  const name = basename(path);
  if (s.isDirectory()) return openFolder(path, maxBytes);
  if (s.size > maxBytes)
    throw new DataError(`${name} is ${(s.size / 1048576).toFixed(1)} MB, over the ${Math.round(maxBytes / 1048576)} MB limit. Send a smaller archive or raise limits.maxUploadMb.`);
  const all = await readZipDirectory(path);
  if (all.length > MAX_ENTRIES) throw new DataError(`${name} holds ${all.length} entries, over the limit of ${MAX_ENTRIES}.`);
  const byName = new Map<string, (typeof all)[number]>();
  for (const e of all) {
    if (e.dir) continue;
    if (unsafe(e.name)) throw new DataError(`${name} holds an entry with an unsafe path (${e.name}); it was not read.`);
    if (e.link) throw new DataError(`${name} holds a symbolic link (${e.name}); links are not read from archives.`);
    if (ignored(e.name)) continue;
    byName.set(posix.normalize(e.name), e);
  }
  return {
    path,
    kind: "zip",
    entries: [...byName.entries()].map(([n, e]) => ({ name: n, size: e.size })),
    links: 0,
    read: async (member, limit) => {
      const entry = byName.get(member);
      if (!entry) throw new DataError(`${member} is not in ${name}.`);
      return readZipEntry(path, entry, limit);
    },
  };
}

async function openFolder(root: string, maxBytes: number): Promise<Container> {
  const entries: ContainerEntry[] = [];
  let links = 0;
  let total = 0;
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const items = await readdir(dir, { withFileTypes: true });
    items.sort((a, b) => a.name.localeCompare(b.name));
    for (const item of items) {
      const rel = prefix ? `${prefix}/${item.name}` : item.name;
      if (ignored(rel)) continue;
      const full = join(dir, item.name);
      if (item.isSymbolicLink()) {
        links++;
        continue;
      }
      if (item.isDirectory()) await walk(full, rel);
      else if (item.isFile()) {
        const size = (await lstat(full)).size;
        total += size;
        entries.push({ name: rel, size });
        if (entries.length > MAX_ENTRIES) throw new DataError(`${basename(root)} holds more than ${MAX_ENTRIES} files.`);
        if (total > maxBytes)
          throw new DataError(`${basename(root)} holds more than ${Math.round(maxBytes / 1048576)} MB of files, over the upload limit. Send a smaller folder or raise limits.maxUploadMb.`);
      }
    }
  };
  await walk(root, "");
  return {
    path: root,
    kind: "folder",
    entries,
    links,
    read: async (member, limit) => {
      const entry = entries.find((e) => e.name === member);
      if (!entry) throw new DataError(`${member} is not in ${basename(root)}.`);
      if (entry.size > limit) throw new DataError(`${member} is ${(entry.size / 1048576).toFixed(1)} MB, over the ${Math.round(limit / 1048576)} MB limit.`);
      return readFile(join(root, ...member.split("/")));
    },
  };
}
