import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, isAbsolute, resolve } from "node:path";
import { DataError, MIN_ROWS } from "../data/profile.js";
import { profileTimeColumn } from "../data/profile-data.js";
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
  try {
    if (state.profile && files.every((f) => given.includes(f))) {
      const timed = await withTimeColumn(state.profile, state.answers.time);
      return timed === state.profile ? { dataError: null } : { profile: timed, dataError: null };
    }
    const profile = await deps.agents.data.profile(file, { maxBytes: deps.config.limits.maxUploadMb * 1048576, others });
    if (profile.rows < MIN_ROWS)
      return {
        profile: null,
        dataError: `${profile.name} has ${profile.rows} data row${profile.rows === 1 ? "" : "s"}; I need at least ${MIN_ROWS} to train a model and hold out a test split.`,
      };
    return { profile: await withTimeColumn({ ...profile, given: files }, state.answers.time), files, dataError: null };
  } catch (err) {
    if (err instanceof DataError) return { profile: null, dataError: err.message };
    throw err;
  }
}

/** The time axis read again when the user named a time column other than the one the profile chose. */
async function withTimeColumn(profile: NonNullable<State["profile"]>, answer: string | undefined) {
  const named = resolveColumn(profile, answer);
  if (!named || profile.time?.column === named || profile.images || profile.graph) return profile;
  return profileTimeColumn(profile, named);
}
