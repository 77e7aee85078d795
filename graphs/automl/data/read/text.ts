import { Readable } from "node:stream";
import { parse } from "csv-parse";
import { decodeFile, type TextEncoding } from "./encoding.js";
import type { Dialect } from "./dialect.js";
import { DataError } from "./errors.js";
import { checkedHeader, type Rows } from "./rows.js";

/** The records of a delimited text file in any encoding, parsed as strictly as the profile parses. */
export function textRows(file: string, name: string, encoding: TextEncoding, dialect: Dialect): Rows {
  let names: string[] = [];
  return {
    header: () => names,
    async *read() {
      const parser = Readable.from(decodeFile(file, encoding)).pipe(
        parse({ delimiter: dialect.delimiter, from_line: dialect.skipLines + 1, skip_empty_lines: true, relax_quotes: false, trim: false }),
      );
      let first = true;
      try {
        for await (const record of parser as AsyncIterable<string[]>) {
          if (first) {
            names = checkedHeader(record, name);
            first = false;
            continue;
          }
          yield record;
        }
      } catch (err) {
        if (err instanceof DataError) throw err;
        throw new DataError(`${name} is not valid CSV: ${(err as Error).message.replace(/^Invalid Record Length: /, "")}`);
      }
      if (first) throw new DataError(`${name} is empty: it has no header and no rows.`);
    },
  };
}
