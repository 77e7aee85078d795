import { describe, expect, it } from "vitest";
import { OfflinePromptAgent } from "../../graphs/automl/agents/offline/prompt.js";
import { findLeaks, leakNotice } from "../../graphs/automl/data/leakage.js";
import type { GraphDeps } from "../../graphs/automl/deps.js";
import { parseNode } from "../../graphs/automl/nodes/parse.js";
import type { State } from "../../graphs/automl/state.js";
import { profileCsv } from "../../graphs/automl/data/profile.js";
import { mulberry32 } from "../../graphs/automl/holdout.js";
import { parseRequest } from "../../graphs/automl/request/parse.js";
import { readingOf } from "../../graphs/automl/request/reading.js";
import type { Requirements } from "../../src/schema/requirements.js";
import { makeRequirements } from "../helpers/requirements.js";
import { tempDir } from "../helpers/tmp.js";

// Target leakage on seeded tables shaped like real uploads: the recoded target and its kin are found,
// and the strong but honest features beside them never are.

const tmp = tempDir("threadml-leakage-");
const MB = 1048576;

function table(name: string, header: string[], rows: number, row: (rand: () => number, normal: () => number, i: number) => Array<string | number>, seed = 1): string {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const lines = [header.join(",")];
  for (let i = 0; i < rows; i++) lines.push(row(rand, normal, i).join(","));
  return tmp.write(name, lines.join("\n") + "\n");
}

async function leaksOf(file: string, req: Partial<Requirements>) {
  const profile = await profileCsv(file, { maxBytes: 50 * MB });
  return findLeaks(profile, makeRequirements(req));
}

const regression = { task: "regression" as const, metric: { name: "rmse" as const, direction: "min" as const } };

/** Loans: approved depends on score, income and noise; `extra` adds columns derived from the row. */
function loans(name: string, rows: number, extra: Record<string, (approved: boolean, rand: () => number, score: number) => string | number>, seed = 3) {
  const header = ["income", "credit_score", "region", "contract", ...Object.keys(extra), "approved"];
  return table(
    name,
    header,
    rows,
    (rand, normal) => {
      const income = Math.round(25000 + rand() * 90000);
      const score = Math.round(520 + rand() * 330);
      const contract = ["monthly", "yearly", "two-year"][Math.floor(rand() * 3)];
      const approved = (score - 650) / 60 + (income - 70000) / 40000 + (contract === "monthly" ? -0.8 : 0.4) + normal() * 0.8 > 0;
      const region = ["north", "south", "east", "west"][Math.floor(rand() * 4)];
      return [income, score, region, contract, ...Object.values(extra).map((f) => f(approved, rand, score)), approved ? "yes" : "no"];
    },
    seed,
  );
}

describe("findLeaks: classification", () => {
  it("flags the target written a second way, and names both spellings", async () => {
    const file = loans("recoded.csv", 2000, { approved_code: (a) => (a ? "A-OK" : "R-NO") });
    const leaks = await leaksOf(file, { target: "approved" });
    expect(leaks.map((l) => l.column)).toEqual(["approved_code"]);
    expect(leaks[0].reason).toMatch(/^"approved_code" maps one-to-one onto "approved" \((A-OK → yes, R-NO → no|R-NO → no, A-OK → yes)\)$/);
    expect(leaks[0].score).toBe(1);
  });

  it("is not excused by a few empty cells or typos, and says where it looked", async () => {
    const file = loans("recoded-gaps.csv", 3000, { status: (a, rand) => (rand() < 0.04 ? "" : rand() < 0.003 ? (a ? "R-NO" : "A-OK") : a ? "A-OK" : "R-NO") });
    const [leak] = await leaksOf(file, { target: "approved" });
    expect(leak.column).toBe("status");
    expect(leak.reason).toMatch(/where it is filled in/);
  });

  it("flags a column empty exactly for one class (a date set once the outcome is known)", async () => {
    const file = loans("dated.csv", 1500, { decided_on: (a, rand) => (a ? `2024-0${1 + Math.floor(rand() * 9)}-1${Math.floor(rand() * 9)}` : "") });
    const [leak] = await leaksOf(file, { target: "approved" });
    expect(leak.column).toBe("decided_on");
    expect(leak.reason).toBe('"decided_on" is empty exactly when "approved" is no, so it gives the answer away');
  });

  it("flags a number that separates the classes completely, not one that predicts them well", async () => {
    const file = loans("scores.csv", 2000, {
      decision_score: (a, rand) => (a ? 0.6 + rand() * 0.4 : rand() * 0.55),
      risk_grade: (_a, rand, score) => Math.round((850 - score) / 20 + rand() * 4),
    });
    const leaks = await leaksOf(file, { target: "approved" });
    expect(leaks.map((l) => l.column)).toEqual(["decision_score"]);
    expect(leaks[0].reason).toBe('"decision_score" alone separates the classes of "approved" (ROC AUC 1.000)');
  });

  it("never flags strong honest features, many-valued codes or a rare class's useful flag", async () => {
    const file = loans("honest.csv", 3000, {
      zip: (_a, rand) => String(10000 + Math.floor(rand() * 1400)),
      score_band: (_a, _r, score) => (score >= 700 ? "high" : score >= 600 ? "mid" : "low"),
    });
    expect(await leaksOf(file, { target: "approved" })).toEqual([]);
    // fraud at 3%: a rules engine's flag catches 85% of it with few false alarms: right in 99% of the rows,
    // which is what flagging every transaction "not fraud" nearly gets; a strong feature but no leak
    const fraud = table("fraud.csv", ["amount", "rule_flag", "is_fraud"], 5000, (rand) => {
      const fraudulent = rand() < 0.03;
      const flag = fraudulent ? rand() < 0.85 : rand() < 0.005;
      return [(rand() * 300).toFixed(2), flag ? 1 : 0, fraudulent ? 1 : 0];
    });
    expect(await leaksOf(fraud, { target: "is_fraud" })).toEqual([]);
  });

  it("holds a rare class to a stricter standard, yet flags its exact copy", async () => {
    const fraud = table("fraud-copy.csv", ["amount", "chargeback", "is_fraud"], 5000, (rand) => {
      const fraudulent = rand() < 0.03;
      return [(rand() * 300).toFixed(2), fraudulent ? "Y" : "N", fraudulent ? 1 : 0];
    });
    expect((await leaksOf(fraud, { target: "is_fraud" })).map((l) => l.column)).toEqual(["chargeback"]);
  });

  it("multiclass: flags a measure whose ranges do not overlap, not one whose ranges do", async () => {
    const file = table("species.csv", ["petal", "sepal", "grade_points", "species"], 600, (rand, normal, i) => {
      const k = i % 3;
      return [(1.5 + 2 * k + normal() * 0.7).toFixed(2), (5 + 0.6 * k + normal() * 0.5).toFixed(2), (10 * k + rand() * 9).toFixed(3), ["setosa", "versicolor", "virginica"][k]];
    });
    const leaks = await leaksOf(file, { target: "species" });
    expect(leaks.map((l) => l.column)).toEqual(["grade_points"]);
    expect(leaks[0].reason).toMatch(/between neighbouring classes/);
  });

  it("leaves out of the check the target, dropped, suspect and free-text columns, and the other tasks", async () => {
    const file = loans("skip.csv", 600, { code: (a) => (a ? "A" : "R"), copy: (a) => (a ? "Y" : "N") });
    expect((await leaksOf(file, { target: "approved", drop_columns: ["code"] })).map((l) => l.column)).toEqual(["copy"]);
    expect(await leaksOf(file, { task: "clustering", target: null, metric: { name: "silhouette", direction: "max" } })).toEqual([]);
  });
});

describe("findLeaks: regression", () => {
  const houses = (name: string, extra: Record<string, (price: number, rand: () => number) => string | number>) =>
    table(name, ["sqft", "rooms", "district", ...Object.keys(extra), "price"], 2000, (rand, normal) => {
      const sqft = Math.round(400 + rand() * 2600);
      const district = ["old town", "harbour", "hills"][Math.floor(rand() * 3)];
      const price = Math.round(sqft * 210 * (district === "hills" ? 1.3 : 1) * (1 + normal() * 0.08));
      return [sqft, Math.max(1, Math.round(sqft / 450 + normal() * 0.7)), district, ...Object.values(extra).map((f) => f(price, rand)), price];
    });

  it("flags a unit change of the target and names the rank correlation", async () => {
    const file = houses("eur.csv", { total_price_eur: (p) => (p * 0.92).toFixed(2), tax: (p, rand) => (rand() < 0.02 ? "" : Math.round(p * 0.035)) });
    const leaks = await leaksOf(file, { ...regression, target: "price" });
    expect(leaks.map((l) => l.column).sort()).toEqual(["tax", "total_price_eur"]);
    expect(leaks.find((l) => l.column === "total_price_eur")!.reason).toBe('"total_price_eur" alone predicts "price" almost perfectly (rank correlation 1.000)');
  });

  it("flags a category that fixes the target, never an honest category or a strong measure", async () => {
    const file = houses("bands.csv", { price_band: (p) => `band-${Math.floor(p / 25000)}` });
    const leaks = await leaksOf(file, { ...regression, target: "price" });
    expect(leaks.map((l) => l.column)).toEqual(["price_band"]);
    expect(leaks[0].reason).toMatch(/^"price_band" alone predicts "price" almost perfectly \(its values explain 99\.\d% of the variance\)$/);
    const honest = houses("honest-houses.csv", { listing_code: (_p, rand) => `L${Math.floor(rand() * 900)}` });
    expect(await leaksOf(honest, { ...regression, target: "price" })).toEqual([]);
  });
});

describe("leak notices", () => {
  const entry = { column: "approved_code", reason: '"approved_code" maps one-to-one onto "approved" (A-OK → yes, R-NO → no)' };

  it("names the column, says why and how to keep it", () => {
    expect(leakNotice({ ...entry, kept: false })).toBe(
      'Left out "approved_code": it maps one-to-one onto "approved" (A-OK → yes, R-NO → no), so a model would learn nothing real. Reply "keep approved_code" with Revise to use it anyway.',
    );
    expect(leakNotice({ ...entry, kept: true })).toMatch(/^Kept "approved_code" at your request, although it maps one-to-one/);
  });

  it("puts a hostile column name on one short line", async () => {
    const file = loans("hostile.csv", 400, { "x\u2028y\u0007 <@here>": (a) => (a ? "1" : "0") });
    const [leak] = await leaksOf(file, { target: "approved" });
    expect(leak.reason).not.toMatch(/[\u0000-\u001f\u2028]/);
    expect(leakNotice({ ...leak, kept: false })).not.toMatch(/[\u0000-\u001f\u2028]/);
  });

  it("the reading lists a left-out column with its own words", () => {
    const req = makeRequirements({ target: "approved", drop_columns: ["approved_code"], leakage: [{ ...entry, kept: false }] });
    const reading = readingOf(req, parseRequest("predict approved", ["income", "approved_code", "approved"]));
    expect(reading.bindings).toContainEqual({ slot: "drop", value: "approved_code", words: "left out: predicts the target on its own" });
    expect(reading.line).toMatch(/leaving out approved_code/);
  });
});

describe("keeping a column by name", () => {
  const cols = ["income", "credit_score", "approved_code", "customer_name", "approved"];

  it.each([
    ["keep approved_code"],
    ["Keep approved_code please, it is not a leak"],
    ["use approved_code anyway"],
    ["approved_code is fine"],
    ["include approved_code and customer_name"],
    ["leave approved_code in"],
  ])("%s keeps it and names no target", (text) => {
    const r = parseRequest(text, cols);
    expect(r.keepColumns).toContain("approved_code");
    expect(r.target).toBeNull();
    expect(r.dropColumns).toEqual([]);
  });

  it.each([["don't use approved_code"], ["keep approved_code out"], ["leave out approved_code"], ["approved_code is a leak"]])("%s leaves it out", (text) => {
    const r = parseRequest(text, cols);
    expect(r.keepColumns).toEqual([]);
    expect(r.dropColumns).toEqual(["approved_code"]);
  });

  it("a column used as the target is not kept as an input", () => {
    const r = parseRequest("use approved as the target and keep approved_code", cols);
    expect(r.target).toBe("approved");
    expect(r.keepColumns).toEqual(["approved_code"]);
  });
});

describe("the parse step (both engines)", () => {
  const deps = {
    agents: { prompt: new OfflinePromptAgent() },
    emit: () => {},
    jobSignal: () => new AbortController().signal,
    logger: { warn: () => {} },
    config: { llm: { maxCalls: 30, providers: {} } },
  } as unknown as GraphDeps;
  const config = { configurable: { thread_id: "t" } };

  async function parsed(file: string, messages: string[]) {
    const profile = await profileCsv(file, { maxBytes: 50 * MB });
    const state = { profile, messages, files: [file], answers: {} } as unknown as State;
    return (await parseNode(deps)(state, config)) as { requirements?: Requirements; status?: string; error?: string };
  }
  const file = () =>
    loans("parse.csv", 800, {
      customer_name: (_a, rand) => `${["Ada", "Bo", "Cy", "Di", "Ed"][Math.floor(rand() * 5)]} ${Math.floor(rand() * 1e6)}`,
      decision_code: (a) => (a ? "A-OK" : "R-NO"),
    });

  it("leaves a leak out by default and records why", async () => {
    const { requirements: req } = await parsed(file(), ["predict approved"]);
    expect(req!.drop_columns).toEqual(expect.arrayContaining(["customer_name", "decision_code"]));
    expect(req!.leakage).toEqual([{ column: "decision_code", reason: expect.stringMatching(/^"decision_code" maps one-to-one onto "approved"/), kept: false }]);
    expect(req!.reading!.bindings).toContainEqual({ slot: "drop", value: "decision_code", words: "left out: predicts the target on its own" });
  });

  it("keeps it when a later message says so, even after an earlier one left it out", async () => {
    for (const messages of [["predict approved", "keep decision_code"], ["predict approved, ignore decision_code", "actually decision_code is fine"]]) {
      const { requirements: req } = await parsed(file(), messages);
      expect(req!.target).toBe("approved");
      expect(req!.drop_columns).not.toContain("decision_code");
      expect(req!.leakage).toEqual([expect.objectContaining({ column: "decision_code", kept: true })]);
    }
  });

  it("uses a set-aside identifier the request asks for by name, and still drops what it left out", async () => {
    const { requirements: req } = await parsed(file(), ["predict approved using customer_name and income, not the region"]);
    expect(req!.drop_columns).not.toContain("customer_name");
    expect(req!.drop_columns).toEqual(expect.arrayContaining(["region", "decision_code"]));
  });

  it("fails clearly when every column left gives the answer away", async () => {
    const only = table("only-leak.csv", ["decision_code", "approved"], 200, (rand) => (rand() < 0.5 ? ["A-OK", "yes"] : ["R-NO", "no"]));
    const out = await parsed(only, ["predict approved"]);
    expect(out.status).toBe("failed");
    expect(out.error).toMatch(/^Every column of only-leak\.csv left to learn from predicts "approved" on its own \("decision_code"\).*"keep decision_code"/);
  });
});

describe("set-aside columns in the profile", () => {
  const people = (name: string, rows: number) =>
    table(name, ["name", "email", "order_code", "signup", "event_id", "stamp", "city", "comment", "score"], rows, (rand, _n, i) => {
      const first = ["Ada", "Bo", "Cyrus", "Dina", "Emil", "Fay"][Math.floor(rand() * 6)];
      const day = new Date(Date.UTC(2023, 0, 1) + i * 3_600_000);
      return [
        `${first} ${String.fromCharCode(65 + (i % 26))}. Smith${i}`,
        `${first.toLowerCase()}${i}@example.org`,
        `ORD-${100000 + i}`,
        day.toISOString().slice(0, 16).replace("T", " "),
        day.toISOString().slice(0, 19),
        `${String(day.getUTCDate()).padStart(2, "0")}/${String(day.getUTCMonth() + 1).padStart(2, "0")}/2023 ${String(day.getUTCHours()).padStart(2, "0")}:00`,
        ["Lyon", "Oslo", "Lima"][i % 3],
        `delivery was ${["late", "fine", "early"][i % 3]} and the box number ${i} arrived in good shape`,
        Math.round(rand() * 100),
      ];
    });

  it("sets aside near-unique short strings (names, emails, order codes), never a time or free text", async () => {
    const profile = await profileCsv(people("people.csv", 400), { maxBytes: MB });
    const suspect = Object.fromEntries(profile.columns.map((c) => [c.name, c.suspect]));
    expect(suspect).toMatchObject({ name: "id", email: "id", order_code: "id", signup: null, event_id: null, stamp: null, city: null, comment: null, score: null });
    expect(profile.columns.find((c) => c.name === "comment")!.kind).toBe("text");
    expect(profile.candidateTargets).not.toContain("email");
  });

  it("needs enough rows to call a column an identifier", async () => {
    const profile = await profileCsv(people("few.csv", 30), { maxBytes: MB });
    expect(profile.columns.find((c) => c.name === "email")!.suspect).toBeNull();
  });

  it("reads a column past the distinct-value cap by how often its values repeat", async () => {
    const file = table("many.csv", ["email", "segment", "y"], 9000, (rand, _n, i) => [`user${i}@mail.example`, `seg-${Math.floor(rand() * 2500)}`, i % 2]);
    const profile = await profileCsv(file, { maxBytes: 50 * MB });
    expect(profile.columns.find((c) => c.name === "email")!.suspect).toBe("id");
    expect(profile.columns.find((c) => c.name === "segment")!.suspect).toBeNull();
  });
});
