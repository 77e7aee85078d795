import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { holdoutFiles } from "../../graphs/automl/holdout.js";
import { tempDir } from "../helpers/tmp.js";

// The host-made test split: byte-exact rows, no labels in the features file, stratified, repeatable.

const tmp = tempDir("threadml-holdout-");

function table(rows: number, eol = "\n"): Buffer {
  const lines = ["id,name,score,label"];
  for (let i = 0; i < rows; i++) {
    // quoted fields with the delimiter, a quote and a line break; Latin-1 bytes; a rare third class
    const name = i % 7 === 0 ? `"Müller, ""Jr."" ${i}"` : i % 11 === 0 ? `"two${eol}lines ${i}"` : `n${i}`;
    const label = i % 20 === 0 ? "rare" : i % 2 ? "yes" : "no";
    lines.push(`${i},${name},${(i * 0.37).toFixed(2)},${label}`);
  }
  return Buffer.from(lines.join(eol) + eol, "latin1");
}

const records = (text: string, eol = "\n") => text.split(new RegExp(`${eol}(?=\\d+,|$)`)).filter(Boolean);

async function split(name: string, data: Buffer, opts: Partial<Parameters<typeof holdoutFiles>[0]> = {}) {
  const file = join(tmp.dir, name);
  writeFileSync(file, data);
  return holdoutFiles({ file, delimiter: ",", hidden: ["label"], stratify: "label", testFraction: 0.15, seed: 42, dir: join(tmp.dir, "holdout"), ...opts });
}

describe("holdoutFiles", () => {
  it("splits rows byte for byte, the features file without the hidden column", async () => {
    const data = table(400);
    const held = await split("a.csv", data);
    const [train, truth, features] = [held.train, held.truth, held.features].map((f) => readFileSync(f).toString("latin1"));
    expect(held.rows).toEqual({ trainValid: 340, test: 60 });
    const original = records(data.toString("latin1"));
    const head = original[0];
    expect(train.startsWith(head)).toBe(true);
    expect(truth.startsWith(head)).toBe(true);
    // every original row is in exactly one of the two files, unchanged
    const got = [...records(train).slice(1), ...records(truth).slice(1)].sort();
    expect(got).toEqual(original.slice(1).sort());
    // Latin-1 bytes survive untouched
    expect(readFileSync(held.train).includes(Buffer.from("M\u00fcller", "latin1")) || readFileSync(held.truth).includes(Buffer.from("M\u00fcller", "latin1"))).toBe(true);
    expect(features.split("\n")[0]).toBe("id,name,score");
    expect(features).not.toMatch(/,(yes|no|rare)\n/);
  });

  it("stratifies by the target and repeats the same split for the same seed", async () => {
    const held = await split("b.csv", table(400));
    const truth = records(readFileSync(held.truth).toString("latin1")).slice(1);
    const count = (l: string) => truth.filter((r) => r.endsWith(`,${l}`)).length;
    // 20 rare, 200 yes, 180 no → 15% of each
    expect([count("rare"), count("yes"), count("no")]).toEqual([3, 30, 27]);
    const again = await split("b-copy.csv", table(400), { dir: join(tmp.dir, "holdout-2") });
    expect(readFileSync(again.truth)).toEqual(readFileSync(held.truth));
    const other = await split("b-seed.csv", table(400), { seed: 7, dir: join(tmp.dir, "holdout-3") });
    expect(readFileSync(other.truth)).not.toEqual(readFileSync(held.truth));
  });

  it("keeps CRLF line ends and never holds out rows without a target", async () => {
    const lines = ["x,y", ...Array.from({ length: 100 }, (_, i) => `${i},${i % 5 === 0 ? "" : i % 2 ? "a" : "b"}`)];
    const held = await split("c.csv", Buffer.from(lines.join("\r\n") + "\r\n"), { hidden: ["y"], stratify: "y" });
    const truth = readFileSync(held.truth, "utf8");
    expect(truth.endsWith("\r\n")).toBe(true);
    expect(truth.split("\r\n").filter(Boolean).slice(1).every((r) => /,(a|b)$/.test(r))).toBe(true);
    expect(held.rows.trainValid + held.rows.test).toBe(100);
  });

  it("reuses the split of an unchanged file and makes a new one when the file changes", async () => {
    const first = await split("d.csv", table(100));
    const second = await split("d.csv", table(100));
    expect(second.truth).toBe(first.truth);
    const changed = await split("d.csv", table(120));
    expect(changed.truth).not.toBe(first.truth);
  });
});
