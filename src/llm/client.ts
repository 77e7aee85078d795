import { HumanMessage, SystemMessage, type AIMessageChunk, type BaseMessage } from "@langchain/core/messages";
import { ChatOpenAI } from "@langchain/openai";
import type { z } from "zod";
import type { LlmConfig, LlmRole } from "../../config/schema.js";
import type { Logger } from "../logger.js";
import { LlmCancelledError, LlmOutputError, LlmUnavailableError } from "./errors.js";
import { extractJson } from "./json.js";
import { recordUsage, scopeSignal } from "./usage.js";

// One client for every agent: it talks to any OpenAI-compatible endpoint through ChatOpenAI, retries what
// is worth retrying, turns failures into the two errors the engine understands, and meters usage.
//
// Retries are done here rather than by LangChain: its AsyncCaller waits at least 1 s before the first
// retry (not configurable), gives up at once on a 429 without Retry-After, and cannot tell a stream that
// failed before its first token (safe to retry) from one that broke off mid-answer. So ChatOpenAI runs
// with maxRetries 0 (it already sets the OpenAI SDK's own retries to 0), and every request is made at
// most 1 + config.maxRetries times.

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

const DEFAULT_BASE_URL = "https://api.openai.com/v1";
const REPAIR_OUTPUT_CHARS = 4000;

interface Failure {
  retryable: boolean;
  reason: string;
  status?: number;
  retryAfterMs?: number;
}

interface CallResult {
  text: string;
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

/** True when `err` is an instance of a class called `name` (class identity breaks across package copies). */
function isKind(err: unknown, name: string): boolean {
  for (let p = err && typeof err === "object" ? Object.getPrototypeOf(err) : null; p; p = Object.getPrototypeOf(p)) {
    if (p.constructor?.name === name) return true;
  }
  return false;
}

function headerOf(err: unknown, name: string): string | undefined {
  const headers = (err as { headers?: unknown })?.headers;
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, unknown>)[name];
  return typeof value === "string" ? value : undefined;
}

/** Milliseconds asked for by retry-after-ms / Retry-After (seconds or an HTTP date), if any. */
function retryAfterMs(err: unknown): number | undefined {
  const ms = Number(headerOf(err, "retry-after-ms"));
  if (headerOf(err, "retry-after-ms") !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headerOf(err, "retry-after")?.trim();
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The network error code (ECONNREFUSED, ENOTFOUND…) somewhere in the cause chain. */
function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host lookup failed",
  EHOSTUNREACH: "host unreachable",
  ETIMEDOUT: "connection timed out",
};

/** Models that reject a temperature other than the default (OpenAI o-series and gpt-5 reasoning models). */
function isReasoningModel(model: string): boolean {
  return /^o\d/.test(model) || (model.startsWith("gpt-5") && !model.startsWith("gpt-5-chat"));
}

export class LlmClient {
  private readonly baseUrl: string;
  private readonly models = new Map<string, ChatOpenAI>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;

  constructor(
    private readonly config: LlmConfig,
    private readonly logger: Logger,
    options: LlmClientOptions = {},
  ) {
    if (!config.baseUrl && !config.apiKey) {
      throw new Error(
        "The LLM engine needs an endpoint: set OPENAI_BASE_URL or OPENAI_API_KEY " +
          "(OPENAI_BASE_URL for any OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; OPENAI_API_KEY alone uses api.openai.com).",
      );
    }
    // Always explicit, so that OPENAI_BASE_URL or LANGSMITH_GATEWAY in the environment cannot re-route calls.
    this.baseUrl = (config.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 8000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  }

  modelFor(role: LlmRole): string {
    return this.config.models[role] ?? this.config.model;
  }

  /** One chat completion; returns the answer's text. */
  async text(req: LlmRequest): Promise<string> {
    return (await this.complete(req, false)).text;
  }

  /** A streamed completion: `onToken` gets each piece in order; returns the whole text. */
  async stream(req: LlmRequest, onToken: (t: string) => void): Promise<string> {
    const model = this.chatModel(req.role, false, req.maxTokens);
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
    this.finish(req, model.model, started, attempts, value, "stream");
    return value.text;
  }

  /**
   * A JSON answer validated by `schema`. Invalid output (unparseable or failing the schema) gets one
   * repair call showing the model its output and the problems; still invalid → LlmOutputError.
   */
  async json<T>(req: LlmRequest & { schema: z.ZodType<T> }): Promise<T> {
    const { schema, ...base } = req;
    // Decided once, so that the repair call (whose prompt says "JSON") keeps the same system message.
    const hint = !/json/i.test(base.system + base.user);
    const first = await this.complete(base, true, hint);
    const checked = validate(first.text, schema);
    if (checked.ok) return checked.value;

    this.logger.info({ step: req.step, role: req.role, problems: checked.problems }, "LLM JSON invalid; asking for a repair");
    const repaired = await this.complete({ ...base, user: repairPrompt(base.user, first.text, checked.problems) }, true, hint);
    const second = validate(repaired.text, schema);
    if (second.ok) return second.value;
    throw new LlmOutputError(req.step, second.problems, repaired.text);
  }

  private async complete(req: LlmRequest, json: boolean, jsonHint = false): Promise<CallResult> {
    const model = this.chatModel(req.role, json, req.maxTokens);
    const messages = this.messages(req, jsonHint);
    const started = Date.now();
    const { value, attempts } = await this.withRetries(
      req,
      async (signal) => {
        const message = await model.invoke(messages, { signal });
        return {
          text: chunkText(message),
          promptTokens: message.usage_metadata?.input_tokens ?? 0,
          completionTokens: message.usage_metadata?.output_tokens ?? 0,
        };
      },
      () => true,
    );
    this.finish(req, model.model, started, attempts, value, json ? "json" : "text");
    return value;
  }

  private finish(req: LlmRequest, model: string, started: number, attempts: number, r: CallResult, mode: string): void {
    recordUsage({ prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens });
    this.logger.debug(
      {
        step: req.step,
        role: req.role,
        model,
        mode,
        ms: Date.now() - started,
        attempts,
        prompt_tokens: r.promptTokens,
        completion_tokens: r.completionTokens,
      },
      "LLM call",
    );
  }

  private messages(req: LlmRequest, jsonHint = false): BaseMessage[] {
    // The step line comes first and alone: logs and the scripted test server route on it.
    const step = req.step.replace(/\s+/g, " ").trim();
    let system = `ThreadML step: ${step}\n\n${req.system}`;
    // OpenAI rejects JSON mode unless the messages mention JSON; add the word when the prompt does not.
    if (jsonHint) system += "\n\nAnswer with one JSON object.";
    return [new SystemMessage(system), new HumanMessage(req.user)];
  }

  private chatModel(role: LlmRole, json: boolean, maxTokens?: number): ChatOpenAI {
    const key = `${role}|${json ? "json" : "text"}|${maxTokens ?? ""}`;
    let model = this.models.get(key);
    if (!model) {
      const name = this.modelFor(role);
      model = new ChatOpenAI({
        model: name,
        apiKey: this.config.apiKey ?? "not-needed",
        configuration: { baseURL: this.baseUrl },
        temperature: isReasoningModel(name) ? undefined : this.config.temperature,
        timeout: this.config.timeoutS * 1000,
        maxRetries: 0,
        maxTokens,
        streamUsage: true,
        modelKwargs: json ? { response_format: { type: "json_object" } } : undefined,
      });
      this.models.set(key, model);
    }
    return model;
  }

  /**
   * Runs `attempt` up to 1 + maxRetries times. Each attempt has its own deadline of timeoutS, which
   * `activity()` pushes back (streams: the limit is on silence, not on the answer's length); the
   * SDK's timeout only covers the wait for response headers.
   */
  private async withRetries<T>(
    req: LlmRequest,
    attempt: (signal: AbortSignal, activity: () => void) => Promise<T>,
    mayRetry: () => boolean,
  ): Promise<{ value: T; attempts: number }> {
    const timeoutMs = this.config.timeoutS * 1000;
    const cancel = scopeSignal();
    for (let n = 1; ; n++) {
      if (cancel?.aborted) throw new LlmCancelledError(req.step);
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
        const failure = this.classify(err, timedOut);
        if (failure.retryAfterMs !== undefined && failure.retryAfterMs > this.maxRetryAfterMs) {
          failure.retryable = false;
          failure.reason += `, asked to wait ${Math.round(failure.retryAfterMs / 1000)} s`;
        }
        const broken = failure.retryable && !mayRetry();
        if (broken) failure.reason += " (the streamed answer broke off)";
        if (!failure.retryable || broken || n > this.config.maxRetries) {
          throw new LlmUnavailableError({
            baseUrl: this.baseUrl,
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

  private classify(err: unknown, timedOut: boolean): Failure {
    const timeout = `timed out after ${this.config.timeoutS} s`;
    if (timedOut || isKind(err, "APIConnectionTimeoutError") || (err as Error)?.name === "TimeoutError") {
      return { retryable: true, reason: timeout };
    }
    const status = (err as { status?: unknown })?.status;
    if (typeof status === "number") {
      const detail = this.serverMessage(err);
      if (status === 429) {
        const code = (err as { code?: unknown }).code;
        // An exhausted quota or billing problem does not clear up within a retry window.
        if (code === "insufficient_quota" || /quota|billing/i.test(detail)) {
          return { retryable: false, status, reason: `HTTP 429 (${detail || "quota exhausted"})` };
        }
        return { retryable: true, status, reason: "HTTP 429 (rate limited)", retryAfterMs: retryAfterMs(err) };
      }
      if (status === 408 || status >= 500) return { retryable: true, status, reason: `HTTP ${status}`, retryAfterMs: retryAfterMs(err) };
      return { retryable: false, status, reason: detail ? `HTTP ${status}: ${detail}` : `HTTP ${status}` };
    }
    if (isKind(err, "APIConnectionError") || networkCode(err)) {
      const code = networkCode(err);
      const reason = code ? `${NETWORK_REASONS[code] ?? "connection failed"} (${code})` : "connection failed";
      return { retryable: true, reason };
    }
    // Anything else (a malformed stream, a bug) is reported as is; repeating it would not help.
    return { retryable: false, reason: `unexpected error: ${this.redact(String((err as Error)?.message ?? err))}` };
  }

  /** The server's own error text, short and without the API key (some servers echo it back). */
  private serverMessage(err: unknown): string {
    const body = (err as { error?: { message?: unknown } }).error;
    let text = typeof body?.message === "string" ? body.message : String((err as Error).message ?? "");
    text = text.replace(/^\d{3}\s+/, "").replace(/\s+/g, " ").trim();
    if (/status code \(no body\)/.test(text)) text = "";
    return this.redact(text.length > 200 ? `${text.slice(0, 200)}…` : text);
  }

  private redact(text: string): string {
    const key = this.config.apiKey;
    return key && key.length >= 4 ? text.split(key).join("[redacted]") : text;
  }
}

function chunkText(message: AIMessageChunk | { content: unknown; text: string }): string {
  return typeof message.content === "string" ? message.content : message.text;
}

function validate<T>(text: string, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; problems: string } {
  let data: unknown;
  try {
    data = extractJson(text);
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
