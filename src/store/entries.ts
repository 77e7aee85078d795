import { CorruptEntryError, MODEL_NAME, parseModelEntry, parseThreadMeta, type ModelEntry, type ModelEntryInput, type ThreadMeta } from "./types.js";

// What every store does the same way with stored conversations and registry entries; each store only
// decides where they live.

function parseJson(where: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CorruptEntryError(where, `not JSON (${(err as Error).message})`);
  }
}

/** Parses a stored conversation's text; anything unreadable is a CorruptEntryError naming the conversation. */
export function decodeThread(key: string, text: string): ThreadMeta {
  const where = `conversation ${key}`;
  const data = parseJson(where, text);
  try {
    return parseThreadMeta(key, data);
  } catch (err) {
    throw new CorruptEntryError(where, (err as Error).message.replace(`${where}: `, ""));
  }
}

/** Validates an entry for writing and stamps `updatedAt`. */
export function stampModel(entry: ModelEntryInput): ModelEntry {
  const name = typeof entry?.name === "string" ? entry.name : String(entry?.name);
  return parseModelEntry(name, { ...entry, updatedAt: Date.now() });
}

/** Parses a stored entry's text; anything unreadable is a CorruptEntryError naming the model. */
export function decodeModel(name: string, text: string): ModelEntry {
  return parseModelEntry(name, parseJson(`model ${name}`, text));
}

/** True for names a registry entry can have (so a name can be used as a key or file name as is). */
export const isModelName = (name: unknown): name is string => typeof name === "string" && MODEL_NAME.test(name);

/** Oldest first; ties by name, so listings are stable. */
export function sortModels(entries: ModelEntry[]): ModelEntry[] {
  return entries.sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The entries of one chat thread, or all of them. */
export const modelsOf = (entries: ModelEntry[], filter: { thread?: string } = {}) =>
  sortModels(filter.thread === undefined ? entries : entries.filter((e) => e.thread === filter.thread));
