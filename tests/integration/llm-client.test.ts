import { createServer } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { LlmConfig } from "../../config/schema.js";
import { LlmClient, type LlmClientOptions } from "../../src/llm/client.js";
import { LlmBudgetError, LlmOutputError, LlmUnavailableError } from "../../src/llm/errors.js";
import { extractCode, extractJson } from "../../src/llm/json.js";
import { withUsage } from "../../src/llm/usage.js";
import { startScriptedAnthropic } from "../helpers/anthropic-server.js";
import { startScriptedGemini } from "../helpers/gemini-server.js";
import { startScriptedOllama } from "../helpers/ollama-server.js";
import { startScriptedOpenAI, type ScriptReply, type ScriptedRequest, type ScriptedServer } from "../helpers/openai-server.js";

// The real ChatOpenAI client against a scripted OpenAI-compatible server on 127.0.0.1.

const API_KEY = "sk-test-do-not-log-0123456789";
const FAST: LlmClientOptions = { baseDelayMs: 20 };

let servers: ScriptedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(handler: (req: ScriptedRequest, index: number) => ScriptReply | Promise<ScriptReply>) {
  const server = await startScriptedOpenAI(handler);
  servers.push(server);
  return server;
}

function client(baseUrl: string | undefined, llm: Partial<LlmConfig> = {}, options: LlmClientOptions = FAST) {
  const lines: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  const config = LlmConfig.parse({ baseUrl, apiKey: API_KEY, model: "main-model", maxRetries: 2, timeoutS: 5, ...llm });
  return { llm: new LlmClient(config, logger, options), lines };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the call to fail");
}

/** A local port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const req = { role: "manager" as const, step: "planning", system: "You plan ML work.", user: "Plan a churn model." };
const PlanSchema = z.object({ plans: z.array(z.object({ name: z.string(), score: z.number() })).min(1) });

describe("LlmClient: answers", () => {
  it("round-trips a text completion with the step line first in the system message", async () => {
    const server = await serve(() => ({ content: "Use gradient boosting." }));
    const { llm } = client(server.baseUrl);
    expect(await llm.text(req)).toBe("Use gradient boosting.");

    expect(server.requests).toHaveLength(1);
    const [r] = server.requests;
    expect(r.step).toBe("planning");
    expect(r.model).toBe("main-model");
    expect(r.stream).toBe(false);
    expect(r.messages).toEqual([
      { role: "system", content: "ThreadML step: planning\n\nYou plan ML work." },
      { role: "user", content: "Plan a churn model." },
    ]);
    expect(r.body.temperature).toBe(0.2);
    expect(r.responseFormat).toBeUndefined();
  });

  it("uses the role's model and falls back to the default one", async () => {
    const server = await serve(() => ({ content: "ok" }));
    const { llm } = client(server.baseUrl, { models: { prompt: "small-model", verifier: "checker" } });
    expect(llm.modelFor("prompt")).toBe("small-model");
    expect(llm.modelFor("data")).toBe("main-model");

    await llm.text({ ...req, role: "prompt", step: "parse" });
    await llm.text({ ...req, role: "verifier", step: "verify" });
    await llm.text({ ...req, role: "data", step: "profile" });
    expect(server.requests.map((r) => [r.step, r.model])).toEqual([
      ["parse", "small-model"],
      ["verify", "checker"],
      ["profile", "main-model"],
    ]);
  });

  it("passes maxTokens through", async () => {
    const server = await serve(() => ({ content: "short" }));
    const { llm } = client(server.baseUrl);
    await llm.text({ ...req, maxTokens: 64 });
    await llm.text(req);
    expect(server.requests[0].body.max_tokens).toBe(64);
    expect(server.requests[1].body.max_tokens).toBeUndefined();
  });

  it("streams tokens in order, returns the full text and records the streamed usage", async () => {
    const content = "First, profile the data. Then train a baseline and tune it.";
    const server = await serve(() => ({ content, usage: { prompt_tokens: 31, completion_tokens: 12 } }));
    const { llm } = client(server.baseUrl);
    const tokens: string[] = [];
    const { result, usage } = await withUsage(() => llm.stream(req, (t) => tokens.push(t)));

    expect(result).toBe(content);
    expect(tokens.length).toBeGreaterThan(5);
    expect(tokens.join("")).toBe(content);
    expect(tokens[0]).toBe("First, ");
    expect(usage).toEqual({ calls: 1, prompt_tokens: 31, completion_tokens: 12 });

    const [r] = server.requests;
    expect(r.stream).toBe(true);
    expect(r.body.stream_options).toEqual({ include_usage: true });
    expect(r.step).toBe("planning");
  });

  it("retries a stream that fails before its first token, without repeating tokens", async () => {
    const server = await serve((_r, i) => (i === 0 ? { status: 503 } : { content: "alpha beta" }));
    const { llm } = client(server.baseUrl);
    const tokens: string[] = [];
    expect(await llm.stream(req, (t) => tokens.push(t))).toBe("alpha beta");
    expect(tokens).toEqual(["alpha ", "beta"]);
    expect(server.requests).toHaveLength(2);
  });

  it("passes an error thrown by onToken on untouched, without retrying", async () => {
    const server = await serve(() => ({ content: "one two three" }));
    const { llm } = client(server.baseUrl);
    const boom = new Error("consumer broke");
    const err = await failure(
      llm.stream(req, () => {
        throw boom;
      }),
    );
    expect(err).toBe(boom);
    expect(server.requests).toHaveLength(1);
  });
});

describe("LlmClient: JSON", () => {
  const plan = { plans: [{ name: "lightgbm", score: 0.91 }] };

  it("sends the answer's JSON Schema, strict where the schema allows it, and returns the validated value", async () => {
    const server = await serve(() => ({ content: JSON.stringify(plan) }));
    const { llm } = client(server.baseUrl);
    const out = await llm.json({ ...req, user: "Reply in JSON.", schema: PlanSchema });
    expect(out).toEqual(plan);
    const format = server.requests[0].responseFormat as { type: string; json_schema: { name: string; strict: boolean; schema: Record<string, unknown> } };
    expect(format.type).toBe("json_schema");
    expect(format.json_schema.name).toBe("planning");
    expect(format.json_schema.strict).toBe(true);
    expect(format.json_schema.schema).toMatchObject({ type: "object", required: ["plans"], additionalProperties: false });
    expect(JSON.stringify(format.json_schema.schema)).toContain('"score":{"type":"number"}');
    // The schema travels in the request, so the system message is left as written.
    expect(server.requests[0].messages[0].content).toBe("ThreadML step: planning\n\nYou plan ML work.");
  });

  it("repairs an answer stopped at the token limit or by a content filter, instead of failing the step", async () => {
    const replies: ScriptReply[] = [
      { content: '{"plans": [{"name": "lightgbm", "sc', finish: "length" },
      { content: JSON.stringify(plan) },
      { content: "", finish: "content_filter" },
      { content: JSON.stringify(plan) },
    ];
    const server = await serve((_r, i) => replies[i]);
    const { llm } = client(server.baseUrl);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(server.requests[1].messages[1].content).toMatch(/cut off at the token limit/);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(server.requests[3].messages[1].content).toMatch(/content filter stopped the answer/);
    expect(server.requests).toHaveLength(4);
  });

  it("sends an open schema without strict (a record cannot be strict)", async () => {
    const server = await serve(() => ({ content: JSON.stringify({ ranges: { depth: [1, 2] } }) }));
    const { llm } = client(server.baseUrl);
    await llm.json({ ...req, schema: z.object({ ranges: z.record(z.string(), z.unknown()) }) });
    const format = server.requests[0].responseFormat as { json_schema: { strict: boolean } };
    expect(format.json_schema.strict).toBe(false);
  });

  it("falls back to JSON mode with the schema in the prompt when the server refuses json_schema, and remembers", async () => {
    const server = await serve((r) =>
      (r.responseFormat as { type?: string })?.type === "json_schema"
        ? { status: 400, body: { error: { message: "response_format json_schema is not supported by this server", type: "invalid_request_error" } } }
        : { content: JSON.stringify(plan) },
    );
    const { llm } = client(server.baseUrl);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(server.requests.map((r) => (r.responseFormat as { type: string }).type)).toEqual(["json_schema", "json_object", "json_object"]);
    const system = server.requests[1].messages[0].content;
    expect(system.startsWith("ThreadML step: planning\n\nYou plan ML work.")).toBe(true);
    expect(system).toMatch(/JSON Schema:\n\{"type":"object"/);
  });

  it("asks for plain JSON throughout with structuredOutput: json", async () => {
    const server = await serve(() => ({ content: JSON.stringify(plan) }));
    const { llm } = client(server.baseUrl, { structuredOutput: "json" });
    await llm.json({ ...req, schema: PlanSchema });
    expect(server.requests[0].responseFormat).toEqual({ type: "json_object" });
    expect(server.requests[0].messages[0].content).toMatch(/json/i);
  });

  it("reads JSON inside a fence and inside prose", async () => {
    const answers = [
      "Here is the plan:\n```json\n" + JSON.stringify(plan, null, 2) + "\n```\nGood luck!",
      `Sure. ${JSON.stringify(plan)} That should do.`,
    ];
    const server = await serve((_r, i) => ({ content: answers[i] }));
    const { llm } = client(server.baseUrl);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(server.requests).toHaveLength(2);
  });

  it("repairs invalid output with one call that shows the output and the validation error", async () => {
    const bad = JSON.stringify({ plans: [{ name: "lightgbm", score: "high" }] });
    const server = await serve((_r, i) => ({ content: i === 0 ? bad : JSON.stringify(plan) }));
    const { llm } = client(server.baseUrl);
    const { result, usage } = await withUsage(() => llm.json({ ...req, schema: PlanSchema }));
    expect(result).toEqual(plan);
    expect(usage.calls).toBe(2);

    expect(server.requests).toHaveLength(2);
    const [first, repair] = server.requests;
    expect(repair.step).toBe("planning");
    expect(repair.messages[0]).toEqual(first.messages[0]);
    expect(repair.responseFormat).toEqual(first.responseFormat);
    const user = repair.messages[1].content;
    expect(user.startsWith("Plan a churn model.")).toBe(true);
    expect(user).toContain(bad);
    expect(user).toMatch(/plans\.0\.score: .*number/i);
    expect(user).toMatch(/corrected JSON only/);
  });

  it("repairs text that holds no JSON at all", async () => {
    const server = await serve((_r, i) => ({ content: i === 0 ? "I think LightGBM is best." : JSON.stringify(plan) }));
    const { llm } = client(server.baseUrl);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(server.requests[1].messages[1].content).toMatch(/no JSON object/);
  });

  it("truncates a huge invalid output in the repair message", async () => {
    const huge = "x".repeat(20_000);
    const server = await serve((_r, i) => ({ content: i === 0 ? huge : JSON.stringify(plan) }));
    const { llm } = client(server.baseUrl);
    await llm.json({ ...req, schema: PlanSchema });
    const user = server.requests[1].messages[1].content;
    expect(user.length).toBeLessThan(5000);
    expect(user).toContain("truncated");
  });

  it("throws LlmOutputError when the repaired output is still invalid (2 calls)", async () => {
    const server = await serve(() => ({ content: '{"plans": []}' }));
    const { llm } = client(server.baseUrl);
    const err = await failure(llm.json({ ...req, schema: PlanSchema }));
    expect(err).toBeInstanceOf(LlmOutputError);
    const out = err as LlmOutputError;
    expect(out.step).toBe("planning");
    expect(out.validation).toMatch(/^plans: /);
    expect(out.message).toContain("planning step");
    expect(out.message).toContain(out.validation);
    expect(server.requests).toHaveLength(2);
  });
});

describe("LlmClient: retries", () => {
  it("retries an answer cut off mid-body (undici: terminated), for text and for JSON", async () => {
    const plan = { plans: [{ name: "lightgbm", score: 0.91 }] };
    const server = await serve((r, i) => {
      const content = r.responseFormat ? JSON.stringify(plan) : "done";
      return i % 2 === 0 ? { cut: true, content } : { content };
    });
    const { llm, lines } = client(server.baseUrl);
    expect(await llm.text(req)).toBe("done");
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(server.requests).toHaveLength(4);
    expect(lines.join("\n")).toMatch(/broke off|terminated/);
  });

  it("retries a 429 without Retry-After and succeeds", async () => {
    const server = await serve((_r, i) =>
      i === 0 ? { status: 429, body: { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } } } : { content: "done" },
    );
    const { llm } = client(server.baseUrl);
    expect(await llm.text(req)).toBe("done");
    expect(server.requests).toHaveLength(2);
  });

  it("honours a short Retry-After", async () => {
    const times: number[] = [];
    const server = await serve((_r, i) => {
      times.push(Date.now());
      return i === 0 ? { status: 429, headers: { "retry-after-ms": "400" } } : { content: "done" };
    });
    const { llm } = client(server.baseUrl);
    expect(await llm.text(req)).toBe("done");
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(390);
  });

  it("gives up at once on a long Retry-After or an exhausted quota", async () => {
    const server = await serve((_r, i) =>
      i === 0
        ? { status: 429, headers: { "retry-after": "120" } }
        : { status: 429, body: { error: { message: "You exceeded your current quota", type: "insufficient_quota", code: "insufficient_quota" } } },
    );
    const { llm } = client(server.baseUrl);
    const long = (await failure(llm.text(req))) as LlmUnavailableError;
    expect(long).toBeInstanceOf(LlmUnavailableError);
    expect(long.retryable).toBe(false);
    expect(long.message).toContain("asked to wait 120 s");
    const quota = (await failure(llm.text(req))) as LlmUnavailableError;
    expect(quota.retryable).toBe(false);
    expect(quota.message).toContain("quota");
    expect(server.requests).toHaveLength(2);
  });

  it("makes exactly 1 + maxRetries attempts on 500s, backing off exponentially", async () => {
    const times: number[] = [];
    const server = await serve(() => {
      times.push(performance.now());
      return { status: 500 };
    });
    const { llm } = client(server.baseUrl, { maxRetries: 3 }, { baseDelayMs: 40 });
    const err = await failure(llm.text(req));
    expect(err).toBeInstanceOf(LlmUnavailableError);
    expect(err.message).toBe(`The LLM at ${server.baseUrl} did not answer the planning step: HTTP 500 after 4 attempts.`);
    expect((err as LlmUnavailableError).status).toBe(500);
    expect((err as LlmUnavailableError).attempts).toBe(4);
    expect(server.requests).toHaveLength(4);

    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // Nominal delays 40, 80, 160 ms (+ up to 25% jitter and request overhead).
    expect(gaps[0]).toBeGreaterThanOrEqual(38);
    expect(gaps[1]).toBeGreaterThanOrEqual(78);
    expect(gaps[2]).toBeGreaterThanOrEqual(158);
    expect(gaps[2]).toBeGreaterThan(gaps[0] * 2);
  });

  it("does not retry when maxRetries is 0", async () => {
    const server = await serve(() => ({ status: 502 }));
    const { llm } = client(server.baseUrl, { maxRetries: 0 });
    const err = await failure(llm.text(req));
    expect(err.message).toContain("HTTP 502 after 1 attempt.");
    expect(server.requests).toHaveLength(1);
  });

  it("times out a hanging server, retries, then reports it", async () => {
    const server = await serve(() => ({ hang: true }));
    const { llm } = client(server.baseUrl, { timeoutS: 0.5, maxRetries: 1 });
    const started = Date.now();
    const err = await failure(llm.text(req));
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(LlmUnavailableError);
    expect(err.message).toBe(`The LLM at ${server.baseUrl} did not answer the planning step: timed out after 0.5 s after 2 attempts.`);
    expect(server.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(4000);
  });

  it("times out a stream that stalls before answering", async () => {
    const server = await serve(() => ({ hang: true }));
    const { llm } = client(server.baseUrl, { timeoutS: 0.5, maxRetries: 0 });
    const err = await failure(llm.stream(req, () => {}));
    expect(err).toBeInstanceOf(LlmUnavailableError);
    expect(err.message).toContain("timed out after 0.5 s after 1 attempt.");
  });

  it("reports a refused connection after retrying", async () => {
    const baseUrl = `http://127.0.0.1:${await closedPort()}/v1`;
    const { llm } = client(baseUrl, { maxRetries: 2 });
    const err = await failure(llm.text(req));
    expect(err).toBeInstanceOf(LlmUnavailableError);
    expect(err.message).toBe(`The LLM at ${baseUrl} did not answer the planning step: connection refused (ECONNREFUSED) after 3 attempts.`);
  });

  it.each([400, 401, 404])("does not retry HTTP %i", async (status) => {
    const server = await serve(() => ({
      status,
      body: { error: { message: `scripted failure ${status} for key ${API_KEY}`, type: "invalid_request_error", code: null } },
    }));
    const { llm } = client(server.baseUrl);
    const err = (await failure(llm.text(req))) as LlmUnavailableError;
    expect(err).toBeInstanceOf(LlmUnavailableError);
    expect(err.retryable).toBe(false);
    expect(err.status).toBe(status);
    expect(err.attempts).toBe(1);
    expect(err.message).toContain(`refused the planning step: HTTP ${status}: scripted failure ${status}`);
    expect(err.message).not.toContain(API_KEY);
    expect(server.requests).toHaveLength(1);
  });
});

describe("LlmClient: other providers", () => {
  const models = {
    ollama: { start: startScriptedOllama, llm: (url: string) => ({ model: "ollama:qwen-test", providers: { ollama: { baseUrl: url } } }) },
    "google-genai": { start: startScriptedGemini, llm: (url: string) => ({ model: "google-genai:gemini-test", providers: { "google-genai": { apiKey: "k", baseUrl: url } } }) },
    anthropic: { start: startScriptedAnthropic, llm: (url: string) => ({ model: "anthropic:claude-test", providers: { anthropic: { apiKey: "k", baseUrl: url } } }) },
  };

  for (const [name, m] of Object.entries(models)) {
    it(`${name}: gives up a hung request at timeoutS, though the provider ignores the abort signal`, async () => {
      const server = await m.start(() => ({ hang: true }));
      servers.push(server);
      const { llm } = client(undefined, { ...m.llm(server.baseUrl), timeoutS: 1, maxRetries: 1 });
      const err = await failure(llm.json({ ...req, schema: PlanSchema }));
      expect(err).toBeInstanceOf(LlmUnavailableError);
      expect(err.message).toMatch(/timed out after 1 s after 2 attempts/);
    });
  }

  it("anthropic: reads a forced tool call as the JSON answer, and text when the model ignored the tool", async () => {
    const plan = { plans: [{ name: "lightgbm", score: 0.91 }] };
    const answers = [JSON.stringify(plan), `Here you go: ${JSON.stringify(plan)}`];
    const server = await startScriptedAnthropic((_r, i) => ({ content: answers[i] }));
    servers.push(server);
    const { llm } = client(undefined, models.anthropic.llm(server.baseUrl));
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect(await llm.json({ ...req, schema: PlanSchema })).toEqual(plan);
    expect((server.requests[0].body.tool_choice as { name: string }).name).toBe("planning");
  });

  it("google-genai: a streamed call arrives whole (its SDK cannot survive a stream that breaks off)", async () => {
    const server = await startScriptedGemini(() => ({ content: "one two three" }));
    servers.push(server);
    const { llm } = client(undefined, models["google-genai"].llm(server.baseUrl));
    const pieces: string[] = [];
    expect(await llm.stream(req, (t) => pieces.push(t))).toBe("one two three");
    expect(pieces).toEqual(["one two three"]);
  });
});

describe("LlmClient: usage, logs, configuration", () => {
  it("adds calls and tokens up inside withUsage, the repair call included", async () => {
    const plan = { plans: [{ name: "rf", score: 0.8 }] };
    const replies: ScriptReply[] = [
      { content: "hello", usage: { prompt_tokens: 100, completion_tokens: 10 } },
      { content: "not json", usage: { prompt_tokens: 200, completion_tokens: 20 } },
      { content: JSON.stringify(plan), usage: { prompt_tokens: 300, completion_tokens: 30 } },
      { content: "streamed text", usage: { prompt_tokens: 400, completion_tokens: 40 } },
    ];
    const server = await serve((_r, i) => replies[i]);
    const { llm } = client(server.baseUrl);
    const { usage } = await withUsage(async () => {
      await llm.text(req);
      await llm.json({ ...req, schema: PlanSchema });
      await llm.stream(req, () => {});
    });
    expect(usage).toEqual({ calls: 4, prompt_tokens: 1000, completion_tokens: 100 });
  });

  it("counts a failed request as a call without tokens", async () => {
    const server = await serve(() => ({ status: 400 }));
    const { llm } = client(server.baseUrl);
    const { usage } = await withUsage(() => failure(llm.text(req)));
    expect(usage).toEqual({ calls: 1, prompt_tokens: 0, completion_tokens: 0 });
  });

  it("stops at the conversation's request budget, retries included, with an output error the agents fall back on", async () => {
    const server = await serve((_r, i) => (i === 0 ? { status: 500 } : { content: "ok" }));
    const { llm } = client(server.baseUrl, { maxCalls: 3 });
    const { result, usage } = await withUsage(
      async () => {
        const answers = [await llm.text(req)];
        const err = await failure(llm.text(req));
        return { answers, err };
      },
      undefined,
      { before: 1, max: 3 },
    );
    // One request before this scope, a 500 and its retry: the budget of 3 is spent.
    expect(result.answers).toEqual(["ok"]);
    expect(result.err).toBeInstanceOf(LlmBudgetError);
    expect(result.err).toBeInstanceOf(LlmOutputError);
    expect(result.err.message).toMatch(/used all 3 LLM requests/);
    expect(server.requests).toHaveLength(2);
    expect(usage.calls).toBe(2);
  });

  it("uses default usage from the scripted server when none is scripted", async () => {
    const server = await serve(() => ({ content: "abcdefgh" }));
    const { llm } = client(server.baseUrl);
    const { usage } = await withUsage(() => llm.text(req));
    const chars = server.requests[0].messages.reduce((n, m) => n + m.content.length, 0);
    expect(usage).toEqual({ calls: 1, prompt_tokens: Math.round(chars / 4), completion_tokens: 2 });
  });

  it("logs each call at debug with step, role, model, time and tokens, never the API key", async () => {
    const server = await serve((_r, i) => (i === 0 ? { status: 500 } : { content: "ok", usage: { prompt_tokens: 7, completion_tokens: 3 } }));
    const { llm, lines } = client(server.baseUrl);
    await llm.text({ ...req, role: "data" });
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const call = entries.find((e) => e.msg === "LLM call");
    expect(call).toMatchObject({ level: 20, step: "planning", role: "data", model: "main-model", prompt_tokens: 7, completion_tokens: 3, attempts: 2 });
    expect(typeof call?.ms).toBe("number");
    expect(entries.some((e) => e.msg === "LLM call failed; retrying")).toBe(true);
    expect(lines.join("\n")).not.toContain(API_KEY);
  });

  it("refuses to start without a base URL or an API key", () => {
    const config = LlmConfig.parse({});
    expect(() => new LlmClient(config, pino({ level: "silent" }))).toThrow(/set OPENAI_BASE_URL or OPENAI_API_KEY/);
  });

  it("works with a local server that needs no key", async () => {
    const server = await serve(() => ({ content: "local" }));
    const config = LlmConfig.parse({ baseUrl: server.baseUrl });
    const llm = new LlmClient(config, pino({ level: "silent" }), FAST);
    expect(await llm.text(req)).toBe("local");
  });
});

describe("scripted server", () => {
  it("lists models, answers unknown routes with a 404 JSON error and routes on the step line", async () => {
    const server = await serve(() => ({ content: "x" }));
    const models = await fetch(`${server.baseUrl}/models`);
    expect(models.status).toBe(200);
    expect(((await models.json()) as { data: unknown[] }).data.length).toBeGreaterThan(0);

    const missing = await fetch(`${server.baseUrl}/embeddings`, { method: "POST", body: "{}" });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain("/v1/embeddings");

    const raw = await fetch(`${server.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    const body = (await raw.json()) as { object: string; choices: Array<{ message: { content: string }; finish_reason: string }> };
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0]).toMatchObject({ message: { content: "x" }, finish_reason: "stop" });
    expect(server.requests[0].step).toBe("");
  });

  it("closes hanging connections", async () => {
    const server = await startScriptedOpenAI(() => ({ hang: true }));
    const pending = fetch(`${server.baseUrl}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [] }) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.close();
    await expect(pending).rejects.toThrow();
  });
});

describe("extractJson / extractCode", () => {
  it("reads plain JSON, fenced JSON and the first balanced value in prose", () => {
    expect(extractJson('{"a": 1}')).toEqual({ a: 1 });
    expect(extractJson("```json\n[1, 2]\n```")).toEqual([1, 2]);
    expect(extractJson("Result:\n```\n{\"a\": {\"b\": \"}\"}}\n```")).toEqual({ a: { b: "}" } });
    expect(extractJson('The answer is {"a": [1, {"b": 2}]} as asked. {"c": 3}')).toEqual({ a: [1, { b: 2 }] });
    expect(extractJson('Note {not json} but then {"ok": true}')).toEqual({ ok: true });
    expect(extractJson('<think>maybe {"draft": 1}</think>\n{"final": 2}')).toEqual({ final: 2 });
  });

  it("throws a clear error when there is no JSON", () => {
    expect(() => extractJson("no structure here")).toThrow(/no JSON object/);
    expect(() => extractJson('{"a": 1')).toThrow(/no valid JSON/);
    expect(() => extractJson("   ")).toThrow(/empty/);
  });

  it("extracts code from the fence of the asked language, any fence, or the whole text", () => {
    const text = "Setup:\n```bash\npip install x\n```\nCode:\n```python\nimport os\n\nprint(os.getcwd())\n```\n";
    expect(extractCode(text)).toBe("import os\n\nprint(os.getcwd())");
    expect(extractCode(text, "bash")).toBe("pip install x");
    expect(extractCode("```py\nx = 1\n```")).toBe("x = 1");
    expect(extractCode("```\n  indented = True\n```")).toBe("  indented = True");
    expect(extractCode("x = 1\ny = 2\n")).toBe("x = 1\ny = 2");
    expect(extractCode("```python\nunterminated = 1\n")).toBe("unterminated = 1");
  });
});
