import type { Requirements } from "../../../../src/schema/requirements.js";
import type { FailureClass } from "../../../../runners/contract.js";
import { recipesFor } from "../../knowledge/index.js";
import type {
  FixInput,
  Implementation,
  Instructions,
  OperationAgent,
  RankedCandidate,
} from "../types.js";

// The offline operation agent writes solution.py from a template: the chosen estimator with its
// searched hyperparameters, placed into the harness's build / fit / predict slots.

/** A JSON value as a Python literal. */
export function pyLiteral(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(", ")}]`;
  if (typeof value === "object")
    return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${pyLiteral(v)}`).join(", ")}}`;
  return "None";
}

function splitPath(estimator: string): { module: string; cls: string } {
  const at = estimator.lastIndexOf(".");
  return { module: estimator.slice(0, at), cls: estimator.slice(at + 1) };
}

export function renderSolution(candidate: RankedCandidate, req: Requirements, planId: string, notes: string[]): string {
  const { module, cls } = splitPath(candidate.estimator);
  const params = Object.entries(candidate.params)
    .map(([k, v]) => `    ${JSON.stringify(k)}: ${pyLiteral(v)},`)
    .join("\n");
  const fitCall = req.task === "clustering" ? "model.fit(train.X)" : "model.fit(train.X, train.y)";
  // a raw model (a CNN) takes the variant's input itself: the images, not features of them
  const model = candidate.preprocess.raw
    ? `    return ${cls}(**params)`
    : `    return Pipeline([
        ("preprocess", ctx.preprocessor(**PREPROCESS)),
        ("model", ${cls}(**params)),
    ])`;
  const header = [
    `ThreadML solution for ${planId}: ${candidate.label}.`,
    "",
    `Task: ${req.task}${req.target ? ` of "${req.target}"` : ""}, judged by ${req.metric.name}.`,
    ...(req.forecast ? [`Forecast: ${req.forecast.horizon} steps ahead, ${candidate.strategy ?? "direct"} strategy; the harness builds the history features and runs the forecasts.`] : []),
    ...notes.map((n) => `Note: ${n}`),
    "The harness owns loading, the splits, metrics, timing and saving; this file fills its slots.",
  ];
  return `"""${header.join("\n")}
"""
import inspect

from sklearn.pipeline import Pipeline
from ${module} import ${cls}

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
