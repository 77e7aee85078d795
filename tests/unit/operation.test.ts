import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { OfflineOperationAgent, renderSolution, shrinkParams } from "../../graphs/automl/agents/offline/operation.js";
import { pyLiteral } from "../../graphs/automl/python-source.js";
import type { Instructions, RankedCandidate } from "../../graphs/automl/agents/types.js";
import { decisionFromText, revisionOfReading } from "../../graphs/automl/nodes/approve.js";
import { recipesFor } from "../../graphs/automl/knowledge/index.js";
import { makeProfile, makeRequirements } from "../helpers/requirements.js";
import { tempDir } from "../helpers/tmp.js";

const python = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
const tmp = tempDir();
const candidate: RankedCandidate = {
  id: "plan-1:random_forest",
  label: "Random forest",
  estimator: "sklearn.ensemble.RandomForestClassifier",
  preprocess: { scale: false, encode: "ordinal" },
  params: { n_estimators: 200, max_depth: null, bootstrap: true, max_features: "sqrt" },
  score: 0.9,
  trials: 3,
};
const instructions: Instructions = { planId: "plan-1", candidate, alternatives: [], dropColumns: [], notes: [] };

describe("offline operation agent", () => {
  it("writes Python literals", () => {
    expect(pyLiteral({ a: null, b: true, c: [1, "x"] })).toBe('{"a": None, "b": True, "c": [1, "x"]}');
  });

  it("renders a solution that Python compiles, with the slots", () => {
    const code = renderSolution(candidate, makeRequirements(), "plan-1", []);
    expect(code).toMatch(/def build\(ctx\)/);
    expect(code).toMatch(/def fit\(model, train, valid, ctx\)/);
    expect(code).toMatch(/"max_depth": None/);
    const file = tmp.write("solution.py", code);
    execFileSync(python, ["-c", `import ast,sys; ast.parse(open(sys.argv[1]).read())`, file]);
    const clustering = renderSolution({ ...candidate, estimator: "sklearn.cluster.KMeans" }, makeRequirements({ task: "clustering", target: null }), "plan-1", []);
    expect(clustering).toMatch(/model\.fit\(train\.X\)\n/);
  });

  it("shrinks big models and stops when nothing is left", () => {
    const shrunk = shrinkParams(candidate, {})!;
    expect(shrunk.params.n_estimators).toBe(100);
    expect(shrunk.params.max_depth).toBe(12);
    expect(shrinkParams({ ...candidate, estimator: "sklearn.linear_model.LogisticRegression", params: { C: 1 } }, {})).toBeNull();
  });

  it("fixes a slow run once and never repeats a fix in memory", async () => {
    const agent = new OfflineOperationAgent();
    const requirements = makeRequirements();
    const first = await agent.implement({ instructions, requirements });
    const fixed = await agent.fix({ instructions, requirements, previous: first, failure: "solution_stuck", message: "timed out", memory: [] });
    expect(fixed?.params.n_estimators).toBe(100);
    const again = await agent.fix({ instructions, requirements, previous: first, failure: "solution_stuck", message: "timed out", memory: [fixed!.adjustments[0]] });
    expect(again).toBeNull();
    const reset = await agent.fix({ instructions, requirements, previous: first, failure: "runtime_error", message: "boom", memory: [] });
    const defaults = recipesFor("classification")!.families.find((f) => f.id === "random_forest")!.params;
    expect(reset?.params).toEqual(defaults);
  });
});

describe("plan decisions typed as text", () => {
  const ids = ["plan-1", "plan-2", "plan-3"];
  it.each([
    ["yes", { kind: "approve", planId: "best" }],
    ["a", { kind: "approve", planId: "best" }],
    ["c", { kind: "cancel" }],
    ["r use extra trees", { kind: "revise", feedback: "use extra trees" }],
    ["revise: smaller model", { kind: "revise", feedback: "smaller model" }],
    ["really, try an SVM", { kind: "revise", feedback: "really, try an SVM" }],
    ["approve", { kind: "approve", planId: "best" }],
    ["2", { kind: "approve", planId: "plan-2" }],
    ["plan 3", { kind: "approve", planId: "plan-3" }],
    ["cancel", { kind: "cancel" }],
    ["use a random forest instead", { kind: "revise", feedback: "use a random forest instead" }],
  ])("%s", (text, expected) => {
    expect(decisionFromText(text, ids)).toEqual(expected);
  });
});

describe("revisions that change the reading", () => {
  const base = makeProfile();
  const names = ["region", "Churn", "y"];
  const profile = { ...base, columns: base.columns.map((c, i) => ({ ...c, name: names[i] })) };
  it.each([
    ["the target is Churn", { reread: true, target: "Churn" }],
    ["leave out region", { reread: true, target: null }],
    ["F1 at least 0.8", { reread: true, target: null }],
    ["try extra trees, and no logistic regression", { reread: false, target: null }],
    ["use fewer features", { reread: false, target: null }],
  ])("%s", (feedback, expected) => {
    expect(revisionOfReading(feedback, { profile })).toEqual(expected);
  });
});
