import { spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import type { DataProfile } from "../../graphs/automl/agents/types.js";
import { DataError, profileCsv } from "../../graphs/automl/data/profile.js";
import { profileData } from "../../graphs/automl/data/profile-data.js";
import { holdoutFiles } from "../../graphs/automl/holdout.js";
import { readWorkbook } from "../../graphs/automl/data/read/excel.js";
import { decimalEvidence, parseNumber } from "../../graphs/automl/data/read/numbers.js";
import { resolveSheet, sheetNamedIn, sheetQuestion } from "../../graphs/automl/data/read/sheets.js";
import { writeZip } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// Files as people upload them, written here byte for byte (Excel by openpyxl, Parquet by
// hyparquet-writer), read through the profile, and checked in the canonical copy every later step reads.

const tmp = tempDir("threadml-readers-");
const converted = join(tmp.dir, "converted");
const MB = 1048576;
const PYTHON = process.env.THREADML_PYTHON ?? "/usr/bin/python3";

const read = (file: string, sheet: string | null = null) => profileCsv(file, { maxBytes: 20 * MB, convertedDir: converted, sheet });
const canonical = (p: DataProfile) => readFileSync(p.file, "utf8");
const kind = (p: DataProfile, name: string) => p.columns.find((c) => c.name === name)?.kind;
const bytes = (name: string, data: Buffer) => {
  const path = join(tmp.dir, name);
  writeFileSync(path, data);
  return path;
};

/** Runs an openpyxl script with the output path as sys.argv[1]. */
function openpyxl(name: string, body: string): string {
  const path = join(tmp.dir, name);
  const run = spawnSync(PYTHON, ["-c", `import sys, datetime\nfrom openpyxl import Workbook\nwb = Workbook()\n${body}\nwb.save(sys.argv[1])`, path], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`openpyxl failed (python3-openpyxl): ${run.stderr}`);
  return path;
}

/** Thirty rows of a small table, so every file below is a table the profile accepts. */
function rows(n = 30): Array<{ name: string; size: number; price: number; city: string }> {
  const cities = ["Paris", "Köln", "Besançon"];
  return Array.from({ length: n }, (_, i) => ({ name: `p${i}`, size: 1 + (i % 7) * 0.25, price: 1000 + i * 137.5, city: cities[i % 3] }));
}

describe("delimited text in the encodings and dialects people send", () => {
  it("uses a plain UTF-8 comma CSV as it is, without a copy", async () => {
    const file = tmp.write("plain.csv", `a,b,label\n${rows().map((r, i) => `${r.size},${i},${r.city}`).join("\n")}\n`);
    const p = await read(file);
    expect(p.file).toBe(file);
    expect(p.source).toMatchObject({ format: "csv", encoding: "UTF-8", delimiter: ",", decimal: ".", thousands: null, dates: [] });
    expect(kind(p, "a")).toBe("numeric");
  });

  it("reads a European CSV: ';', decimal comma, '.' thousands, currency; numbers arrive as numbers", async () => {
    // "\u0080" is written as the byte 0x80: the euro sign in cp1252
    const lines = rows().map((r) => `${r.name};${String(r.size).replace(".", ",")};${r.price.toLocaleString("de-DE", { minimumFractionDigits: 2 })} \u0080;${r.city}`);
    const file = bytes("europe.csv", Buffer.from(`Name;Größe;Preis;Stadt\r\n${lines.join("\r\n")}\r\n`, "latin1"));
    const p = await read(file);
    expect(p.source).toMatchObject({ format: "csv", encoding: "cp1252 (Latin-1)", delimiter: ";", decimal: ",", thousands: "." });
    expect(p.name).toBe("europe.csv");
    expect(p.delimiter).toBe(",");
    expect(kind(p, "Größe")).toBe("numeric");
    expect(kind(p, "Preis")).toBe("numeric");
    expect(kind(p, "Stadt")).toBe("categorical");
    const text = canonical(p);
    expect(text.split("\n")[0]).toBe("Name,Größe,Preis,Stadt");
    // 1.137,50 € -> 1137.50; 1,25 -> 1.25; Köln untouched
    expect(text).toContain("p1,1.25,1137.50,Köln");
    expect(p.columns.find((c) => c.name === "Preis")!.stats!.max).toBeCloseTo(1000 + 29 * 137.5);
  });

  it("reads cp1252 with accented header names and cp1252-only characters", async () => {
    // \u0093 and \u0094 are written as the bytes 0x93 and 0x94: curly quotes in cp1252, absent from Latin-1
    const body = rows().map((r, i) => `${r.name},${r.size},${i % 2 ? "Créteil" : "Orléans"},${i % 2 ? "\u0093oui\u0094" : "non"}`);
    const file = bytes("latin.csv", Buffer.from(`Prénom,Größe,Ville d'été,Réponse\n${body.join("\n")}\n`, "latin1"));
    const p = await read(file);
    expect(p.source?.encoding).toBe("cp1252 (Latin-1)");
    expect(p.columns.map((c) => c.name)).toEqual(["Prénom", "Größe", "Ville d'été", "Réponse"]);
    expect(p.columns.find((c) => c.name === "Réponse")!.examples).toContain("\u201coui\u201d");
    expect(kind(p, "Größe")).toBe("numeric");
  });

  it("gives the host-made test split UTF-8 rows, the accented target hidden by its name", async () => {
    const body = rows().map((r, i) => `${r.name};${String(r.size).replace(".", ",")};${r.city};${i % 2 ? "été" : "hiver"}`);
    const p = await read(bytes("saison.csv", Buffer.from(`Prénom;Größe;Ville;Saison à prédire\n${body.join("\n")}\n`, "latin1")));
    const held = await holdoutFiles({ file: p.file, delimiter: p.delimiter, hidden: ["Saison à prédire"], stratify: "Saison à prédire", testFraction: 0.2, seed: 1, dir: join(tmp.dir, "holdout") });
    const [train, features, truth] = [held.train, held.features, held.truth].map((f) => readFileSync(f, "utf8"));
    expect(train.split("\n")[0]).toBe("Prénom,Größe,Ville,Saison à prédire");
    expect(features.split("\n")[0]).toBe("Prénom,Größe,Ville");
    expect(truth).toMatch(/,(été|hiver)\n/);
    expect(held.rows).toEqual({ trainValid: 24, test: 6 });
  });

  it("reads UTF-16 LE with a byte-order mark (Excel's 'Unicode text')", async () => {
    const text = `Prénom\tTaille\tVille\r\n${rows().map((r) => `${r.name}\t${r.size}\t${r.city}`).join("\r\n")}\r\n`;
    const file = bytes("unicode.txt", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]));
    const p = await read(file);
    expect(p.source).toMatchObject({ encoding: "UTF-16 LE", delimiter: "\t" });
    expect(p.columns.map((c) => c.name)).toEqual(["Prénom", "Taille", "Ville"]);
    expect(kind(p, "Taille")).toBe("numeric");
    expect(p.rows).toBe(30);
  });

  it("reads UTF-16 BE without a mark, by its NUL bytes", async () => {
    const text = `a,b,c\n${rows().map((r) => `${r.name},${r.size},${r.city}`).join("\n")}\n`;
    const le = Buffer.from(text, "utf16le");
    const be = Buffer.alloc(le.length);
    for (let i = 0; i < le.length; i += 2) [be[i], be[i + 1]] = [le[i + 1], le[i]];
    const p = await read(bytes("wide.csv", be));
    expect(p.source?.encoding).toBe("UTF-16 BE");
    expect(p.columns.find((c) => c.name === "c")!.examples).toContain("Köln");
  });

  it("reads UTF-8 with a byte-order mark into a copy without it", async () => {
    const file = bytes("bom.csv", Buffer.from(`\ufeffid,size,city\n${rows().map((r, i) => `${i},${r.size},${r.city}`).join("\n")}\n`, "utf8"));
    const p = await read(file);
    expect(p.source?.encoding).toBe("UTF-8 with BOM");
    expect(p.file).not.toBe(file);
    expect(readFileSync(p.file)[0]).toBe("i".charCodeAt(0));
    expect(p.columns[0].name).toBe("id");
  });

  it.each([
    ["tab.tsv", "\t"],
    ["pipe.psv", "|"],
  ])("reads %s, separated by %j, into a comma-separated copy", async (name, sep) => {
    const p = await read(tmp.write(name, `name${sep}size${sep}note\n${rows().map((r) => `${r.name}${sep}${r.size}${sep}"a, b"`).join("\n")}\n`));
    expect(p.source?.delimiter).toBe(sep);
    expect(p.columns.map((c) => c.name)).toEqual(["name", "size", "note"]);
    expect(canonical(p)).toContain('p1,1.25,"a, b"');
  });

  it("follows Excel's sep= line", async () => {
    const p = await read(tmp.write("hint.csv", `sep=;\nx;y\n${rows().map((r) => `${String(r.size).replace(".", ",")};${r.city}`).join("\n")}\n`));
    expect(p.source?.delimiter).toBe(";");
    expect(p.columns.map((c) => c.name)).toEqual(["x", "y"]);
    expect(kind(p, "x")).toBe("numeric");
  });

  it("keeps a column as text when one cell is not a number, and keeps percent values as written", async () => {
    const lines = rows().map((r, i) => `${i === 5 ? "n.c." : String(r.size).replace(".", ",")};${i % 10},5 %;${r.city}`);
    const p = await read(tmp.write("mixed.csv", `a;rate;c\n${lines.join("\n")}\n`));
    expect(p.source?.decimal).toBe(",");
    expect(kind(p, "a")).not.toBe("numeric");
    expect(canonical(p)).toContain('\n"1,25",1.5,Köln\n');
    expect(kind(p, "rate")).toBe("numeric");
    expect(p.columns.find((c) => c.name === "rate")!.stats!.max).toBe(9.5);
  });

  it("reads a column written with a decimal point among decimal-comma columns", async () => {
    const comma = (x: number) => x.toFixed(2).replace(".", ",");
    const p = await read(tmp.write("two-marks.csv", `a;b;c;d\n${rows().map((r, i) => `${comma(r.size)};${i}.5;${comma(r.price)};${r.city}`).join("\n")}\n`));
    expect(p.source?.decimal).toBe(",");
    expect(canonical(p)).toContain("\n1.25,1.5,1137.50,Köln\n");
    expect(kind(p, "b")).toBe("numeric");
  });
});

describe("dates written day first or month first", () => {
  it("rewrites DD/MM/YYYY to ISO when a day over 12 settles it, and records the format", async () => {
    const dates = Array.from({ length: 30 }, (_, i) => `${String((i % 28) + 1).padStart(2, "0")}/${String((i % 12) + 1).padStart(2, "0")}/2023`);
    const p = await read(tmp.write("dmy.csv", `when,y\n${dates.map((d, i) => `${d},${i}`).join("\n")}\n`));
    expect(p.source?.dates).toEqual([{ column: "when", format: "DD/MM/YYYY" }]);
    expect(kind(p, "when")).toBe("datetime");
    expect(canonical(p)).toContain("\n2023-12-24,23\n");
  });

  it("rewrites MM/DD/YYYY HH:MM when a second place over 12 settles it", async () => {
    const dates = Array.from({ length: 30 }, (_, i) => `${(i % 12) + 1}/${(i % 28) + 1}/2024 ${String(i % 24).padStart(2, "0")}:30`);
    const p = await read(tmp.write("mdy.csv", `stamp,y\n${dates.map((d, i) => `${d},${i}`).join("\n")}\n`));
    expect(p.source?.dates).toEqual([{ column: "stamp", format: "MM/DD/YYYY HH:MM" }]);
    expect(canonical(p)).toContain("\n2024-12-24T23:30:00,23\n");
  });

  it("reads undecidable dates day first in a ';' file, DD.MM.YYYY always day first", async () => {
    const p = await read(tmp.write("eu-dates.csv", `a;b;y\n${rows().map((_, i) => `0${(i % 9) + 1}/02/2022;0${(i % 9) + 1}.03.2021;${i}`).join("\n")}\n`));
    expect(p.source?.dates).toEqual([
      { column: "a", format: "DD/MM/YYYY" },
      { column: "b", format: "DD.MM.YYYY" },
    ]);
    expect(canonical(p)).toContain("\n2022-02-03,2021-03-03,2\n");
  });

  it("leaves a column with an impossible date as it is", async () => {
    const p = await read(tmp.write("bad-dates.csv", `d,y\n${rows().map((_, i) => `${i === 3 ? "31/02/2022" : "10/02/2022"},${i}`).join("\n")}\n`));
    expect(p.source?.dates).toEqual([]);
    expect(p.file).toBe(join(tmp.dir, "bad-dates.csv"));
  });
});

describe("JSON", () => {
  const objects = rows().map((r) => ({ name: r.name, size: r.size, address: { city: r.city, geo: { lat: 1 } }, tags: ["a", "b"], ok: r.size > 1, none: null }));

  it("reads an array of objects, flattening nested objects to dotted columns", async () => {
    const p = await read(tmp.write("rows.json", JSON.stringify(objects, null, 2)));
    expect(p.source).toMatchObject({ format: "json", encoding: "UTF-8" });
    expect(p.columns.map((c) => c.name)).toEqual(["name", "size", "address.city", "address.geo", "tags", "ok", "none"]);
    expect(kind(p, "size")).toBe("numeric");
    expect(kind(p, "ok")).toBe("boolean");
    expect(canonical(p).split("\n")[1]).toBe('p0,1,Paris,"{""lat"":1}","[""a"",""b""]",false,');
  });

  it("reads an object holding the rows, and pandas' column and split shapes", async () => {
    const held = await read(tmp.write("held.json", JSON.stringify({ meta: { n: 30 }, data: objects.map(({ name, size }) => ({ name, size })) })));
    expect(held.columns.map((c) => c.name)).toEqual(["name", "size"]);
    const cols = await read(tmp.write("cols.json", JSON.stringify({ name: objects.map((o) => o.name), size: objects.map((o) => o.size) })));
    expect(cols.rows).toBe(30);
    expect(kind(cols, "size")).toBe("numeric");
    const split = await read(tmp.write("split.json", JSON.stringify({ columns: ["name", "size"], index: objects.map((_, i) => i), data: objects.map((o) => [o.name, o.size]) })));
    expect(split.columns.map((c) => c.name)).toEqual(["name", "size"]);
    expect(split.rows).toBe(30);
  });

  it("reads JSON lines, columns in first-seen order, a key first seen late included", async () => {
    const lines = objects.map((o, i) => JSON.stringify(i === 20 ? { ...o, late: "x" } : o));
    const p = await read(tmp.write("rows.jsonl", `${lines.join("\n")}\n\n`));
    expect(p.source?.format).toBe("jsonl");
    expect(p.columns.map((c) => c.name)).toEqual(["name", "size", "address.city", "address.geo", "tags", "ok", "none", "late"]);
    expect(p.columns.find((c) => c.name === "late")!.missing).toBe(29);
  });

  it("converts the same upload once", async () => {
    const file = tmp.write("once.json", JSON.stringify(objects));
    const first = await read(file);
    const mtime = statSync(first.file).mtimeMs;
    const again = await read(file);
    expect(again.file).toBe(first.file);
    expect(statSync(again.file).mtimeMs).toBe(mtime);
    expect(again.source).toEqual(first.source);
  });
});

describe("Excel workbooks", () => {
  it("reads a single sheet with dates, merged and blank header cells", async () => {
    const file = openpyxl(
      "one.xlsx",
      `ws = wb.active
ws.title = "Données"
ws.append(["Prénom", None, "Signed", "Visit", "Montant", "Actif"])
for i in range(30):
    ws.append([f"p{i}", i, datetime.date(2024, 1 + i % 12, 1 + i % 28), datetime.datetime(2024, 3, 5, 14, 30, i), 12.5 + i, i % 2 == 0])`,
    );
    const p = await read(file);
    expect(p.source).toMatchObject({ format: "excel", encoding: null, sheet: "Données", sheets: ["Données"] });
    expect(p.source?.dates).toEqual([
      { column: "Signed", format: "Excel date" },
      { column: "Visit", format: "Excel date" },
    ]);
    expect(p.columns.map((c) => c.name)).toEqual(["Prénom", "column_2", "Signed", "Visit", "Montant", "Actif"]);
    expect(kind(p, "Montant")).toBe("numeric");
    expect(kind(p, "Signed")).toBe("datetime");
    expect(canonical(p).split("\n")[1]).toBe("p0,0,2024-01-01,2024-03-05T14:30:00,12.5,true");
  });

  it("reads the first of two table sheets (an empty sheet is no table), and another sheet when asked", async () => {
    const file = openpyxl(
      "two.xlsx",
      `wb.active.title = "Notes"
a = wb.create_sheet("Sales")
a.append(["region", "amount"])
for i in range(25): a.append(["north" if i % 2 else "south", i * 1.5])
b = wb.create_sheet("Costs")
b.append(["item", "cost", "qty"])
for i in range(25): b.append([f"i{i}", i * 2.0, i])`,
    );
    const first = await read(file);
    expect(first.source).toMatchObject({ sheet: "Sales", sheets: ["Sales", "Costs"] });
    expect(first.columns.map((c) => c.name)).toEqual(["region", "amount"]);
    const costs = await read(file, "costs");
    expect(costs.source?.sheet).toBe("Costs");
    expect(costs.columns.map((c) => c.name)).toEqual(["item", "cost", "qty"]);
    expect(costs.file).not.toBe(first.file);
    await expect(read(file, "Budget")).rejects.toThrow(/no sheet "Budget".*Sales, Costs/);
  });

  it("is read as a table, not as an archive of images", async () => {
    const file = openpyxl("data.xlsx", `ws = wb.active\nws.append(["x", "y"])\nfor i in range(30): ws.append([i, i % 3])`);
    const p = await profileData(file, [], { maxBytes: 20 * MB, convertedDir: converted });
    expect(p.source?.format).toBe("excel");
    expect(p.inputs).toEqual([p.file]);
  });

  it("refuses a workbook with a name twice in its header", async () => {
    const file = openpyxl("dupe.xlsx", `ws = wb.active\nws.append(["a", "a"])\nws.append([1, 2])`);
    await expect(read(file)).rejects.toThrow(/dupe\.xlsx \(sheet "Sheet"\) has the column name "a" twice/);
  });

  it("caps the spreadsheet data a workbook expands to, and its cells", async () => {
    const file = openpyxl("wide.xlsx", `ws = wb.active\nws.append([f"c{j}" for j in range(20)])\nfor i in range(200): ws.append([i * j for j in range(20)])`);
    await expect(readWorkbook(file, "wide.xlsx", null, { xmlBytes: 20_000, cells: 1e7 })).rejects.toThrow(/expands to more than/);
    await expect(readWorkbook(file, "wide.xlsx", null, { xmlBytes: 1e8, cells: 1000 })).rejects.toThrow(/more than 1,000 cells/);
    expect((await readWorkbook(file, "wide.xlsx", null)).sheet).toBe("Sheet");
  });

  it("does not trust a member's declared size", async () => {
    // a deflated sheet that declares 100 bytes and inflates to 2 MB: the cap counts what comes out
    const file = join(tmp.dir, "liar.xlsx");
    const script = `import sys, zipfile, struct
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("[Content_Types].xml", "<Types/>")
    z.writestr("xl/workbook.xml", "<workbook/>")
    z.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + "<row></row>" * 200000 + "</worksheet>")
raw = bytearray(open(sys.argv[1], "rb").read())
at = raw.rfind(b"PK\\x01\\x02")
struct.pack_into("<I", raw, at + 24, 100)
open(sys.argv[1], "wb").write(raw)`;
    const run = spawnSync(PYTHON, ["-c", script, file], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(statSync(file).size).toBeLessThan(50_000);
    await expect(readWorkbook(file, "liar.xlsx", null, { xmlBytes: MB, cells: 1e7 })).rejects.toThrow(/liar\.xlsx expands to more than 1 MB/);
  });
});

describe("Parquet", () => {
  it("reads types, nulls and several row groups", async () => {
    const file = join(tmp.dir, "table.parquet");
    const n = 250;
    parquetWriteFile({
      filename: file,
      rowGroupSize: 100,
      columnData: [
        { name: "ville", data: Array.from({ length: n }, (_, i) => (i % 2 ? "Créteil" : "Orléans")), type: "STRING" },
        { name: "size", data: Array.from({ length: n }, (_, i) => (i === 7 ? null : i / 4)), type: "DOUBLE" },
        { name: "count", data: Array.from({ length: n }, (_, i) => BigInt(i) * 10_000_000_000n), type: "INT64" },
        { name: "ok", data: Array.from({ length: n }, (_, i) => i % 3 === 0), type: "BOOLEAN" },
        { name: "day", data: Array.from({ length: n }, (_, i) => new Date(Date.UTC(2024, 0, 1 + i))), type: "TIMESTAMP" },
      ],
    });
    const p = await read(file);
    expect(p.source).toMatchObject({ format: "parquet", encoding: null });
    expect(p.rows).toBe(n);
    expect(p.columns.map((c) => [c.name, c.kind])).toEqual([
      ["ville", "categorical"],
      ["size", "numeric"],
      ["count", "numeric"],
      ["ok", "boolean"],
      ["day", "datetime"],
    ]);
    expect(p.columns.find((c) => c.name === "size")!.missing).toBe(1);
    expect(canonical(p).split("\n")[2]).toBe("Créteil,0.25,10000000000,false,2024-01-02");
  });

  it("refuses a Parquet file it cannot decode, saying what to send", async () => {
    const whole = readFileSync(join(tmp.dir, "table.parquet"));
    const file = bytes("cut.parquet", whole.subarray(0, Math.floor(whole.length / 2)));
    await expect(read(file)).rejects.toThrow(/cut\.parquet is a Parquet file I could not read \(.+\); send it as CSV \(e\.g\. df\.to_csv\)/);
  });
});

describe("refusals name the file, the problem and what to send", () => {
  const ole = (extra: Buffer = Buffer.alloc(0)) => Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(504), extra]);

  it.each([
    ["old.xls", () => ole(Buffer.from("Workbook", "utf16le")), /old\.xls is an old-style Excel file \(\.xls\); save it as \.xlsx or CSV/],
    ["locked.xlsx", () => ole(Buffer.from("EncryptionInfo", "utf16le")), /locked\.xlsx is a password-protected Excel workbook; remove the password/],
    ["broken.json", () => Buffer.from(JSON.stringify(rows()).slice(0, -40)), /broken\.json is not valid JSON \(.+\); it may be cut short/],
    ["scalars.json", () => Buffer.from(JSON.stringify([1, 2, 3])), /scalars\.json holds JSON but no table/],
    ["lines.jsonl", () => Buffer.from('{"a": 1}\n[1, 2]\n'), /lines\.jsonl line 2 holds an array, not an object/],
    ["noise.csv", () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)), /noise\.csv is a binary file, not a table I can read/],
    ["archive.csv.gz", () => Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), /gzip-compressed; decompress it/],
    ["notes.md", () => Buffer.from("# notes\nnothing here\n"), /notes\.md is not a file type I read as a table; send CSV/],
  ])("%s", async (name, content, message) => {
    const file = bytes(name, content());
    await expect(read(file)).rejects.toThrow(message);
    await expect(read(file)).rejects.toBeInstanceOf(DataError);
  });

  it("refuses an empty workbook", async () => {
    const file = openpyxl("empty.xlsx", `wb.create_sheet("Other")`);
    await expect(read(file)).rejects.toThrow(/empty\.xlsx holds no table: no sheet has a header row with a row of data under it/);
  });

  it("refuses a sheet without a header row", async () => {
    const file = openpyxl("numbers.xlsx", `ws = wb.active\nfor i in range(30): ws.append([i, i * 2.5])`);
    await expect(read(file)).rejects.toThrow(/numbers\.xlsx \(sheet "Sheet"\) has no header row: its first row holds values, not column names/);
  });

  it("refuses a workbook that is not Excel's (OpenDocument)", async () => {
    const file = writeZip(join(tmp.dir, "calc.ods"), [
      { name: "mimetype", data: "application/vnd.oasis.opendocument.spreadsheet" },
      { name: "content.xml", data: "<office:document-content/>" },
    ]);
    await expect(read(file)).rejects.toThrow(/calc\.ods is an OpenDocument file \(\.ods\); save it as \.xlsx or CSV/);
  });
});

describe("number cells", () => {
  it.each([
    ["1.234,56", ",", "1234.56"],
    ["1,234.56", ".", "1234.56"],
    ["1 234,5", ",", "1234.5"],
    ["1\u202f234,5", ",", "1234.5"],
    ["1'234.5", ".", "1234.5"],
    ["-3,5", ",", "-3.5"],
    ["$1,200", ".", "1200"],
    ["12,5 %", ",", "12.5"],
    ["007", ".", "007"],
    ["1.5e-3", ".", "1.5e-3"],
  ])("%s with %s as the decimal mark is %s", (cell, decimal, text) => {
    expect(parseNumber(cell, decimal as "." | ",")?.text).toBe(text);
  });

  it.each([
    ["1,2,3", ","],
    ["1.23.4", "."],
    ["12:30", "."],
    ["abc", "."],
    ["1.234,5", "."],
  ])("%s is no number with %s", (cell, decimal) => {
    expect(parseNumber(cell, decimal as "." | ",")).toBeNull();
  });

  it("takes the decimal mark only from cells that show it", () => {
    expect(["3,5", "1.234,56", "0,123", "1 234,5", "1.234.567"].map(decimalEvidence)).toEqual([",", ",", ",", ",", ","]);
    expect(["3.14", "1,234.56", "1,234,567"].map(decimalEvidence)).toEqual([".", ".", "."]);
    expect(["1.234", "1,234", "42"].map(decimalEvidence)).toEqual([null, null, null]);
  });
});

describe("the sheet question", () => {
  const sheets = ["Sales 2024", "Costs"];

  it("asks with the sheets as choices until one is chosen", () => {
    expect(sheetQuestion(sheets, "Sales 2024", undefined, "book.xlsx")).toMatchObject({
      slot: "sheet",
      text: "Which sheet holds the data? (sheets: Sales 2024, Costs)",
      choices: [{ value: "Sales 2024" }, { value: "Costs" }],
    });
    expect(sheetQuestion(sheets, "Sales 2024", "costs", "book.xlsx")).toBeNull();
    expect(sheetQuestion(sheets, "Sales 2024", "Budget", "book.xlsx")?.text).toMatch(/^"Budget" is not a sheet of book\.xlsx/);
    expect(sheetQuestion(["Only"], "Only", undefined, "book.xlsx")).toBeNull();
  });

  it("resolves answers by name, case or number, and finds a sheet the request names", () => {
    expect(resolveSheet(sheets, "2")).toBe("Costs");
    expect(resolveSheet(sheets, "'sales 2024'")).toBe("Sales 2024");
    expect(sheetNamedIn("Predict cost from the Costs sheet of book.xlsx", sheets)).toBe("Costs");
    expect(sheetNamedIn('use sheet "Sales 2024"', sheets)).toBe("Sales 2024");
    expect(sheetNamedIn("Predict Costs", sheets)).toBeNull();
  });
});
