/** A problem with the user's data, phrased for the user: the file, the problem, what to send instead. */
export class DataError extends Error {
  override name = "DataError";
}

/** The formats a table may come in, for messages that say what to send instead. */
export const TABLE_FORMATS = "CSV (or TSV / text with ; | or tab separators), Excel (.xlsx), JSON, JSON lines or Parquet";
