// Request-reading benchmark: exact-match accuracy of the offline engine on the request corpus
// (tests/fixtures/requests/corpus.jsonl, the development set, heldout.jsonl, unseen.jsonl, final.jsonl, fresh.jsonl, fresh2.jsonl and fresh3.jsonl),
// the failing cases, and the time to read one request (manager assessment plus requirements or
// understanding), median and p95. Run with `npm run bench:reading` (`--heldout-failures` /
// `--unseen-failures` / `--final-failures` / `--fresh-failures` / `--fresh2-failures` / `--fresh3-failures` to list those sets' failures too, `--repeat N`).

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEV_CORPUS, HELDOUT_CORPUS, evaluateCase, evaluateCorpus, formatFailures, loadCorpus, type CaseResult } from "../helpers/reading-corpus.js";

const { values: args } = parseArgs({
  options: {
    "heldout-failures": { type: "boolean", default: false },
    "unseen-failures": { type: "boolean", default: false },
    "final-failures": { type: "boolean", default: false },
    "fresh-failures": { type: "boolean", default: false },
    "fresh2-failures": { type: "boolean", default: false },
    "fresh3-failures": { type: "boolean", default: false },
    repeat: { type: "string", default: "5" },
  },
});
const REPEAT = Math.max(1, Number(args.repeat) || 5);
const UNSEEN_CORPUS = fileURLToPath(new URL("../fixtures/requests/unseen.jsonl", import.meta.url));
const FINAL_CORPUS = fileURLToPath(new URL("../fixtures/requests/final.jsonl", import.meta.url));
const FRESH_CORPUS = fileURLToPath(new URL("../fixtures/requests/fresh.jsonl", import.meta.url));
const FRESH2_CORPUS = fileURLToPath(new URL("../fixtures/requests/fresh2.jsonl", import.meta.url));
const FRESH3_CORPUS = fileURLToPath(new URL("../fixtures/requests/fresh3.jsonl", import.meta.url));

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

const dev = await evaluateCorpus(DEV_CORPUS);
const heldout = await evaluateCorpus(HELDOUT_CORPUS);
const unseen = await evaluateCorpus(UNSEEN_CORPUS);
const final = await evaluateCorpus(FINAL_CORPUS);
const fresh = await evaluateCorpus(FRESH_CORPUS);
const fresh2 = await evaluateCorpus(FRESH2_CORPUS);
const fresh3 = await evaluateCorpus(FRESH3_CORPUS);

console.log("## Request reading\n");
console.log("| corpus | cases | right | accuracy | settled wrong | other failures |");
console.log("|---|---:|---:|---:|---:|---:|");
console.log(line("corpus.jsonl (dev)", dev.cases, dev.accuracy, dev.wrong));
console.log(line("heldout.jsonl", heldout.cases, heldout.accuracy, heldout.wrong));
console.log(line("unseen.jsonl", unseen.cases, unseen.accuracy, unseen.wrong));
console.log(line("final.jsonl", final.cases, final.accuracy, final.wrong));
console.log(line("fresh.jsonl", fresh.cases, fresh.accuracy, fresh.wrong));
console.log(line("fresh2.jsonl", fresh2.cases, fresh2.accuracy, fresh2.wrong));
console.log(line("fresh3.jsonl", fresh3.cases, fresh3.accuracy, fresh3.wrong));

console.log(`\n### Failing cases, corpus.jsonl (${dev.cases.filter((c) => !c.ok).length})\n`);
console.log("```");
console.log(formatFailures(dev.cases) || "(none)");
console.log("```");
if (args["heldout-failures"]) {
  console.log(`\n### Failing cases, heldout.jsonl (${heldout.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(heldout.cases) || "(none)");
  console.log("```");
}
if (args["unseen-failures"]) {
  console.log(`\n### Failing cases, unseen.jsonl (${unseen.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(unseen.cases) || "(none)");
  console.log("```");
}
if (args["final-failures"]) {
  console.log(`\n### Failing cases, final.jsonl (${final.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(final.cases) || "(none)");
  console.log("```");
}
if (args["fresh-failures"]) {
  console.log(`\n### Failing cases, fresh.jsonl (${fresh.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(fresh.cases) || "(none)");
  console.log("```");
}
if (args["fresh2-failures"]) {
  console.log(`\n### Failing cases, fresh2.jsonl (${fresh2.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(fresh2.cases) || "(none)");
  console.log("```");
}
if (args["fresh3-failures"]) {
  console.log(`\n### Failing cases, fresh3.jsonl (${fresh3.cases.filter((c) => !c.ok).length})\n`);
  console.log("```");
  console.log(formatFailures(fresh3.cases) || "(none)");
  console.log("```");
}

// Speed: every case of both files, REPEAT times (profiles are cached, so this is the reading alone).
const all = [...(await loadCorpus(DEV_CORPUS)), ...(await loadCorpus(HELDOUT_CORPUS))];
const times: number[] = [];
for (let r = 0; r < REPEAT; r++) for (const c of all) times.push((await evaluateCase(c)).ms);
times.sort((a, b) => a - b);
console.log(`\n### Speed\n`);
console.log(
  `${all.length} requests x ${REPEAT}: median ${quantile(times, 0.5).toFixed(3)} ms, p95 ${quantile(times, 0.95).toFixed(3)} ms, max ${times[times.length - 1].toFixed(3)} ms per request`,
);
