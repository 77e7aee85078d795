// Forecasting fields: the horizon, the time column and the column that separates series.

import { firstNameAfter, resolveColumn } from "./columns.js";
import { COUNT_SRC, HORIZON_UNIT_SRC, NAME_STOP, NUMBER_WORDS } from "./lexicon.js";
import { HorizonUnit, ParsedRequest } from "./parse.js";
import { allMatches } from "./text.js";

function horizonUnit(word: string | undefined): HorizonUnit {
  const w = (word ?? "").toLowerCase().replace(/[\s-]/g, "");
  if (!w || /^(?:timesteps?|steps?|periods?|points?|values?|observations?)$/.test(w)) return "step";
  if (/^(?:seconds?|secs?)$/.test(w)) return "second";
  if (/^(?:minutes?|mins?)$/.test(w)) return "minute";
  if (/^(?:hours?|hrs?)$/.test(w)) return "hour";
  if (/^days?$/.test(w)) return "day";
  if (/^weeks?$/.test(w)) return "week";
  if (/^months?$/.test(w)) return "month";
  if (/^quarters?$/.test(w)) return "quarter";
  return "year";
}

export function count(raw: string): number | null {
  const n = /^\d+$/.test(raw) ? Number(raw) : NUMBER_WORDS[raw.toLowerCase()];
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 10_000 ? n : null;
}

/** How far ahead to forecast: "14 days ahead", "the next 48 hours", "a horizon of 24", "PRED_SEQ_LEN=96", "next month". */
export function findHorizon(text: string): ParsedRequest["horizon"] {
  const unit = `(${HORIZON_UNIT_SRC})`;
  const n = `(${COUNT_SRC})`;
  const rules: Array<{ re: RegExp; value: (m: RegExpExecArray) => number | null; unit: (m: RegExpExecArray) => HorizonUnit }> = [
    { re: /\bpred(?:iction)?_seq_len\s*[=:]\s*(\d{1,5})/i, value: (m) => count(m[1]), unit: () => "step" },
    { re: new RegExp(`\\bhorizon\\s*(?:of|is|=|:|should\\s+be)?\\s*(?:the\\s+next\\s+)?${n}(?:\\s*${unit}\\b)?`, "i"), value: (m) => count(m[1]), unit: (m) => horizonUnit(m[2]) },
    { re: new RegExp(`\\b${n}[\\s-]*${unit}[\\s-]+(?:ahead|into\\s+the\\s+future|in\\s+advance)\\b`, "i"), value: (m) => count(m[1]), unit: (m) => horizonUnit(m[2]) },
    { re: new RegExp(`\\b(?:next|coming|following|upcoming|future)\\s+${n}\\s+${unit}\\b`, "i"), value: (m) => count(m[1]), unit: (m) => horizonUnit(m[2]) },
    { re: /\b(?:next|coming|following)\s+(day|week|month|quarter|year|hour)(?!s)\b/i, value: () => 1, unit: (m) => horizonUnit(m[1]) },
  ];
  for (const rule of rules) {
    const m = rule.re.exec(text);
    if (!m) continue;
    const value = rule.value(m);
    if (value !== null) return { value, unit: rule.unit(m), phrase: m[0].trim() };
  }
  return null;
}

/** The time column named in the text: "the date column", "time column is ts", "indexed by timestamp", "use ds as the time". */
export function findTimeColumn(text: string, columns: string[] | undefined): string | null {
  const quoted = /(['"`])([^'"`\n]{1,60})\1\s+(?:column\s+)?(?:is|as)\s+(?:the\s+)?(?:time|date|timestamp)\b/i.exec(text);
  if (quoted) {
    const r = resolveColumn(quoted[2], columns);
    if (r) return r;
  }
  const named = firstNameAfter(
    text,
    [
      /\b(?:time|date|timestamp|datetime)\s+(?:column|index|field|variable)\s*(?:is|=|:|named|called)?\s*/gi,
      /\b(?:indexed|ordered|sorted)\s+by\s+(?:the\s+)?/gi,
      /\b(?:use|using|treat)\s+(?:the\s+)?(?=\S+\s+(?:column\s+)?as\s+(?:the\s+)?(?:time|date|timestamp)\b)/gi,
    ],
    columns,
  );
  if (named) return named;
  const word = /\b(?:the\s+)?([A-Za-z_][\w-]*)\s+(?:column\s+)?(?:is|as)\s+(?:the|my|our)\s+(?:time|date|timestamp)(?:\s+(?:column|index))?\b/i.exec(text);
  if (word && !NAME_STOP.has(word[1].toLowerCase())) return resolveColumn(word[1], columns);
  // "the date column": a name right before "column" that is a column of the file
  if (columns) {
    for (const m of allMatches(text, /\b(?:the\s+)?([A-Za-z_][\w-]*)\s+column\b/gi)) {
      const r = resolveColumn(m[1], columns);
      if (r && /^(?:date|time|timestamp|datetime|ds|dt|day|period|month|week|year|hour)s?$/i.test(m[1])) return r;
    }
  }
  return null;
}

/** The column that separates series: "one series per store_id", "series id column is region", "for each sensor". */
export function findSeriesColumn(text: string, columns: string[]): string | null {
  return firstNameAfter(
    text,
    [
      /\b(?:series|group)\s+(?:id\s+)?(?:column|key|identifier|id)\s*(?:is|=|:|named|called)?\s*/gi,
      /\b(?:one\s+series|a\s+(?:separate\s+)?(?:series|forecast))\s+(?:per|for\s+each|for\s+every)\s+(?:the\s+)?/gi,
      /\b(?:per|for\s+each|for\s+every|grouped\s+by|split\s+by|separately\s+for\s+each)\s+(?:the\s+)?/gi,
    ],
    columns,
  );
}
