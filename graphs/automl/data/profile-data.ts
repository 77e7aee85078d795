import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { DataProfile } from "../agents/types.js";
import { isContainer, openContainer } from "./container.js";
import { bufferSource, DataError, fileSource, profileCsv, profileTable, TABLE_EXTENSION, type ReadOptions } from "./profile.js";
import { findGraph, type ProfiledTable } from "./profile-graph.js";
import { profileImages } from "./profile-images.js";
import { profileTime } from "./profile-time.js";
import { decodeBuffer, UTF8 } from "./read/encoding.js";

// The conversation's data, whatever its shape: a table (with a time axis when it has one), a node table
// with its edge list (two files, or both inside an archive), or images in an archive or a folder with
// their labels. `file` is the first file the conversation named; `others` came with it. Every table file
// is read through ./read/ into its canonical CSV, and the profile's `file` and `inputs` name those.

const MAX_MEMBER_BYTES = 200 * 1048576;

/** An archive member as UTF-8 text for the profile (members stay CSV; their encoding may be any). */
function utf8Member(data: Buffer): Buffer {
  const { text, encoding } = decodeBuffer(data);
  return encoding === UTF8 ? data : Buffer.from(text, "utf8");
}

/** A table file beside an archive (a labels file) in canonical form; one that cannot be read is left as it is. */
async function besideTable(file: string, options: ReadOptions): Promise<string> {
  try {
    return (await profileCsv(file, { ...options, sheet: null })).file;
  } catch (err) {
    if (err instanceof DataError && !/can't find|over the .* limit/.test(err.message)) return file;
    throw err;
  }
}

export async function profileData(file: string, others: string[], options: ReadOptions): Promise<DataProfile> {
  const inputs = [...new Set([file, ...others])];
  const containers: string[] = [];
  for (const f of inputs) if (await isContainer(f)) containers.push(f);
  if (containers.length) {
    const main = containers[0];
    const container = await openContainer(main, options.maxBytes);
    const tables: string[] = [];
    for (const t of inputs.filter((f) => f !== main && TABLE_EXTENSION.test(f))) tables.push(await besideTable(t, options));
    const images = await profileImages(container, tables);
    if (images) return { ...images, inputs: [main, ...tables] };
    const members: ProfiledTable[] = [];
    for (const e of container.entries.filter((x) => TABLE_EXTENSION.test(x.name))) {
      const source = bufferSource(main, e.name, utf8Member(await container.read(e.name, Math.min(MAX_MEMBER_BYTES, options.maxBytes))));
      try {
        members.push({ source, profile: await profileTable(source), file: main, member: e.name });
      } catch (err) {
        if (!(err instanceof DataError)) throw err; // a README or notes file is not a table: skip it
      }
    }
    const found = await findGraph(members);
    if (found) return { ...found.nodes.profile, name: `${basename(main)}: ${found.nodes.member}`, graph: found.graph, inputs: [main] };
    throw new DataError(
      `${basename(main)} holds no images (png, jpg, bmp, gif, webp, tiff) and no node table with an edge list; send a table (CSV, Excel, JSON or Parquet), images, or a nodes and an edges CSV.`,
    );
  }

  const profile = await profileCsv(file, options);
  const source = (p: DataProfile) => fileSource(p.file, p.bytes, { name: p.name, delimiter: p.delimiter });
  const tables = inputs.filter((f) => f !== file && TABLE_EXTENSION.test(f));
  if (tables.length) {
    const profiled: ProfiledTable[] = [{ source: source(profile), profile, file: profile.file, member: null }];
    for (const t of tables) {
      const p = await profileCsv(t, { ...options, sheet: null });
      profiled.push({ source: source(p), profile: p, file: p.file, member: null });
    }
    const found = await findGraph(profiled);
    if (found) return { ...found.nodes.profile, graph: found.graph, inputs: [found.nodes.file, found.graph.edgesFile] };
  }
  const time = await profileTime(source(profile), profile);
  return { ...profile, time, inputs: [profile.file] };
}

/** The time axis read again with the column the user named (the profile picks one by itself). */
export async function profileTimeColumn(profile: DataProfile, column: string): Promise<DataProfile> {
  const bytes = (await stat(profile.file)).size;
  return { ...profile, time: await profileTime(fileSource(profile.file, bytes, { name: profile.name, delimiter: profile.delimiter }), profile, column) };
}
