import readXlsxFile from "read-excel-file/node";
import { readZipDirectory, readZipEntry } from "../zip.js";
import { hasTimeOfDay, isoOfDate } from "./dates.js";
import { DataError } from "./errors.js";
import { zipSync } from "fflate";
import { checkedHeader, type Rows } from "./rows.js";

// Excel workbooks (.xlsx, .xlsm) through read-excel-file. A workbook is a zip of XML: before the reader
// sees it, its members are inflated here with a cap on their total size and on the cells its sheets
// declare, and handed over re-packed, so a small upload cannot expand without bound.

const MAX_MEMBERS = 10_000;

export interface WorkbookLimits {
  /** Inflated bytes of the workbook's XML, all members together. */
  xmlBytes: number;
  /** Cells the sheets hold. */
  cells: number;
}

const LIMITS: WorkbookLimits = { xmlBytes: 512 * 1048576, cells: 10_000_000 };

type Cell = string | number | boolean | Date | null;

export interface Workbook {
  /** Sheets that hold a table (a header row and at least one row under it), in workbook order. */
  sheets: string[];
  /** The sheet read. */
  sheet: string;
  rows: Rows;
  /** Columns holding spreadsheet dates, now ISO. */
  dates: Array<{ column: string; format: string }>;
}

function countCells(xml: Buffer): number {
  let n = 0;
  for (const tag of ["<c ", "<c>"]) for (let at = xml.indexOf(tag); at >= 0; at = xml.indexOf(tag, at + 3)) n++;
  return n;
}

/** The workbook's XML members, inflated within the caps, as a new archive. */
async function vetted(file: string, name: string, limits: WorkbookLimits): Promise<Buffer> {
  const entries = (await readZipDirectory(file)).filter((e) => !e.dir && /\.(xml|rels)$/i.test(e.name));
  if (entries.length > MAX_MEMBERS) throw new DataError(`${name} holds ${entries.length} parts, more than a workbook has; send the table as CSV.`);
  const tooBig = () =>
    new DataError(`${name} expands to more than ${Math.round(limits.xmlBytes / 1048576)} MB of spreadsheet data; send the table as CSV, or fewer rows.`);
  let budget = limits.xmlBytes;
  let cells = 0;
  // The spreadsheet reader then sees only what was vetted, re-packed without compression, never the
  // upload's own headers.
  const members: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const e of entries) {
    if (e.encrypted) throw new DataError(`${name} is encrypted; remove its password in Excel and send it again, or send the table as CSV.`);
    if (e.size > budget) throw tooBig();
    let data: Buffer;
    try {
      data = await readZipEntry(file, e, budget);
    } catch (err) {
      if (err instanceof DataError && /could not be decompressed/.test(err.message)) throw tooBig();
      throw err;
    }
    // a stored member's bytes are read as they are, whatever size it declares
    if (data.length > budget) throw tooBig();
    budget -= data.length;
    if (/^xl\/worksheets\//i.test(e.name)) cells += countCells(data);
    if (cells > limits.cells) throw new DataError(`${name} has more than ${limits.cells.toLocaleString("en")} cells; send the table as CSV.`);
    members[e.name] = [data, { level: 0 }];
  }
  return Buffer.from(zipSync(members));
}

const filled = (c: Cell) => c !== null && c !== "";

/** Reads a workbook; `wanted` names the sheet (as asked of the user), else the first table sheet is read. */
export async function readWorkbook(file: string, name: string, wanted: string | null, limits = LIMITS): Promise<Workbook> {
  let sheets: Array<{ sheet: string; data: Cell[][] }>;
  try {
    sheets = (await readXlsxFile(await vetted(file, name, limits))) as unknown as Array<{ sheet: string; data: Cell[][] }>;
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`${name} is an Excel file I could not read (${(err as Error).message.slice(0, 160)}); open it in Excel and save it again as .xlsx, or send the table as CSV.`);
  }
  const tables = sheets.flatMap(({ sheet, data }) => {
    const start = data.findIndex((r) => r.some(filled));
    return start >= 0 && data.slice(start + 1).some((r) => r.some(filled)) ? [{ sheet, data: data.slice(start) }] : [];
  });
  if (!tables.length)
    throw new DataError(`${name} holds no table: no sheet has a header row with a row of data under it. Put the column names in the first row of a sheet, or send a CSV.`);
  const names = tables.map((t) => t.sheet);
  const chosen = wanted === null ? tables[0] : tables.find((t) => t.sheet === wanted) ?? tables.find((t) => t.sheet.toLowerCase() === wanted.toLowerCase());
  if (!chosen) throw new DataError(`${name} has no sheet "${wanted}" holding a table; its sheets with tables: ${names.join(", ")}.`);

  const [head, ...body] = chosen.data;
  // typed cells make a missing header plain: numbers, dates or booleans where the names should be
  if (!head.some((c) => typeof c === "string" && c.trim()))
    throw new DataError(
      `${name} (sheet "${chosen.sheet}") has no header row: its first row holds values, not column names. Put the column names in the first row, or send a CSV.`,
    );
  const data = body.filter((r) => r.some(filled));
  // a loop, not Math.max(...rows): spreading hundreds of thousands of rows overflows the call stack
  const width = chosen.data.reduce((most, r) => Math.max(most, r.reduce<number>((w, c, i) => (filled(c) ? i + 1 : w), 0)), 0);
  const withTime = Array.from({ length: width }, (_, i) => data.some((r) => r[i] instanceof Date && hasTimeOfDay(r[i] as Date)));
  const dated = Array.from({ length: width }, (_, i) => data.some((r) => r[i] instanceof Date));
  const text = (c: Cell | undefined, i: number): string =>
    c === null || c === undefined ? "" : c instanceof Date ? isoOfDate(c, withTime[i]) : typeof c === "string" ? c : String(c);
  const header = checkedHeader(
    Array.from({ length: width }, (_, i) => text(head[i], i)),
    `${name} (sheet "${chosen.sheet}")`,
  );
  const rows = data.map((r) => Array.from({ length: width }, (_, i) => text(r[i], i)));
  return {
    sheets: names,
    sheet: chosen.sheet,
    rows: { header: () => header, read: async function* () { yield* rows; } },
    dates: header.filter((_, i) => dated[i]).map((column) => ({ column, format: "Excel date" })),
  };
}
