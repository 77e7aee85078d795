import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { HumanMessage, SystemMessage, type AIMessage, type AIMessageChunk, type BaseMessage } from "@langchain/core/messages";
import type { z } from "zod";
import { LLM_ROLES, type LlmConfig, type LlmRole } from "../../config/schema.js";
import type { Logger } from "../logger.js";
import { answerCut, classify, refusedStructuredMode } from "./classify.js";
import { LlmBudgetError, LlmCancelledError, LlmOutputError, LlmUnavailableError } from "./errors.js";
import { extractJson } from "./json.js";
import { wireSchema, type JsonSchema } from "./json-schema.js";
import { createChatModel, endpointOf, missingSetting, parseModelSpec, structuredOptions, type ModelSpec } from "./providers.js";
import { recordUsage, scopeSignal, takeRequest } from "./usage.js";

// One client for every agent: it talks to the configured provider (OpenAI-compatible, Anthropic, Gemini,
// Ollama) through the LangChain chat model initChatModel creates, sends structured calls their JSON
// Schema, retries what is worth retrying, turns failures into the errors the engine understands, and
// meters usage against the conversation's request budget.
//
// Retries are done here rather than by LangChain: its AsyncCaller waits at least 1 s before the first
// retry (not configurable), gives up at once on a 429 without Retry-After, and cannot tell a stream that
// failed before its first token (safe to retry) from one that broke off mid-answer. So every provider runs
// with maxRetries 0, and every request is made at most 1 + config.maxRetries times.

export interface LlmRequest {
  role: LlmRole;
  step: string;
  system: string;
  user: string;
  maxTokens?: number;
}

/** Internal knobs, mainly so that tests can use short delays. */
export interface LlmClientOptions {
  /** Delay before the first retry; it doubles with each further retry (plus up to 25% jitter). */
  baseDelayMs?: number;
  /** Ceiling of one backoff delay. */
  maxDelayMs?: number;
  /** Longest Retry-After that is waited for; a longer one ends the call at once instead of stalling a chat. */
  maxRetryAfterMs?: number;
}

const REPAIR_OUTPUT_CHARS = 4000;

interface CallResult {
  text: string;
  /** The provider stopped the answer: at its token limit, or by its content filter. */
  truncated?: "length" | "content_filter";
  promptTokens: number;
  completionTokens: number;
}

/** Wraps an error thrown by the caller's own code (onToken) so that it is passed on untouched, never retried. */
class CallerError {
  constructor(readonly error: unknown) {}
}

/** Waits `ms`, or less when `signal` aborts first (the loop then sees the cancel). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

export class LlmClient {
  private readonly models = new Map<string, Promise<BaseChatModel>>();
  /** Models whose server refused the native structured mode: asked for plain JSON from then on. */
  private readonly plainJson = new Set<string>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;

  constructor(
    private readonly config: LlmConfig,
    private readonly logger: Logger,
    options: LlmClientOptions = {},
  ) {
    // Every role's model is checked now, so that a bad setting stops the start instead of a conversation.
    for (const role of LLM_ROLES) {
      const spec = this.specFor(role);
      const missing = missingSetting(config, spec.provider);
      if (missing) throw new Error(`The LLM engine needs an endpoint for ${spec.provider}:${spec.model}: ${missing}.`);
    }
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 8000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  }

  /** The role's model setting as written (`provider:model`, or a bare OpenAI-compatible name). */
  modelFor(role: LlmRole): string {
    return this.config.models[role] ?? this.config.model;
  }

  private specFor(role: LlmRole): ModelSpec {
    return parseModelSpec(this.modelFor(role));
  }

  /** One chat completion; returns the answer's text. */
  async text(req: LlmRequest): Promise<string> {
    return (await this.complete(req, {})).text;
  }

  /** A streamed completion: `onToken` gets each piece in order; returns the whole text. */
  async stream(req: LlmRequest, onToken: (t: string) => void): Promise<string> {
    // Gemini's SDK leaves a rejected promise unhandled when a stream breaks off, which would end the
    // process: its answers arrive whole, as one piece.
    if (this.specFor(req.role).provider === "google-genai") {
      const text = await this.text(req);
      if (text) onToken(text);
      return text;
    }
    const model = await this.chatModel(req);
    const messages = this.messages(req);
    let emitted = 0;
    const started = Date.now();
    const { value, attempts } = await this.withRetries(
      req,
      async (signal, activity) => {
        const chunks = await model.stream(messages, { signal });
        let text = "";
        let promptTokens = 0;
        let completionTokens = 0;
        for await (const chunk of chunks) {
          activity();
          const piece = chunkText(chunk);
          if (piece) {
            text += piece;
            emitted++;
            try {
              onToken(piece);
            } catch (err) {
              throw new CallerError(err);
            }
          }
          promptTokens += chunk.usage_metadata?.input_tokens ?? 0;
          completionTokens += chunk.usage_metadata?.output_tokens ?? 0;
        }
        return { text, promptTokens, completionTokens };
      },
      // Once tokens reached the caller a retry would repeat them; a broken stream then fails at once.
      () => emitted === 0,
    );
    this.finish(req, started, attempts, value, "stream");
    return value.text;
  }

  /**
   * A JSON answer validated by `schema`. The schema's JSON form goes to the provider's structured mode
   * (docs/llm.md); invalid output (unparseable or failing the schema) gets one repair call showing the
   * model its output and the problems; still invalid → LlmOutputError.
   */
  async json<T>(req: LlmRequest & { schema: z.ZodType<T> }): Promise<T> {
    const { schema, ...base } = req;
    const wire = wireSchema(schema);
    const first = await this.structured(base, wire);
    const checked = validate(first, schema);
    if (checked.ok) return checked.value;

    this.logger.info({ step: req.step, role: req.role, problems: checked.problems }, "LLM JSON invalid; asking for a repair");
    const repaired = await this.structured({ ...base, user: repairPrompt(base.user, first.text, checked.problems) }, wire);
    const second = validate(repaired, schema);
    if (second.ok) return second.value;
    throw new LlmOutputError(req.step, second.problems, repaired.text);
  }

  /** One structured call: native mode first, plain JSON where the server refuses it (remembered). */
  private async structured(req: LlmRequest, wire: JsonSchema): Promise<CallResult> {
    const spec = this.specFor(req.role);
    // Per step: a server may refuse one step's schema (Gemini's subset) and take the others.
    const key = `${spec.provider}:${spec.model}|${req.step}`;
    const native = this.config.structuredOutput === "native" && !this.plainJson.has(key);
    // Plain JSON mode shows the schema in the prompt instead; OpenAI's JSON mode also needs the word "JSON".
    const plain = (r: LlmRequest): LlmRequest => ({ ...r, system: `${r.system}\n\nAnswer with one JSON object that follows this JSON Schema:\n${JSON.stringify(wire)}` });
    if (!native) return this.complete(plain(req), structuredOptions(spec.provider, "json", req.step, wire));
    try {
      return await this.complete(req, structuredOptions(spec.provider, "native", req.step, wire));
    } catch (err) {
      if (!(err instanceof LlmUnavailableError) || !refusedStructuredMode({ retryable: err.retryable, reason: err.reason, status: err.status })) throw err;
      this.logger.warn({ step: req.step, model: key, reason: err.reason }, "the server refused the structured mode; asking for plain JSON");
      const answer = await this.complete(plain(req), structuredOptions(spec.provider, "json", req.step, wire));
      // Remembered only once plain JSON worked: the refusal was about the structured mode, not the request.
      this.plainJson.add(key);
      return answer;
    }
  }

  private async complete(req: LlmRequest, callOptions: Record<string, unknown>): Promise<CallResult> {
    const spec = this.specFor(req.role);
    const messages = this.messages(req);
    const started = Date.now();
    const { value, attempts } = await this.withRetries(
      req,
      async (signal) => {
        // ChatOllama aborts every stream of its client when one request's signal fires, so each
        // Ollama request gets its own model; the others share one per role.
        const model = spec.provider === "ollama" ? await this.createModel(req, spec) : await this.chatModel(req);
        try {
          // ChatOllama notices the signal only when its next chunk arrives and ChatGoogleGenerativeAI
          // not at all: the race makes the deadline and a cancel hold at once (the request is abandoned).
          const message = await raceAbort(model.invoke(messages, { ...callOptions, signal } as Parameters<BaseChatModel["invoke"]>[1]), signal);
          return {
            text: answerText(message),
            promptTokens: message.usage_metadata?.input_tokens ?? 0,
            completionTokens: message.usage_metadata?.output_tokens ?? 0,
          };
        } catch (err) {
          // An answer stopped at the token limit or by a content filter is an answer (unusable JSON), not a
          // failed request. (OpenAI's SDK throws for both on the json_schema path, without the token counts.)
          const cut = answerCut(err);
          if (cut) return { text: "", truncated: cut, promptTokens: 0, completionTokens: 0 };
          throw err;
        }
      },
      () => true,
    );
    this.finish(req, started, attempts, value, Object.keys(callOptions).length ? "json" : "text");
    return value;
  }

  private finish(req: LlmRequest, started: number, attempts: number, r: CallResult, mode: string): void {
    recordUsage({ prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens });
    this.logger.debug(
      {
        step: req.step,
        role: req.role,
        model: this.modelFor(req.role),
        mode,
        ms: Date.now() - started,
        attempts,
        prompt_tokens: r.promptTokens,
        completion_tokens: r.completionTokens,
      },
      "LLM call",
    );
  }

  private messages(req: LlmRequest): BaseMessage[] {
    // The step line comes first and alone: logs and the scripted test servers route on it.
    const step = req.step.replace(/\s+/g, " ").trim();
    return [new SystemMessage(`ThreadML step: ${step}\n\n${req.system}`), new HumanMessage(req.user)];
  }

  private chatModel(req: LlmRequest): Promise<BaseChatModel> {
    const spec = this.specFor(req.role);
    const key = `${spec.provider}|${spec.model}|${req.maxTokens ?? ""}`;
    let model = this.models.get(key);
    if (!model) {
      model = this.createModel(req, spec);
      // A failed creation (a missing package) is not cached: the next call reports it again.
      model.catch(() => this.models.delete(key));
      this.models.set(key, model);
    }
    return model;
  }

  /** The provider's chat model; a failure to create it (a missing package, a bad option) names the provider. */
  private async createModel(req: LlmRequest, spec: ModelSpec): Promise<BaseChatModel> {
    try {
      return await createChatModel(this.config, spec, req.maxTokens);
    } catch (err) {
      throw new LlmUnavailableError({
        baseUrl: endpointOf(this.config, spec.provider).baseUrl,
        step: req.step,
        attempts: 0,
        reason: `its ${spec.provider} client could not be created: ${this.redact(String((err as Error)?.message ?? err)).slice(0, 200)}`,
        retryable: false,
        cause: err,
      });
    }
  }

  /**
   * Runs `attempt` up to 1 + maxRetries times, each one a request taken from the conversation's budget.
   * Each attempt has its own deadline of timeoutS, which `activity()` pushes back (streams: the limit is
   * on silence, not on the answer's length); the SDK's timeout only covers the wait for response headers.
   */
  private async withRetries<T>(
    req: LlmRequest,
    attempt: (signal: AbortSignal, activity: () => void) => Promise<T>,
    mayRetry: () => boolean,
  ): Promise<{ value: T; attempts: number }> {
    const timeoutMs = this.config.timeoutS * 1000;
    const cancel = scopeSignal();
    const endpoint = endpointOf(this.config, this.specFor(req.role).provider).baseUrl;
    for (let n = 1; ; n++) {
      if (cancel?.aborted) throw new LlmCancelledError(req.step);
      if (!takeRequest()) throw new LlmBudgetError(req.step, this.config.maxCalls);
      const controller = new AbortController();
      const onCancel = () => controller.abort(new LlmCancelledError(req.step));
      cancel?.addEventListener("abort", onCancel, { once: true });
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = true;
          controller.abort(new Error("LLM request timed out"));
        }, timeoutMs);
      };
      arm();
      try {
        return { value: await attempt(controller.signal, arm), attempts: n };
      } catch (err) {
        if (err instanceof CallerError) throw err.error;
        if (cancel?.aborted) throw new LlmCancelledError(req.step);
        const failure = classify(err, timedOut, this.config.timeoutS);
        failure.reason = this.redact(failure.reason);
        if (failure.retryAfterMs !== undefined && failure.retryAfterMs > this.maxRetryAfterMs) {
          failure.retryable = false;
          failure.reason += `, asked to wait ${Math.round(failure.retryAfterMs / 1000)} s`;
        }
        const broken = failure.retryable && !mayRetry();
        if (broken) failure.reason += " (the streamed answer broke off)";
        if (!failure.retryable || broken || n > this.config.maxRetries) {
          throw new LlmUnavailableError({
            baseUrl: endpoint,
            step: req.step,
            attempts: n,
            reason: failure.reason,
            status: failure.status,
            retryable: failure.retryable,
            cause: err,
          });
        }
        const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1)) * (1 + Math.random() * 0.25);
        const delay = Math.round(Math.max(backoff, failure.retryAfterMs ?? 0));
        this.logger.warn(
          { step: req.step, role: req.role, attempt: n, reason: failure.reason, delayMs: delay },
          "LLM call failed; retrying",
        );
        await sleep(delay, cancel);
      } finally {
        clearTimeout(timer);
        cancel?.removeEventListener("abort", onCancel);
      }
    }
  }

  /** Without the API keys (some servers echo them back). */
  private redact(text: string): string {
    const keys = [this.config.apiKey, ...Object.values(this.config.providers).map((p) => p?.apiKey)];
    for (const key of keys) if (key && key.length >= 4) text = text.split(key).join("[redacted]");
    return text;
  }
}

/** `work`, or the signal's reason as soon as it aborts (whichever comes first). */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function chunkText(message: AIMessageChunk | { content: unknown; text: string }): string {
  return typeof message.content === "string" ? message.content : message.text;
}

/** The answer's text; a structured answer given as a tool call (Anthropic) is its arguments as JSON. */
function answerText(message: AIMessage | AIMessageChunk): string {
  const call = message.tool_calls?.[0];
  if (call) return JSON.stringify(call.args ?? {});
  return chunkText(message);
}

function validate<T>(answer: CallResult, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; problems: string } {
  if (answer.truncated === "length") return { ok: false, problems: "the answer was cut off at the token limit before the JSON ended; give a shorter answer" };
  if (answer.truncated) return { ok: false, problems: "the provider's content filter stopped the answer" };
  let data: unknown;
  try {
    data = extractJson(answer.text);
  } catch (err) {
    return { ok: false, problems: (err as Error).message };
  }
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues
    .map((issue) => `${issue.path.length ? issue.path.map(String).join(".") : "(root)"}: ${issue.message}`)
    .join("\n");
  return { ok: false, problems };
}

function repairPrompt(user: string, output: string, problems: string): string {
  const shown = output.length > REPAIR_OUTPUT_CHARS ? `${output.slice(0, REPAIR_OUTPUT_CHARS)}\n[… truncated]` : output;
  return [
    user,
    "",
    "Your previous answer could not be used:",
    "<previous_answer>",
    shown,
    "</previous_answer>",
    "",
    "Problems:",
    problems,
    "",
    "Reply with the corrected JSON only: no explanation and no code fences.",
  ].join("\n");
}
