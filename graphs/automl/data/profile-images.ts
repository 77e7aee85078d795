import { basename, posix } from "node:path";
import type { DataProfile, ImagesProfile } from "../agents/types.js";
import type { Container } from "./container.js";
import { bufferSource, fileSource, profileTable, rankTargets, TABLE_EXTENSION, tableRows, type TableSource } from "./profile.js";

// Images in a folder or an archive: how many, which formats, and where their labels are — CSVs naming
// each image and its label (beside the images or inside the archive), or one folder per class. The
// profile's columns then describe the labels table, so the target question offers its columns.

export const IMAGE_EXTENSION = /\.(?:png|jpe?g|bmp|gif|webp|tiff?)$/i;
const MAX_LABELS_BYTES = 50 * 1048576;
// A labels table names images in at least this share of its rows.
const MIN_MATCHED = 0.5;

/** Finds an image by the name a labels CSV gives: the exact path, else a unique path ending, else a unique base name. */
export function imageMatcher(names: string[]): (written: string) => string | null {
  const exact = new Set(names);
  const tails = new Map<string, string[]>();
  for (const n of names) {
    const parts = n.split("/");
    for (let k = 1; k <= parts.length; k++) {
      const tail = parts.slice(parts.length - k).join("/");
      const list = tails.get(tail);
      if (list) list.push(n);
      else tails.set(tail, [n]);
    }
  }
  return (written) => {
    const name = posix.normalize(written.trim().replace(/\\/g, "/"));
    if (exact.has(name)) return name;
    const hit = tails.get(name) ?? tails.get(posix.basename(name));
    return hit && hit.length === 1 ? hit[0] : null;
  };
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

interface LabelsCandidate {
  file: string | null;
  member: string | null;
  source: TableSource;
  profile: DataProfile;
  filenameColumn: string;
  matched: Set<string>;
  rows: number;
}

async function labelsCandidate(
  source: TableSource,
  where: { file: string | null; member: string | null },
  match: (written: string) => string | null,
): Promise<LabelsCandidate | null> {
  let profile: DataProfile;
  try {
    profile = await profileTable(source);
  } catch {
    return null; // not a readable table: it cannot hold labels
  }
  const columns = profile.columns.filter((c) => c.kind !== "numeric" && c.kind !== "empty").map((c) => c.name);
  if (columns.length === 0 || profile.columns.length < 2) return null;
  const matched = columns.map(() => new Set<string>());
  for await (const row of tableRows(source, profile.delimiter, columns)) {
    row.forEach((v, j) => {
      const hit = match(v);
      if (hit) matched[j].add(hit);
    });
  }
  const j = matched.reduce((best, set, i) => (set.size > matched[best].size ? i : best), 0);
  if (matched[j].size < Math.max(1, MIN_MATCHED * profile.rows)) return null;
  return { ...where, source, profile, filenameColumn: columns[j], matched: matched[j], rows: profile.rows };
}

/** Images in `container`, labelled by CSV files (`tables`, beside it) or members, or by class folders; null without images. */
export async function profileImages(container: Container, tables: string[]): Promise<DataProfile | null> {
  const images = container.entries.filter((e) => IMAGE_EXTENSION.test(e.name));
  if (images.length === 0) return null;
  const names = images.map((e) => e.name);
  const match = imageMatcher(names);
  const formats: Record<string, number> = {};
  for (const n of names) {
    const ext = posix.extname(n).slice(1).toLowerCase().replace("jpeg", "jpg");
    formats[ext] = (formats[ext] ?? 0) + 1;
  }
  const bytes = images.reduce((s, e) => s + e.size, 0);

  const found: LabelsCandidate[] = [];
  for (const file of tables) {
    const c = await labelsCandidate(fileSource(file, 0), { file, member: null }, match);
    if (c) found.push(c);
  }
  for (const e of container.entries.filter((x) => TABLE_EXTENSION.test(x.name) && x.size <= MAX_LABELS_BYTES)) {
    const data = await container.read(e.name, MAX_LABELS_BYTES);
    const c = await labelsCandidate(bufferSource(container.path, e.name, data), { file: null, member: e.name }, match);
    if (c) found.push(c);
  }

  let profile: DataProfile;
  let layout: ImagesProfile["layout"];
  let labels: ImagesProfile["labels"] = [];
  let filenameColumn: string | null = null;
  let matched: Set<string>;
  if (found.length) {
    // train_labels.csv and test_labels.csv with the same header read as one table
    const best = found.reduce((a, b) => (b.matched.size > a.matched.size ? b : a));
    const same = found.filter((c) => c.filenameColumn === best.filenameColumn && c.profile.columns.map((x) => x.name).join() === best.profile.columns.map((x) => x.name).join());
    layout = "labels_csv";
    filenameColumn = best.filenameColumn;
    labels = same.map((c) => ({ file: c.file, member: c.member, delimiter: c.profile.delimiter }));
    matched = new Set(same.flatMap((c) => [...c.matched]));
    profile = same.length === 1 ? best.profile : await profileTable(await joined(same, container.path));
  } else {
    const inFolders = images.filter((e) => e.name.includes("/"));
    const classes = new Set(inFolders.map((e) => e.name.split("/").slice(-2)[0]));
    layout = inFolders.length >= 0.9 * images.length && classes.size >= 2 ? "folders" : "none";
    const rows = layout === "folders" ? inFolders.map((e) => `${csvField(e.name)},${csvField(e.name.split("/").slice(-2)[0])}`) : names.map(csvField);
    const header = layout === "folders" ? "filename,label" : "filename";
    profile = await profileTable(bufferSource(container.path, "images", Buffer.from(`${header}\n${rows.join("\n")}\n`)));
    filenameColumn = "filename";
    matched = new Set(layout === "folders" ? inFolders.map((e) => e.name) : []);
  }
  const labelColumns = profile.columns.filter((c) => c.name !== filenameColumn);
  return {
    ...profile,
    file: container.path,
    name: basename(container.path),
    bytes,
    candidateTargets: rankTargets(labelColumns),
    images: {
      source: container.path,
      kind: container.kind,
      images: images.length,
      formats,
      layout,
      labels,
      filenameColumn,
      matched: matched.size,
      unlabelled: images.length - matched.size,
    },
  };
}

/** Several labels CSVs with one header, as one table (the header once). */
async function joined(parts: LabelsCandidate[], file: string): Promise<TableSource> {
  const chunks: string[] = [];
  for (const [i, part] of parts.entries()) {
    let text = "";
    for await (const chunk of part.source.stream()) text += chunk.toString();
    const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
    chunks.push((i === 0 ? lines : lines.slice(1)).filter((l) => l.trim()).join("\n"));
  }
  return bufferSource(file, parts.map((p) => p.member ?? basename(p.file ?? "")).join(" + "), Buffer.from(chunks.join("\n") + "\n"));
}
