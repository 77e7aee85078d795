import { join } from "node:path";
import { estimateCost } from "../../src/llm/usage.js";
import { taskSpec } from "../../src/schema/tasks.js";
import { fmt } from "./format.js";
import { trainingLines } from "./report-training.js";
import type { Report, State, Status } from "./state.js";

const TERMINAL: Status[] = ["failed", "rejected", "cancelled"];

export function curlExample(url: string, row: Record<string, unknown> | undefined, request?: unknown, token?: string): string {
  const post = `curl -s -X POST ${url}/predict -H 'Content-Type: application/json'${token ? ` -H 'Authorization: Bearer ${token.replace(/'/g, "'\\''")}'` : ""}`;
  if (request && typeof request === "object" && "images" in request) {
    // an image goes in as base64: the shell encodes the user's own file
    return `${post} -d "{\\"images\\": [\\"$(base64 -w0 your-image.png)\\"]}"`;
  }
  const json = JSON.stringify(request ?? { rows: [row ?? {}] });
  if (json.length > MAX_CURL_BODY && request && typeof request === "object" && "history" in request) {
    // a series' history is long: the example posts it from a file and shows its shape
    const history = (request as { history: unknown[] }).history;
    const shape = JSON.stringify({ ...(request as object), history: [history[0], "…"] });
    return `${post} -d @request.json   # request.json: ${shape} (${history.length} rows here)`;
  }
  return `${post} -d '${json.replace(/'/g, "'\\''")}'`;
}

const MAX_CURL_BODY = 1200;

export function finalStatus(state: State): Status {
  if (TERMINAL.includes(state.status)) return state.status;
  if (state.endpoint?.check.ok) return "deployed";
  if (state.best) return "trained";
  return state.status === "running" ? "failed" : state.status;
}

export function buildReport(state: State, pricing: { promptPerMTok: number; completionPerMTok: number }): Report {
  const status = finalStatus(state);
  const best = state.best;
  const req = state.requirements;
  const metrics = best?.result.metrics ?? {};
  const constraints = best ? best.verdict.checks.map(({ phrase: _p, ...c }) => c) : (req?.constraints ?? []).map((c) => ({ name: c.name, op: c.op, target: c.target, actual: null, met: null }));
  const summary: string[] = [];
  if (status === "rejected" || status === "failed") summary.push(state.error ?? "Something went wrong.");
  if (status === "cancelled") summary.push(best ? "Cancelled; the best model trained so far is kept in its workspace." : "Cancelled. Nothing was deployed.");
  if (best && req) {
    const baseline = metrics[`baseline_${req.metric.name}`];
    const beside = baseline === undefined ? "" : ` (seasonal-naive forecast: ${fmt(baseline)})`;
    summary.push(`${best.description}, ${taskSpec(req.task).label}${req.target ? ` of "${req.target}"` : ""}; ${req.metric.name} on the held-out test split: ${fmt(metrics[req.metric.name])}${beside}.`);
    const unmet = best.verdict.checks.filter((c) => c.met === false);
    summary.push(unmet.length ? `${unmet.length} constraint(s) not met: ${unmet.map((c) => c.name).join(", ")}.` : constraints.length ? "Every constraint is met." : "No constraints were given.");
  }
  const comparison = best && req && state.earlier.length ? compareWithEarlier(state, status) : null;
  if (comparison) summary.push(comparison.line);
  // Only the intake's host-owned copies: never a path that generated code chose or could swap for a link.
  const taken = best?.artifacts ?? null;
  const endpoint = state.endpoint;
  return {
    status,
    title: status === "deployed" ? "Model deployed" : status === "trained" ? "Model trained" : `Conversation ${status}`,
    summary,
    metrics,
    constraints,
    endpoint,
    curl: endpoint ? curlExample(endpoint.url, best?.result.sample?.rows[0] as Record<string, unknown> | undefined, best?.result.sample?.request, endpoint.token) : null,
    artifacts: {
      model: taken?.model ?? null,
      code: taken?.code ?? null,
      report: taken ? join(taken.dir, "report.md") : null,
      plots: taken?.plots ?? [],
    },
    notices: [...new Set(state.notices)],
    training: trainingLines(state),
    ...(comparison ? { comparison: comparison.table } : {}),
    llm: state.llm.calls ? { ...state.llm, cost_usd: Math.round(estimateCost(state.llm, pricing) * 1e6) / 1e6 } : null,
  };
}

/**
 * The retrained model beside the thread's earlier ones, judged by the primary metric of this request
 * (the earlier models' test metrics are those the registry recorded when they were trained).
 */
function compareWithEarlier(state: State, status: Status): { line: string; table: NonNullable<Report["comparison"]> } {
  const best = state.best!;
  const metric = state.requirements!.metric;
  const value = best.result.metrics[metric.name];
  const checks = best.verdict.checks;
  const met = (cs: Array<{ met: boolean | null }>) => (cs.length ? `${cs.filter((c) => c.met === true).length}/${cs.length}` : "none set");
  const rows = [
    [`${best.description} (this run)`, "new", fmt(value), met(checks), state.endpoint?.serving ? "serving" : status === "deployed" ? "stopped" : status],
    ...state.earlier.map((e) => [e.description, e.name, fmt(e.metrics[metric.name]), met(e.constraints), e.status]),
  ];
  const previous = state.earlier[state.earlier.length - 1];
  const before = previous.metrics[metric.name];
  let verdict = "";
  if (value !== undefined && before !== undefined) {
    const better = metric.direction === "max" ? value > before : value < before;
    verdict = value === before ? ", the same" : better ? ", better" : ", worse";
  }
  const line = `Compared with ${previous.name} (${previous.description}): ${metric.name} ${fmt(before)} → ${fmt(value)}${verdict}.`;
  return { line, table: { header: ["model", "name", `${metric.name} (test)`, "constraints met", "status"], rows } };
}

export function renderMarkdown(report: Report, state: State): string {
  const lines = [`# ThreadML — ${report.title}`, "", ...report.summary.map((s) => `- ${s}`), ""];
  if (Object.keys(report.metrics).length) {
    lines.push("## Metrics (held-out test split)", "", "| metric | value |", "|---|---|");
    for (const [k, v] of Object.entries(report.metrics)) lines.push(`| ${k} | ${fmt(v)} |`);
    lines.push("");
  }
  if (report.constraints.length) {
    lines.push("## Constraints", "", "| constraint | target | actual | met |", "|---|---|---|---|");
    for (const c of report.constraints) lines.push(`| ${c.name} | ${c.op} ${c.target} | ${fmt(c.actual)} | ${c.met === null ? "not measured" : c.met ? "yes" : "no"} |`);
    lines.push("");
  }
  if (report.comparison) {
    lines.push("## Compared with the thread's earlier models", "", `| ${report.comparison.header.map(mdText).join(" | ")} |`, `|${report.comparison.header.map(() => "---").join("|")}|`);
    for (const row of report.comparison.rows) lines.push(`| ${row.map(mdText).join(" | ")} |`);
    lines.push("");
  }
  if (report.training?.length) lines.push("## How it was trained", "", ...report.training.map((t) => `- ${mdText(t)}`), "");
  const complexity = state.best?.result.complexity ?? {};
  if (Object.keys(complexity).length) {
    lines.push("## Cost", "", ...Object.entries(complexity).map(([k, v]) => `- ${k}: ${fmt(v)}`), "");
  }
  if (state.plans.length) {
    lines.push("## Plans", "");
    for (const p of state.plans) lines.push(`- **${p.id}: ${p.title}** — ${p.summary}`);
    lines.push("");
  }
  if (report.endpoint) lines.push("## Endpoint", "", `${report.endpoint.url} (${report.endpoint.serving ? "serving" : "stopped after its check"})`, "", "```", report.curl ?? "", "```", "");
  if (report.llm)
    lines.push("## LLM use", "", `${report.llm.calls} calls, ${report.llm.prompt_tokens} prompt and ${report.llm.completion_tokens} completion tokens, about $${report.llm.cost_usd.toFixed(4)}.`, "");
  if (report.notices.length) lines.push("## Notes", "", ...report.notices.map((n) => `- ${n}`), "");
  return lines.join("\n");
}

/** Column names in markdown: markup characters shown as themselves (report.md is rendered by viewers). */
const mdText = (text: string) => text.replace(/[\\`*_{}[\]<>()#+!|~]/g, "\\$&");
