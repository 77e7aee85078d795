import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** The operation agent writes the solution into the harness slots. */
export function implementNode(deps: GraphDeps) {
  return stage<State>(deps, "implement", async (state) => ({
    implementation: await deps.agents.operation.implement({ instructions: state.instructions!, requirements: state.requirements! }),
  }));
}
