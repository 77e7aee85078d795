import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, isAbsolute, resolve } from "node:path";
import { DataError, MIN_ROWS } from "../data/profile.js";
import { profileTimeColumn } from "../data/profile-data.js";
import { resolveSheet, sheetNamedIn } from "../data/read/sheets.js";
import { resolveColumn } from "../agents/offline/prompt.js";
import { parseRequest } from "../request/parse.js";
import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/**
 * Finds the conversation's data and profiles it: the first file, with the others beside it (an edge
 * list, a labels CSV, the archive of images). A new file means a new profile; data problems wait for
 * the request check.
 */
export function ingestNode(deps: GraphDeps) {
  return stage<State>(deps, "ingest", async (state) => {
    if (!state.runKey) return { runKey: randomUUID().slice(0, 8), ...(await ingest(deps, state)) };
    return ingest(deps, state);
  });
}

async function ingest(deps: GraphDeps, state: State): Promise<Partial<State>> {
  const typed = parseRequest(state.messages.join("\n")).dataPaths;
  // A chat user must attach data: a typed path would read files of the machine ThreadML runs on.
  const mentioned = state.localPaths ? typed : [];
  const known = new Set(state.files.map((f) => basename(f.replace(/\/+$/, ""))));
  const fromText = mentioned.filter((p) => !known.has(basename(p.replace(/\/+$/, "")))).map((p) => (isAbsolute(p) ? p : resolve(deps.cwd, p)));
  const files = [...new Set([...state.files, ...fromText.filter((p) => existsSync(p))])];
  const missing = fromText.filter((p) => !existsSync(p));
  if (files.length === 0) {
    if (missing.length) return { profile: null, dataError: `I can't find the data file ${missing[0]}. Check the path, or attach the file.` };
    return { profile: null, dataError: null };
  }
  const [file, ...others] = files;
  const given = state.profile?.given ?? (state.profile ? [state.profile.file] : []);
  // converted uploads are kept with ThreadML's data, named by their content, so a restart finds them again
  const options = { maxBytes: deps.config.limits.maxUploadMb * 1048576, others, convertedDir: resolve(deps.cwd, deps.config.dataDir, "converted") };
  try {
    if (state.profile && files.every((f) => given.includes(f))) {
      const sheet = chosenSheet(state.profile, state);
      if (sheet) return profiled(await deps.agents.data.profile(file, { ...options, sheet }), files, state);
      if (state.profile.rows < MIN_ROWS && !sheetPending(state.profile, state)) return { profile: null, dataError: tooFewRows(state.profile) };
      const timed = await withTimeColumn(state.profile, state.answers.time);
      return timed === state.profile ? { dataError: null } : { profile: timed, dataError: null };
    }
    const first = await deps.agents.data.profile(file, options);
    const sheet = chosenSheet(first, state);
    return profiled(sheet ? await deps.agents.data.profile(file, { ...options, sheet }) : first, files, state);
  } catch (err) {
    if (err instanceof DataError) return { profile: null, dataError: err.message };
    throw err;
  }
}

async function profiled(profile: NonNullable<State["profile"]>, files: string[], state: State): Promise<Partial<State>> {
  // a small first sheet of a workbook is no error yet: the request check first asks which sheet holds the data
  if (profile.rows < MIN_ROWS && !sheetPending(profile, state)) return { profile: null, dataError: tooFewRows(profile) };
  return { profile: await withTimeColumn({ ...profile, given: files }, state.answers.time), files, dataError: null };
}

function tooFewRows(profile: NonNullable<State["profile"]>): string {
  const sheet = profile.source?.sheet && profile.source.sheets.length > 1 ? ` (sheet "${profile.source.sheet}")` : "";
  return `${profile.name}${sheet} has ${profile.rows} data row${profile.rows === 1 ? "" : "s"}; I need at least ${MIN_ROWS} to train a model and hold out a test split.`;
}

/** Several sheets hold tables and neither the answers nor the request say which: the question is still open. */
function sheetPending(profile: NonNullable<State["profile"]>, state: State): boolean {
  const sheets = profile.source?.sheets ?? [];
  return sheets.length > 1 && !resolveSheet(sheets, state.answers.sheet) && !sheetNamedIn(state.messages.join("\n"), sheets);
}

/**
 * The workbook sheet to read instead of the one the profile read: the user's answer to the sheet
 * question, or a sheet the request names. Null when the profile already read it, or there is no choice.
 */
function chosenSheet(profile: NonNullable<State["profile"]>, state: State): string | null {
  const sheets = profile.source?.sheets ?? [];
  if (sheets.length < 2) return null;
  const wanted = resolveSheet(sheets, state.answers.sheet) ?? sheetNamedIn(state.messages.join("\n"), sheets);
  return wanted && wanted !== profile.source?.sheet ? wanted : null;
}

/** The time axis read again when the user named a time column other than the one the profile chose. */
async function withTimeColumn(profile: NonNullable<State["profile"]>, answer: string | undefined) {
  const named = resolveColumn(profile, answer);
  if (!named || profile.time?.column === named || profile.images || profile.graph) return profile;
  return profileTimeColumn(profile, named);
}
