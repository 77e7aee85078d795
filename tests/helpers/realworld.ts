import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { mulberry32 } from "../../graphs/automl/holdout.js";

// Seeded data shaped like what people upload from ordinary tools: a European spreadsheet export
// (cp1252, semicolons, decimal commas, thousands dots, accented headers), an Excel workbook, a rare
// positive class, a date that carries the signal, and a column that is the target recoded.

export interface RealWorldData {
  file: string;
  target: string;
  rows: number;
}

function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function ensureDir(file: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}

/** "1.234,56" the way a German or French spreadsheet writes it. */
function european(x: number, digits: number): string {
  const [int, frac] = Math.abs(x).toFixed(digits).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  return `${x < 0 ? "-" : ""}${grouped}${frac ? `,${frac}` : ""}`;
}

/**
 * Flat prices, exported from a German spreadsheet: `;` separated, decimal commas, `.` thousands,
 * cp1252-encoded headers with umlauts and accents. Preis (EUR) depends on the floor area, rooms, the
 * district and the year built.
 */
export function writeEuropeanCsv(file: string, opts: { rows?: number; seed?: number; canonical?: string } = {}): RealWorldData {
  const rows = opts.rows ?? 2000;
  const rand = mulberry32(opts.seed ?? 31);
  const g = gaussian(rand);
  const districts = ["Süd", "Nord", "Altstadt", "Hafen", "Cité"];
  const uplift: Record<string, number> = { Süd: 1.0, Nord: 0.85, Altstadt: 1.35, Hafen: 1.1, Cité: 1.2 };
  const header = ["Wohnfläche_m²", "Zimmer", "Baujahr", "Stadtteil", "Entfernung_Zentrum_km", "Preis"];
  const lines = [header.join(";")];
  const plain = [header.join(",")];
  for (let i = 0; i < rows; i++) {
    const area = 25 + rand() * 150;
    const rooms = Math.max(1, Math.round(area / 28 + g() * 0.6));
    const year = 1900 + Math.floor(rand() * 124);
    const district = districts[Math.floor(rand() * districts.length)];
    const km = rand() * 15;
    const price = (area * 3100 * uplift[district] + (year > 1990 ? 40_000 : 0) - km * 4000) * (1 + g() * 0.06);
    lines.push([european(area, 1), String(rooms), String(year), district, european(km, 2), european(price, 2)].join(";"));
    plain.push([area.toFixed(1), String(rooms), String(year), district, km.toFixed(2), price.toFixed(2)].join(","));
  }
  ensureDir(file);
  writeFileSync(file, Buffer.from(lines.join("\r\n") + "\r\n", "latin1"));
  if (opts.canonical) writeFileSync(opts.canonical, plain.join("\n") + "\n");
  return { file, target: "Preis", rows };
}

/** Rows of a subscription business: churn (yes/no) with a signup date, a plan and usage numbers. */
export function customerRows(opts: { rows?: number; seed?: number } = {}): { header: string[]; rows: Array<Array<string | number>> } {
  const n = opts.rows ?? 1500;
  const rand = mulberry32(opts.seed ?? 32);
  const g = gaussian(rand);
  const plans = ["Basic", "Plus", "Pro"];
  const rows: Array<Array<string | number>> = [];
  for (let i = 0; i < n; i++) {
    const tenure = Math.floor(rand() * 60);
    const plan = plans[Math.floor(rand() * 3)];
    const logins = Math.max(0, Math.round(20 + g() * 8 - (plan === "Basic" ? 5 : 0)));
    const tickets = Math.floor(rand() * 6);
    const signup = new Date(Date.UTC(2020, 0, 1) + Math.floor(rand() * 1400) * 86400000).toISOString().slice(0, 10);
    const z = -0.06 * tenure - 0.12 * logins + 0.55 * tickets + (plan === "Basic" ? 0.8 : 0) + g() * 0.7 + 1.6;
    rows.push([`C${10000 + i}`, signup, plan, tenure, logins, tickets, z > 0 ? "yes" : "no"]);
  }
  return { header: ["CustomerID", "SignupDate", "Plan", "TenureMonths", "MonthlyLogins", "SupportTickets", "Churn"], rows };
}

/** The same rows as a plain CSV (what a careful reader makes of the workbook). */
export function writeRowsCsv(file: string, header: string[], rows: Array<Array<string | number>>): string {
  ensureDir(file);
  writeFileSync(file, [header, ...rows].map((r) => r.join(",")).join("\n") + "\n");
  return file;
}

/** An .xlsx workbook (written with Python's openpyxl): a notes sheet first would be asked about, so the table is alone. */
export function writeExcelWorkbook(file: string, sheets: Array<{ name: string; header: string[]; rows: Array<Array<string | number>>; dateColumns?: string[] }>): string {
  ensureDir(file);
  const script = [
    "import datetime, json, sys",
    "from openpyxl import Workbook",
    "spec = json.load(sys.stdin)",
    "wb = Workbook()",
    "wb.remove(wb.active)",
    "for s in spec['sheets']:",
    "    ws = wb.create_sheet(s['name'])",
    "    ws.append(s['header'])",
    "    dates = [s['header'].index(c) for c in s.get('dateColumns') or []]",
    "    for r in s['rows']:",
    "        r = list(r)",
    "        for i in dates:",
    "            r[i] = datetime.date.fromisoformat(r[i])",
    "        ws.append(r)",
    "wb.save(spec['file'])",
  ].join("\n");
  const run = spawnSync(process.env.THREADML_PYTHON ?? "/usr/bin/python3", ["-c", script], { input: JSON.stringify({ file, sheets }), encoding: "utf8" });
  if (run.status !== 0) throw new Error(`writing ${file} with openpyxl failed (python3-openpyxl): ${run.stderr || run.error}`);
  return file;
}

/** Card transactions with about 4% fraud: the rare class a default threshold of 0.5 serves badly. */
export function writeImbalancedCsv(file: string, opts: { rows?: number; seed?: number } = {}): RealWorldData {
  const rows = opts.rows ?? 5000;
  const rand = mulberry32(opts.seed ?? 33);
  const g = gaussian(rand);
  const merchants = ["grocery", "online", "travel", "fuel", "electronics"];
  const lines = ["amount,hour,merchant,distance_km,prior_declines,is_fraud"];
  for (let i = 0; i < rows; i++) {
    const merchant = merchants[Math.floor(rand() * merchants.length)];
    const amount = Math.exp(3.5 + g() * 1.0);
    const hour = Math.floor(rand() * 24);
    const distance = Math.abs(g()) * 30;
    const declines = rand() < 0.1 ? 1 + Math.floor(rand() * 3) : 0;
    const night = hour < 5 ? 1 : 0;
    const z = -4.4 + 0.9 * Math.log(amount / 30) + 1.1 * night + 0.03 * distance + 0.7 * declines + (merchant === "online" || merchant === "electronics" ? 0.9 : 0) + g() * 0.9;
    lines.push([amount.toFixed(2), String(hour), merchant, distance.toFixed(1), String(declines), z > 0 ? "1" : "0"].join(","));
  }
  ensureDir(file);
  writeFileSync(file, lines.join("\n") + "\n");
  return { file, target: "is_fraud", rows };
}

/**
 * Daily bike rentals over three years, dates written day first (31/12/2023): the count depends on the
 * weekday and the season far more than on the temperature column.
 */
export function writeDatedCsv(file: string, opts: { days?: number; seed?: number; canonical?: string } = {}): RealWorldData {
  const days = opts.days ?? 1100;
  const rand = mulberry32(opts.seed ?? 34);
  const g = gaussian(rand);
  const lines = ["date,temperature,humidity,rentals"];
  const plain = [lines[0]];
  const start = Date.UTC(2021, 0, 1);
  for (let i = 0; i < days; i++) {
    const d = new Date(start + i * 86400000);
    const doy = (d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000;
    const season = Math.sin((2 * Math.PI * (doy - 100)) / 365.25);
    const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6;
    const temperature = 12 + 10 * season + g() * 6;
    const humidity = 60 + g() * 12;
    const rentals = Math.max(0, Math.round(3000 + 1500 * season + (weekend ? -1400 : 600) + 20 * (temperature - 12) + i * 0.8 + g() * 180));
    const dd = String(d.getUTCDate()).padStart(2, "0");
    const mm = String(d.getUTCMonth() + 1).padStart(2, "0");
    lines.push([`${dd}/${mm}/${d.getUTCFullYear()}`, temperature.toFixed(1), humidity.toFixed(0), String(rentals)].join(","));
    plain.push([d.toISOString().slice(0, 10), temperature.toFixed(1), humidity.toFixed(0), String(rentals)].join(","));
  }
  ensureDir(file);
  writeFileSync(file, lines.join("\n") + "\n");
  if (opts.canonical) writeFileSync(opts.canonical, plain.join("\n") + "\n");
  return { file, target: "rentals", rows: days };
}

/** Loan decisions with `decision_code` (A-OK / R-NO), the target `approved` written a second way. */
export function writeLeakyCsv(file: string, opts: { rows?: number; seed?: number } = {}): RealWorldData & { leak: string } {
  const rows = opts.rows ?? 2000;
  const rand = mulberry32(opts.seed ?? 35);
  const g = gaussian(rand);
  const lines = ["income,loan_amount,credit_score,years_employed,decision_code,approved"];
  for (let i = 0; i < rows; i++) {
    const income = Math.round(25000 + rand() * 90000);
    const loan = Math.round(5000 + rand() * 60000);
    const score = Math.round(520 + rand() * 330);
    const years = Math.floor(rand() * 25);
    const z = (score - 650) / 60 + (income / loan - 2) * 0.5 + years * 0.04 + g() * 0.8;
    const approved = z > 0;
    lines.push([String(income), String(loan), String(score), String(years), approved ? "A-OK" : "R-NO", approved ? "yes" : "no"].join(","));
  }
  ensureDir(file);
  writeFileSync(file, lines.join("\n") + "\n");
  return { file, target: "approved", rows, leak: "decision_code" };
}
