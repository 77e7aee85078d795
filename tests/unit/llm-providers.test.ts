import { describe, expect, it } from "vitest";
import { z } from "zod";
import { LlmConfig } from "../../config/schema.js";
import { loadConfig } from "../../src/config.js";
import { classify, refusedStructuredMode } from "../../src/llm/classify.js";
import { geminiSchema, looseList, strictSchema, wireSchema } from "../../src/llm/json-schema.js";
import { endpointOf, missingSetting, parseModelSpec, structuredOptions } from "../../src/llm/providers.js";

describe("provider:model settings", () => {
  it("splits a known provider off and leaves other colons to the model name", () => {
    expect(parseModelSpec("anthropic:claude-sonnet-4-5")).toEqual({ provider: "anthropic", model: "claude-sonnet-4-5" });
    expect(parseModelSpec("ollama:qwen2.5:7b")).toEqual({ provider: "ollama", model: "qwen2.5:7b" });
    expect(parseModelSpec("google-genai:gemini-2.5-flash")).toEqual({ provider: "google-genai", model: "gemini-2.5-flash" });
    expect(parseModelSpec("openai:gpt-4o-mini")).toEqual({ provider: "openai", model: "gpt-4o-mini" });
    // A bare name, even one with a tag, is the OpenAI-compatible endpoint's (vLLM, llama.cpp, Ollama's /v1).
    expect(parseModelSpec("qwen2.5:7b")).toEqual({ provider: "openai", model: "qwen2.5:7b" });
    expect(parseModelSpec("gpt-4o-mini")).toEqual({ provider: "openai", model: "gpt-4o-mini" });
  });

  it("names the providers it ships when a setting asks for another", () => {
    expect(() => parseModelSpec("mistralai:mistral-large")).toThrow(/ships the providers openai, anthropic, google-genai, ollama; mistralai/);
  });

  it("reads each provider's key and base URL from the environment", () => {
    const config = loadConfig({
      THREADML_LLM_MODEL: "anthropic:claude-x",
      ANTHROPIC_API_KEY: "ak",
      ANTHROPIC_BASE_URL: "http://127.0.0.1:9/",
      GOOGLE_API_KEY: "gk",
      OLLAMA_BASE_URL: "http://127.0.0.1:11434",
      THREADML_LLM_MAX_CALLS: "12",
    });
    expect(config.llm.model).toBe("anthropic:claude-x");
    expect(endpointOf(config.llm, "anthropic")).toEqual({ apiKey: "ak", baseUrl: "http://127.0.0.1:9" });
    expect(endpointOf(config.llm, "google-genai").apiKey).toBe("gk");
    expect(endpointOf(config.llm, "ollama").baseUrl).toBe("http://127.0.0.1:11434");
    expect(config.llm.maxCalls).toBe(12);
    expect(missingSetting(config.llm, "openai")).toMatch(/OPENAI_BASE_URL/);
    expect(missingSetting(config.llm, "anthropic")).toBeNull();
    expect(missingSetting(LlmConfig.parse({}), "google-genai")).toMatch(/GOOGLE_API_KEY/);
    expect(missingSetting(LlmConfig.parse({}), "ollama")).toBeNull();
  });
});

describe("the schema a structured call sends", () => {
  const Answer = z.object({
    verdict: z.enum(["met", "design_mismatch"]),
    reasons: z.array(z.string()).catch([]),
    target: z.union([z.string(), z.number()]).nullable().catch(null),
    questions: looseList(z.object({ text: z.string(), choices: z.array(z.string()) })),
  });

  it("shows a lenient list's element shape to the model", () => {
    const wire = wireSchema(Answer);
    expect((wire.properties as Record<string, unknown>).questions).toEqual({
      type: "array",
      items: { type: "object", properties: { text: { type: "string" }, choices: { type: "array", items: { type: "string" } } }, required: ["text", "choices"] },
    });
    // Validation stays lenient: a bad element does not sink the answer.
    expect(Answer.parse({ verdict: "met", reasons: [], target: null, questions: "junk" }).questions).toEqual([]);
  });

  it("is strict for OpenAI only where every object is closed and fully required", () => {
    const strict = strictSchema(wireSchema(Answer))!;
    expect(strict.additionalProperties).toBe(false);
    expect(JSON.stringify(strict)).not.toContain('"default"');
    expect(strictSchema(wireSchema(z.object({ a: z.string().optional() })))).toBeNull();
    expect(strictSchema(wireSchema(z.object({ r: z.record(z.string(), z.number()) })))).toBeNull();
    expect(strictSchema(wireSchema(z.object({ x: z.unknown() })))).toBeNull();
  });

  it("keeps a property named like a keyword in OpenAI's strict form", () => {
    const strict = strictSchema(wireSchema(z.object({ format: z.string(), pattern: z.string(), n: z.number() })))!;
    expect(Object.keys(strict.properties as object)).toEqual(["format", "pattern", "n"]);
    expect(strict.required).toEqual(["format", "pattern", "n"]);
  });

  it("leaves an open object out of Gemini's schema (it requires properties) but keeps it valid", () => {
    const Candidate = z.object({ family: z.string(), ranges: z.record(z.string(), z.unknown()).catch({}), kind: z.literal("search") });
    const g = geminiSchema(wireSchema(Candidate));
    expect(Object.keys(g.properties as object)).toEqual(["family", "kind"]);
    expect(g.required).toEqual(["family", "kind"]);
    expect((g.properties as Record<string, unknown>).kind).toEqual({ type: "string", enum: ["search"] });
    expect(Candidate.parse({ family: "svm", ranges: { C: { low: 1, high: 2 } }, kind: "search" }).ranges).toEqual({ C: { low: 1, high: 2 } });
  });

  it("is rewritten into Gemini's subset: no type lists, nullable instead", () => {
    const g = geminiSchema(wireSchema(Answer));
    const props = g.properties as Record<string, Record<string, unknown>>;
    expect(props.target).toEqual({ type: "string", nullable: true });
    expect(JSON.stringify(g)).not.toMatch(/"default"|additionalProperties|"type":\[/);
  });

  it("goes in each provider's native place", () => {
    const wire = wireSchema(Answer);
    const openai = structuredOptions("openai", "native", "verify-implementation", wire).response_format as Record<string, unknown>;
    expect(openai).toMatchObject({ type: "json_schema", json_schema: { name: "verify-implementation", strict: true } });
    // The SDK's own parse is switched off without sending anything extra.
    expect(JSON.parse(JSON.stringify(openai))).not.toHaveProperty("$parseRaw");
    expect(structuredOptions("anthropic", "native", "verify-implementation", wire)).toMatchObject({
      tools: [{ name: "verify-implementation", input_schema: wire }],
      tool_choice: "verify-implementation",
    });
    expect(structuredOptions("ollama", "native", "x", wire)).toEqual({ format: wire });
    expect(structuredOptions("google-genai", "native", "x", wire)).toHaveProperty("responseSchema");
    expect(structuredOptions("openai", "json", "x", wire)).toEqual({ response_format: { type: "json_object" } });
    expect(structuredOptions("ollama", "json", "x", wire)).toEqual({ format: "json" });
    expect(structuredOptions("anthropic", "json", "x", wire)).toEqual({});
  });
});

describe("classifying a failed request", () => {
  const cut = Object.assign(new TypeError("terminated"), { cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) });

  it("retries an answer cut off mid-body (undici UND_ERR_SOCKET)", () => {
    expect(classify(cut, false, 60)).toEqual({ retryable: true, reason: "the connection broke off mid-answer (UND_ERR_SOCKET)" });
    expect(classify(new TypeError("terminated"), false, 60).retryable).toBe(true);
  });

  it("reads each SDK's status field and error text", () => {
    // Ollama's ResponseError
    expect(classify(Object.assign(new Error("model 'x' not found"), { error: "model 'x' not found", status_code: 404 }), false, 60)).toEqual({
      retryable: false,
      status: 404,
      reason: "HTTP 404: model 'x' not found",
    });
    // Anthropic's body: { type: "error", error: { type, message } }; 529 overloaded is retried
    const anthropic = Object.assign(new Error("529"), { status: 529, error: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } } });
    expect(classify(anthropic, false, 60)).toMatchObject({ retryable: true, status: 529 });
    const bad = Object.assign(new Error("400"), { status: 400, error: { type: "error", error: { type: "invalid_request_error", message: "tools: not supported" } } });
    expect(classify(bad, false, 60).reason).toBe("HTTP 400: tools: not supported");
    expect(refusedStructuredMode(classify(bad, false, 60))).toBe(true);
    expect(refusedStructuredMode({ retryable: false, status: 401, reason: "HTTP 401: bad key" })).toBe(false);
  });

  it("falls back from the structured mode only for a refusal that names it", () => {
    const gemini = Object.assign(new Error("[GoogleGenerativeAI Error]: Error fetching from http://127.0.0.1:9/v1beta/models/g:generateContent: [400 Bad Request] Invalid JSON payload: responseSchema.properties[ranges] should be non-empty"), { status: 400 });
    const failure = classify(gemini, false, 60);
    expect(failure.reason).toBe("HTTP 400: Invalid JSON payload: responseSchema.properties[ranges] should be non-empty");
    expect(refusedStructuredMode(failure)).toBe(true);
    expect(refusedStructuredMode({ retryable: false, status: 400, reason: "HTTP 400: temperature does not support 0.2 with this model" })).toBe(false);
    // 501: a feature the server lacks, not retried, with its own words.
    const lacking = Object.assign(new Error("501"), { status: 501, error: { message: "json_schema response format not implemented" } });
    expect(classify(lacking, false, 60)).toEqual({ retryable: false, status: 501, reason: "HTTP 501: json_schema response format not implemented" });
    expect(refusedStructuredMode(classify(lacking, false, 60))).toBe(true);
  });

  it("retries a body that is not well-formed JSON, and not a programming error", () => {
    expect(classify(new SyntaxError("Unexpected token < in JSON at position 0"), false, 60).retryable).toBe(true);
    expect(classify(new Error("Cannot read properties of undefined"), false, 60).retryable).toBe(false);
  });
});
