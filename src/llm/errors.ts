// Errors the LLM client raises. Both are meant to be caught by the engine: their messages are written
// so that they can be shown in the chat thread as they are.

export interface LlmUnavailableDetails {
  baseUrl: string;
  step: string;
  /** Requests made, the first one included. */
  attempts: number;
  /** Short description of the last failure: "HTTP 500", "timed out after 60 s", "connection refused (ECONNREFUSED)". */
  reason: string;
  /** HTTP status of the last failure, when there was a response. */
  status?: number;
  /** False when the failure was not worth retrying (400, 401, 404, exhausted quota, a long Retry-After). */
  retryable: boolean;
  cause?: unknown;
}

/** The endpoint could not be used: it failed after all retries, or answered with an error retrying cannot fix. */
export class LlmUnavailableError extends Error {
  override name = "LlmUnavailableError";
  readonly baseUrl: string;
  readonly step: string;
  readonly attempts: number;
  readonly reason: string;
  readonly status?: number;
  readonly retryable: boolean;

  constructor(d: LlmUnavailableDetails) {
    const times = `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
    const message = d.retryable
      ? `The LLM at ${d.baseUrl} did not answer the ${d.step} step: ${d.reason} after ${times}.`
      : `The LLM at ${d.baseUrl} refused the ${d.step} step: ${d.reason} (not retried).`;
    super(message, d.cause === undefined ? undefined : { cause: d.cause });
    this.baseUrl = d.baseUrl;
    this.step = d.step;
    this.attempts = d.attempts;
    this.reason = d.reason;
    this.status = d.status;
    this.retryable = d.retryable;
  }
}

/** The model answered, but its output was still unusable after the repair round. */
export class LlmOutputError extends Error {
  override name = "LlmOutputError";
  readonly step: string;
  /** Why the last output was rejected (JSON parse error or schema issues, one per line). */
  readonly validation: string;
  /** The last raw output, truncated, for logs and debugging. */
  readonly output: string;

  constructor(step: string, validation: string, output = "") {
    super(
      `The LLM's answer for the ${step} step was not in the expected format, even after asking it to correct itself:\n${validation}`,
    );
    this.step = step;
    this.validation = validation;
    this.output = output.length > 2000 ? `${output.slice(0, 2000)}…` : output;
  }
}

/** The conversation was cancelled while an LLM request was in flight (or waiting to be retried). */
export class LlmCancelledError extends Error {
  override name = "LlmCancelledError";
  constructor(readonly step: string) {
    super(`The ${step} step was cancelled.`);
  }
}

/**
 * The conversation has made all the LLM requests it may (llm.maxCalls). A kind of output error, so that
 * every step that falls back to its offline answer on unusable output does so here too.
 */
export class LlmBudgetError extends LlmOutputError {
  override name = "LlmBudgetError";
  constructor(step: string, max: number) {
    super(step, `the conversation has used all ${max} LLM requests it may make (llm.maxCalls)`);
    this.message = `The ${step} step was not sent to the LLM: this conversation has used all ${max} LLM requests it may make (llm.maxCalls).`;
  }
}
