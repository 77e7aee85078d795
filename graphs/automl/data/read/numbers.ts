// Numbers as people write them: "1.234,56" and "3,5" (decimal comma), "1,234.56" and "3.14" (decimal
// point), thousands split by ".", ",", a space, a no-break space or "'", a currency sign before or after,
// a trailing percent ("12,5%" is 12.5: the number written). A cell is parsed under one decimal mark at a
// time; the file's mark comes from unambiguous cells only, since "1.234" reads both ways.

export type Decimal = "." | ",";

export const THOUSANDS = [".", ",", " ", "\u00a0", "\u202f", "'"] as const;
const SPACE = /[ \u00a0\u202f]/;
const PLAIN = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const EXPONENT = /(?<=\d)[eE][-+]?\d+$/;
const SIMPLE_COMMA = /^-?\d+(?:,\d+)?$/;

export interface ParsedNumber {
  /** The number in canonical form: digits as written, "." as the decimal mark, no grouping. */
  text: string;
  /** The thousands separator the cell used, if any. */
  thousands: string | null;
  /** The cell was not already in canonical form (grouping, a decimal comma, a sign, a unit). */
  changed: boolean;
}

/** Sign, currency and percent taken off; null when what is left cannot be a number. */
function body(cell: string): { negative: boolean; digits: string } | null {
  let s = cell.trim();
  let negative = false;
  const sign = () => {
    if (s[0] === "-" || s[0] === "\u2212") {
      negative = !negative;
      s = s.slice(1).trimStart();
    } else if (s[0] === "+") s = s.slice(1).trimStart();
  };
  sign();
  if (/^[$€£]/.test(s)) s = s.slice(1).trimStart();
  else if (/[$€£]$/.test(s)) s = s.slice(0, -1).trimEnd();
  sign();
  if (s.endsWith("%")) s = s.slice(0, -1).trimEnd();
  if (!/^[\d.,'\u00a0\u202f ]*\d[\d.,'\u00a0\u202f ]*(?:[eE][-+]?\d+)?$/.test(s)) return null;
  return { negative, digits: s };
}

/** The cell as a number with `decimal` as its decimal mark, or null. */
export function parseNumber(cell: string, decimal: Decimal): ParsedNumber | null {
  const trimmed = cell.trim();
  // the common cells first: "3.25" under a decimal point, "3,25" under a decimal comma
  if (decimal === "." && PLAIN.test(trimmed)) return { text: trimmed, thousands: null, changed: false };
  if (decimal === "," && SIMPLE_COMMA.test(trimmed)) {
    const text = trimmed.replace(",", ".");
    return { text, thousands: null, changed: text !== trimmed };
  }
  const b = body(trimmed);
  if (!b) return null;
  let s = b.digits;
  const exp = EXPONENT.exec(s)?.[0] ?? "";
  if (exp) s = s.slice(0, -exp.length);
  const at = s.lastIndexOf(decimal);
  let whole = at >= 0 ? s.slice(0, at) : s;
  const fraction = at >= 0 ? s.slice(at + 1) : null;
  if (fraction !== null && !/^\d+$/.test(fraction)) return null;
  let thousands: string | null = null;
  if (!/^\d*$/.test(whole)) {
    const grouped = /^\d{1,3}(\D)\d{3}(?:\1\d{3})*$/.exec(whole);
    if (!grouped || grouped[1] === decimal || !(THOUSANDS as readonly string[]).includes(grouped[1])) return null;
    thousands = grouped[1];
    whole = whole.split(thousands).join("");
  }
  if (whole === "" && fraction === null) return null;
  const text = `${b.negative ? "-" : ""}${whole}${fraction !== null ? `.${fraction}` : ""}${exp}`;
  return { text, thousands, changed: text !== trimmed };
}

/** Which decimal mark a cell shows beyond doubt ("3,5", "1.234,56", "3.14"), or null ("1.234", "42"). */
export function decimalEvidence(cell: string): Decimal | null {
  const b = body(cell);
  if (!b) return null;
  const s = b.digits.replace(EXPONENT, "");
  const dots = s.split(".").length - 1;
  const commas = s.split(",").length - 1;
  if (dots && commas) {
    const last = s.lastIndexOf(".") > s.lastIndexOf(",") ? "." : ",";
    return parseNumber(s, last) ? last : null;
  }
  if (!dots && !commas) return null;
  const mark: Decimal = dots ? "." : ",";
  // the same mark twice is grouping: the other one is the decimal mark
  if (dots + commas > 1) return parseNumber(s, mark === "." ? "," : ".") ? (mark === "." ? "," : ".") : null;
  const [before, after] = s.split(mark);
  if (SPACE.test(before) || before.includes("'")) return mark; // "1 234,5": grouping by space, the mark is decimal
  if (after.length !== 3 || before === "" || before === "0" || before.length > 3) return parseNumber(s, mark) ? mark : null;
  return null;
}
