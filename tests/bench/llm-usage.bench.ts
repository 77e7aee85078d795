// LLM usage per conversation: how many calls the LLM engine makes and how many tokens its prompts carry,
// for a whole successful conversation at P = 3 (request → plans → approval → training → deployed).
// The model is the scripted competent one of the tests, served on 127.0.0.1; prompt and completion
// tokens are counted with the o200k_base tokenizer (GPT-4o family) over exactly what ThreadML sent and
// received, so the numbers are ThreadML's own prompt sizes, whatever model later answers them.
// Run with `npm run bench:llm` (`--runs N`, default 3). Markdown goes to stdout.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Tiktoken } from "js-tiktoken/lite";
import o200k from "js-tiktoken/ranks/o200k_base";
import { loadConfig } from "../../src/config.js";
import { createEngine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { startScriptedOpenAI, type ScriptReply } from "../helpers/openai-server.js";
import { competent } from "../helpers/scripted-model.js";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const enc = new Tiktoken(o200k);
// Chat formatting adds a few tokens per message on OpenAI's models.
const PER_MESSAGE = 4;

interface Row {
  step: string;
  calls: number;
  prompt: number;
  completion: number;
}

async function conversation(dir: string, run: number): Promise<{ rows: Row[]; status: string; reported: { calls: number; prompt_tokens: number; completion_tokens: number; cost_usd?: number } }> {
  const perStep = new Map<string, Row>();
  const server = await startScriptedOpenAI((r) => {
    const reply = competent(r) as ScriptReply & { content?: string };
    const prompt = r.messages.reduce((n, m) => n + enc.encode(m.content).length + PER_MESSAGE, 0);
    const completion = reply.content ? enc.encode(reply.content).length : 0;
    const row = perStep.get(r.step) ?? { step: r.step, calls: 0, prompt: 0, completion: 0 };
    row.calls += 1;
    row.prompt += prompt;
    row.completion += completion;
    perStep.set(r.step, row);
    return reply.content ? { content: reply.content, usage: { prompt_tokens: prompt, completion_tokens: completion } } : reply;
  });
  const data = join(dir, `bananas-${run}.csv`);
  writeClassificationCsv(data, { rows: 2000, seed: 40 + run });
  const config = loadConfig({}, { engine: "llm", dataDir: join(dir, ".threadml"), llm: { baseUrl: server.baseUrl, model: "scripted" } });
  const engine = await createEngine({ config, logger: createLogger("silent"), cwd: dir });
  try {
    const thread = `bench-${run}`;
    const first = await engine.advance(thread, { text: `Build a model that predicts Quality in ${data}, accuracy at least 0.9`, files: [data] }, { serve: false });
    if (first.kind !== "interrupt" || first.payload.kind !== "approval") throw new Error(`expected plans, got ${first.kind}`);
    const end = await engine.advance(thread, { kind: "approve", planId: "best" }, { serve: false });
    if (end.kind !== "done") throw new Error("the conversation did not finish");
    return { rows: [...perStep.values()], status: end.state.report?.status ?? end.state.status, reported: end.state.report?.llm ?? { ...end.state.llm, cost_usd: 0 } };
  } finally {
    await engine.close();
    await server.close();
  }
}

const dir = mkdtempSync(join(os.tmpdir(), "threadml-llm-bench-"));
try {
  const results = [];
  for (let i = 0; i < RUNS; i++) {
    process.stderr.write(`run ${i + 1}/${RUNS}…\n`);
    results.push(await conversation(dir, i));
  }
  const lines = [
    `LLM usage per conversation, ${new Date().toISOString().slice(0, 10)}, P = 3, ${RUNS} runs (banana quality, 2,000 rows, accuracy ≥ 0.9), o200k_base token counts`,
    "",
    "| run | status | calls | prompt tokens | completion tokens | reported by ThreadML (calls / prompt / completion / est. cost) |",
    "|---|---|---|---|---|---|",
  ];
  results.forEach((r, i) => {
    const calls = r.rows.reduce((n, x) => n + x.calls, 0);
    const prompt = r.rows.reduce((n, x) => n + x.prompt, 0);
    const completion = r.rows.reduce((n, x) => n + x.completion, 0);
    const rep = r.reported;
    lines.push(`| ${i + 1} | ${r.status} | ${calls} | ${prompt} | ${completion} | ${rep.calls} / ${rep.prompt_tokens} / ${rep.completion_tokens} / $${(rep.cost_usd ?? 0).toFixed(4)} |`);
  });
  lines.push("", "Per step (run 1):", "", "| step | calls | prompt tokens | completion tokens |", "|---|---|---|---|");
  for (const row of results[0].rows) lines.push(`| ${row.step} | ${row.calls} | ${row.prompt} | ${row.completion} |`);
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
