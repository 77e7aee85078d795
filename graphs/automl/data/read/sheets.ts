import type { Question } from "../../agents/types.js";

// Which sheet of a workbook holds the data: the user's answer, or a sheet the request names beside the
// word sheet ("the 'Sales' sheet", "sheet 2023"); a bare name could as well be a column's. A workbook with several table sheets is read from its first one until
// the user says otherwise.

/** Sheet names written out in the question; the choices list them all. */
const SHOWN = 12;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The sheet an answer names: its exact name, the name in any case, or its number among the choices. */
export function resolveSheet(sheets: readonly string[], answer: string | null | undefined): string | null {
  const text = answer?.trim().replace(/^[`'"]|[`'"]$/g, "");
  if (!text) return null;
  const exact = sheets.find((s) => s === text) ?? sheets.find((s) => s.toLowerCase() === text.toLowerCase());
  if (exact) return exact;
  const n = /^\d+$/.test(text) ? Number(text) : 0;
  return n >= 1 && n <= sheets.length && !sheets.some((s) => /^\d+$/.test(s)) ? sheets[n - 1] : null;
}

/** A sheet the request names beside the word sheet, tab or worksheet ("the 'Sales' sheet", "sheet: 2023"). */
export function sheetNamedIn(text: string, sheets: readonly string[]): string | null {
  const q = `[\`'"\u2018\u201c]?`;
  const qEnd = `[\`'"\u2019\u201d]?`;
  for (const sheet of sheets) {
    const name = escape(sheet);
    const before = new RegExp(`\\b(?:sheet|tab|worksheet)\\s*[:=]?\\s*${q}${name}${qEnd}(?![\\w-])`, "i");
    const after = new RegExp(`(?<![\\w-])${q}${name}${qEnd}\\s+(?:sheet|tab|worksheet)\\b`, "i");
    if (before.test(text) || after.test(text)) return sheet;
  }
  return null;
}

/** The question put while a workbook has several table sheets and none is chosen. */
export function sheetQuestion(sheets: readonly string[], read: string | null, answer: string | undefined, file: string): Question | null {
  if (sheets.length < 2 || resolveSheet(sheets, answer)) return null;
  const unknown = answer?.trim() ? `"${answer.trim()}" is not a sheet of ${file} holding a table. ` : "";
  return {
    slot: "sheet",
    text: `${unknown}Which sheet holds the data? (sheets: ${sheets.length > SHOWN ? `${sheets.slice(0, SHOWN).join(", ")}, … ${sheets.length - SHOWN} more` : sheets.join(", ")})`,
    choices: sheets.map((s) => ({ label: s === read ? `${s} (read now)` : s, value: s })),
    allowFreeText: false,
  };
}
