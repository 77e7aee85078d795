import { extractCode } from "../../../../src/llm/json.js";
import { quote, type PromptVars } from "../../../../src/llm/prompts.js";
import type { Requirements } from "../../../../src/schema/requirements.js";
import { FALLBACK_NOTE, OfflineOperationAgent, renderSolution } from "../offline/operation.js";
import { pyLiteral } from "../../python-source.js";
import type {
  FixInput,
  Implementation,
  Instructions,
  OperationAgent,
} from "../types.js";
import { LlmBudgetError, LlmUnavailableError } from "../../../../src/llm/errors.js";
import { askText, clip, isOutputError, nonNumericWishes, type Client } from "./shared.js";

// The LLM operation agent writes solution.py into the harness's slots. Every answer is checked before
// it is run; a draft that fails the check, and every run that fails, count as failed attempts. After
// `codeAttempts` of them the offline template (the chosen estimator with its searched hyperparameters)
// takes over, and the implementation says so.

export { FALLBACK_NOTE };

/** How the harness hands this task's data to the solution's slots. */
export function variantNotes(req: Requirements): string {
  if (req.task === "time_series_forecasting")
    return (
      `Forecasting ${req.forecast?.horizon ?? "?"} steps ahead. The harness builds the rows: X holds features of the history at each forecast origin ` +
      "(level, lags and rolling statistics relative to the last value and the recent scale, seasonal values, calendar terms, exogenous inputs, the step ahead, and a categorical 'series' column when there are several series); " +
      "y is the change from the last observed value in units of that recent scale. The harness turns predictions back into values, runs the multi-step forecasts and computes every metric; " +
      "ctx.horizon, ctx.frequency, ctx.season_length and ctx.strategy describe the setup. Never shuffle or re-split the rows."
    );
  if (req.task === "node_classification")
    return (
      "Node classification. X holds one row per labelled node: its own features and the features propagated over the graph (columns x:*, h1:*, h2:*, log_degree), all numeric. " +
      "Treat it as tabular classification; the graph is already in the features."
    );
  if (req.task === "image_classification")
    return (
      `Image classification. X has one column, "image", holding uint8 arrays of shape (size, size, 3) (ctx.image_size). ctx.preprocessor(scale=...) returns the image feature extractor ` +
      "(pixels, colour and gradient histograms; a scaler after it when scale=True) to put first in a Pipeline. A model that takes the images themselves (the CNN, variant_images.SmallCNNClassifier) is used without a preprocessor."
    );
  return "A table: X holds the feature columns as they are in the data.";
}

/** Why generated code cannot be run as a solution, or null when it passes the static checks. */
export function checkCode(code: string, estimator: string): string | null {
  if (!code.trim()) return "the answer held no code";
  if (!/^def\s+build\s*\(/m.test(code)) return "it does not define build(ctx) at the top level";
  const cls = estimator.slice(estimator.lastIndexOf(".") + 1);
  if (cls && !new RegExp(`\\b${cls.replace(/[^\w]/g, "")}\\b`).test(code)) return `it does not use ${cls}, the estimator that was chosen`;
  if (/\b(?:read_csv|read_parquet|read_excel|read_json|read_table|loadtxt|genfromtxt)\s*\(|(?<![\w.])open\s*\(/.test(code))
    return "it reads files itself, but the harness supplies the data";
  if (/^\s*(?:import|from)\s+(?:subprocess|socket|requests|urllib|http|shutil)\b|\bos\.system\s*\(/m.test(code))
    return "it uses process, network or file-system calls that the sandbox does not allow";
  return null;
}

/**
 * The module-level `PARAMS = {...}` literal of generated code as JSON, or null when absent or not a
 * plain literal (numbers, strings, None, True, False, lists, tuples, nested dicts).
 */
export function readParams(code: string): Record<string, unknown> | null {
  const m = /^PARAMS\s*=\s*\{/m.exec(code);
  if (!m) return null;
  let i = m.index + m[0].length - 1;
  let depth = 0;
  let json = "";
  while (i < code.length) {
    const c = code[i];
    if (c === "'" || c === '"') {
      const end = closingQuote(code, i);
      if (end < 0) return null;
      const body = code.slice(i + 1, end).replace(/\\'/g, "'");
      json += JSON.stringify(body.replace(/\\"/g, '"'));
      i = end + 1;
      continue;
    }
    if (c === "#") {
      while (i < code.length && code[i] !== "\n") i++;
      continue;
    }
    if (/[\d.]/.test(c)) {
      const num = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(code.slice(i));
      if (!num) return null;
      json += Number(num[0].replace(/\.$/, "")).toString();
      i += num[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_]\w*/.exec(code.slice(i))![0];
      const lit = word === "None" ? "null" : word === "True" ? "true" : word === "False" ? "false" : null;
      if (lit === null) return null;
      json += lit;
      i += word.length;
      continue;
    }
    if (c === "{" || c === "[" || c === "(") depth++;
    if (c === "}" || c === "]" || c === ")") depth--;
    json += c === "(" ? "[" : c === ")" ? "]" : c;
    i++;
    if (depth === 0) break;
  }
  try {
    const value: unknown = JSON.parse(json.replace(/,\s*([}\]])/g, "$1"));
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function closingQuote(text: string, start: number): number {
  const q = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === q) return i;
    else if (text[i] === "\n") return -1;
  }
  return -1;
}

/** The one-line summary a fix answer starts with ("SUMMARY: ..."), if any. */
export function readSummary(answer: string): string | null {
  const m = /^\s*(?:[*_#>-]+\s*)?summary\s*(?:[*_]+)?\s*:\s*(?:[*_]+\s*)?(.+)$/im.exec(answer);
  const s = m ? clip(m[1].replace(/[*_`]+$/g, ""), 200) : "";
  return s || null;
}

export interface OperationOptions {
  /** Generated drafts and failed runs per candidate before the offline template takes over. */
  codeAttempts: number;
}

export class LlmOperationAgent implements OperationAgent {
  private readonly offline = new OfflineOperationAgent();
  private readonly attempts: number;

  constructor(
    private readonly client: Client,
    options: OperationOptions,
  ) {
    this.attempts = Math.max(1, Math.floor(options.codeAttempts));
  }

  async implement({ instructions, requirements }: { instructions: Instructions; requirements: Requirements }): Promise<Implementation> {
    const c = instructions.candidate;
    const rejected: string[] = [];
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const vars = { ...this.contractVars(instructions, requirements), previous_problem: rejected.length ? quote(rejected.join("\n"), 1000, "why the last draft was rejected") : "(none)" };
      const problem = await this.draft("implement", vars, c.estimator);
      if ("code" in problem) {
        return {
          code: problem.code,
          candidateId: c.id,
          description: `${c.label}, generated code`,
          params: readParams(problem.code) ?? c.params,
          adjustments: rejected,
        };
      }
      rejected.push(`generated draft ${attempt} was rejected: ${problem.reason}`);
      if (problem.last) return this.template(instructions, requirements, rejected, attempt);
    }
    return this.template(instructions, requirements, rejected, this.attempts);
  }

  async fix(input: FixInput): Promise<Implementation | null> {
    const { instructions, requirements, previous } = input;
    // Once on the template, the offline rules (shrink, reset) make the further fixes.
    if (previous.adjustments.some((a) => a.startsWith(FALLBACK_NOTE))) {
      return this.offline.fix(input);
    }
    const c = instructions.candidate;
    // Every earlier adjustment of this lineage is a rejected draft or a fix whose run failed, and the
    // previous implementation's own run has just failed too.
    let failed = previous.adjustments.length + 1;
    const drafts: string[] = [];
    while (failed < this.attempts) {
      const vars = {
        ...this.contractVars(instructions, requirements),
        code: quote(previous.code, 12000, "solution.py that failed"),
        failure: input.failure,
        message: quote(input.message || "(no message)", 3000, "failure message"),
        memory: quote(input.memory.length ? input.memory.map((m) => `- ${m}`).join("\n") : "(none yet)", 2000, "fixes already tried"),
        rejected: drafts.length ? quote(drafts.join("\n"), 1000, "rejected drafts") : "(none)",
        attempt: failed + 1,
        attempts: this.attempts,
      };
      const result = await this.draft("fix", vars, c.estimator);
      let problem = "code" in result ? null : result.reason;
      if ("code" in result) {
        const summary = readSummary(result.answer) ?? `rewrote the code after ${input.failure}`;
        if (result.code.trim() === previous.code.trim()) problem = "it returned the failing code unchanged";
        else if (input.memory.includes(summary)) problem = `it repeats a fix already tried (${summary})`;
        else
          return {
            code: result.code,
            candidateId: c.id,
            description: `${c.label}, generated code (${summary})`,
            params: readParams(result.code) ?? previous.params,
            adjustments: [...previous.adjustments, ...drafts, summary],
          };
      }
      drafts.push(`fix draft ${failed + 1} was rejected: ${problem}`);
      failed++;
      if ("last" in result && result.last) break;
    }
    return this.template(instructions, requirements, [...previous.adjustments, ...drafts], failed);
  }

  /**
   * One generation: the checked code, or why there is none. An unusable answer is a failed attempt; an
   * LLM that did not answer at all (after the client's retries) or a spent request budget ends the
   * attempts (`last`), since the template needs no model.
   */
  private async draft(step: "implement" | "fix", vars: PromptVars, estimator: string): Promise<{ code: string; answer: string } | { reason: string; last?: true }> {
    let answer: string;
    try {
      answer = await askText(this.client, "operation", step, vars, 4000);
    } catch (err) {
      if (err instanceof LlmBudgetError || (err as Error)?.name === "LlmBudgetError") return { reason: "the conversation's LLM requests are spent", last: true };
      if (isOutputError(err)) return { reason: "the model's answer was unusable" };
      if (err instanceof LlmUnavailableError || (err as Error)?.name === "LlmUnavailableError")
        return { reason: `the LLM did not answer (${(err as LlmUnavailableError).reason})`, last: true };
      throw err;
    }
    const code = extractCode(answer, "python");
    const reason = checkCode(code, estimator);
    return reason ? { reason } : { code: `${code.trimEnd()}\n`, answer };
  }

  private template(instructions: Instructions, requirements: Requirements, prior: string[], failed: number): Implementation {
    const c = instructions.candidate;
    const note = `${FALLBACK_NOTE} after ${failed} failed attempt${failed === 1 ? "" : "s"}`;
    return {
      code: renderSolution(c, requirements, instructions.planId, [note]),
      candidateId: c.id,
      description: `${c.label} with searched hyperparameters (offline template)`,
      params: c.params,
      adjustments: [...prior, note],
    };
  }

  /** What both code prompts state about the task and the chosen candidate. */
  private contractVars(instructions: Instructions, req: Requirements): PromptVars {
    const c = instructions.candidate;
    const at = c.estimator.lastIndexOf(".");
    return {
      task: req.task,
      target: req.target === null ? "(none: clustering)" : quote(req.target, 200, "target column"),
      metric: `${req.metric.name} (${req.metric.direction === "max" ? "higher" : "lower"} is better)`,
      positive_class: req.positive_class === null ? "(harness default)" : quote(req.positive_class, 100, "positive class"),
      n_clusters: req.n_clusters === null ? "(not fixed; use ctx.n_clusters when set)" : String(req.n_clusters),
      estimator: c.estimator,
      module: c.estimator.slice(0, at),
      class_name: c.estimator.slice(at + 1),
      label: c.label,
      params: pyLiteral(c.params),
      preprocess: c.preprocess.raw
        ? "none: the model takes the images themselves (no ctx.preprocessor)"
        : `scale=${pyLiteral(c.preprocess.scale)}, encode=${pyLiteral(c.preprocess.encode)}`,
      data: variantNotes(req),
      constraints: quote(
        req.constraints.length ? req.constraints.map((k) => `${k.name} ${k.op} ${k.target}`).join("\n") : "(none)",
        1000,
        "constraints",
      ),
      wishes: quote(nonNumericWishes(req).join("\n") || "(none)", 1500, "other wishes"),
      dropped: quote(instructions.dropColumns.length ? instructions.dropColumns.join(", ") : "(none)", 1000, "columns the harness removes"),
      notes: quote(instructions.notes.join("\n") || "(none)", 1500, "notes from selection"),
    };
  }
}
