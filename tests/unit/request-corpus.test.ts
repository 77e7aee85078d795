import { describe, expect, it } from "vitest";
import { DEV_CORPUS, HELDOUT_CORPUS, REQUEST_SETS, evaluateCorpus, formatFailures, loadCorpus } from "../helpers/reading-corpus.js";

// How well the offline engine reads chat requests, over the request sets in tests/fixtures/requests/
// (REQUEST_SETS). A case is right when the engine asks exactly the questions a careful reader would,
// and reads every other field exactly; it is "wrong" when it settled on a value that differs instead of
// asking. Run `npm run bench:reading` for the numbers and the speed.

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

  for (const set of REQUEST_SETS) {
    it(`reads ${set.name}: at least ${100 * set.floor}% exactly right, at most ${100 * set.wrongCeiling}% settled wrong`, async () => {
      const r = await evaluateCorpus(set.file);
      const message = `${formatFailures(r.cases)}\n${summary(set.name, r)}`;
      expect(r.accuracy, message).toBeGreaterThanOrEqual(set.floor);
      expect(r.wrong / r.cases.length, message).toBeLessThanOrEqual(set.wrongCeiling);
    });
  }
});
