import { describe, expect, it } from "vitest";
import { LlmOperationAgent } from "../../graphs/automl/agents/llm/operation.js";
import { FALLBACK_NOTE } from "../../graphs/automl/agents/offline/operation.js";
import type { Instructions } from "../../graphs/automl/agents/types.js";
import type { LlmClient } from "../../src/llm/client.js";
import { LlmBudgetError, LlmOutputError, LlmUnavailableError } from "../../src/llm/errors.js";
import { makeRequirements } from "../helpers/requirements.js";

// The offline template is the last resort for code: whatever the model does at the code step (prose,
// the wrong estimator, no answer at all, a spent request budget), the operation agent ends with code
// that runs, and says it is the template. A model that no longer answers is not asked again.

function client(answer: () => string) {
  let calls = 0;
  const c = {
    get calls() {
      return calls;
    },
    async json(): Promise<never> {
      throw new Error("no JSON step here");
    },
    async text(): Promise<string> {
      calls++;
      return answer();
    },
  };
  return c as unknown as LlmClient & { calls: number };
}

const requirements = makeRequirements({ target: "churn", metric: { name: "f1", direction: "max" } });

const instructions: Instructions = {
  planId: "plan-1",
  candidate: {
    id: "plan-1:random_forest",
    label: "Random forest",
    estimator: "sklearn.ensemble.RandomForestClassifier",
    preprocess: { scale: false, encode: "ordinal" },
    params: { n_estimators: 50 },
    score: 0.8,
    trials: 2,
  },
  alternatives: [],
  dropColumns: [],
  notes: [],
};

const isTemplate = (adjustments: string[]) => adjustments.some((a) => a.startsWith(FALLBACK_NOTE));

describe("code from a poor model", () => {
  it("takes the template after every draft is prose or builds another estimator", async () => {
    let n = 0;
    const llm = client(() => (++n % 2 ? "I would use gradient boosting here." : "```python\nfrom sklearn.dummy import DummyClassifier\n\ndef build(ctx):\n    return DummyClassifier()\n```"));
    const impl = await new LlmOperationAgent(llm, { codeAttempts: 3 }).implement({ instructions, requirements });
    expect(llm.calls).toBe(3);
    expect(isTemplate(impl.adjustments)).toBe(true);
    expect(impl.description).toMatch(/offline template/);
    expect(impl.code).toMatch(/RandomForestClassifier/);
    expect(impl.adjustments.join("\n")).toMatch(/does not use RandomForestClassifier/);
  });

  it.each([
    ["an endpoint that stays down", () => new LlmUnavailableError({ baseUrl: "http://127.0.0.1:9/v1", step: "implement", attempts: 2, reason: "HTTP 500", retryable: true }), /the LLM did not answer \(HTTP 500\)/],
    ["a spent request budget", () => new LlmBudgetError("implement", 30), /LLM requests are spent/],
  ])("takes the template at once for %s, without asking again", async (_what, error, why) => {
    const llm = client(() => {
      throw error();
    });
    const impl = await new LlmOperationAgent(llm, { codeAttempts: 3 }).implement({ instructions, requirements });
    expect(llm.calls).toBe(1);
    expect(isTemplate(impl.adjustments)).toBe(true);
    expect(impl.adjustments.join("\n")).toMatch(why);
  });

  it("ends a fix on the template when the model's answers stay unusable", async () => {
    const llm = client(() => {
      throw new LlmOutputError("fix", "no code");
    });
    const agent = new LlmOperationAgent(llm, { codeAttempts: 3 });
    const previous = { code: "def build(ctx):\n    raise ValueError('x')\n", candidateId: instructions.candidate.id, description: "Random forest, generated code", params: {}, adjustments: [] };
    const fixed = await agent.fix({ instructions, requirements, previous, failure: "runtime_error", message: "ValueError: x", memory: [] });
    expect(fixed).not.toBeNull();
    expect(isTemplate(fixed!.adjustments)).toBe(true);
    expect(llm.calls).toBe(2);
  });
});
