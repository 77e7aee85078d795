import { FALLBACK_NOTE } from "../agents/offline/operation.js";
import { stage, threadIdOf, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** The operation agent writes the solution into the harness slots. */
export function implementNode(deps: GraphDeps) {
  return stage<State>(deps, "implement", async (state, config) => {
    const implementation = await deps.agents.operation.implement({ instructions: state.instructions!, requirements: state.requirements! });
    // The LLM's drafts were all rejected (or it did not answer): the thread hears that the template stands in.
    const fallback = deps.agents.engine === "llm" ? implementation.adjustments.find((a) => a.startsWith(FALLBACK_NOTE)) : undefined;
    if (!fallback) return { implementation };
    const why = implementation.adjustments.filter((a) => a !== fallback).slice(-1)[0];
    const text = `The generated code for ${state.instructions!.candidate.label} could not be used${why ? ` (${why})` : ""}; ThreadML's own template for it runs instead.`;
    deps.emit(threadIdOf(config), { type: "notice", text });
    return { implementation, notices: [text] };
  });
}
