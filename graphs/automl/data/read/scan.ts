import { isMissing } from "./cells.js";
import { dateFormat, isoDate, matchDate, validOrders, type DateOrder } from "./dates.js";
import { decimalEvidence, parseNumber, type Decimal } from "./numbers.js";

// One pass over every cell decides how each column is written in the canonical file: numbers with a
// "." decimal mark and no grouping, day-first or month-first dates as ISO, and everything else exactly
// as it came. A column becomes numbers or dates only when every filled cell reads so; one odd cell
// keeps the whole column as text, which the profile then reports as it is.

export type ColumnPlan = { kind: "keep" } | { kind: "number"; decimal: Decimal } | { kind: "date"; order: DateOrder };

export interface ReadPlan {
  decimal: Decimal;
  thousands: string | null;
  columns: ColumnPlan[];
  /** Columns rewritten to ISO dates, with the form they were written in. */
  dates: Array<{ column: string; format: string }>;
  /** Some cell is written differently in the canonical file. */
  rewrite: boolean;
}

interface NumberState {
  ok: boolean;
  changed: boolean;
  thousands: Map<string, number>;
}

interface ColumnState {
  present: number;
  /** Cells that show their decimal mark beyond doubt, by mark. */
  evidence: Record<Decimal, number>;
  numbers: Record<Decimal, NumberState>;
  date: { ok: boolean; pattern: string | null; dayFirst: boolean; monthFirst: boolean; time: "none" | "minutes" | "seconds" };
}

const numberState = (): NumberState => ({ ok: true, changed: false, thousands: new Map() });
const columnState = (): ColumnState => ({
  present: 0,
  evidence: { ".": 0, ",": 0 },
  numbers: { ".": numberState(), ",": numberState() },
  date: { ok: true, pattern: null, dayFirst: true, monthFirst: true, time: "none" },
});

/** The decimal mark is judged on the first rows' cells, as a person would glance at the file. */
const EVIDENCE_ROWS = 5000;
const INTEGER = /^-?\d{1,15}$/;

export class Scanner {
  private readonly columns: ColumnState[] = [];
  private rows = 0;
  private readonly evidence: Record<Decimal, number> = { ".": 0, ",": 0 };

  /** `delimiter`: the file's separator; ";" files usually write a decimal comma. */
  constructor(private readonly delimiter: string | null) {}

  /** One data record; a record longer than the ones before adds columns (JSON lines may). */
  observe = (record: readonly string[]): void => {
    while (this.columns.length < record.length) this.columns.push(columnState());
    const sample = this.rows++ < EVIDENCE_ROWS;
    for (let i = 0; i < record.length; i++) {
      const cell = record[i];
      const c0 = cell.charCodeAt(0);
      // a cell starting with a digit is never a missing marker: skip the lookup for most number cells
      if (!(c0 >= 48 && c0 <= 57) && isMissing(cell)) continue;
      const st = this.columns[i];
      st.present++;
      const dot = st.numbers["."];
      const comma = st.numbers[","];
      if (!dot.ok && !comma.ok && !st.date.ok) continue; // text: kept as it is
      if (INTEGER.test(cell)) {
        st.date.ok = false; // an integer reads the same under either mark, and is no date
        continue;
      }
      if (sample && (dot.ok || comma.ok)) {
        const seen = decimalEvidence(cell);
        if (seen) {
          this.evidence[seen]++;
          st.evidence[seen]++;
        }
      }
      if (dot.ok) note(dot, parseNumber(cell, "."));
      if (comma.ok) note(comma, parseNumber(cell, ","));
      if (st.date.ok) noteDate(st.date, cell);
    }
  };

  /** How to write each of `header`'s columns. */
  plan(header: readonly string[]): ReadPlan {
    const ev = this.evidence;
    const european = this.delimiter === ";";
    const decimal: Decimal = ev[","] > ev["."] ? "," : ev["."] > ev[","] ? "." : european ? "," : ".";
    const thousands = new Map<string, number>();
    const dates: ReadPlan["dates"] = [];
    let rewrite = false;
    const columns = header.map((name, i): ColumnPlan => {
      const st = this.columns[i];
      if (!st || st.present === 0) return { kind: "keep" };
      const d = st.date;
      if (d.ok && d.pattern) {
        const order: DateOrder =
          d.pattern === "y/" ? "ymd" : d.dayFirst && !d.monthFirst ? "dmy" : d.monthFirst && !d.dayFirst ? "mdy" : d.pattern === "." || decimal === "," || european ? "dmy" : "mdy";
        dates.push({ column: name, format: dateFormat(d.pattern === "y/" ? "/" : d.pattern, order, d.time) });
        rewrite = true;
        return { kind: "date", order };
      }
      // a column another system wrote ("1.5" among "1,5" columns) keeps its own mark when its cells show it
      const other: Decimal = decimal === "." ? "," : ".";
      const own = st.numbers[decimal].ok ? decimal : st.numbers[other].ok && st.evidence[other] > 0 && st.evidence[decimal] === 0 ? other : null;
      if (!own) return { kind: "keep" };
      const n = st.numbers[own];
      if (n.changed) rewrite = true;
      if (own === decimal) for (const [sep, count] of n.thousands) thousands.set(sep, (thousands.get(sep) ?? 0) + count);
      return { kind: "number", decimal: own };
    });
    const grouping = [...thousands.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
    return { decimal, thousands: grouping, columns, dates, rewrite };
  }
}

function note(state: NumberState, parsed: ReturnType<typeof parseNumber>): void {
  if (!parsed) {
    state.ok = false;
    return;
  }
  if (parsed.changed) state.changed = true;
  if (parsed.thousands) state.thousands.set(parsed.thousands, (state.thousands.get(parsed.thousands) ?? 0) + 1);
}

function noteDate(d: ColumnState["date"], cell: string): void {
  const m = matchDate(cell);
  if (!m || (d.pattern !== null && d.pattern !== m.pattern)) {
    d.ok = false;
    return;
  }
  d.pattern = m.pattern;
  const valid = validOrders(m);
  d.dayFirst &&= valid.dayFirst;
  d.monthFirst &&= valid.monthFirst;
  if (!d.dayFirst && !d.monthFirst) d.ok = false;
  if (m.time) d.time = m.time.s !== null ? "seconds" : d.time === "seconds" ? "seconds" : "minutes";
}

/** A cell as the canonical file writes it. Missing markers in number and date columns become empty. */
export function canonicalCell(plan: ColumnPlan | undefined, cell: string): string {
  if (!plan || plan.kind === "keep") return cell;
  const c0 = cell.charCodeAt(0);
  if (!(c0 >= 48 && c0 <= 57) && isMissing(cell)) return "";
  if (plan.kind === "number") return parseNumber(cell, plan.decimal)?.text ?? cell;
  const m = matchDate(cell);
  return m ? isoDate(m, plan.order) : cell;
}
