import { AsyncLocalStorage } from "node:async_hooks";

// LLM usage is counted per graph stage: each stage runs inside a usage scope, every LLM call inside it
// adds its tokens, and the stage returns the total into the conversation's state. AsyncLocalStorage
// keeps concurrent conversations apart without passing a meter through every agent call.

export interface Usage {
  calls: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export const zeroUsage = (): Usage => ({ calls: 0, prompt_tokens: 0, completion_tokens: 0 });

// The same scope carries the conversation's cancel signal, so a cancel also stops an LLM request in flight.
const scope = new AsyncLocalStorage<{ usage: Usage; signal?: AbortSignal }>();

/** Runs `fn` in a fresh usage scope (cancelled with `signal`) and returns what the LLM calls inside it used. */
export async function withUsage<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<{ result: T; usage: Usage }> {
  const usage = zeroUsage();
  const result = await scope.run({ usage, signal }, fn);
  return { result, usage };
}

/** The cancel signal of the current scope, if any. */
export function scopeSignal(): AbortSignal | undefined {
  return scope.getStore()?.signal;
}

/** Adds one LLM call to the current scope (a no-op outside any scope). */
export function recordUsage(tokens: { prompt_tokens?: number; completion_tokens?: number }): void {
  const usage = scope.getStore()?.usage;
  if (!usage) return;
  usage.calls += 1;
  usage.prompt_tokens += tokens.prompt_tokens ?? 0;
  usage.completion_tokens += tokens.completion_tokens ?? 0;
}

/** Estimated cost in US dollars from prices per million tokens. */
export function estimateCost(usage: Usage, pricing: { promptPerMTok: number; completionPerMTok: number }): number {
  return (usage.prompt_tokens * pricing.promptPerMTok + usage.completion_tokens * pricing.completionPerMTok) / 1e6;
}
