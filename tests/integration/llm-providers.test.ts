import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startScriptedAnthropic } from "../helpers/anthropic-server.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { startScriptedGemini } from "../helpers/gemini-server.js";
import { startScriptedOllama } from "../helpers/ollama-server.js";
import type { ScriptedRequest, ScriptedServer } from "../helpers/openai-server.js";
import { competent } from "../helpers/scripted-model.js";
import type { ScriptHandler } from "../helpers/scripted-http.js";
import { tempDir } from "../helpers/tmp.js";

// One setting switches the provider: the same conversation, through the CLI, against a local stand-in
// for each provider's own API, with the real LangChain provider package on the client side. Each JSON
// step must carry its answer's schema in that provider's native structured mode. (The OpenAI-compatible
// case is llm-engine.test.ts's first conversation.)

const tmp = tempDir("threadml-providers-");
const servers: ScriptedServer[] = [];
beforeAll(() => {
  requirePython();
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 400, seed: 43 });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const JSON_STEPS = ["verify-request", "parse", "knowledge", "plan", "data-decompose", "model-decompose", "verify-execution", "select"];

interface Case {
  name: string;
  start(handler: ScriptHandler): Promise<ScriptedServer>;
  env(server: ScriptedServer): Record<string, string>;
  /** The schema the request carried for a JSON step, in the provider's own place. */
  schemaOf(r: ScriptedRequest): unknown;
}

const CASES: Case[] = [
  {
    name: "anthropic",
    start: startScriptedAnthropic,
    env: (s) => ({ THREADML_LLM_MODEL: "anthropic:claude-test", ANTHROPIC_API_KEY: "test-key", ANTHROPIC_BASE_URL: s.baseUrl }),
    // A forced tool whose input schema is the answer's.
    schemaOf: (r) => {
      const tools = r.body.tools as Array<{ name: string; input_schema: unknown }> | undefined;
      const choice = r.body.tool_choice as { type: string; name: string } | undefined;
      return choice?.type === "tool" && tools?.find((t) => t.name === choice.name)?.input_schema;
    },
  },
  {
    name: "ollama",
    start: startScriptedOllama,
    env: (s) => ({ THREADML_LLM_MODEL: "ollama:qwen-test:7b", OLLAMA_BASE_URL: s.baseUrl }),
    schemaOf: (r) => (typeof r.body.format === "object" ? r.body.format : undefined),
  },
  {
    name: "google-genai",
    start: startScriptedGemini,
    env: (s) => ({ THREADML_LLM_MODEL: "google-genai:gemini-test", GOOGLE_API_KEY: "test-key", GOOGLE_GENAI_BASE_URL: s.baseUrl }),
    schemaOf: (r) => (r.body.generationConfig as { responseSchema?: unknown } | undefined)?.responseSchema,
  },
];

describe("one setting switches the LLM provider", () => {
  for (const c of CASES) {
    it(`${c.name}: a whole conversation to a deployed model, every JSON step carrying its schema`, async () => {
      const server = await c.start(competent);
      servers.push(server);
      const { result } = await runCli(["--engine", "llm", "--yes", "Build a model that predicts Quality in bananas.csv"], {
        cwd: tmp.dir,
        // No OpenAI endpoint at all: the provider's own settings are enough.
        env: { ...c.env(server), OPENAI_BASE_URL: "", OPENAI_API_KEY: "", THREADML_DATA_DIR: join(tmp.dir, `.threadml-${c.name}`), THREADML_SEARCH_BUDGET_S: "1" },
      });
      expect(result.status, result.error).toBe("deployed");
      expect(result.endpoint?.check.ok).toBe(true);
      const steps = server.requests.map((r) => r.step);
      for (const step of [...JSON_STEPS, "implement"]) expect(steps).toContain(step);
      for (const r of server.requests) {
        const schema = c.schemaOf(r) as { type?: string; properties?: object } | undefined;
        if (JSON_STEPS.includes(r.step)) expect(schema?.type, `${r.step} carries its schema`).toBe("object");
        else expect(schema, `${r.step} is free text`).toBeFalsy();
      }
      // Every request is counted, and the provider's token counts reach the report.
      expect(result.llm.calls).toBe(server.requests.length);
      expect(result.llm.prompt_tokens).toBeGreaterThan(0);
      expect(result.llm.completion_tokens).toBeGreaterThan(0);
    });
  }
});
