import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { State } from "../../graphs/automl/state.js";
import { loadConfig } from "../../src/config.js";
import { createEngine, type Engine, type Outcome } from "../../src/engine.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv, writeClusteringCsv, writeRegressionCsv } from "../helpers/datasets.js";
import { startScriptedOpenAI } from "../helpers/openai-server.js";
import { poorModel, type PoorMode } from "../helpers/poor-model.js";
import { tempDir } from "../helpers/tmp.js";

// A poor model (schema-valid nonsense, sloppy JSON, broken code, 10% faults) drives whole
// conversations through the real engine and harness. Each must end deployed, honouring what the user
// named, or with a clear message; never a crash, a stack trace, a validation dump or more than 30
// requests. THREADML_POOR_RUNS=N runs N seeded conversations instead of the default set.

const tmp = tempDir("threadml-poor-");

interface Case {
  task: string;
  text: string;
  file: string;
  /** What the user named, which the model's reading must not override. */
  expect: { target?: string; metric?: string; n_clusters?: number; labels_column?: string };
}

const CASES: Case[] = [
  { task: "classification", file: "bananas.csv", text: "Predict Quality in bananas.csv and optimise F1", expect: { target: "Quality", metric: "f1" } },
  { task: "regression", file: "people.csv", text: "Predict Age from the other columns of people.csv, judged by MAE", expect: { target: "Age", metric: "mae" } },
  { task: "clustering", file: "blobs.csv", text: "Cluster the rows of blobs.csv into 3 groups", expect: { n_clusters: 3 } },
  { task: "clustering with labels", file: "blobs.csv", text: "Cluster blobs.csv into 3 clusters and evaluate against the group labels", expect: { n_clusters: 3, labels_column: "group" } },
];
const MODES: PoorMode[] = ["random", "sloppy", "mixed"];

const runs = Number(process.env.THREADML_POOR_RUNS ?? 0);
const plan = runs > 0
  ? Array.from({ length: runs }, (_, i) => ({ c: CASES[i % CASES.length], mode: MODES[i % MODES.length], seed: 1000 + i }))
  : [
      { c: CASES[0], mode: "random" as PoorMode, seed: 11 },
      { c: CASES[0], mode: "sloppy" as PoorMode, seed: 12 },
      { c: CASES[1], mode: "mixed" as PoorMode, seed: 13 },
      { c: CASES[2], mode: "mixed" as PoorMode, seed: 14 },
      { c: CASES[3], mode: "random" as PoorMode, seed: 15 },
    ];

const engines: Engine[] = [];
beforeAll(() => {
  requirePython();
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 300, seed: 5 });
  writeRegressionCsv(join(tmp.dir, "people.csv"), { rows: 300, seed: 6 });
  writeClusteringCsv(join(tmp.dir, "blobs.csv"), { rows: 300, seed: 7, clusters: 3 });
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

/** Answers questions (the user's own target for a target question, else the first choice) and approves the card. */
async function drive(e: Engine, thread: string, c: Case): Promise<Outcome> {
  let o = await e.advance(thread, { text: c.text, files: [join(tmp.dir, c.file)] }, { serve: false });
  for (let turn = 0; turn < 6 && o.kind === "interrupt"; turn++) {
    const p = o.payload;
    if (p.kind === "approval") o = await e.advance(thread, { kind: "approve", planId: "best" }, { serve: false });
    else {
      const q = p.question;
      const answer = q.slot === "target" && c.expect.target ? c.expect.target : (q.choices[0]?.value ?? "yes");
      o = await e.advance(thread, { kind: "answer", text: answer, files: [] }, { serve: false });
    }
  }
  return o;
}

const TECHNICAL = /\n\s+at \S|TypeError|ReferenceError|Cannot read propert|is not a function|"code":\s*"|too_small|invalid_type|invalid_union|ZodError/;

describe("a poor model", () => {
  const tally = { deployed: 0, failed: 0, messages: [] as string[], requests: [] as number[] };
  afterAll(() => {
    const most = Math.max(0, ...tally.requests);
    process.stderr.write(`poor model: ${tally.deployed} deployed, ${tally.failed} ended with a message, of ${plan.length}; requests per conversation at most ${most}\n`);
    for (const m of tally.messages) process.stderr.write(`  - ${m}\n`);
  });

  for (const { c, mode, seed } of plan) {
    it(`${c.task}, ${mode} answers, seed ${seed}: ends deployed as asked or with a clear message, within 30 requests`, async () => {
      const server = await startScriptedOpenAI(poorModel({ seed, mode, faultRate: 0.1 }));
      try {
        const config = loadConfig(
          {},
          {
            engine: "llm",
            dataDir: join(tmp.dir, `.threadml-${seed}`),
            search: { budgetS: 1, trialsPerFamily: 2, sampleRows: 300, cvFolds: 3 },
            llm: { baseUrl: server.baseUrl, model: "poor", maxRetries: 2, timeoutS: 5 },
          },
        );
        // ThreadML's own faults are logged at error level: none may happen, whatever the model says.
        const errors: string[] = [];
        const logger = pino({ level: "error" }, { write: (line: string) => void errors.push(line) });
        const e = await createEngine({ config, logger, cwd: tmp.dir });
        engines.push(e);
        const o = await drive(e, `poor-${seed}`, c);
        const where = `${c.task}/${mode}/${seed}`;
        expect(o.kind, `${where}: still waiting after 6 turns`).toBe("done");
        const state = (o as { state: State }).state;
        tally.requests.push(server.requests.length);
        expect(server.requests.length, where).toBeLessThanOrEqual(30);
        expect(state.llm.calls, where).toBe(server.requests.length);
        expect(["deployed", "failed", "rejected"], `${where}: ${state.status} ${state.error}`).toContain(state.status);
        if (state.status === "deployed") {
          tally.deployed++;
          const req = state.requirements!;
          if (c.expect.target) expect(req.target, where).toBe(c.expect.target);
          if (c.expect.metric) expect(req.metric.name, where).toBe(c.expect.metric);
          if (c.expect.n_clusters) expect(req.n_clusters, where).toBe(c.expect.n_clusters);
          if (c.expect.labels_column) expect(req.labels_column, where).toBe(c.expect.labels_column);
          expect(state.endpoint?.check.ok, where).toBe(true);
        } else {
          tally.failed++;
          const message = state.error ?? "";
          tally.messages.push(`${where}: ${state.status}: ${message}`);
          expect(message.length, `${where}: a failure says why`).toBeGreaterThan(10);
          expect(message, where).not.toMatch(TECHNICAL);
          // Only the model's own failures may end a conversation (an endpoint that stays down), not ThreadML's.
          expect(message, where).not.toMatch(/internal error/);
        }
        expect(errors, where).toEqual([]);
        for (const n of state.notices) expect(n, where).not.toMatch(TECHNICAL);
      } finally {
        await server.close();
      }
    });
  }
});
