import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createEngine, type Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { startScriptedOpenAI, type ScriptedRequest, type ScriptedServer } from "../helpers/openai-server.js";
import { competent, json } from "../helpers/scripted-model.js";
import { writeLeakyCsv } from "../helpers/realworld.js";
import { tempDir } from "../helpers/tmp.js";

// A column that is the target written a second way, end to end through the CLI: left out with a notice
// that names it, so the model scores what the honest features allow; kept when the user says so.

const tmp = tempDir("threadml-leak-cli-");
const cwd = tmp.dir;
// a short search: these tests are about the data and the notices, not the tuning
const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "2" };
const TASK = "Predict approved in loans.csv";

interface Req {
  drop_columns: string[];
  leakage: Array<{ column: string; reason: string; kept: boolean }>;
  reading: { line: string; bindings: Array<{ slot: string; value: string; words: string }> };
}
const noticesOf = (plans: unknown[]) => plans.flatMap((p) => (p as { notices: string[] }).notices);

beforeAll(() => {
  requirePython();
  writeLeakyCsv(join(cwd, "loans.csv"), { rows: 2000, seed: 35 });
});

describe("threadml run: a recoded target column", () => {
  it("leaves it out, says so on the plan card, and scores what the honest features allow", async () => {
    const { result } = await runCli(["--yes", TASK], { cwd, env, timeoutMs: 300_000 });
    expect(result.status, result.error).toBe("deployed");
    const req = result.requirements as Req;
    expect(req.drop_columns).toContain("decision_code");
    expect(req.leakage).toEqual([{ column: "decision_code", reason: '"decision_code" maps one-to-one onto "approved" (A-OK → yes, R-NO → no)', kept: false }]);
    expect(req.reading.line).toMatch(/leaving out decision_code/);
    expect(req.reading.bindings).toContainEqual({ slot: "drop", value: "decision_code", words: "left out: predicts the target on its own" });
    const notice = 'Left out "decision_code": it maps one-to-one onto "approved" (A-OK → yes, R-NO → no), so a model would learn nothing real. Reply "keep decision_code" with Revise to use it anyway.';
    expect(noticesOf(result.plans)).toContain(notice);
    expect(result.notices).toContain(notice);
    expect(result.metrics.accuracy).toBeLessThan(0.99);
    expect(result.metrics.accuracy).toBeGreaterThan(0.75);
  }, 320_000);

  it("keeps it when a revision says 'keep decision_code', with a notice that it was kept", async () => {
    const { result } = await runCli(["--answer", "r: keep decision_code", "--answer", "a", TASK], { cwd, env, timeoutMs: 300_000 });
    expect(result.status, result.error).toBe("deployed");
    const req = result.requirements as Req & { target: string };
    expect(req.target).toBe("approved");
    expect(req.drop_columns).not.toContain("decision_code");
    expect(req.leakage).toEqual([expect.objectContaining({ column: "decision_code", kept: true })]);
    const latest = noticesOf(result.plans);
    expect(latest.some((n) => n.startsWith('Kept "decision_code" at your request'))).toBe(true);
    expect(latest.some((n) => n.startsWith('Left out "decision_code"'))).toBe(false);
    // the column gives the answer away, which is what the user chose
    expect(result.metrics.accuracy).toBeGreaterThan(0.99);
  }, 320_000);
});

describe("the LLM engine", () => {
  let server: ScriptedServer | null = null;
  let engine: Engine | null = null;
  afterAll(async () => {
    await engine?.close();
    await server?.close();
  });

  it("leaves the same column out when the model's reading keeps every column", async () => {
    // a model that reads the request right and drops nothing
    server = await startScriptedOpenAI((r: ScriptedRequest) => {
      if (r.step === "verify-request")
        return json({ relevant: true, task: "classification", target: "approved", labels_column: null, adequate: true, missing: [], questions: [], decline_reason: null, notes: [] });
      if (r.step === "parse") return json({ task: "classification", target: "approved", metric: "accuracy", constraints: [], requested_models: [], drop_columns: [] });
      return competent(r);
    });
    const config = loadConfig({}, { engine: "llm", dataDir: join(cwd, ".threadml-llm"), llm: { baseUrl: server.baseUrl, model: "scripted", maxRetries: 1, timeoutS: 5 } });
    engine = await createEngine({ config, logger: createLogger("silent"), cwd });
    const outcome = await engine.advance("leak-llm", { text: TASK, files: [join(cwd, "loans.csv")] });
    expect(server.requests.map((r) => r.step)).toContain("parse");
    if (outcome.kind !== "interrupt" || outcome.payload.kind !== "approval") throw new Error("expected the plan card");
    expect(outcome.state.requirements?.drop_columns).toContain("decision_code");
    expect(outcome.payload.notices.some((n) => n.startsWith('Left out "decision_code": it maps one-to-one onto "approved"'))).toBe(true);
    expect(outcome.payload.reading).toMatch(/leaving out decision_code/);
  });
});
