// Request-reading benchmark: exact-match accuracy of the offline engine on every request set
// (REQUEST_SETS in tests/helpers/reading-corpus.ts), the failing cases, and the time to read one request
// (manager assessment plus requirements or understanding), median and p95. Run with
// `npm run bench:reading`; `--failures NAME` (repeatable, e.g. `--failures heldout.jsonl`) lists more sets'
// failures than the development set's, `--repeat N` sets the speed runs.

import { parseArgs } from "node:util";
import { forgetReadings } from "../../graphs/automl/request/reading.js";
import { DEV_CORPUS, HELDOUT_CORPUS, REQUEST_SETS, evaluateCase, evaluateCorpus, formatFailures, loadCorpus, type CaseResult } from "../helpers/reading-corpus.js";

const { values: args } = parseArgs({
  options: {
    failures: { type: "string", multiple: true, default: [] },
    repeat: { type: "string", default: "5" },
  },
});
const REPEAT = Math.max(1, Number(args.repeat) || 5);
const listed = new Set(["corpus.jsonl", ...(args.failures ?? [])]);

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function line(name: string, cases: CaseResult[], accuracy: number, wrong: number): string {
  const right = cases.filter((c) => c.ok).length;
  const asked = cases.filter((c) => !c.ok && !c.wrong).length;
  return `| ${name} | ${cases.length} | ${right} | ${(100 * accuracy).toFixed(1)}% | ${wrong} | ${asked} |`;
}

const results = [];
for (const set of REQUEST_SETS) results.push({ name: set.name, ...(await evaluateCorpus(set.file)) });

console.log("## Request reading\n");
console.log("| corpus | cases | right | accuracy | settled wrong | other failures |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of results) console.log(line(r.name, r.cases, r.accuracy, r.wrong));

for (const r of results.filter((x) => listed.has(x.name))) {
  console.log(`\n### Failing cases, ${r.name} (${r.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(r.cases) || "(none)");
  console.log("```");
}

// Speed: every case of both files, REPEAT times (profiles are cached, so this is the reading alone).
const all = [...(await loadCorpus(DEV_CORPUS)), ...(await loadCorpus(HELDOUT_CORPUS))];
const times: number[] = [];
for (let r = 0; r < REPEAT; r++)
  for (const c of all) {
    forgetReadings();
    times.push((await evaluateCase(c)).ms);
  }
times.sort((a, b) => a - b);
console.log(`\n### Speed\n`);
console.log(
  `${all.length} requests x ${REPEAT}: median ${quantile(times, 0.5).toFixed(3)} ms, p95 ${quantile(times, 0.95).toFixed(3)} ms, max ${times[times.length - 1].toFixed(3)} ms per request`,
);
