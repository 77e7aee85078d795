import type { DataProfile, GraphProfile } from "../agents/types.js";
import { isMissing, tableRows, type TableSource } from "./profile.js";

// Node tables and edge lists: which table lists edges, which column of the node table their ends name,
// and how well the two join (edges naming unknown nodes, isolated nodes).

export interface ProfiledTable {
  source: TableSource;
  profile: DataProfile;
  /** The file (or archive) holding the table, and the member inside an archive. */
  file: string;
  member: string | null;
}

const ENDPOINT_PAIRS: Array<[string, string]> = [
  ["source", "target"],
  ["src", "dst"],
  ["from", "to"],
  ["u", "v"],
  ["node1", "node2"],
  ["citing", "cited"],
  ["head", "tail"],
  ["source_id", "target_id"],
  ["src_id", "dst_id"],
  ["from_id", "to_id"],
  ["sender", "receiver"],
];
const NODE_ID_NAME = /(?:^|[^a-z])(?:id|node|key|name|paper)(?:$|[^a-z])|^(?:node_?id|id)$/i;
// An edge list with more columns than this is more likely a table of its own.
const MAX_EDGE_COLUMNS = 5;
const MIN_MATCH = 0.9;

/** A node id as both tables may write it ("3" and "3.0" are the same node). */
export function nodeKey(value: string): string {
  const v = value.trim();
  return /^-?\d+\.0+$/.test(v) ? v.replace(/\.0+$/, "") : v;
}

/** The two columns of an edge list that hold its ends, or null when the table does not look like one. */
export function endpointColumns(profile: DataProfile): [string, string] | null {
  const byLower = new Map(profile.columns.map((c) => [c.name.toLowerCase(), c.name]));
  for (const [a, b] of ENDPOINT_PAIRS) {
    const x = byLower.get(a);
    const y = byLower.get(b);
    if (x && y) return [x, y];
  }
  const usable = profile.columns.filter((c) => c.kind !== "empty" && c.kind !== "text");
  if (profile.columns.length > MAX_EDGE_COLUMNS || usable.length < 2) return null;
  return [usable[0].name, usable[1].name];
}

/** Columns that could identify nodes: no missing cells and (almost) as many values as rows; named ids first. */
function nodeIdCandidates(profile: DataProfile): string[] {
  return profile.columns
    .filter((c) => c.missing === 0 && c.kind !== "empty" && (c.unique === profile.rows || c.unique >= 2000))
    .sort((a, b) => Number(NODE_ID_NAME.test(b.name)) - Number(NODE_ID_NAME.test(a.name)))
    .map((c) => c.name);
}

/** How `edges` joins `nodes`, or null when it is not an edge list of that node table. */
export async function detectGraph(nodes: ProfiledTable, edges: ProfiledTable): Promise<GraphProfile | null> {
  const ends = endpointColumns(edges.profile);
  const candidates = nodeIdCandidates(nodes.profile);
  if (!ends || candidates.length === 0 || edges.profile.columns.length > nodes.profile.columns.length + MAX_EDGE_COLUMNS) return null;

  const values: string[][] = candidates.map(() => []);
  for await (const row of tableRows(nodes.source, nodes.profile.delimiter, candidates)) row.forEach((v, j) => values[j].push(nodeKey(v)));
  const idSets = values.map((list) => new Set(list)).map((set, j) => (set.size === values[j].length ? set : null));

  const pairs: Array<[string, string]> = [];
  for await (const row of tableRows(edges.source, edges.profile.delimiter, ends)) {
    if (isMissing(row[0]) || isMissing(row[1])) continue;
    pairs.push([nodeKey(row[0]), nodeKey(row[1])]);
  }
  if (pairs.length === 0) return null;

  let best: { j: number; share: number } | null = null;
  idSets.forEach((set, j) => {
    if (!set) return;
    let hits = 0;
    for (const [a, b] of pairs) hits += Number(set.has(a)) + Number(set.has(b));
    const share = hits / (2 * pairs.length);
    if (share >= MIN_MATCH && (!best || share > best.share)) best = { j, share };
  });
  if (!best) return null;
  const { j } = best as { j: number; share: number };
  const ids = idSets[j]!;
  const touched = new Set<string>();
  let unknown = 0;
  for (const [a, b] of pairs) {
    if (ids.has(a) && ids.has(b)) {
      touched.add(a);
      touched.add(b);
    } else unknown++;
  }
  return {
    edgesFile: edges.file,
    edgesMember: edges.member,
    edgesDelimiter: edges.profile.delimiter,
    nodesMember: nodes.member,
    nodeIdColumn: candidates[j],
    sourceColumn: ends[0],
    targetColumn: ends[1],
    nodes: ids.size,
    edges: pairs.length,
    unknownEndpoints: unknown,
    isolated: ids.size - touched.size,
  };
}

/** The node table and its edge list among several tables, tried both ways round. */
export async function findGraph(tables: ProfiledTable[]): Promise<{ nodes: ProfiledTable; graph: GraphProfile } | null> {
  for (const nodes of tables) {
    for (const edges of tables) {
      if (edges === nodes) continue;
      const graph = await detectGraph(nodes, edges);
      if (graph) return { nodes, graph };
    }
  }
  return null;
}
