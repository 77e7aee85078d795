import { parse } from "csv-parse/sync";

// Which separator a delimited text uses: the candidate that splits the first records into the same
// number of fields (more than one) most consistently, quotes respected. Counting characters on the
// first line alone is fooled by a decimal comma or a quoted "a, b"; parsing the head is not.

export const DELIMITERS = [",", ";", "\t", "|"] as const;
const SAMPLE_RECORDS = 50;

export interface Dialect {
  delimiter: string;
  /** Lines before the header: Excel's "sep=;" hint line. */
  skipLines: number;
}

function consistency(text: string, delimiter: string): { score: number; width: number } {
  let records: string[][];
  try {
    records = parse(text, { delimiter, relax_column_count: true, relax_quotes: true, skip_empty_lines: true, skip_records_with_error: true, to: SAMPLE_RECORDS });
  } catch {
    return { score: 0, width: 0 };
  }
  const width = records[0]?.length ?? 0;
  if (width < 2) return { score: 0, width };
  return { score: records.filter((r) => r.length === width).length, width };
}

/** The separator of a text whose head (decoded) is `head`; `complete` when the head is the whole file. */
export function sniffDialect(head: string, complete: boolean): Dialect {
  const hint = /^sep=(.)\r?\n/.exec(head);
  if (hint) return { delimiter: hint[1], skipLines: 1 };
  // a head cut mid-record would count one ragged record; drop the partial last line
  const cut = complete ? head : head.slice(0, Math.max(head.lastIndexOf("\n"), 0) + 1) || head;
  let best = { delimiter: ",", score: 0, width: 0 };
  for (const delimiter of DELIMITERS) {
    const { score, width } = consistency(cut, delimiter);
    if (score > best.score || (score === best.score && score > 0 && width > best.width)) best = { delimiter, score, width };
  }
  return { delimiter: best.delimiter, skipLines: 0 };
}
