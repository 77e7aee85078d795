import type { DataProfile, TimeProfile } from "../agents/types.js";
import { isMissing, tableRows, type TableSource } from "./profile.js";

// The time axis of a table, read in a second pass over the rows that hold it: which column is the time,
// which column (if any) tells several series apart, how long the series are and how far apart their
// points lie. The harness infers the exact frequency again with pandas; this reading drives the
// questions, the horizon in steps and the plan card.

const TIME_NAME = /(?:^|[^a-z])(?:date|time|timestamp|datetime|ds|dt|period|day|week|month|year|hour)s?(?:$|[^a-z])/i;
const STEP_NAME = /^(?:t|time|timestep|time_step|step|period|year|week|month|day|hour)$/i;
const ID_NAME = /(?:^|[^a-z])(?:id|key|store|shop|series|item|sku|product|region|city|station|sensor|meter|site|country|state|location|customer|account|device|unit|building|zone)s?(?:$|[^a-z])/i;
const MAX_ROWS = 500_000;
// Timestamps that repeat within one series this often mean the candidate does not separate series.
const MAX_DUPLICATE_SHARE = 0.01;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Columns that may hold the time, best first: date-like columns, else numbered steps with a time-like name. */
export function timeCandidates(profile: DataProfile): { names: string[]; kind: "datetime" | "number" } | null {
  const named = (a: { name: string }, b: { name: string }) => Number(TIME_NAME.test(b.name)) - Number(TIME_NAME.test(a.name));
  const dates = profile.columns.filter((c) => c.kind === "datetime").sort(named);
  if (dates.length) return { names: dates.map((c) => c.name), kind: "datetime" };
  const steps = profile.columns.filter((c) => c.kind === "numeric" && c.stats?.integer && STEP_NAME.test(c.name.trim()));
  return steps.length ? { names: steps.map((c) => c.name), kind: "number" } : null;
}

/** The step in words and as a pandas-style alias. */
export function describeStep(step: number, kind: "datetime" | "number", firstOfMonth: boolean): { frequency: string | null; label: string } {
  if (kind === "number") return { frequency: null, label: `steps of ${step}` };
  const days = step / DAY;
  if (days >= 27.5 && days <= 31.5) return { frequency: firstOfMonth ? "MS" : "M", label: "monthly" };
  if (days >= 89 && days <= 92.5) return { frequency: firstOfMonth ? "QS" : "Q", label: "quarterly" };
  if (days >= 364.5 && days <= 366.5) return { frequency: firstOfMonth ? "YS" : "Y", label: "yearly" };
  const whole = (unit: number) => Math.abs(step / unit - Math.round(step / unit)) < 1e-6;
  if (step >= DAY && whole(DAY)) {
    const n = Math.round(days);
    if (n === 1) return { frequency: "D", label: "daily" };
    if (n === 7) return { frequency: "W", label: "weekly" };
    return { frequency: `${n}D`, label: `every ${n} days` };
  }
  for (const [unit, alias, word] of [
    [HOUR, "h", "hour"],
    [MINUTE, "min", "minute"],
    [SECOND, "s", "second"],
  ] as const) {
    if (step >= unit && whole(unit)) {
      const n = Math.round(step / unit);
      return n === 1 ? { frequency: alias, label: word === "hour" ? "hourly" : `every ${word}` } : { frequency: `${n}${alias}`, label: `every ${n} ${word}s` };
    }
  }
  return { frequency: null, label: `every ${step} ms` };
}

function mode(values: number[]): number | null {
  const counts = new Map<number, number>();
  for (const v of values) if (v > 0) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: number | null = null;
  let bestCount = 0;
  for (const [v, n] of counts) {
    if (n > bestCount || (n === bestCount && best !== null && v < best)) {
      best = v;
      bestCount = n;
    }
  }
  return best;
}

/** Reads the time axis of a profiled table, or null when it has no time-like column. */
export async function profileTime(source: TableSource, profile: DataProfile, column?: string): Promise<TimeProfile | null> {
  const found = timeCandidates(profile);
  const names = column ? [column, ...(found?.names ?? []).filter((n) => n !== column)] : found?.names;
  if (!names?.length) return null;
  const time = names[0];
  const col = profile.columns.find((c) => c.name === time);
  if (!col) return null;
  const kind: "datetime" | "number" = col.kind === "numeric" ? "number" : "datetime";
  const idCandidates = profile.columns
    .filter(
      (c) =>
        c.name !== time &&
        c.kind !== "text" &&
        c.kind !== "empty" &&
        c.kind !== "datetime" &&
        c.unique >= 2 &&
        c.unique <= Math.max(2, profile.rows / 3) &&
        (c.kind !== "numeric" || c.stats?.integer === true),
    )
    .map((c) => c.name);

  const times: number[] = [];
  const ids: string[][] = idCandidates.map(() => []);
  let rows = 0;
  for await (const record of tableRows(source, profile.delimiter, [time, ...idCandidates])) {
    if (rows++ >= MAX_ROWS) break;
    const raw = record[0];
    const t = isMissing(raw) ? NaN : kind === "number" ? Number(raw) : Date.parse(raw);
    if (!Number.isFinite(t)) continue;
    times.push(t);
    for (let j = 0; j < idCandidates.length; j++) ids[j].push(record[j + 1]);
  }
  if (times.length < 3) return null;

  const distinct = new Set(times).size;
  const repeatedTimes = distinct < times.length;
  // A series id: pairs of (id, time) are (nearly) all distinct. Named ids first, then the fewest series.
  const fits = idCandidates
    .map((name, j) => {
      const pairs = new Set(times.map((t, i) => `${ids[j][i]}\u0001${t}`)).size;
      return { name, j, share: 1 - pairs / times.length, series: new Set(ids[j]).size };
    })
    .filter((c) => repeatedTimes && c.share <= MAX_DUPLICATE_SHARE)
    .sort((a, b) => Number(ID_NAME.test(b.name)) - Number(ID_NAME.test(a.name)) || a.series - b.series);
  const id = fits[0] ?? null;

  const bySeries = new Map<string, number[]>();
  times.forEach((t, i) => {
    const key = id ? ids[id.j][i] : "";
    const list = bySeries.get(key);
    if (list) list.push(t);
    else bySeries.set(key, [t]);
  });
  const diffs: number[] = [];
  const lengths: number[] = [];
  for (const list of bySeries.values()) {
    const sorted = [...new Set(list)].sort((a, b) => a - b);
    lengths.push(sorted.length);
    for (let i = 1; i < sorted.length; i++) diffs.push(sorted[i] - sorted[i - 1]);
  }
  const step = mode(diffs);
  let first = Infinity;
  let last = -Infinity;
  for (const t of times) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  const firstOfMonth = kind === "datetime" && times.every((t) => new Date(t).getUTCDate() === 1);
  const described = step === null ? { frequency: null, label: "irregular" } : describeStep(step, kind, firstOfMonth);
  const show = (t: number) => (kind === "number" ? String(t) : new Date(t).toISOString().replace(/T00:00:00\.000Z$/, "").replace(/\.000Z$/, "Z"));
  return {
    column: time,
    candidates: names,
    kind,
    frequency: described.frequency,
    label: described.label,
    step,
    idColumn: id?.name ?? null,
    idCandidates: fits.map((c) => c.name),
    repeated: repeatedTimes && !id,
    series: bySeries.size,
    points: { min: Math.min(...lengths), max: Math.max(...lengths) },
    start: show(first),
    end: show(last),
  };
}

const UNIT_MS: Record<string, number> = {
  second: SECOND,
  minute: MINUTE,
  hour: HOUR,
  day: DAY,
  week: 7 * DAY,
  month: 30.44 * DAY,
  quarter: 91.31 * DAY,
  year: 365.25 * DAY,
};

/** A horizon the user gave in time units ("14 days"), in steps of this series; null when it cannot be converted. */
export function horizonSteps(value: number, unit: string | null, time: TimeProfile | null): number | null {
  if (!unit || unit === "step") return Math.round(value);
  if (!time || time.kind !== "datetime" || !time.step || !UNIT_MS[unit]) return null;
  return Math.max(1, Math.round((value * UNIT_MS[unit]) / time.step));
}
