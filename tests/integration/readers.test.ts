import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../graphs/automl/holdout.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { customerRows, writeEuropeanCsv, writeExcelWorkbook } from "../helpers/realworld.js";
import { tempDir } from "../helpers/tmp.js";

// Files as people upload them, through whole offline conversations to a checked endpoint: each is read
// once into the canonical CSV, and the harness, the holdout and the model server all work from it.

const tmp = tempDir("threadml-readers-cli-");
const cwd = tmp.dir;
// a short search: these tests are about the data and the notices, not the tuning
const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "2" };
const LONG = { cwd, env, timeoutMs: 220_000 };

/** What the trained model was given, saved beside it by the harness. */
function modelMeta(model: string | null): { target: string; numeric: string[]; categorical: string[]; dates: string[] } {
  return JSON.parse(readFileSync(join(dirname(model!), "model_meta.json"), "utf8"));
}

/** Travel costs exported by a French spreadsheet: cp1252, accented names, the target among them. */
function writeFrenchCsv(file: string, rows = 300): void {
  const rand = mulberry32(41);
  const regions = ["Île-de-France", "Rhône-Alpes", "Bretagne", "Côte d\u0092Azur"];
  const lines = ["Durée (h),Étapes,Région,Coût total"];
  for (let i = 0; i < rows; i++) {
    const hours = 1 + rand() * 47;
    const steps = 1 + Math.floor(rand() * 9);
    const region = regions[Math.floor(rand() * regions.length)];
    const cost = hours * 95 + steps * 240 + (region === "Île-de-France" ? 800 : 0) + (rand() - 0.5) * 200;
    lines.push(`${hours.toFixed(1)},${steps},${region},${cost.toFixed(2)}`);
  }
  // "\u0092" is written as the byte 0x92, cp1252's apostrophe
  writeFileSync(file, Buffer.from(lines.join("\n") + "\n", "latin1"));
}

beforeAll(() => {
  requirePython();
  writeEuropeanCsv(join(cwd, "wohnungen.csv"), { rows: 300 });
  writeFrenchCsv(join(cwd, "frais.csv"));
  const { header, rows } = customerRows({ rows: 300 });
  writeExcelWorkbook(join(cwd, "customers.xlsx"), [
    { name: "Plans", header: ["Plan", "Price"], rows: [["Basic", 9], ["Plus", 19], ["Pro", 49]] },
    { name: "Customers", header, rows, dateColumns: ["SignupDate"] },
  ]);
  const csv = writeClassificationCsv(join(cwd, "bananas.csv"), { rows: 400, seed: 21 });
  const [head, ...body] = readFileSync(csv.file, "utf8").trim().split("\n");
  const names = head.split(",");
  const objects = body.map((line) => Object.fromEntries(line.split(",").map((v, i) => [names[i], Number.isNaN(Number(v)) ? v : Number(v)])));
  writeFileSync(join(cwd, "bananas.jsonl"), objects.map((o) => JSON.stringify(o)).join("\n") + "\n");
});

describe("threadml run on files as people upload them", () => {
  it("a European CSV (';', decimal comma, '.' thousands, cp1252): its numbers reach the model as numbers", { timeout: 240_000 }, async () => {
    const { result } = await runCli(["--yes", "Predict Preis in wohnungen.csv"], LONG);
    expect(result.status, result.error).toBe("deployed");
    expect(result.data[0]).toMatch(/cp1252.*decimal comma/);
    const meta = modelMeta(result.artifacts.model);
    expect(meta.numeric).toEqual(expect.arrayContaining(["Wohnfläche_m²", "Zimmer", "Baujahr", "Entfernung_Zentrum_km"]));
    expect(meta.categorical).toEqual(["Stadtteil"]);
    expect(result.metrics.r2).toBeGreaterThan(0.7);
    expect(typeof result.endpoint?.check.prediction).toBe("number");
  });

  it("a cp1252 file whose target has an accent: the endpoint answers rows with accented keys", { timeout: 240_000 }, async () => {
    const { result } = await runCli(["--yes", "Predict Coût total from frais.csv"], LONG);
    expect(result.status, result.error).toBe("deployed");
    expect((result.requirements as { target: string }).target).toBe("Coût total");
    const meta = modelMeta(result.artifacts.model);
    expect(meta.target).toBe("Coût total");
    expect(meta.numeric).toEqual(["Durée (h)", "Étapes"]);
    expect(meta.categorical).toEqual(["Région"]);
    // the deploy check posts held-out rows keyed by these names to the model server
    expect(result.endpoint?.check.ok).toBe(true);
    expect(result.metrics.r2).toBeGreaterThan(0.8);
  });

  it("an Excel workbook with two table sheets: asks which, then trains on the sheet named", { timeout: 240_000 }, async () => {
    const asked = await runCli(["--yes", "Predict Churn in customers.xlsx"], { cwd, env });
    expect(asked.result.status).toBe("needs_input");
    expect(asked.result.questions?.[0]).toMatch(/^Which sheet holds the data\? \(sheets: Plans, Customers\)/);

    const { result } = await runCli(["--yes", "--answer", "Customers", "Predict Churn in customers.xlsx"], LONG);
    expect(result.status, result.error).toBe("deployed");
    expect(result.data[0]).toMatch(/Excel.*"Customers"/);
    const meta = modelMeta(result.artifacts.model);
    expect(meta.dates).toEqual(["SignupDate"]);
    expect(meta.numeric).toEqual(expect.arrayContaining(["TenureMonths", "MonthlyLogins", "SupportTickets"]));
    expect(["yes", "no"]).toContain(result.endpoint?.check.prediction);
  });

  it("JSON lines", { timeout: 240_000 }, async () => {
    const { result } = await runCli(["--yes", "Classify Quality in bananas.jsonl"], LONG);
    expect(result.status, result.error).toBe("deployed");
    expect(result.data[0]).toMatch(/JSON lines/);
    expect(result.metrics.accuracy).toBeGreaterThan(0.8);
    expect(["Good", "Bad"]).toContain(result.endpoint?.check.prediction);
  });
});
