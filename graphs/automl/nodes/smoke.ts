import { stage, type GraphDeps } from "../deps.js";
import { runJob } from "../jobs.js";
import type { State } from "../state.js";

/** A quick run of the generated code on a sample, to catch crashes before the full run. */
export function smokeNode(deps: GraphDeps) {
  return stage<State>(deps, "smoke", async (state, config) => {
    const impl = state.implementation!;
    const run = await runJob(deps, state, config, {
      kind: "smoke",
      stage: "smoke",
      candidateId: impl.candidateId,
      code: impl.code,
      spec: { mode: "train", sample_rows: Math.min(deps.config.smokeRows, state.profile!.rows), plots: false },
    });
    if (run.cancelled) return { runs: [run], lastRun: run, status: "cancelled", route: "finish" };
    return { runs: [run], lastRun: run, verdict: null, route: run.failure === "success" ? "train" : "revise" };
  });
}
