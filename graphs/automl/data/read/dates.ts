// Dates written day-first or month-first ("15/03/2024", "03/15/2024", "15.03.2024", "15-03-2024",
// "2024/03/15", with an optional "HH:MM[:SS]"), rewritten to ISO so that every later reader (the
// profile, pandas) sees one unambiguous form. Which of day and month comes first is a column's
// property: a value over 12 in either place settles it.

export type DateOrder = "dmy" | "mdy" | "ymd";

export interface DateMatch {
  /** The separator that identifies the pattern, and the order it allows. */
  pattern: string;
  a: number;
  b: number;
  year: number;
  time: { h: number; m: number; s: number | null } | null;
}

const DAY_MONTH = /^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;
const YEAR_FIRST = /^(\d{4})\/(\d{1,2})\/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

function time(h?: string, m?: string, s?: string): DateMatch["time"] {
  return h === undefined ? null : { h: Number(h), m: Number(m), s: s === undefined ? null : Number(s) };
}

export function matchDate(cell: string): DateMatch | null {
  const v = cell.trim();
  let m = DAY_MONTH.exec(v);
  if (m) return { pattern: m[2], a: Number(m[1]), b: Number(m[3]), year: Number(m[4]), time: time(m[5], m[6], m[7]) };
  m = YEAR_FIRST.exec(v);
  if (m) return { pattern: "y/", a: Number(m[3]), b: Number(m[2]), year: Number(m[1]), time: time(m[4], m[5], m[6]) };
  return null;
}

function validDay(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function validTime(t: DateMatch["time"]): boolean {
  return !t || (t.h <= 23 && t.m <= 59 && (t.s ?? 0) <= 59);
}

/** Whether the match is a real date read day-first (a = day) and month-first (b = day). */
export function validOrders(d: DateMatch): { dayFirst: boolean; monthFirst: boolean } {
  if (!validTime(d.time)) return { dayFirst: false, monthFirst: false };
  return { dayFirst: validDay(d.year, d.b, d.a), monthFirst: d.pattern !== "y/" && validDay(d.year, d.a, d.b) };
}

const pad = (n: number) => String(n).padStart(2, "0");

/** ISO text of a match read in `order`: YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS with a time. */
export function isoDate(d: DateMatch, order: DateOrder): string {
  const [day, month] = order === "mdy" ? [d.b, d.a] : [d.a, d.b];
  const date = `${String(d.year).padStart(4, "0")}-${pad(month)}-${pad(day)}`;
  return d.time ? `${date}T${pad(d.time.h)}:${pad(d.time.m)}:${pad(d.time.s ?? 0)}` : date;
}

/** How the column was written, for the data card: "DD/MM/YYYY", "MM-DD-YYYY HH:MM", "YYYY/MM/DD". */
export function dateFormat(pattern: string, order: DateOrder, time: "none" | "minutes" | "seconds"): string {
  const base = order === "ymd" ? "YYYY/MM/DD" : order === "dmy" ? `DD${pattern}MM${pattern}YYYY` : `MM${pattern}DD${pattern}YYYY`;
  return time === "none" ? base : `${base} HH:MM${time === "seconds" ? ":SS" : ""}`;
}

/** A spreadsheet or Parquet date to the second; spreadsheet serial numbers carry float noise (14:29:59.999 for 14:30). */
function roundedIso(value: Date): string | null {
  const ms = value.getTime();
  return Number.isFinite(ms) ? new Date(Math.round(ms / 1000) * 1000).toISOString() : null;
}

/** True when the date has a time of day other than midnight (UTC, as spreadsheets and Parquet store them). */
export function hasTimeOfDay(value: Date): boolean {
  return !(roundedIso(value) ?? "T00:00:00.000Z").endsWith("T00:00:00.000Z");
}

/** ISO text of a date: YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS when its column has times of day. */
export function isoOfDate(value: Date, withTime: boolean): string {
  const iso = roundedIso(value);
  if (!iso) return "";
  return withTime ? iso.slice(0, 19) : iso.slice(0, 10);
}
