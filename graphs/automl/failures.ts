import type { FailureClass } from "../../runners/contract.js";
import type { RunOutcome } from "../../runners/types.js";

export interface Classified {
  failure: FailureClass | "cancelled";
  message: string;
}

/** Routes a finished run to a failure class (docs/architecture.md §4), with a message fit for the thread. */
export function classifyOutcome(outcome: RunOutcome, limitS: number): Classified {
  if (outcome.cancelled) return { failure: "cancelled", message: "cancelled by the user" };
  if (outcome.timedOut)
    return { failure: "solution_stuck", message: `the run was stopped at the ${limitS} s wall-time limit` };
  // The runner stopped the run at limits.diskMb / memoryMb / pids: a plain sentence, no stderr noise,
  // and no result counts (it may be partial). The revision budgets bound what follows, as for timeouts.
  const limit = /^\[runner\] stopped at a limit: (.+)$/m.exec(outcome.stderrTail.split("\n").slice(-12).join("\n"))?.[1];
  if (limit) return { failure: /limits\.memoryMb/.test(limit) ? "runtime_error" : "environment_error", message: limit };
  const result = outcome.result;
  if (result?.error) return { failure: result.error.class, message: result.error.message };
  if (result && result.status === "ok") return { failure: "success", message: "ok" };
  const tail = outcome.stderrTail.trim().split("\n").slice(-6).join("\n");
  if (/MemoryError|Cannot allocate memory|std::bad_alloc/.test(tail))
    return { failure: "runtime_error", message: `the run ran out of memory (limit reached). ${tail}` };
  if (/ModuleNotFoundError|No module named/.test(tail)) return { failure: "environment_error", message: tail };
  const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
  return { failure: "runtime_error", message: `the harness ${how} without a result${tail ? `: ${tail}` : ""}` };
}
