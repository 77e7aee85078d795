import { ChatAnthropic } from "@langchain/anthropic";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { AIMessage, AIMessageChunk } from "@langchain/core/messages";
import { concat } from "@langchain/core/utils/stream";
import { ChatGoogleGenerativeAI } from "@langchain/google-genai";
import { ChatOllama } from "@langchain/ollama";
import { ChatOpenAI } from "@langchain/openai";
import { initChatModel } from "langchain/chat_models/universal";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { startScriptedAnthropic } from "../helpers/anthropic-server.js";
import { startScriptedGemini } from "../helpers/gemini-server.js";
import { startScriptedOllama } from "../helpers/ollama-server.js";
import { startScriptedOpenAI } from "../helpers/openai-server.js";
import { pieces, type ScriptHandler, type ScriptReply, type ScriptedRequest, type ScriptedServer } from "../helpers/scripted-http.js";
import { competent } from "../helpers/scripted-model.js";

// Each scripted provider server against the REAL LangChain class that will talk to it in production, so
// the fakes are held to the wire those clients speak (and the error shapes the LLM client must classify).

const API_KEY = "test-key-not-secret";
const TEXT = "Use gradient boosting on the tabular data.";
const USAGE = { prompt_tokens: 42, completion_tokens: 9 };
const ANSWER = { target: "Quality", metric: "accuracy" };
const Answer = z.object({ target: z.string(), metric: z.string() });
const SYSTEM = "ThreadML step: parse\nYou turn a request into a task.";

/** Replies by the last user message, so one handler serves every provider and case. */
const script: ScriptHandler = (r: ScriptedRequest): ScriptReply => {
  const said = r.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";
  switch (said) {
    case "json":
      return { content: JSON.stringify(ANSWER), usage: USAGE };
    case "prose":
      return { content: "I would rather not call a tool." };
    case "rate-limit":
      return { status: 429, headers: { "retry-after": "7" } };
    case "cut":
      return { cut: true, content: `${TEXT} ${TEXT} ${TEXT}` };
    case "hang":
      return { hang: true };
    default:
      return { content: TEXT, usage: USAGE };
  }
};

interface Provider {
  name: string;
  start(handler: ScriptHandler): Promise<ScriptedServer>;
  model(baseUrl: string): BaseChatModel;
  /** Whether the fake answers tool calls (the OpenAI fake answers text only). */
  tools: boolean;
  /** Extra output tokens the client counts on a stream beyond the reply's own. */
  streamExtraOutput: number;
  /** Whether invoke({signal}) reaches the HTTP request (ChatOllama and ChatGoogleGenerativeAI drop it). */
  signalEndsInvoke: boolean;
}

const PROVIDERS: Provider[] = [
  {
    name: "openai",
    start: startScriptedOpenAI,
    model: (baseUrl) => new ChatOpenAI({ model: "gpt-test", apiKey: API_KEY, configuration: { baseURL: baseUrl }, maxRetries: 0 }),
    tools: false,
    streamExtraOutput: 0,
    signalEndsInvoke: true,
  },
  {
    name: "anthropic",
    start: startScriptedAnthropic,
    model: (baseUrl) => new ChatAnthropic({ model: "claude-test", apiKey: API_KEY, anthropicApiUrl: baseUrl, maxRetries: 0 }),
    tools: true,
    // message_start carries output_tokens: 1 and message_delta the cumulative count; LangChain adds both.
    streamExtraOutput: 1,
    signalEndsInvoke: true,
  },
  {
    name: "ollama",
    start: startScriptedOllama,
    model: (baseUrl) => new ChatOllama({ model: "llama-test", baseUrl, maxRetries: 0 }),
    tools: true,
    streamExtraOutput: 0,
    signalEndsInvoke: false,
  },
  {
    name: "google-genai",
    start: startScriptedGemini,
    model: (baseUrl) => new ChatGoogleGenerativeAI({ model: "gemini-test", apiKey: API_KEY, baseUrl, maxRetries: 0 }),
    tools: true,
    streamExtraOutput: 0,
    signalEndsInvoke: false,
  },
];

let servers: ScriptedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(provider: Provider, handler: ScriptHandler = script): Promise<ScriptedServer> {
  const server = await provider.start(handler);
  servers.push(server);
  return server;
}

const ask = (said: string): Array<[string, string]> => [
  ["system", SYSTEM],
  ["human", said],
];

async function failure(p: Promise<unknown>): Promise<Record<string, unknown> & Error> {
  try {
    await p;
  } catch (err) {
    return err as Record<string, unknown> & Error;
  }
  throw new Error("expected the call to fail");
}

async function drain(stream: AsyncIterable<AIMessageChunk>): Promise<{ texts: string[]; whole: AIMessageChunk | undefined }> {
  const texts: string[] = [];
  let whole: AIMessageChunk | undefined;
  for await (const chunk of stream) {
    if (typeof chunk.content === "string" && chunk.content) texts.push(chunk.content);
    whole = whole ? concat(whole, chunk) : chunk;
  }
  return { texts, whole };
}

describe.each(PROVIDERS)("$name fake through the real LangChain class", (provider) => {
  it("invoke returns the text and usage; the system prompt arrives first and names the step", async () => {
    const server = await serve(provider);
    const reply = await provider.model(server.baseUrl).invoke(ask("hello"));
    expect(reply.content).toBe(TEXT);
    expect(reply.usage_metadata).toMatchObject({ input_tokens: 42, output_tokens: 9, total_tokens: 51 });

    const [seen] = server.requests;
    expect(seen.step).toBe("parse");
    expect(seen.messages[0]).toEqual({ role: "system", content: SYSTEM });
    expect(seen.messages.at(-1)).toEqual({ role: "user", content: "hello" });
    expect(seen.model).toMatch(/-test$/);
  });

  it("stream yields the word pieces in order, then the usage", async () => {
    const server = await serve(provider);
    const { texts, whole } = await drain(await provider.model(server.baseUrl).stream(ask("hello")));
    expect(texts).toEqual(pieces(TEXT));
    expect(whole?.usage_metadata).toMatchObject({ input_tokens: 42, output_tokens: 9 + provider.streamExtraOutput });
    expect(server.requests[0].stream).toBe(true);
  });

  it("the competent scripted model drives it unchanged", async () => {
    const server = await serve(provider, competent);
    const reply = await provider.model(server.baseUrl).invoke(ask("Predict Quality from the banana data."));
    expect(JSON.parse(String(reply.content))).toEqual(JSON.parse((competent(server.requests[0]) as { content: string }).content));
  });

  it(`a hanging request ${provider.signalEndsInvoke ? "ends with invoke's abort signal" : "ignores invoke's abort signal and ends only when the socket does"}`, async () => {
    const server = await serve(provider);
    const controller = new AbortController();
    const pending = failure(provider.model(server.baseUrl).invoke(ask("hang"), { signal: controller.signal }));
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    controller.abort();
    // Were the signal heeded, the abort would already have failed the call; closing the server ends the
    // hang either way, so the error says which of the two ended it.
    await server.close();
    const err = await pending;
    if (provider.signalEndsInvoke) expect(`${err.name} ${err.message}`).toMatch(/abort/i);
    else expect(`${err.name} ${err.message}`).not.toMatch(/abort/i);
  });

  it("a cut answer to invoke surfaces as undici's socket error", async () => {
    const server = await serve(provider);
    const err = await failure(provider.model(server.baseUrl).invoke(ask("cut")));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe("terminated");
    expect((err.cause as { code?: string }).code).toBe("UND_ERR_SOCKET");
  });
});

describe.each(PROVIDERS.filter((p) => p.tools))("$name fake: tool calls", (provider) => {
  it("a tool call (forced where the API can force one) returns the handler's JSON as tool_calls[0].args", async () => {
    const server = await serve(provider);
    const structured = provider.model(server.baseUrl).withStructuredOutput(Answer, { name: "answer", method: "functionCalling", includeRaw: true });
    const { raw, parsed } = await structured.invoke(ask("json"));
    expect((raw as AIMessage).tool_calls?.[0]).toMatchObject({ name: "answer", args: ANSWER });
    expect(parsed).toEqual(ANSWER);
    expect(JSON.stringify(server.requests[0].responseFormat ?? server.requests[0].body.tools)).toContain('"answer"');
  });

  it("a reply that is no JSON object comes back as text, like a model that ignored the tool", async () => {
    const server = await serve(provider);
    const structured = provider.model(server.baseUrl).withStructuredOutput(Answer, { name: "answer", method: "functionCalling", includeRaw: true });
    const { raw, parsed } = await structured.invoke(ask("prose"));
    expect((raw as AIMessage).tool_calls ?? []).toEqual([]);
    expect(JSON.stringify((raw as AIMessage).content)).toContain("rather not call a tool");
    expect(parsed ?? null).toBeNull();
  });
});

describe("streams cut mid-body", () => {
  it.each(PROVIDERS.filter((p) => p.name !== "google-genai"))("$name: the stream fails with undici's socket error", async (provider) => {
    const server = await serve(provider);
    const err = await failure(drain(await provider.model(server.baseUrl).stream(ask("cut"))));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe("terminated");
    expect((err.cause as { code?: string }).code).toBe("UND_ERR_SOCKET");
  });

  it("google-genai: the stream fails with a causeless SDK error, and the SDK leaves a second rejection unhandled", async () => {
    const [provider] = PROVIDERS.filter((p) => p.name === "google-genai");
    const server = await serve(provider);
    // The SDK tees the body and never awaits the aggregate branch (`response`), so a body that dies
    // reaches process-level 'unhandledRejection'. Catch it here instead of vitest's handler.
    const saved = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    const unhandled: Error[] = [];
    process.on("unhandledRejection", (reason) => void unhandled.push(reason as Error));
    try {
      const err = await failure(drain(await provider.model(server.baseUrl).stream(ask("cut"))));
      expect(err.message).toBe("[GoogleGenerativeAI Error]: Error reading from the stream");
      expect(err.cause).toBeUndefined();
      await vi.waitFor(() => expect(unhandled).toHaveLength(1));
      expect(unhandled[0].message).toBe(err.message);
    } finally {
      process.removeAllListeners("unhandledRejection");
      for (const listener of saved) process.on("unhandledRejection", listener);
    }
  });
});

describe("HTTP errors carry their status where each SDK puts it", () => {
  it("anthropic: an APIError subclass with .status, the headers and Anthropic's error body", async () => {
    const server = await serve(PROVIDERS[1]);
    const err = await failure(PROVIDERS[1].model(server.baseUrl).invoke(ask("rate-limit")));
    expect(err.constructor.name).toBe("RateLimitError");
    expect(err.status).toBe(429);
    expect((err.headers as Headers).get("retry-after")).toBe("7");
    expect(err.error).toEqual({ type: "error", error: { type: "rate_limit_error", message: "Scripted HTTP 429" } });
    expect(err.lc_error_code).toBe("MODEL_RATE_LIMIT");
    expect(err.message).toMatch(/^429 /);
  });

  it("ollama: a ResponseError with .status_code (no .status) and the body's error text as message", async () => {
    const server = await serve(PROVIDERS[2]);
    const err = await failure(PROVIDERS[2].model(server.baseUrl).invoke(ask("rate-limit")));
    expect(err.name).toBe("ResponseError");
    expect(err.status_code).toBe(429);
    expect(err.status).toBeUndefined();
    expect(err.message).toBe("scripted HTTP 429");
  });

  it("google-genai: a GoogleGenerativeAIFetchError with .status, no headers, renamed by LangChain's retry policy", async () => {
    const server = await serve(PROVIDERS[3]);
    const err = await failure(PROVIDERS[3].model(server.baseUrl).invoke(ask("rate-limit")));
    expect(err.constructor.name).toBe("GoogleGenerativeAIFetchError");
    expect(err.status).toBe(429);
    expect(err.headers).toBeUndefined();
    // LangChain's AsyncCaller renames a plain-named 429 it will not wait out.
    expect(err.name).toBe("RateLimitCapacityError");
    expect(err.message).toContain("[429 Too Many Requests] Scripted HTTP 429");
  });
});

describe("native structured output on each wire", () => {
  it("anthropic jsonSchema: output_config.format carries the schema; the text is the JSON", async () => {
    const server = await serve(PROVIDERS[1]);
    const parsed = await PROVIDERS[1].model(server.baseUrl).withStructuredOutput(Answer, { method: "jsonSchema" }).invoke(ask("json"));
    expect(parsed).toEqual(ANSWER);
    const format = (server.requests[0].responseFormat as { output_config: { format: { type: string; schema: { required: string[] } } } }).output_config.format;
    expect(format.type).toBe("json_schema");
    expect(format.schema.required).toEqual(["target", "metric"]);
  });

  it("anthropic functionCalling streams the tool input as input_json_delta", async () => {
    const server = await serve(PROVIDERS[1]);
    const model = PROVIDERS[1].model(server.baseUrl).bindTools!([{ name: "answer", description: "The answer.", schema: Answer }], {
      tool_choice: { type: "tool", name: "answer" },
    } as never);
    const { whole } = await drain(await model.stream(ask("json")));
    expect(whole?.tool_calls?.[0]).toMatchObject({ name: "answer", args: ANSWER });
    expect(server.requests[0].responseFormat).toMatchObject({ tool_choice: { type: "tool", name: "answer" } });
  });

  it("ollama: `format` arrives as the JSON schema (jsonSchema, the default) or \"json\" (jsonMode); invoke streams", async () => {
    const server = await serve(PROVIDERS[2]);
    const model = PROVIDERS[2].model(server.baseUrl);
    expect(await model.withStructuredOutput(Answer).invoke(ask("json"))).toEqual(ANSWER);
    expect(await model.withStructuredOutput(Answer, { method: "jsonMode" }).invoke(ask("json"))).toEqual(ANSWER);
    const [schemaCall, jsonCall] = server.requests;
    expect(schemaCall.responseFormat).toMatchObject({ type: "object", required: ["target", "metric"] });
    expect(jsonCall.responseFormat).toBe("json");
    expect(server.requests.every((r) => r.stream)).toBe(true);
  });

  it("google-genai: responseSchema with responseMimeType application/json (the default method)", async () => {
    const server = await serve(PROVIDERS[3]);
    expect(await PROVIDERS[3].model(server.baseUrl).withStructuredOutput(Answer).invoke(ask("json"))).toEqual(ANSWER);
    expect(server.requests[0].responseFormat).toMatchObject({
      responseMimeType: "application/json",
      responseSchema: { type: "object", required: ["target", "metric"] },
    });
  });

  it("google-genai functionCalling forces the function with toolConfig mode ANY", async () => {
    const server = await serve(PROVIDERS[3]);
    await PROVIDERS[3].model(server.baseUrl).withStructuredOutput(Answer, { name: "answer", method: "functionCalling" }).invoke(ask("json"));
    expect(server.requests[0].responseFormat).toMatchObject({
      toolConfig: { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["answer"] } },
      tools: [{ functionDeclarations: [{ name: "answer" }] }],
    });
  });
});

describe("initChatModel reaches each fake", () => {
  it.each([
    ["anthropic:claude-test", startScriptedAnthropic, (baseUrl: string) => ({ anthropicApiUrl: baseUrl, apiKey: API_KEY })],
    ["ollama:llama-test", startScriptedOllama, (baseUrl: string) => ({ baseUrl })],
    ["google-genai:gemini-test", startScriptedGemini, (baseUrl: string) => ({ baseUrl, apiKey: API_KEY })],
  ] as const)("%s", async (id, start, fields) => {
    const server = await start(script);
    servers.push(server);
    const model = await initChatModel(id, { ...fields(server.baseUrl), maxRetries: 0 });
    expect((await model.invoke(ask("hello"))).content).toBe(TEXT);
    expect(server.requests[0].model).toBe(id.split(":")[1]);
  });
});
