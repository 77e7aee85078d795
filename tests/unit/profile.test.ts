import { describe, expect, it } from "vitest";
import { DataError, profileCsv, rankTargets } from "../../graphs/automl/data/profile.js";
import type { ColumnProfile } from "../../graphs/automl/agents/types.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();
const MB = 1048576;

describe("profileCsv", () => {
  it("profiles types, missing values, suspects and candidate targets", async () => {
    const rows = ["id,size,color,const,note,quality"];
    for (let i = 0; i < 50; i++) rows.push(`${i + 1},${(i * 1.5).toFixed(1)},${["red", "green"][i % 2]},7,,${i % 3 === 0 ? "Bad" : "Good"}`);
    rows[5] = "5,,red,7,,Good";
    const p = await profileCsv(tmp.write("a.csv", rows.join("\n")), { maxBytes: MB });
    expect(p.rows).toBe(50);
    const col = (n: string) => p.columns.find((c) => c.name === n)!;
    expect(col("id").suspect).toBe("id");
    expect(col("size").kind).toBe("numeric");
    expect(col("size").missing).toBe(1);
    expect(col("color").kind).toBe("categorical");
    expect(col("const").suspect).toBe("constant");
    expect(col("note").kind).toBe("empty");
    expect(p.candidateTargets[0]).toBe("quality");
    expect(p.candidateTargets).not.toContain("id");
  });

  it("reads semicolon-separated files and counts duplicates", async () => {
    const p = await profileCsv(tmp.write("b.csv", "a;b\n1;x\n1;x\n2;y\n"), { maxBytes: MB });
    // read once into the canonical comma-separated copy; the source keeps how it was written
    expect(p.delimiter).toBe(",");
    expect(p.source?.delimiter).toBe(";");
    expect(p.duplicateRows).toBe(1);
  });

  it.each([
    ["missing.csv", null, /can't find/],
    ["empty.csv", "", /empty/],
    ["header.csv", "a,b,c\n", /no data rows/],
    ["ragged.csv", "a,b\n1,2\n3,4,5\n", /not valid CSV/],
    ["dupe.csv", "a,a\n1,2\n", /twice/],
    ["data.pdf", "a,b\n1,2\n", /not a file type I read as a table/],
  ])("rejects %s with a clear message", async (name, content, message) => {
    const path = content === null ? `${tmp.dir}/${name}` : tmp.write(name, content);
    await expect(profileCsv(path, { maxBytes: MB })).rejects.toThrow(message);
    await expect(profileCsv(path, { maxBytes: MB })).rejects.toBeInstanceOf(DataError);
  });

  it("refuses a file over the size limit", async () => {
    const path = tmp.write("big.csv", `a,b\n${"1,2\n".repeat(1000)}`);
    await expect(profileCsv(path, { maxBytes: 1000 })).rejects.toThrow(/over the 0 MB limit|limit/);
  });

  it("ranks hinted and last columns first", () => {
    const base = { missing: 0, examples: [], stats: null, top: [], suspect: null };
    const cols: ColumnProfile[] = [
      { ...base, name: "x", kind: "numeric" as const, unique: 100 },
      { ...base, name: "label", kind: "categorical" as const, unique: 2 },
      { ...base, name: "z", kind: "categorical" as const, unique: 3 },
    ];
    expect(rankTargets(cols)[0]).toBe("label");
  });
});
