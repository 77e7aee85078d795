import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOfflineAgents } from "../../graphs/automl/agents/offline/index.js";
import type { Agents } from "../../graphs/automl/agents/types.js";
import type { State } from "../../graphs/automl/state.js";
import { loadConfig } from "../../src/config.js";
import { Engine, type Outcome } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { LocalRunner } from "../../runners/local/index.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// The AutoML graph in process, through the Engine the chat service uses: interrupts, resumes,
// revision, cancellation and the failure loop, with real harness runs in the sandbox.

const tmp = tempDir("threadml-graph-");
const data = join(tmp.dir, "bananas.csv");
const engines: Engine[] = [];

function engine(overrides: Record<string, unknown> = {}, agents?: Agents): Engine {
  const config = loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), search: { budgetS: 2, trialsPerFamily: 2, sampleRows: 800, cvFolds: 3 }, ...overrides });
  const e = new Engine({ config, logger: createLogger("silent"), cwd: tmp.dir, agents });
  engines.push(e);
  return e;
}

const done = (o: Outcome): State => {
  if (o.kind !== "done") throw new Error(`expected the conversation to end, it waits for ${o.payload.kind}`);
  return o.state;
};

beforeAll(() => {
  requirePython();
  writeClassificationCsv(data, { rows: 600, seed: 21 });
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

describe("AutoML graph", () => {
  it("clarifies over several turns, revises, builds the plan the user picked and serves it until undeployed", async () => {
    const e = engine();
    const t = "test:clarify";
    let o = await e.advance(t, { text: "I need a model for my data" });
    expect(o.kind === "interrupt" && o.payload.kind === "question" && o.payload.question.slot).toBe("dataset");
    o = await e.advance(t, { kind: "answer", text: "bananas.csv", files: [] });
    expect(o.kind === "interrupt" && o.payload.kind === "question" && o.payload.question.slot).toBe("target");
    if (o.kind === "interrupt" && o.payload.kind === "question") expect(o.payload.question.choices[0].value).toBe("Quality");
    o = await e.advance(t, { kind: "answer", text: "quality", files: [] });
    expect(o.kind === "interrupt" && o.payload.kind).toBe("approval");

    o = await e.advance(t, { kind: "revise", feedback: "try extra trees, and no logistic regression" });
    if (o.kind !== "interrupt" || o.payload.kind !== "approval") throw new Error("expected new plans");
    const plans = o.payload.plans;
    expect(plans[0].models.map((m) => m.family)).toContain("extra_trees");
    expect(plans.flatMap((p) => p.models.map((m) => m.family))).not.toContain("logistic_regression");
    expect(new Set(plans.map((p) => p.id)).size).toBe(plans.length);

    const state = done(await e.advance(t, { kind: "approve", planId: plans[0].id }));
    expect(state.status).toBe("deployed");
    expect(state.instructions?.planId).toBe(plans[0].id);
    expect(state.executions.map((x) => x.planId)).toEqual([plans[0].id]);
    expect(state.endpoint?.serving).toBe(true);
    const url = state.endpoint!.url;
    const res = await fetch(`${url}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rows: state.best!.result.sample!.rows }),
    });
    expect(((await res.json()) as { predictions: unknown[] }).predictions).toEqual(state.best!.result.sample!.predictions);
    expect(await e.stopServer(t)).toBe(true);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it("does not read a path typed by a chat user from this machine, and asks for the file instead", async () => {
    const e = engine();
    const o = await e.advance("test:chat-path", { text: `Predict Quality in ${data}`, localPaths: false });
    expect(o.kind === "interrupt" && o.payload.kind).toBe("question");
    expect(o.state.profile).toBeNull();
    const question = o.kind === "interrupt" && o.payload.kind === "question" ? o.payload.question : null;
    expect(question?.slot).toBe("dataset");
    expect(`${question?.text} ${o.state.dataError ?? ""}`).toMatch(/attach/i);
    // A path given as the answer is not read either; an attached file is.
    const again = await e.advance("test:chat-path", { kind: "answer", text: data, files: [] });
    expect(again.state.profile).toBeNull();
    const attached = await e.advance("test:chat-path", { kind: "answer", text: "here it is", files: [data] });
    expect(attached.kind === "interrupt" && attached.payload.kind).toBe("approval");
  });

  it("asks where to train when several runners are configured, and uses the one chosen", async () => {
    const config = loadConfig(
      {},
      {
        dataDir: join(tmp.dir, ".threadml"),
        search: { budgetS: 2, trialsPerFamily: 2, sampleRows: 800, cvFolds: 3 },
        runners: { gpu1: { kind: "ssh", host: "gpu1.lab.example", user: "threadml" } },
      },
    );
    const local = new LocalRunner({ dataDir: join(tmp.dir, ".threadml") });
    const asked: string[] = [];
    // gpu1 is the local runner under another name, recording which runner the plans were made for.
    const gpu1 = Object.assign(Object.create(local) as LocalRunner, {
      modules: (names: string[]) => {
        asked.push("gpu1");
        return local.modules(names);
      },
    });
    const e = new Engine({ config, logger: createLogger("silent"), cwd: tmp.dir, runners: { local, gpu1 } });
    engines.push(e);
    const o = await e.advance("test:runner-choice", { text: "Predict Quality in bananas.csv" });
    const question = o.kind === "interrupt" && o.payload.kind === "question" ? o.payload.question : null;
    expect(question?.slot).toBe("runner");
    expect(question?.choices.map((c) => c.value)).toEqual(["local", "gpu1"]);
    expect(question?.choices[1].label).toBe("gpu1 (threadml@gpu1.lab.example)");
    const plans = await e.advance("test:runner-choice", { kind: "answer", text: "gpu1", files: [] });
    expect(plans.kind === "interrupt" && plans.payload.kind).toBe("approval");
    expect(asked).toEqual(["gpu1"]);

    // Naming a configured runner in the request is a choice; --runner (the caller's) skips the question.
    const named = await e.advance("test:runner-named", { text: "Predict Quality in bananas.csv, train on gpu1" });
    expect(named.kind === "interrupt" && named.payload.kind).toBe("approval");
    expect(named.state.answers.runner).toBe("gpu1");
    const given = await e.advance("test:runner-given", { text: "Predict Quality in bananas.csv" }, { runner: "local" });
    expect(given.kind === "interrupt" && given.payload.kind).toBe("approval");
  });

  it("cancels at the plan card without running anything", async () => {
    const e = engine();
    const o = await e.advance("test:cancel-card", { text: "Predict Quality in bananas.csv" });
    expect(o.kind === "interrupt" && o.payload.kind).toBe("approval");
    const state = done(await e.advance("test:cancel-card", { kind: "answer", text: "cancel", files: [] }));
    expect(state.status).toBe("cancelled");
    expect(state.runs).toEqual([]);
    expect(state.report?.summary[0]).toMatch(/Nothing was deployed/);
  });

  it("cancels during training: the job is killed and the conversation ends as cancelled", async () => {
    const e = engine();
    const t = "test:cancel-train";
    e.onEvent((id, ev) => {
      if (id === t && ev.type === "stage" && ev.stage === "train" && ev.state === "start") setTimeout(() => e.cancel(t), 300);
    });
    await e.advance(t, { text: "Predict Quality in bananas.csv" });
    const state = done(await e.advance(t, { kind: "approve", planId: "best" }));
    expect(state.status).toBe("cancelled");
    const last = state.runs[state.runs.length - 1];
    expect(last.kind).toBe("full");
    expect(last.cancelled).toBe(true);
    expect(state.endpoint).toBeNull();
  });

  it("keeps a cancel that arrives before the step's first job starts", async () => {
    const e = engine();
    const t = "test:cancel-early";
    e.onEvent((id, ev) => {
      if (id === t && ev.type === "stage" && ev.stage === "decompose" && ev.state === "start") e.cancel(t);
    });
    await e.advance(t, { text: "Predict Quality in bananas.csv" });
    const state = done(await e.advance(t, { kind: "approve", planId: "best" }));
    expect(state.status).toBe("cancelled");
    expect(state.runs.every((r) => r.kind !== "full")).toBe(true);
    // The next conversation in the engine is not cancelled by the old request.
    const next = await e.advance("test:cancel-early-next", { text: "Predict Quality in bananas.csv" });
    expect(next.kind === "interrupt" && next.payload.kind).toBe("approval");
  });

  it("ends with a sentence, not a stack, when a step throws unexpectedly, and runs nothing after it", async () => {
    const offline = createOfflineAgents();
    const agents: Agents = {
      ...offline,
      operation: {
        async implement() {
          throw new TypeError("Cannot read properties of null (reading 'candidateId')");
        },
        fix: (input) => offline.operation.fix(input),
      },
    };
    const e = engine({}, agents);
    const t = "test:throws";
    await e.advance(t, { text: "Predict Quality in bananas.csv" });
    const state = done(await e.advance(t, { kind: "approve", planId: "best" }));
    expect(state.status).toBe("failed");
    expect(state.error).toMatch(/^ThreadML stopped this request: the implement step failed on an internal error \(the details are in ThreadML's log\)/);
    expect(state.error).not.toMatch(/TypeError|candidateId|\n\s+at /);
    expect(state.runs.some((r) => r.kind === "smoke")).toBe(false);
  });

  it("classifies a solution that hangs as solution_stuck and recovers through the fix loop", async () => {
    const offline = createOfflineAgents();
    // An operation agent whose first code never finishes; its fixes come from the offline agent.
    const agents: Agents = {
      ...offline,
      operation: {
        async implement({ instructions, requirements }) {
          const base = await offline.operation.implement({ instructions, requirements });
          return { ...base, code: base.code.replace("    ctx.progress(\"fit\", 0, 1)\n", "    import time\n    time.sleep(600)\n") };
        },
        fix: (input) => offline.operation.fix(input),
      },
    };
    // Long enough for the 2 s search even on a loaded machine; the hanging smoke run still hits it.
    const e = engine({ limits: { wallTimeS: 20, cpuS: 600, memoryMb: 4096, maxUploadMb: 10 } }, agents);
    const t = "test:stuck";
    await e.advance(t, { text: "Predict Quality in bananas.csv" });
    const state = done(await e.advance(t, { kind: "approve", planId: "best" }));
    // The hanging code never passes its smoke run. On a loaded machine the fixed code's search may
    // also reach the limit, so the stuck run is looked for, not assumed to be the first.
    const firstSmoke = state.runs.find((r) => r.kind === "smoke");
    expect(firstSmoke?.failure, JSON.stringify(state.runs.map((r) => [r.kind, r.failure, r.message]))).not.toBe("success");
    const stuck = state.runs.find((r) => r.failure === "solution_stuck");
    expect(stuck?.message).toMatch(/wall-time limit/);
    expect(state.fixMemory.length).toBeGreaterThan(0);
    expect(state.notices.join(" ")).toMatch(/solution_stuck/);
    expect(state.status).toBe("deployed");
  });
});
