import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEV_CORPUS, HELDOUT_CORPUS, evaluateCorpus, formatFailures, loadCorpus } from "../helpers/reading-corpus.js";

// How well the offline engine reads chat requests: tests/fixtures/requests/corpus.jsonl (the development
// set) and heldout.jsonl (measured only, never tuned on). A case is right when the engine asks exactly the
// questions a careful reader would, and reads every other field exactly; it is "wrong" when it settled on
// a value that differs instead of asking. Run `npm run bench:reading` for the numbers and the speed.

/** A third set, written apart from the engine and never tuned on: measured only. */
const UNSEEN_CORPUS = fileURLToPath(new URL("../fixtures/requests/unseen.jsonl", import.meta.url));
/** A fourth set, written apart from the engine and never tuned on: measured only. */
const FINAL_CORPUS = fileURLToPath(new URL("../fixtures/requests/final.jsonl", import.meta.url));
/** A fifth set over its own datasets (data2/), written apart from the engine and never tuned on: measured only. */
const FRESH_CORPUS = fileURLToPath(new URL("../fixtures/requests/fresh.jsonl", import.meta.url));
/** A sixth set over its own datasets (data3/), written apart from the engine and never tuned on: measured only. */
const FRESH2_CORPUS = fileURLToPath(new URL("../fixtures/requests/fresh2.jsonl", import.meta.url));
/** A seventh set over its own datasets (data4/), written apart from the engine and never tuned on: measured only. */
const FRESH3_CORPUS = fileURLToPath(new URL("../fixtures/requests/fresh3.jsonl", import.meta.url));

function summary(name: string, r: { cases: { ok: boolean }[]; accuracy: number; wrong: number }): string {
  const right = r.cases.filter((c) => c.ok).length;
  return `${name}: ${right}/${r.cases.length} right (${(100 * r.accuracy).toFixed(1)}%), ${r.wrong} settled on something wrong`;
}

describe("request reading corpus", () => {
  it("has the cases it is meant to have", async () => {
    const dev = await loadCorpus(DEV_CORPUS);
    const heldout = await loadCorpus(HELDOUT_CORPUS);
    expect(dev.length).toBeGreaterThanOrEqual(230);
    expect(heldout.length).toBeGreaterThanOrEqual(80);
    const devIds = new Set(dev.map((c) => c.id));
    expect(heldout.filter((c) => devIds.has(c.id))).toEqual([]);
    const devTexts = new Set(dev.map((c) => c.text.trim().toLowerCase()));
    expect(heldout.filter((c) => devTexts.has(c.text.trim().toLowerCase())).map((c) => c.id)).toEqual([]);
  });

  it("reads the development set: at least 95% exactly right, and settles on nothing wrong beyond that", async () => {
    const r = await evaluateCorpus(DEV_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("corpus.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.95);
    expect(r.wrong / r.cases.length, message).toBeLessThanOrEqual(0.05);
  });

  it("reads the held-out set: at least 90% exactly right", async () => {
    const r = await evaluateCorpus(HELDOUT_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("heldout.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.9);
    expect(r.wrong / r.cases.length, message).toBeLessThanOrEqual(0.1);
  });

  it("reads the unseen set: at least 90% exactly right", async () => {
    const r = await evaluateCorpus(UNSEEN_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("unseen.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.9);
  });

  it("reads the final set: at least 90% exactly right", async () => {
    const r = await evaluateCorpus(FINAL_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("final.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.9);
  });

  it("reads the fresh set: at least 90% exactly right", async () => {
    const r = await evaluateCorpus(FRESH_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("fresh.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.9);
  });

  it("reads the fresh2 set: at least 90% exactly right", async () => {
    const r = await evaluateCorpus(FRESH2_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("fresh2.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.9);
  });

  it("reads the fresh3 set: at least 90% exactly right", async () => {
    const r = await evaluateCorpus(FRESH3_CORPUS);
    const message = `${formatFailures(r.cases)}\n${summary("fresh3.jsonl", r)}`;
    expect(r.accuracy, message).toBeGreaterThanOrEqual(0.9);
  });
});
