// Which failures of an LLM request are worth repeating, and a short reason for the thread. The four
// providers' SDKs throw differently: OpenAI's and Anthropic's APIError carry `status` and `headers`,
// Google's fetch error `status`, Ollama's ResponseError `status_code`; a connection that fails or
// breaks off surfaces as fetch's TypeError with an undici or errno code somewhere in its causes.

export interface Failure {
  retryable: boolean;
  reason: string;
  status?: number;
  retryAfterMs?: number;
}

/** True when `err` is an instance of a class called `name` (class identity breaks across package copies). */
export function isKind(err: unknown, name: string): boolean {
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

/** Each error in the cause chain, the error itself first. */
function* causes(err: unknown): Generator<Record<string, unknown>> {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === "object" && depth < 6; depth++) {
    yield e as Record<string, unknown>;
    e = (e as { cause?: unknown }).cause;
  }
}

/** The network error code (ECONNREFUSED, UND_ERR_SOCKET…) somewhere in the cause chain. */
function networkCode(err: unknown): string | undefined {
  for (const e of causes(err)) {
    if (typeof e.code === "string" && /^(?:E[A-Z_]+|UND_ERR_[A-Z_]+)$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** The HTTP status, under whichever name the provider's SDK uses. */
function statusOf(err: unknown): number | undefined {
  for (const e of causes(err)) {
    for (const key of ["status", "status_code", "statusCode"]) {
      const v = e[key];
      if (typeof v === "number" && v >= 100 && v < 600) return v;
    }
  }
  return undefined;
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ECONNABORTED: "connection aborted",
  EPIPE: "connection closed while sending",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  UND_ERR_SOCKET: "the connection broke off mid-answer",
  UND_ERR_CLOSED: "the connection was closed",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "no response headers in time",
  UND_ERR_BODY_TIMEOUT: "the answer stalled",
};

/** The server's own error text, one line, at most 200 characters (redaction is the caller's). */
function serverMessage(err: unknown): string {
  const e = err as { error?: unknown; errorDetails?: unknown; message?: unknown };
  const body = e.error as { message?: unknown; error?: { message?: unknown } } | string | undefined;
  let text =
    typeof body === "string"
      ? body // Ollama: { error: "model 'x' not found" }
      : typeof body?.message === "string"
        ? body.message // OpenAI: { error: { message } }
        : typeof body?.error?.message === "string"
          ? body.error.message // Anthropic: { type: "error", error: { type, message } }
          : String(e.message ?? "");
  // Gemini's SDK puts "[GoogleGenerativeAI Error]: Error fetching from <URL>: [400 Bad Request]" first.
  text = text
    .replace(/^\d{3}\s+/, "")
    .replace(/^\[GoogleGenerativeAI Error\]:\s*/, "")
    .replace(/^Error fetching from \S+:\s*(?:\[\d{3}[^\]]*\]\s*)?/, "")
    .replace(/\s+/g, " ")
    .trim();
  if (/status code \(no body\)/.test(text)) text = "";
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Classifies a failed request; `timedOut` is set when the client's own deadline aborted it. */
export function classify(err: unknown, timedOut: boolean, timeoutS: number): Failure {
  const timeout = `timed out after ${timeoutS} s`;
  if (timedOut || isKind(err, "APIConnectionTimeoutError") || (err as Error)?.name === "TimeoutError") {
    return { retryable: true, reason: timeout };
  }
  const status = statusOf(err);
  if (status !== undefined) {
    const detail = serverMessage(err);
    if (status === 429) {
      const code = (err as { code?: unknown }).code;
      // An exhausted quota or billing problem does not clear up within a retry window.
      if (code === "insufficient_quota" || /quota|billing|credit balance/i.test(detail)) {
        return { retryable: false, status, reason: `HTTP 429 (${detail || "quota exhausted"})` };
      }
      return { retryable: true, status, reason: "HTTP 429 (rate limited)", retryAfterMs: retryAfterMs(err) };
    }
    // 5xx includes Anthropic's 529 "overloaded"; 501 (a feature the server lacks) does not clear up.
    if (status === 408 || status === 409 || (status >= 500 && status !== 501)) return { retryable: true, status, reason: `HTTP ${status}`, retryAfterMs: retryAfterMs(err) };
    return { retryable: false, status, reason: detail ? `HTTP ${status}: ${detail}` : `HTTP ${status}` };
  }
  const code = networkCode(err);
  if (code || isKind(err, "APIConnectionError")) {
    return { retryable: true, reason: code ? `${NETWORK_REASONS[code] ?? "connection failed"} (${code})` : "connection failed" };
  }
  const message = String((err as Error)?.message ?? err);
  // fetch's own words for a body cut off (undici "terminated") or a connection that never opened.
  // (Gemini's SDK wraps them without a cause: "Error fetching from …: fetch failed", "Error reading from the stream".)
  const broke = /\b(terminated|fetch failed|other side closed|Error reading from the stream)$/i.exec(message);
  if (broke) return { retryable: true, reason: `the connection broke off (${broke[1]})` };
  // A 200 whose body is not the JSON the SDK expects: a proxy or server glitch, safe to ask again.
  if (err instanceof SyntaxError || /Unexpected (?:token|end of JSON)|is not valid JSON/.test(message)) {
    return { retryable: true, reason: "the server's answer was not well-formed" };
  }
  // Anything else (a bug, an SDK refusing its own input) is reported as is; repeating it would not help.
  return { retryable: false, reason: `unexpected error: ${message.length > 300 ? `${message.slice(0, 300)}…` : message}` };
}

/** How the provider stopped an answer it threw for (OpenAI's parse path), if it did. */
export function answerCut(err: unknown): "length" | "content_filter" | null {
  const named = (name: string) => isKind(err, name) || (err as Error)?.name === name;
  if (named("LengthFinishReasonError")) return "length";
  if (named("ContentFilterFinishReasonError")) return "content_filter";
  return null;
}

/**
 * The server refused the structured mode itself (a 400/422 naming response_format, json_schema, tools,
 * format or schema): worth one more try in plain JSON mode, remembered for the model.
 */
export function refusedStructuredMode(failure: Failure): boolean {
  return (
    (failure.status === 400 || failure.status === 422 || failure.status === 501) &&
    /response_format|json_schema|json schema|response_?schema|schema|\btools?\b|tool_choice|\bformat\b|function call/i.test(failure.reason)
  );
}
