import { duplicateName, headerNames } from "./cells.js";
import { DataError } from "./errors.js";

/** A table's rows as text cells, readable more than once (one pass decides, the next one writes). */
export interface Rows {
  /** Data rows; cells follow `header()` as it stood when the row was read (JSON lines may add columns). */
  read(): AsyncIterable<string[]>;
  /** Column names; complete once a read has finished. */
  header(): string[];
}

/** Names for a header row, refusing a name written twice. */
export function checkedHeader(cells: readonly string[], where: string): string[] {
  const names = headerNames(cells);
  const dup = duplicateName(names);
  if (dup) throw new DataError(`${where} has the column name "${dup}" twice; column names must be unique.`);
  return names;
}
