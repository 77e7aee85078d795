/** A problem with the user's data, phrased for the user: the file, the problem, what to send instead. */
export class DataError extends Error {
  override name = "DataError";
}

/** The formats a table may come in, for messages that say what to send instead. */
export const TABLE_FORMATS = "CSV (or TSV / text with ; | or tab separators), Excel (.xlsx), JSON, JSON lines or Parquet";

/**
 * What chat adapters accept as an upload: the tables above, zip archives (images, or tables), and old
 * .xls files, so that the reader can say how to convert them rather than the adapter refusing blindly.
 */
export const UPLOAD_EXTENSIONS = [".csv", ".tsv", ".tab", ".txt", ".data", ".psv", ".xlsx", ".xlsm", ".xls", ".json", ".jsonl", ".ndjson", ".parquet", ".zip"];
/** The same, in words for a refusal. */
export const UPLOAD_FORMATS = `${TABLE_FORMATS}, or a .zip archive (of images, or of tables)`;
