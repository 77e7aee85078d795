import { oneLine } from "./format.js";
import { basename } from "node:path";
import type { Requirements } from "../../src/schema/requirements.js";
import type { ColumnProfile, DataProfile } from "./agents/types.js";
import { textFeatureColumns } from "./data/profile.js";

// The data section of the plan card: how the file was read and what each column is taken to be, so a
// wrongly typed or wrongly dropped column is seen before anything trains. Column names are user input:
// every surface escapes these lines as it escapes the reading line; here they are only kept short.

/** Names shown per group before "+N". */
const SHOWN = 2;
const SHOWN_ASIDE = 3;
const NAME_MAX = 32;
/** Each line stays well inside Slack's and Discord's limits (3000 and 2000 characters). */
export const DATA_LINE_MAX = 600;

/** One line of user-derived text, short: control characters become spaces, long names are cut. */
const short = (text: string, max = NAME_MAX) => oneLine(text, max);

function names(list: string[], shown = SHOWN): string {
  const head = list.slice(0, shown).join(", ");
  return list.length > shown ? `${head} (+${list.length - shown})` : head;
}

const ENCODINGS: Record<string, string> = {
  "utf-8": "UTF-8",
  utf8: "UTF-8",
  "utf-8-sig": "UTF-8 (with byte-order mark)",
  ascii: "ASCII",
  cp1252: "cp1252 (Latin-1)",
  "windows-1252": "cp1252 (Latin-1)",
  "latin-1": "Latin-1",
  latin1: "Latin-1",
  "iso-8859-1": "Latin-1",
  "utf-16": "UTF-16",
  "utf-16-le": "UTF-16",
  "utf-16-be": "UTF-16",
};
const FORMATS = { csv: "", excel: "Excel", json: "JSON", jsonl: "JSON lines", parquet: "Parquet" } as const;
const SEPARATORS: Record<string, string> = { "\t": "tab separated", " ": "space separated" };

/** "cp1252 (Latin-1), ";" separated, decimal comma", or null when nothing is known of the reading. */
function readAs(source: NonNullable<DataProfile["source"]>): string | null {
  const parts: string[] = [];
  if (FORMATS[source.format]) parts.push(FORMATS[source.format]);
  if (source.sheet) {
    const at = source.sheets.indexOf(source.sheet);
    parts.push(`sheet "${short(source.sheet)}"${source.sheets.length > 1 && at >= 0 ? ` (${at + 1} of ${source.sheets.length})` : ""}`);
  }
  if (source.encoding) parts.push(ENCODINGS[source.encoding.toLowerCase()] ?? short(source.encoding, 20));
  if (source.format === "csv" && source.delimiter) parts.push(SEPARATORS[source.delimiter] ?? `"${short(source.delimiter, 3)}" separated`);
  if (source.decimal === ",") parts.push("decimal comma");
  if (source.thousands) parts.push(`"${short(source.thousands, 3) || "space"}" between thousands`);
  return parts.length ? `read as ${parts.join(", ")}` : null;
}

const SUSPECT_REASON: Record<NonNullable<ColumnProfile["suspect"]>, string> = { id: "identifier", constant: "constant", mostly_missing: "mostly empty" };

/** The first line: the file, its size and how it was read. */
function fileLine(profile: DataProfile): string {
  // Only the file's name: a path on this host is nobody's business in a chat.
  const parts = [short(basename(profile.source?.original || profile.name), 60)];
  const im = profile.images;
  const g = profile.graph;
  if (im) parts.push(`${im.images} images${im.layout === "folders" ? ", labelled by folder" : im.layout === "labels_csv" ? ", labelled by a CSV" : ""}`);
  else if (g) parts.push(`${g.nodes} nodes × ${profile.columns.length} columns, ${g.edges} edges`);
  else parts.push(`${profile.rows} rows${profile.sampled ? " (a sample)" : ""} × ${profile.columns.length} columns`);
  const read = profile.source ? readAs(profile.source) : null;
  if (read) parts.push(read);
  return `Data: ${parts.join(" · ")}`;
}

/** The second line: each column as understood (numbers, categories, dates, text, set aside, target). */
function columnsLine(profile: DataProfile, req: Requirements): string | null {
  if (profile.images) return null;
  const leaks = req.leakage ?? [];
  const aside = new Map<string, string>();
  for (const c of profile.columns) if (c.kind === "empty") aside.set(c.name, "empty");
  for (const name of req.drop_columns) {
    const column = profile.columns.find((c) => c.name === name);
    aside.set(name, column?.suspect ? SUSPECT_REASON[column.suspect] : column?.kind === "empty" ? "empty" : "as asked");
  }
  // The plan's notice gives the full reason (which values give the answer away); here a few words do.
  for (const l of leaks) if (!l.kept) aside.set(l.column, "predicts the target");
  const kept = leaks.filter((l) => l.kept && !aside.has(l.column));

  const forecast = req.forecast;
  const special = new Set([req.target, req.labels_column, forecast?.time_column, forecast?.id_column].filter((c): c is string => !!c));
  const text = new Set(textFeatureColumns(profile, req));
  const dated = new Set(profile.source?.dates.map((d) => d.column) ?? []);
  // A forecast reads only the series, its time axis and the other numbers it was given.
  const inputs = profile.columns.filter((c) => !special.has(c.name) && !aside.has(c.name) && (!forecast || forecast.exogenous.includes(c.name)));
  const numbers = inputs.filter((c) => c.kind === "numeric" && !dated.has(c.name)).map((c) => short(c.name));
  const dates = inputs.filter((c) => c.kind === "datetime" || dated.has(c.name)).map((c) => short(c.name));
  const words = inputs.filter((c) => text.has(c.name) && !dated.has(c.name)).map((c) => short(c.name));
  const categories = inputs
    .filter((c) => (c.kind === "categorical" || c.kind === "boolean" || (c.kind === "text" && !text.has(c.name))) && !dated.has(c.name))
    .map((c) => short(c.name));

  const groups: string[] = [];
  if (numbers.length) groups.push(`numbers ${names(numbers)}`);
  if (categories.length) groups.push(`categories ${names(categories)}`);
  if (dates.length) groups.push(`dates ${names(dates)} → calendar features`);
  if (words.length) groups.push(`text ${names(words)} → words`);
  if (forecast) groups.push(`time ${short(forecast.time_column)}${profile.time?.label ? ` (${profile.time.label})` : ""}`);
  if (forecast?.id_column) groups.push(`one series per ${short(forecast.id_column)}`);
  if (aside.size) groups.push(`set aside ${names([...aside].map(([n, why]) => `${short(n)} (${why})`), SHOWN_ASIDE)}`);
  if (kept.length) groups.push(`kept on request ${names(kept.map((l) => `${short(l.column)} (predicts the target)`))}`);
  if (req.target) groups.push(`target ${short(req.target)}`);
  if (req.labels_column) groups.push(`groups judged against ${short(req.labels_column)}`);
  return groups.length ? `Columns: ${groups.join(" · ")}` : null;
}

/** The plan card's data section: one line for the file, one for its columns. */
export function dataCard(profile: DataProfile | null, req: Requirements | null): string[] {
  if (!profile) return [];
  const lines = [fileLine(profile), ...(req ? [columnsLine(profile, req)] : [])].filter((l): l is string => l !== null);
  return lines.map((l) => (l.length <= DATA_LINE_MAX ? l : `${l.slice(0, DATA_LINE_MAX - 1)}…`));
}
