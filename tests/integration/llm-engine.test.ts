import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { State } from "../../graphs/automl/state.js";
import { loadConfig } from "../../src/config.js";
import { createEngine, type Engine, type Outcome } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { startScriptedOpenAI, type ScriptReply, type ScriptedRequest, type ScriptedServer } from "../helpers/openai-server.js";
import { competent, goodCode, json, planIds, user } from "../helpers/scripted-model.js";
import { tempDir } from "../helpers/tmp.js";

// The LLM engine end to end: the real graph, the real @langchain/openai client and a scripted
// OpenAI-compatible server on 127.0.0.1, with real harness runs in the sandbox.

const tmp = tempDir("threadml-llm-");
const servers: ScriptedServer[] = [];
const engines: Engine[] = [];
async function serve(handler: (r: ScriptedRequest, i: number) => ScriptReply): Promise<ScriptedServer> {
  const s = await startScriptedOpenAI(handler);
  servers.push(s);
  return s;
}

async function engineFor(server: ScriptedServer, overrides: Record<string, unknown> = {}, llm: Record<string, unknown> = {}): Promise<Engine> {
  const config = loadConfig(
    {},
    {
      engine: "llm",
      dataDir: join(tmp.dir, ".threadml"),
      search: { budgetS: 2, trialsPerFamily: 2, sampleRows: 800, cvFolds: 3 },
      llm: { baseUrl: server.baseUrl, model: "scripted", maxRetries: 1, timeoutS: 5, ...llm },
      ...overrides,
    },
  );
  const e = await createEngine({ config, logger: createLogger("silent"), cwd: tmp.dir });
  engines.push(e);
  return e;
}

const done = (o: Outcome): State => {
  if (o.kind !== "done") throw new Error(`expected the end, the conversation waits for ${o.payload.kind}`);
  return o.state;
};

async function approveAndRun(e: Engine, t: string, text: string): Promise<State> {
  const o = await e.advance(t, { text });
  if (o.kind !== "interrupt" || o.payload.kind !== "approval") throw new Error(`expected plans, got ${JSON.stringify(o.kind === "done" ? o.state.error : o.payload)}`);
  return done(await e.advance(t, { kind: "approve", planId: "best" }));
}

beforeAll(() => {
  requirePython();
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 500, seed: 41 });
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await Promise.all(servers.map((s) => s.close()));
});

describe("LLM engine, end to end", () => {
  it("runs a whole conversation to a deployed model through the CLI, within 12 calls", async () => {
    const server = await serve(competent);
    const { result } = await runCli(["--engine", "llm", "--yes", "Build a model that predicts Quality in bananas.csv"], {
      cwd: tmp.dir,
      env: { OPENAI_BASE_URL: server.baseUrl, THREADML_LLM_MODEL: "scripted", THREADML_DATA_DIR: join(tmp.dir, ".threadml"), THREADML_SEARCH_BUDGET_S: "2" },
    });
    expect(result.status, result.error).toBe("deployed");
    expect(result.endpoint?.check.ok).toBe(true);
    expect(result.llm.calls).toBeGreaterThanOrEqual(10);
    expect(result.llm.calls).toBeLessThanOrEqual(12);
    expect(result.llm.prompt_tokens).toBeGreaterThan(0);
    expect(result.llm.cost_usd).toBeGreaterThan(0);
    const steps = server.requests.map((r) => r.step);
    for (const step of ["verify-request", "parse", "knowledge", "plan", "data-decompose", "model-decompose", "verify-execution", "select", "implement"])
      expect(steps).toContain(step);
    expect(steps.filter((s) => s === "plan")).toHaveLength(3);
    // Every JSON step carries its answer's schema; code is free text.
    for (const r of server.requests) {
      const format = r.responseFormat as { type?: string; json_schema?: { schema?: { type?: string } } } | undefined;
      if (r.step === "implement") expect(format).toBeUndefined();
      else expect(format?.type === "json_schema" && format.json_schema?.schema?.type, r.step).toBe("object");
    }
    expect(result.llm.calls).toBe(server.requests.length);
    expect(readFileSync(result.artifacts.code!, "utf8")).toMatch(/def build\(ctx\)/);
    // The data reached the prompts only as quoted material.
    expect(server.requests.find((r) => r.step === "verify-request")!.messages[1].content).toMatch(/<<<QUOTED/);
  });

  it("keeps the thread for follow-ups: explains, and retrains with a change the model must honour", async () => {
    const server = await serve(competent);
    const env = { OPENAI_BASE_URL: server.baseUrl, THREADML_LLM_MODEL: "scripted", THREADML_DATA_DIR: join(tmp.dir, ".threadml-thread"), THREADML_SEARCH_BUDGET_S: "2" };
    const cli = (args: string[]) => runCli(["--engine", "llm", "--thread", "llm-bananas", ...args], { cwd: tmp.dir, env });
    const first = await cli(["--yes", "Build a model that predicts Quality in bananas.csv"]);
    expect(first.result.status, first.result.error).toBe("deployed");
    expect(first.result.model).toBe("quality");
    const explained = await cli(["what matters most?"]);
    expect(explained.result.followup?.file).toMatch(/importance\.png$/);
    const calls = server.requests.length;
    const again = await cli(["--yes", "try again without Size"]);
    expect(again.result.status, again.result.error).toBe("deployed");
    expect((again.result.requirements as { drop_columns: string[] }).drop_columns).toContain("Size");
    expect(again.result.comparison?.rows.map((r) => r[1])).toEqual(["new", "quality"]);
    // the retrain went through the LLM engine again, not around it
    expect(server.requests.slice(calls).some((r) => r.step === "parse")).toBe(true);
  });

  it("asks a clarifying question, then goes on with the answer", async () => {
    const server = await serve(competent);
    const e = await engineFor(server);
    const o = await e.advance("clarify", { text: "Build me a classifier for bananas.csv" });
    expect(o.kind === "interrupt" && o.payload.kind === "question" && o.payload.question.slot).toBe("target");
    const next = await e.advance("clarify", { kind: "answer", text: "Quality", files: [] });
    expect(next.kind === "interrupt" && next.payload.kind).toBe("approval");
  });

  it("repairs invalid JSON with one more call carrying the validation error", async () => {
    let broken = true;
    const server = await serve((r) => {
      if (r.step === "parse" && broken) {
        broken = false;
        return { content: "Sure! The task is classification of Quality." };
      }
      return competent(r);
    });
    const e = await engineFor(server);
    const o = await e.advance("repair", { text: "Predict Quality in bananas.csv" });
    expect(o.kind === "interrupt" && o.payload.kind).toBe("approval");
    const parses = server.requests.filter((r) => r.step === "parse");
    expect(parses).toHaveLength(2);
    expect(user(parses[1])).toMatch(/Sure! The task is classification/);
    expect(o.state.requirements?.target).toBe("Quality");
  });

  it("fixes generated code that crashes, remembering the fix", async () => {
    let crash = true;
    const server = await serve((r) => {
      if (r.step === "implement" && crash) {
        crash = false;
        return { content: goodCode(r, '    raise RuntimeError("shape mismatch in the pipeline")') };
      }
      return competent(r);
    });
    const e = await engineFor(server);
    const state = await approveAndRun(e, "crash", "Predict Quality in bananas.csv");
    expect(state.status, state.error ?? "").toBe("deployed");
    const failed = state.runs.find((r) => r.failure === "runtime_error");
    expect(failed?.message).toMatch(/shape mismatch/);
    const fix = server.requests.find((r) => r.step === "fix")!;
    expect(user(fix)).toMatch(/shape mismatch/);
    expect(state.fixMemory).toContain("rewrote the pipeline without the failing part");
  });

  it("falls back to the offline template when every generated fix crashes too, saying so", async () => {
    // Each fix claims a new remedy, so the operation agent takes them all until the fix budget is spent.
    let n = 0;
    const server = await serve((r) =>
      r.step === "implement" || r.step === "fix"
        ? { content: goodCode(r, `    raise RuntimeError("broken draft ${++n}")`).replace(/SUMMARY: .*/, `SUMMARY: remedy ${n}`) }
        : competent(r),
    );
    const e = await engineFor(server);
    const state = await approveAndRun(e, "always-crash", "Predict Quality in bananas.csv");
    expect(state.status, state.error ?? "").toBe("deployed");
    expect(state.implementation!.description).toMatch(/offline template/);
    expect(state.notices.join("\n")).toMatch(/using ThreadML's own template for .* instead/);
    // The crashing drafts were the generated ones; the template's run passed.
    expect(state.runs.filter((r) => r.failure === "runtime_error").length).toBeGreaterThanOrEqual(2);
  });

  it("writes the template itself when the LLM stops answering at the code step, instead of failing", async () => {
    const server = await serve((r) => (r.step === "implement" ? { status: 503 } : competent(r)));
    const e = await engineFor(server);
    const state = await approveAndRun(e, "code-down", "Predict Quality in bananas.csv");
    expect(state.status, state.error ?? "").toBe("deployed");
    expect(state.notices.join("\n")).toMatch(/could not be used \(.*the LLM did not answer \(HTTP 503\).*ThreadML's own template/);
  });

  it("catches a metric the code claims but the harness does not confirm (hallucination)", async () => {
    let lie = true;
    const server = await serve((r) => {
      if (r.step === "implement" && lie) {
        lie = false;
        const code = goodCode(r).replace("def build(ctx):", 'def fit(model, train, valid, ctx):\n    model.fit(train.X, train.y)\n    ctx.report("accuracy", 0.9999)\n    return model\n\ndef build(ctx):');
        return { content: code };
      }
      return competent(r);
    });
    const e = await engineFor(server);
    const state = await approveAndRun(e, "lie", "Predict Quality in bananas.csv");
    const lied = state.runs.find((r) => r.claims.accuracy === 0.9999);
    expect(lied).toBeDefined();
    expect(state.notices.join(" ")).toMatch(/hallucination: the code reported accuracy = 0\.9999/);
    expect(state.status).toBe("deployed");
    expect(state.best?.result.metrics.accuracy).not.toBe(0.9999);
  });

  it("re-plans with other approaches when every plan misses the target in evaluation", async () => {
    const server = await serve(competent);
    const e = await engineFor(server, { budgets: { fix: 0, replan: 1, alternatives: 0 } });
    const t = "replan";
    let o = await e.advance(t, { text: "Predict Quality in bananas.csv with accuracy at least 0.999" });
    o = await e.advance(t, { kind: "approve", planId: "best" });
    // The re-plan comes back to the plan card with new plans.
    if (o.kind !== "interrupt" || o.payload.kind !== "approval") throw new Error("expected new plans after the re-plan");
    expect(o.state.notices.join(" ")).toMatch(/re-planning/);
    const plans = server.requests.filter((r) => r.step === "plan");
    expect(plans.length).toBeGreaterThan(3);
    expect(user(plans[plans.length - 1])).toMatch(/boosting|linear|bagging/);
    const state = done(await e.advance(t, { kind: "approve", planId: "best" }));
    expect(["deployed", "trained"]).toContain(state.status);
    expect(state.report?.constraints[0]).toMatchObject({ name: "accuracy", met: false });
  });

  it("retries an endpoint that fails, then ends with a clear message", async () => {
    const server = await serve((r) => (r.step === "verify-request" ? { status: 500, body: { error: { message: "overloaded" } } } : competent(r)));
    const e = await engineFor(server);
    const state = done(await e.advance("down", { text: "Predict Quality in bananas.csv" }));
    expect(state.status).toBe("failed");
    expect(state.error).toMatch(/did not answer the verify-request step: HTTP 500 after 2 attempts/);
    expect(server.requests.filter((r) => r.step === "verify-request")).toHaveLength(2);
  });

  it("stops an LLM request in flight when the conversation is cancelled, without retrying it", async () => {
    const server = await serve((r) => (r.step === "plan" ? { hang: true } : competent(r)));
    // Without the cancel this would wait 2 × 30 s and end as failed.
    const e = await engineFor(server, { llm: { baseUrl: server.baseUrl, model: "scripted", maxRetries: 1, timeoutS: 30 } });
    const poll = setInterval(() => {
      if (server.requests.some((r) => r.step === "plan")) {
        clearInterval(poll);
        e.cancel("cancel-llm");
      }
    }, 20);
    const state = done(await e.advance("cancel-llm", { text: "Predict Quality in bananas.csv" }));
    clearInterval(poll);
    expect(state.status).toBe("cancelled");
    expect(state.error).toMatch(/Cancelled/);
    const plans = server.requests.filter((r) => r.step === "plan").length;
    expect(plans).toBeGreaterThan(0);
    expect(plans).toBeLessThanOrEqual(3);
  });

  it("stops asking the LLM at the conversation's request budget and finishes with the offline agents, saying so", async () => {
    const server = await serve(competent);
    const e = await engineFor(server, {}, { maxCalls: 5 });
    const state = await approveAndRun(e, "budget", "Predict Quality in bananas.csv");
    expect(server.requests.length).toBeLessThanOrEqual(5);
    expect(state.llm.calls).toBe(server.requests.length);
    expect(state.status).toBe("deployed");
    expect(state.notices.join("\n")).toMatch(/made the 5 requests one conversation may use/);
  });

  it("goes on after a 429 that clears, counting both requests against the conversation's budget", async () => {
    let limited = true;
    const server = await serve((r) => {
      if (r.step === "verify-request" && limited) {
        limited = false;
        return { status: 429, headers: { "retry-after-ms": "50" }, body: { error: { message: "slow down" } } };
      }
      return competent(r);
    });
    const e = await engineFor(server);
    const o = await e.advance("limited", { text: "Predict Quality in bananas.csv" });
    expect(o.kind === "interrupt" && o.payload.kind).toBe("approval");
    expect(server.requests.filter((r) => r.step === "verify-request")).toHaveLength(2);
    const state = (await e.snapshot("limited"))!.state;
    expect(state.llm.calls).toBe(server.requests.length);
  });
});
