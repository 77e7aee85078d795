import { better, implausibleGain, unconfirmedClaims } from "../constraints.js";
import { stage, type GraphDeps } from "../deps.js";
import type { BestRun, State, Update } from "../state.js";

/** Compares the harness-computed metrics with every constraint; keeps the best model so far. */
export function verifyImplementationNode(deps: GraphDeps) {
  return stage<State>(deps, "verify_implementation", async (state) => {
    const run = state.lastRun!;
    const result = run.result!;
    const req = state.requirements!;
    const judged = await deps.agents.manager.verifyImplementation({
      requirements: req,
      result,
      baseline: state.baseline,
      implementation: state.implementation!,
      notices: state.notices,
    });
    const unconfirmed = unconfirmedClaims(run.claims, result);
    const verdict = unconfirmed.length ? { ...judged, failure: "hallucination" as const, reasons: [...unconfirmed, ...judged.reasons] } : judged;
    const candidate: BestRun = {
      runId: run.runId,
      workspace: run.workspace,
      runnerDir: run.dir,
      candidateId: run.candidateId ?? "",
      description: state.implementation!.description,
      implementation: state.implementation!,
      result,
      artifacts: run.artifacts ?? null,
      verdict,
    };
    const update: Update = { verdict, route: verdict.failure === "success" ? "deploy" : "revise" };
    const cv = state.executions.flatMap((e) => e.candidates).find((c) => c.id === run.candidateId)?.score;
    const gain = implausibleGain(req.metric.name, result.metrics[req.metric.name], cv);
    if (gain) update.notices = [gain];
    if (verdict.failure !== "degenerate" && verdict.failure !== "hallucination" && isBetter(candidate, state.best, req.metric.name)) update.best = candidate;
    return update;
  });
}

/** A run that meets more constraints wins; between equals, the better primary metric wins. */
function isBetter(a: BestRun, b: BestRun | null, metric: string): boolean {
  if (!b) return true;
  const met = (r: BestRun) => r.verdict.checks.filter((c) => c.met !== false).length;
  if (met(a) !== met(b)) return met(a) > met(b);
  return better(metric, a.result.metrics[metric] ?? null, b.result.metrics[metric] ?? null);
}
