import { describe, expect, it } from "vitest";
import { FALLBACK_NOTE } from "../../graphs/automl/agents/offline/operation.js";
import type { Implementation, Instructions, Plan, RunRecord } from "../../graphs/automl/agents/types.js";
import type { GraphDeps, ProgressEvent } from "../../graphs/automl/deps.js";
import { buildAutoMLGraph } from "../../graphs/automl/graph.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { makeRequirements } from "../helpers/requirements.js";

// Every edge out of a step that can fail goes to finish when it did: a later step never reads what a
// failed one left empty, and the thread gets a sentence, not a stack trace. The graph is resumed just
// before the step under test, with agents that fail the way a poor model's answers once made them.

const requirements = makeRequirements({ target: "churn", metric: { name: "f1", direction: "max" } });

const plan: Plan = {
  id: "plan-1",
  title: "Random forest",
  approach: "bagging",
  summary: "",
  preprocessing: [],
  models: [{ family: "random_forest", label: "Random forest", estimator: "sklearn.ensemble.RandomForestClassifier" }],
  training: "",
  inference: "",
  rationale: "",
  notices: [],
};

const instructions: Instructions = {
  planId: "plan-1",
  candidate: { id: "plan-1:random_forest", label: "Random forest", estimator: "sklearn.ensemble.RandomForestClassifier", preprocess: { scale: false, encode: "ordinal" }, params: {}, score: 0.8, trials: 2 },
  alternatives: [],
  dropColumns: [],
  notes: [],
};

const TECHNICAL = /\n\s+at \S|TypeError|Cannot read propert|"code":\s*"|too_small|invalid_type|ZodError/;

/** Resumes the graph as if `after` had just run, with these agents; returns the steps run and the end state. */
async function resumeAfter(after: string, values: Record<string, unknown>, agents: Record<string, unknown>) {
  const started: string[] = [];
  let runnerUsed = false;
  const deps = {
    agents: { engine: "llm", ...agents },
    config: loadConfig({}, {}),
    logger: createLogger("silent"),
    runner: () => {
      runnerUsed = true;
      throw new Error("no runner in this test");
    },
    retriever: {},
    cwd: process.cwd(),
    emit: (_thread: string, e: ProgressEvent) => {
      if (e.type === "stage" && e.state === "start") started.push(e.stage);
    },
    jobSignal: () => new AbortController().signal,
    keepServer: async () => {},
    installedModules: async () => ({}),
  } as unknown as GraphDeps;
  const graph = buildAutoMLGraph(deps);
  const config = { configurable: { thread_id: `t-${after}` } };
  await graph.updateState(config, { status: "running", requirements, plans: [plan], ...values }, after);
  const state = await graph.invoke(null, config);
  return { started, state, runnerUsed };
}

const crash = () => {
  throw new TypeError("Cannot read properties of null (reading 'candidateId')");
};

describe("a failed step ends the conversation with a sentence", () => {
  it("implement → finish: smoke never reads an implementation that was not written", async () => {
    const { started, state, runnerUsed } = await resumeAfter("select", { instructions }, { operation: { implement: crash } });
    expect(started).toEqual(["implement", "finish"]);
    expect(runnerUsed).toBe(false);
    expect(state.status).toBe("failed");
    expect(state.error).toMatch(/the implement step failed/);
    expect(state.error).not.toMatch(TECHNICAL);
  });

  it("decompose → finish: plans with nothing to train stop with a clear message, not an empty search", async () => {
    const none = { decompose: async () => [] };
    const { started, state, runnerUsed } = await resumeAfter("approve", { approvedPlan: "best", route: "decompose" }, { data: none, model: none });
    expect(started).toEqual(["decompose", "finish"]);
    expect(runnerUsed).toBe(false);
    expect(state.status).toBe("failed");
    expect(state.error).toMatch(/None of the plans names a model ThreadML can train/);
    expect(state.error).not.toMatch(TECHNICAL);
  });

  it("select → finish: implement never reads instructions that were not written", async () => {
    const { started, state } = await resumeAfter("verify_execution", { route: "select" }, { manager: { select: crash } });
    expect(started).toEqual(["select", "finish"]);
    expect(state.status).toBe("failed");
    expect(state.error).not.toMatch(TECHNICAL);
  });

  it("revise: generated code whose model predicts one class gives way to the template of the same candidate, once the fixes are spent", async () => {
    const generated: Implementation = { code: "def build(ctx):\n    ...\n", candidateId: instructions.candidate.id, description: "Random forest, generated code", params: {}, adjustments: [] };
    const run: RunRecord = { kind: "full", runId: "r1", workspace: "/nowhere", dir: "/nowhere", candidateId: instructions.candidate.id, result: null, failure: "success", message: "", cancelled: false, durationS: 1, claims: {}, artifacts: null };
    const verdict = { failure: "degenerate" as const, checks: [], reasons: ["it predicts one class for every row"] };
    const { started, state } = await resumeAfter(
      "verify_implementation",
      { route: "revise", instructions, implementation: generated, lastRun: run, verdict, budgets: { fix: 99 } },
      {},
    );
    // The template goes on to its smoke run (which has no runner here, and says so in a sentence).
    expect(started).toEqual(["revise", "smoke", "finish"]);
    expect(state.implementation?.adjustments.some((a: string) => a.startsWith(FALLBACK_NOTE))).toBe(true);
    expect(state.implementation?.code).toMatch(/RandomForestClassifier/);
    expect(state.notices.join("\n")).toMatch(/did not pass \(degenerate: it predicts one class for every row\); using ThreadML's own template for Random forest instead/);
    expect(state.error).not.toMatch(TECHNICAL);
  });
});
