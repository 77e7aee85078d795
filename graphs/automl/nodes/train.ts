import { stage, type GraphDeps } from "../deps.js";
import { runJob } from "../jobs.js";
import type { State } from "../state.js";

/** The full training run on all the data; the harness measures everything on the held-out test split. */
export function trainNode(deps: GraphDeps) {
  return stage<State>(deps, "train", async (state, config) => {
    const impl = state.implementation!;
    const run = await runJob(deps, state, config, {
      kind: "full",
      stage: "train",
      candidateId: impl.candidateId,
      code: impl.code,
      spec: { mode: "train", plots: true },
    });
    if (run.cancelled) return { runs: [run], lastRun: run, status: "cancelled", route: "finish" };
    return { runs: [run], lastRun: run, verdict: null, route: run.failure === "success" ? "verify_implementation" : "revise" };
  });
}
