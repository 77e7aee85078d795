import type { Requirements } from "../../../../src/schema/requirements.js";
import { ForecastStrategy, type FailureClass } from "../../../../runners/contract.js";
import { loadKnowledgeBase, recipesFor } from "../../knowledge/index.js";
import { pyImportPath, pyLiteral, pyStr } from "../../python-source.js";
import type {
  FixInput,
  Implementation,
  Instructions,
  OperationAgent,
  RankedCandidate,
} from "../types.js";

// The offline operation agent writes solution.py from a template: the chosen estimator with its
// searched hyperparameters, placed into the harness's build / fit / predict slots.

/** Top-level packages the recipes' estimators come from; no other import is ever generated. */
function estimatorRoots(): Set<string> {
  return new Set(Object.values(loadKnowledgeBase()).flatMap((r) => r.families.map((f) => f.estimator.split(".")[0])));
}

/**
 * solution.py for a candidate. Every value that came from the user, the data or an LLM (target,
 * labels, notes, plan id, metric, parameters) enters only as a literal in the constants block; the
 * docstring is fixed text, and the estimator is spliced as code only after pyImportPath accepts it.
 */
export function renderSolution(candidate: RankedCandidate, req: Requirements, planId: string, notes: string[]): string {
  const { module, name: cls } = pyImportPath(candidate.estimator, estimatorRoots());
  const params = Object.entries(candidate.params)
    .map(([k, v]) => `    ${pyStr(k)}: ${pyLiteral(v)},`)
    .join("\n");
  const fitCall = req.task === "clustering" ? "model.fit(train.X)" : "model.fit(train.X, train.y)";
  // a raw model (a CNN) takes the variant's input itself: the images, not features of them
  const model = candidate.preprocess.raw
    ? `    return ${cls}(**params)`
    : `    return Pipeline([
        ("preprocess", ctx.preprocessor(**PREPROCESS)),
        ("model", ${cls}(**params)),
    ])`;
  const about = [
    `PLAN = ${pyStr(planId)}`,
    `CANDIDATE = ${pyStr(candidate.label)}`,
    `TASK = ${pyStr(req.task)}`,
    `TARGET = ${pyLiteral(req.target)}`,
    `METRIC = ${pyStr(req.metric.name)}`,
    notes.length ? `NOTES = [\n${notes.map((n) => `    ${pyStr(n)},`).join("\n")}\n]` : "NOTES = []",
  ];
  // The docstring takes only values that cannot carry text: a whole number and a known strategy.
  const steps = Number(req.forecast?.horizon);
  const strategy = ForecastStrategy.safeParse(candidate.strategy ?? "direct").data ?? "direct";
  const forecastDoc = req.forecast
    ? `\nForecast: ${Number.isSafeInteger(steps) ? steps : "?"} steps ahead, ${strategy} strategy; the harness builds the history features and runs the forecasts.\n`
    : "";
  return `"""ThreadML solution, written from the offline template.

PLAN, CANDIDATE, TASK, TARGET, METRIC and NOTES below say what it was written for.
The harness owns loading, the splits, metrics, timing and saving; this file fills its slots.
${forecastDoc}"""
import inspect

from sklearn.pipeline import Pipeline
from ${module} import ${cls}

${about.join("\n")}

PARAMS = {
${params}
}
PREPROCESS = {"scale": ${pyLiteral(candidate.preprocess.scale)}, "encode": ${pyLiteral(candidate.preprocess.encode)}}


def _accepts(name):
    return name in inspect.signature(${cls}).parameters


def build(ctx):
    params = dict(PARAMS)
    if _accepts("random_state"):
        params.setdefault("random_state", ctx.seed)
    if ctx.n_clusters is not None:
        for key in ("n_clusters", "n_components"):
            if _accepts(key):
                params.setdefault(key, ctx.n_clusters)
${model}


def fit(model, train, valid, ctx):
    ctx.progress("fit", 0, 1)
    ${fitCall}
    ctx.progress("fit", 1, 1)
    return model


def predict(model, X):
    return model.predict(X)
`;
}

const SIZE_KEYS: Record<string, (v: number) => number> = {
  n_estimators: (v) => Math.max(20, Math.floor(v / 2)),
  epochs: (v) => Math.max(3, Math.floor(v / 2)),
  max_iter: (v) => Math.max(30, Math.floor(v / 2)),
  iterations: (v) => Math.max(30, Math.floor(v / 2)),
  max_leaf_nodes: (v) => Math.max(7, Math.floor(v / 2)),
  max_depth: (v) => Math.max(3, Math.floor(v / 2)),
  n_neighbors: (v) => v,
};

/** Smaller and faster: fewer trees or iterations and shallower trees. Null when nothing is left to shrink. */
export function shrinkParams(candidate: RankedCandidate, defaults: Record<string, unknown>): { params: Record<string, unknown>; summary: string } | null {
  const params = { ...candidate.params };
  const changes: string[] = [];
  for (const [key, fn] of Object.entries(SIZE_KEYS)) {
    const current = params[key] ?? defaults[key] ?? (key === "max_iter" && /HistGradient/.test(candidate.estimator) ? 100 : undefined);
    if (key === "max_depth" && (current === null || current === undefined) && /Forest|Trees/.test(candidate.estimator)) {
      params.max_depth = 12;
      changes.push("max_depth none→12");
      continue;
    }
    if (typeof current !== "number") continue;
    const next = fn(current);
    if (next < current) {
      params[key] = next;
      changes.push(`${key} ${current}→${next}`);
    }
  }
  return changes.length ? { params, summary: `shrank ${candidate.label}: ${changes.join(", ")}` } : null;
}

const SHRINK_FAILURES: FailureClass[] = ["solution_stuck", "constraint_unmet"];
const RESET_FAILURES: FailureClass[] = ["runtime_error", "value_error", "syntax_error"];

/** Marks an implementation that is the offline template standing in for generated code (or a fix of it). */
export const FALLBACK_NOTE = "fell back to the offline template";

export class OfflineOperationAgent implements OperationAgent {
  async implement({ instructions, requirements }: { instructions: Instructions; requirements: Requirements }): Promise<Implementation> {
    const c = instructions.candidate;
    return { code: renderSolution(c, requirements, instructions.planId, []), candidateId: c.id, description: `${c.label} with searched hyperparameters`, params: c.params, adjustments: [] };
  }

  async fix(input: FixInput): Promise<Implementation | null> {
    const { requirements, failure, memory, previous } = input;
    // Each adjustment rewrites the currently built candidate, so later fixes build on earlier ones.
    const current: RankedCandidate = { ...input.instructions.candidate, params: previous.params };
    const family = recipesFor(requirements.task)?.families.find((f) => f.estimator === current.estimator);
    const defaults = family?.params ?? {};
    let next: { params: Record<string, unknown>; summary: string } | null = null;
    if (SHRINK_FAILURES.includes(failure) && /time|latency|size|stuck|timed out/i.test(`${failure} ${input.message}`)) {
      next = shrinkParams(current, defaults);
    } else if (RESET_FAILURES.includes(failure)) {
      const summary = `reset ${current.label} to its default hyperparameters`;
      if (JSON.stringify(current.params) !== JSON.stringify(defaults)) next = { params: { ...defaults }, summary };
    }
    if (!next || memory.includes(next.summary)) return null;
    const candidate = { ...current, params: next.params };
    const adjustments = [...previous.adjustments, next.summary];
    return {
      code: renderSolution(candidate, requirements, input.instructions.planId, adjustments),
      candidateId: candidate.id,
      description: `${candidate.label} (${next.summary})`,
      params: next.params,
      adjustments,
    };
  }
}
