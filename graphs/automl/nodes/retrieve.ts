import { retrieveLocal } from "../knowledge/index.js";
import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** Knowledge for planning: the local recipe base (online sources plug in beside it). */
export function retrieveNode(deps: GraphDeps) {
  return stage<State>(deps, "retrieve", async (state) => ({ knowledge: retrieveLocal(state.requirements!.task) }));
}
