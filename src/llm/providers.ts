import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { initChatModel } from "langchain/chat_models/universal";
import type { LlmConfig } from "../../config/schema.js";
import { geminiSchema, strictSchema, type JsonSchema } from "./json-schema.js";

// The chat-model providers ThreadML ships, each created through langchain's initChatModel from a
// `provider:model` setting, and how each one is sent the JSON Schema of a structured answer
// (docs/llm.md). Everything else about a call (retries, timeouts, cancel, usage) is the client's.

export const PROVIDERS = ["openai", "anthropic", "google-genai", "ollama"] as const;
export type Provider = (typeof PROVIDERS)[number];

// Providers initChatModel knows whose packages ThreadML does not install: named, so that a typo'd
// or unsupported setting fails at start with a clear message instead of at the first call.
const NOT_SHIPPED = ["azure_openai", "cohere", "google", "google-vertexai", "google-vertexai-web", "mistralai", "mistral", "groq", "bedrock", "aws", "deepseek", "xai", "cerebras", "fireworks", "together", "perplexity", "langsmith"];

export interface ModelSpec {
  provider: Provider;
  model: string;
}

/**
 * `anthropic:claude-sonnet-4-5` → {anthropic, claude-sonnet-4-5}. Only a known provider prefix is split
 * off: `qwen2.5:7b` (an Ollama tag behind an OpenAI-compatible URL) stays a model name for `openai`.
 */
export function parseModelSpec(spec: string): ModelSpec {
  const m = /^([a-z][a-z0-9_-]*):(.+)$/.exec(spec.trim());
  if (m && (PROVIDERS as readonly string[]).includes(m[1])) return { provider: m[1] as Provider, model: m[2] };
  if (m && NOT_SHIPPED.includes(m[1])) {
    throw new Error(
      `"${spec}": ThreadML ships the providers ${PROVIDERS.join(", ")}; ${m[1]} is not one of them. ` +
        "An OpenAI-compatible endpoint of that provider works as openai with llm.baseUrl.",
    );
  }
  return { provider: "openai", model: spec.trim() };
}

const DEFAULT_URLS: Record<Provider, string> = {
  openai: "https://api.openai.com/v1",
  anthropic: "https://api.anthropic.com",
  "google-genai": "https://generativelanguage.googleapis.com",
  ollama: "http://127.0.0.1:11434",
};

/** Key and base URL of a provider, from llm.baseUrl/apiKey (openai) or llm.providers. */
export function endpointOf(config: LlmConfig, provider: Provider): { apiKey?: string; baseUrl: string } {
  const own = provider === "openai" ? { apiKey: config.apiKey, baseUrl: config.baseUrl } : (config.providers[provider] ?? {});
  return { apiKey: own.apiKey, baseUrl: (own.baseUrl ?? DEFAULT_URLS[provider]).replace(/\/+$/, "") };
}

/** Why a provider cannot be used with this configuration, or null. */
export function missingSetting(config: LlmConfig, provider: Provider): string | null {
  switch (provider) {
    case "openai":
      return config.baseUrl || config.apiKey
        ? null
        : "set OPENAI_BASE_URL or OPENAI_API_KEY (OPENAI_BASE_URL for any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; OPENAI_API_KEY alone uses api.openai.com)";
    case "anthropic":
      return config.providers.anthropic?.apiKey || config.providers.anthropic?.baseUrl ? null : "set ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL for a compatible server)";
    case "google-genai":
      return config.providers["google-genai"]?.apiKey ? null : "set GOOGLE_API_KEY";
    case "ollama":
      return null;
  }
}

/** Models that reject a temperature other than the default (OpenAI o-series and gpt-5 reasoning models). */
function isReasoningModel(model: string): boolean {
  return /^o\d/.test(model) || (model.startsWith("gpt-5") && !model.startsWith("gpt-5-chat"));
}

/** Creates the chat model for one spec; the provider's own retries are off (the client retries). */
export async function createChatModel(config: LlmConfig, spec: ModelSpec, maxTokens: number | undefined): Promise<BaseChatModel> {
  const { apiKey, baseUrl } = endpointOf(config, spec.provider);
  const timeout = config.timeoutS * 1000;
  const common = { temperature: config.temperature, maxRetries: 0 };
  let params: Record<string, unknown>;
  switch (spec.provider) {
    case "openai":
      params = {
        ...common,
        temperature: isReasoningModel(spec.model) ? undefined : config.temperature,
        apiKey: apiKey ?? "not-needed",
        // Always explicit, so that OPENAI_BASE_URL or LANGSMITH_GATEWAY in the environment cannot re-route calls.
        configuration: { baseURL: baseUrl },
        timeout,
        maxTokens,
        streamUsage: true,
      };
      break;
    case "anthropic":
      // Anthropic requires max_tokens on every request.
      params = { ...common, apiKey: apiKey ?? "not-needed", anthropicApiUrl: baseUrl, maxTokens: maxTokens ?? 4096, clientOptions: { timeout, maxRetries: 0 } };
      break;
    case "google-genai":
      params = { ...common, apiKey, baseUrl, maxOutputTokens: maxTokens };
      break;
    case "ollama":
      params = { ...common, baseUrl, numPredict: maxTokens, ...(apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {}) };
      break;
  }
  const model = await initChatModel(spec.model, { modelProvider: spec.provider, ...params });
  return model as unknown as BaseChatModel;
}

/** How a structured answer is asked for: in the provider's native mode, or as plain JSON. */
export type StructuredMode = "native" | "json";

/** Call options that carry the answer's schema (native) or ask for any JSON object (json). */
export function structuredOptions(provider: Provider, mode: StructuredMode, name: string, schema: JsonSchema): Record<string, unknown> {
  const toolName = name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64) || "answer";
  if (mode === "json") {
    if (provider === "openai") return { response_format: { type: "json_object" } };
    if (provider === "ollama") return { format: "json" };
    return {};
  }
  switch (provider) {
    case "openai": {
      const strict = strictSchema(schema);
      const format = { type: "json_schema", json_schema: { name: toolName, strict: strict !== null, schema: strict ?? schema } };
      // The OpenAI SDK parses a json_schema answer itself and throws on text that is not JSON, which would
      // hide a sloppy answer from the repair round; $parseRaw (not sent: not enumerable) leaves it to us.
      Object.defineProperty(format, "$parseRaw", { value: () => null, enumerable: false });
      return { response_format: format };
    }
    case "anthropic":
      return { tools: [{ name: toolName, description: `Give the answer of the ${name} step.`, input_schema: schema }], tool_choice: toolName };
    case "google-genai":
      return { responseSchema: geminiSchema(schema) };
    case "ollama":
      return { format: schema };
  }
}
