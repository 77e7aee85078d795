import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { DataProfile } from "../agents/types.js";
import { isContainer, openContainer } from "./container.js";
import { bufferSource, checkedFile, DataError, fileSource, profileCsv, profileTable, TABLE_EXTENSION } from "./profile.js";
import { findGraph, type ProfiledTable } from "./profile-graph.js";
import { profileImages } from "./profile-images.js";
import { profileTime } from "./profile-time.js";

// The conversation's data, whatever its shape: a table (with a time axis when it has one), a node table
// with its edge list (two files, or both inside an archive), or images in an archive or a folder with
// their labels. `file` is the first file the conversation named; `others` came with it.

const MAX_MEMBER_BYTES = 200 * 1048576;

export async function profileData(file: string, others: string[], options: { maxBytes: number }): Promise<DataProfile> {
  const inputs = [...new Set([file, ...others])];
  const containers: string[] = [];
  for (const f of inputs) if (await isContainer(f)) containers.push(f);
  if (containers.length) {
    const main = containers[0];
    const tables = inputs.filter((f) => f !== main && TABLE_EXTENSION.test(f));
    const container = await openContainer(main, options.maxBytes);
    for (const t of tables) await checkedFile(t, options.maxBytes);
    const images = await profileImages(container, tables);
    if (images) return { ...images, inputs: [main, ...tables] };
    const members: ProfiledTable[] = [];
    for (const e of container.entries.filter((x) => TABLE_EXTENSION.test(x.name))) {
      const source = bufferSource(main, e.name, await container.read(e.name, Math.min(MAX_MEMBER_BYTES, options.maxBytes)));
      try {
        members.push({ source, profile: await profileTable(source), file: main, member: e.name });
      } catch (err) {
        if (!(err instanceof DataError)) throw err; // a README or notes file is not a table: skip it
      }
    }
    const found = await findGraph(members);
    if (found) return { ...found.nodes.profile, name: `${basename(main)}: ${found.nodes.member}`, graph: found.graph, inputs: [main] };
    throw new DataError(
      `${basename(main)} holds no images (png, jpg, bmp, gif, webp, tiff) and no node table with an edge list; send a CSV, images, or a nodes and an edges CSV.`,
    );
  }

  const profile = await profileCsv(file, options);
  const tables = inputs.filter((f) => f !== file && TABLE_EXTENSION.test(f));
  if (tables.length) {
    const profiled: ProfiledTable[] = [{ source: fileSource(file, profile.bytes), profile, file, member: null }];
    for (const t of tables) {
      const p = await profileCsv(t, options);
      profiled.push({ source: fileSource(t, p.bytes), profile: p, file: t, member: null });
    }
    const found = await findGraph(profiled);
    if (found) return { ...found.nodes.profile, graph: found.graph, inputs: [found.nodes.file, found.graph.edgesFile] };
  }
  const time = await profileTime(fileSource(file, profile.bytes), profile);
  return { ...profile, time, inputs: [file] };
}

/** The time axis read again with the column the user named (the profile picks one by itself). */
export async function profileTimeColumn(profile: DataProfile, column: string): Promise<DataProfile> {
  const bytes = (await stat(profile.file)).size;
  return { ...profile, time: await profileTime(fileSource(profile.file, bytes), profile, column) };
}
