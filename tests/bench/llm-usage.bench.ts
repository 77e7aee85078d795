// LLM calls, tokens, latency and outcome per conversation.
//
// Without --model, the model is the scripted competent one of the tests, served on 127.0.0.1, for a
// whole successful conversation at P = 3; prompt and completion tokens are counted with the o200k_base
// tokenizer (GPT-4o family) over exactly what ThreadML sent and received, so the numbers are ThreadML's
// own prompt sizes, whatever model later answers them.
//
// With --model provider:model (openai:…, anthropic:…, google-genai:…, ollama:…, or a bare name for the
// OpenAI-compatible endpoint) the same tasks run against that real model: keys and base URLs come from
// the usual environment (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY, OLLAMA_BASE_URL…), and
// --base-url overrides the chosen provider's base URL. Tokens are what the provider reported.
//
// `npm run bench:llm -- [--model provider:model] [--base-url URL] [--runs N]`. Markdown goes to stdout.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Tiktoken } from "js-tiktoken/lite";
import o200k from "js-tiktoken/ranks/o200k_base";
import pino from "pino";
import { loadConfig } from "../../src/config.js";
import { createEngine, type Engine, type Outcome } from "../../src/engine.js";
import { parseModelSpec } from "../../src/llm/providers.js";
import { writeClassificationCsv, writeClusteringCsv, writeRegressionCsv } from "../helpers/datasets.js";
import { startScriptedOpenAI, type ScriptReply } from "../helpers/openai-server.js";
import { competent } from "../helpers/scripted-model.js";
import { runsFromArgs } from "./common.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const MODEL = arg("--model");
const BASE_URL = arg("--base-url");
const RUNS = runsFromArgs();
const enc = new Tiktoken(o200k);
// Chat formatting adds a few tokens per message on OpenAI's models.
const PER_MESSAGE = 4;

interface Task {
  name: string;
  write(file: string, seed: number): { target: string | null };
  request(file: string): string;
}

const TASKS: Task[] = [
  { name: "classification", write: (f, seed) => writeClassificationCsv(f, { rows: 2000, seed }), request: (f) => `Build a model that predicts Quality in ${f}, accuracy at least 0.9` },
  { name: "regression", write: (f, seed) => writeRegressionCsv(f, { rows: 1500, seed }), request: (f) => `Predict Age from the other columns of ${f}; keep the RMSE as low as you can` },
  { name: "clustering", write: (f, seed) => writeClusteringCsv(f, { rows: 900, seed, clusters: 3 }), request: (f) => `Cluster the customers in ${f} into 3 groups` },
];

interface Result {
  task: string;
  outcome: string;
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** Sum of the LLM calls' wall times, from the client's debug log. */
  llmSeconds: number;
  seconds: number;
  fallbacks: number;
  perStep: Map<string, { calls: number; prompt: number; completion: number }>;
}

/** Drives a conversation to its end: the first choice for a question, the recommended plan for a card. */
async function drive(engine: Engine, thread: string, text: string, file: string): Promise<Outcome> {
  let o = await engine.advance(thread, { text, files: [file] }, { serve: false });
  for (let turn = 0; turn < 6 && o.kind === "interrupt"; turn++) {
    const p = o.payload;
    o =
      p.kind === "approval"
        ? await engine.advance(thread, { kind: "approve", planId: "best" }, { serve: false })
        : await engine.advance(thread, { kind: "answer", text: p.question.choices[0]?.value ?? "yes", files: [] }, { serve: false });
  }
  return o;
}

async function conversation(dir: string, task: Task, run: number): Promise<Result> {
  const perStep = new Map<string, { calls: number; prompt: number; completion: number }>();
  const count = (step: string, prompt: number, completion: number) => {
    const row = perStep.get(step) ?? { calls: 0, prompt: 0, completion: 0 };
    row.calls += 1;
    row.prompt += prompt;
    row.completion += completion;
    perStep.set(step, row);
  };
  const scripted = MODEL
    ? null
    : await startScriptedOpenAI((r) => {
        const reply = competent(r) as ScriptReply & { content?: string };
        // The schema a structured call carries is part of what the model reads.
        const schema = r.responseFormat ? enc.encode(JSON.stringify(r.responseFormat)).length : 0;
        const prompt = r.messages.reduce((n, m) => n + enc.encode(m.content).length + PER_MESSAGE, schema);
        const completion = reply.content ? enc.encode(reply.content).length : 0;
        count(r.step, prompt, completion);
        return reply.content ? { content: reply.content, usage: { prompt_tokens: prompt, completion_tokens: completion } } : reply;
      });
  const file = join(dir, `${task.name}-${run}.csv`);
  task.write(file, 40 + run);
  let llmMs = 0;
  const logger = pino({ level: "debug" }, {
    write(line: string) {
      const entry = JSON.parse(line) as { msg?: string; ms?: number; step?: string; prompt_tokens?: number; completion_tokens?: number };
      if (entry.msg !== "LLM call") return;
      llmMs += entry.ms ?? 0;
      if (MODEL) count(entry.step ?? "?", entry.prompt_tokens ?? 0, entry.completion_tokens ?? 0);
    },
  });
  const llm: Record<string, unknown> = scripted ? { baseUrl: scripted.baseUrl, model: "scripted" } : { ...loadConfig(process.env).llm, model: MODEL };
  if (MODEL && BASE_URL) {
    const { provider } = parseModelSpec(MODEL);
    if (provider === "openai") llm.baseUrl = BASE_URL;
    else llm.providers = { ...(llm.providers as object), [provider]: { ...((llm.providers as Record<string, object>)[provider] ?? {}), baseUrl: BASE_URL } };
  }
  const config = loadConfig({}, { engine: "llm", dataDir: join(dir, ".threadml"), llm });
  const engine = await createEngine({ config, logger, cwd: dir });
  const started = performance.now();
  try {
    const end = await drive(engine, `bench-${task.name}-${run}`, task.request(file), file);
    const seconds = (performance.now() - started) / 1000;
    const state = end.kind === "done" ? end.state : null;
    const outcome = !state ? `waiting for ${end.kind === "interrupt" ? end.payload.kind : "?"}` : state.status === "deployed" || state.report?.status === "deployed" ? "deployed" : `${state.status}: ${(state.error ?? "").split("\n")[0].slice(0, 120)}`;
    const usage = state?.llm ?? { calls: 0, prompt_tokens: 0, completion_tokens: 0 };
    const fallbacks = (state?.notices ?? []).filter((n) => /offline|fell back|template/i.test(n)).length;
    return { task: task.name, outcome, calls: usage.calls, promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, llmSeconds: llmMs / 1000, seconds, fallbacks, perStep };
  } finally {
    await engine.close();
    await scripted?.close();
  }
}

const dir = mkdtempSync(join(os.tmpdir(), "threadml-llm-bench-"));
try {
  // The scripted model knows the classification task only.
  const tasks = MODEL ? TASKS : TASKS.slice(0, 1);
  const results: Result[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const task of tasks) {
      process.stderr.write(`run ${i + 1}/${RUNS}: ${task.name}…\n`);
      results.push(await conversation(dir, task, i));
    }
  }
  const who = MODEL ? `${MODEL}${BASE_URL ? ` at ${BASE_URL}` : ""}, tokens as the provider reported them` : "the scripted competent model, o200k_base token counts";
  const lines = [
    `LLM usage per conversation, ${new Date().toISOString().slice(0, 10)}, P = 3, ${RUNS} run(s) per task, ${who}`,
    "",
    "| task | run | outcome | calls | prompt tokens | completion tokens | LLM s | conversation s | offline fallbacks |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  results.forEach((r, i) => {
    lines.push(`| ${r.task} | ${Math.floor(i / tasks.length) + 1} | ${r.outcome} | ${r.calls} | ${r.promptTokens} | ${r.completionTokens} | ${r.llmSeconds.toFixed(1)} | ${r.seconds.toFixed(1)} | ${r.fallbacks} |`);
  });
  lines.push("", "Per step (first run of the first task):", "", "| step | calls | prompt tokens | completion tokens |", "|---|---|---|---|");
  for (const [step, row] of results[0].perStep) lines.push(`| ${step} | ${row.calls} | ${row.prompt} | ${row.completion} |`);
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
