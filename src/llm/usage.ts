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

/** The conversation's request budget: requests made before this scope, and the most it may make. */
export interface CallBudget {
  before: number;
  max: number;
}

// The same scope carries the conversation's cancel signal, so a cancel also stops an LLM request in
// flight, and its request budget, so that a poor model cannot make a conversation call it without end.
interface Scope {
  usage: Usage;
  signal?: AbortSignal;
  budget?: CallBudget;
  /** Requests started in this scope (failed ones included), each also counted in `usage.calls`. */
  requests: number;
  /** A request was refused for want of budget. */
  refused: boolean;
}
const scope = new AsyncLocalStorage<Scope>();

/** Runs `fn` in a fresh usage scope (cancelled with `signal`) and returns what the LLM calls inside it used. */
export async function withUsage<T>(fn: () => Promise<T>, signal?: AbortSignal, budget?: CallBudget): Promise<{ result: T; usage: Usage; budgetSpent: boolean }> {
  const usage = zeroUsage();
  const store: Scope = { usage, signal, budget, requests: 0, refused: false };
  const result = await scope.run(store, fn);
  return { result, usage, budgetSpent: store.refused };
}

/**
 * Takes one request from the conversation's budget: false when it is spent. Every HTTP request counts,
 * retries and repairs included, so that the bound holds for what reaches the provider.
 */
export function takeRequest(): boolean {
  const s = scope.getStore();
  if (!s) return true;
  if (s.budget && s.budget.before + s.requests >= s.budget.max) {
    s.refused = true;
    return false;
  }
  s.requests += 1;
  s.usage.calls += 1;
  return true;
}

/** The cancel signal of the current scope, if any. */
export function scopeSignal(): AbortSignal | undefined {
  return scope.getStore()?.signal;
}

/** Adds a finished call's tokens to the current scope (a no-op outside any scope); takeRequest counted the call. */
export function recordUsage(tokens: { prompt_tokens?: number; completion_tokens?: number }): void {
  const usage = scope.getStore()?.usage;
  if (!usage) return;
  usage.prompt_tokens += tokens.prompt_tokens ?? 0;
  usage.completion_tokens += tokens.completion_tokens ?? 0;
}

/** Estimated cost in US dollars from prices per million tokens. */
export function estimateCost(usage: Usage, pricing: { promptPerMTok: number; completionPerMTok: number }): number {
  return (usage.prompt_tokens * pricing.promptPerMTok + usage.completion_tokens * pricing.completionPerMTok) / 1e6;
}
