import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat as localStat } from "node:fs/promises";
import path from "node:path";
import type { SFTPWrapper } from "ssh2";
import type { HostLink } from "./connection.js";
import { stat, upload, writeText } from "./sftp.js";
import { pjoin, q } from "./shell.js";

// Filling a remote workspace. Data files go through a content-addressed cache on the host
// (<workdir>/cache/<sha256>): a conversation's smoke, search and training runs upload each file once.
// Each workspace gets its own copy, so a run that writes to its data cannot change another run's.

/** Every *.py file under the harness folder (subfolders included), as workspace-relative paths. */
export async function harnessFiles(dir: string): Promise<Array<{ source: string; dest: string }>> {
  const out: Array<{ source: string; dest: string }> = [];
  const walk = async (abs: string, rel: string) => {
    for (const e of await readdir(abs, { withFileTypes: true })) {
      if (e.name === "__pycache__" || e.name.startsWith(".")) continue;
      const a = path.join(abs, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(a, r);
      else if (e.isFile() && e.name.endsWith(".py")) out.push({ source: a, dest: r });
    }
  };
  await walk(dir, "");
  return out;
}

const hashes = new Map<string, { key: string; sha: string }>();

/** SHA-256 of a local file, remembered while its size and mtime stay the same. */
export async function fileSha256(file: string): Promise<{ sha: string; size: number }> {
  const st = await localStat(file);
  if (!st.isFile()) throw new Error(`${file} is not a regular file`);
  const key = `${st.size}:${st.mtimeMs}`;
  const known = hashes.get(file);
  if (known?.key === key) return { sha: known.sha, size: st.size };
  const hash = createHash("sha256");
  await new Promise<void>((resolve, reject) => {
    createReadStream(file)
      .on("data", (d) => hash.update(d))
      .on("end", () => resolve())
      .on("error", reject);
  });
  const sha = hash.digest("hex");
  hashes.set(file, { key, sha });
  return { sha, size: st.size };
}

/** A digest of a run's own inputs (data and generated files, not the harness): same digest, same job. */
export async function inputsDigest(files: Array<{ source: string; dest: string }>, texts: Array<{ dest: string; content: string }>): Promise<string> {
  const parts = await Promise.all(files.map(async (f) => `f ${f.dest} ${(await fileSha256(f.source)).sha}`));
  for (const t of texts) parts.push(`t ${t.dest} ${createHash("sha256").update(t.content).digest("hex")}`);
  return createHash("sha256").update(parts.sort().join("\n")).digest("hex").slice(0, 32);
}

export interface UploadPlan {
  ws: string;
  cacheDir: string;
  /** Local files (the harness, data), copied in through the cache. */
  files: Array<{ source: string; dest: string }>;
  texts: Array<{ dest: string; content: string }>;
}

/** Creates a folder and its missing parents over SFTP. */
export async function mkdirp(sftp: SFTPWrapper, dir: string): Promise<void> {
  const st = await stat(sftp, dir);
  if (st?.isDirectory()) return;
  if (st) throw new Error(`${dir} exists on the host and is not a folder`);
  const parent = path.posix.dirname(dir);
  if (parent !== dir && parent !== "." && parent !== "/") await mkdirp(sftp, parent);
  await new Promise<void>((resolve, reject) =>
    sftp.mkdir(dir, (err) => {
      if (!err) return resolve();
      // Made meanwhile by someone else: fine.
      void stat(sftp, dir).then((again) => (again?.isDirectory() ? resolve() : reject(err)), reject);
    }),
  );
}

/** Uploads what the cache lacks, writes the texts, then copies the cached files into the workspace (one shell). */
export async function fillWorkspace(conn: HostLink, plan: UploadPlan): Promise<void> {
  const sftp = await conn.sftp();
  const dests = [...plan.files, ...plan.texts].map((f) => f.dest);
  const dirs = [...new Set([plan.ws, plan.cacheDir, ...dests.map((d) => path.posix.dirname(pjoin(plan.ws, d)))])];
  for (const dir of dirs) await mkdirp(sftp, dir);

  const entries = await Promise.all(
    plan.files.map(async (f) => {
      const { sha, size } = await fileSha256(f.source);
      const cached = pjoin(plan.cacheDir, sha);
      return { ...f, cached, size, there: await stat(sftp, cached) };
    }),
  );
  for (const e of entries) if (!e.there || e.there.size !== e.size) await upload(sftp, e.source, e.cached);
  for (const t of plan.texts) await writeText(sftp, pjoin(plan.ws, t.dest), t.content);
  if (!entries.length) return;
  const copies = entries.map((e) => {
    const target = pjoin(plan.ws, e.dest);
    return `cp ${q(e.cached)} ${q(`${target}.part`)} && mv -f ${q(`${target}.part`)} ${q(target)} || exit 1`;
  });
  const cp = await conn.exec(copies);
  if (cp.code !== 0) throw new Error(`cannot copy files into ${plan.ws} on the host: ${cp.stderr.trim()}`);
}
