import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataError } from "../../graphs/automl/data/profile.js";
import { profileData } from "../../graphs/automl/data/profile-data.js";
import { describeStep, horizonSteps } from "../../graphs/automl/data/profile-time.js";
import { writeGraphCsvs, writeSeriesCsv, writeZip } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// The profile of data that is more than one table: a time axis, a node table with its edge list
// (two files or one archive), images in an archive or a folder with their labels.

const tmp = tempDir("threadml-profile-variants-");
const MB = 1 << 20;
const profile = (file: string, others: string[] = []) => profileData(file, others, { maxBytes: 50 * MB });
const PNG = Buffer.from("89504e470d0a1a0a", "hex"); // the profile reads names, never pixels

describe("time axis", () => {
  it("finds the time column, the series column, the step and the series lengths", async () => {
    const sales = writeSeriesCsv(join(tmp.dir, "sales.csv"), { days: 60 });
    const p = await profile(sales.file);
    expect(p.time).toMatchObject({
      column: "date",
      kind: "datetime",
      frequency: "D",
      label: "daily",
      idColumn: "store",
      repeated: false,
      series: 2,
      points: { min: 60, max: 60 },
      start: "2023-01-02",
      end: "2023-03-02",
    });
    expect(p.inputs).toEqual([sales.file]);
  });

  it("says when timestamps repeat and no column tells the series apart", async () => {
    const rows = ["when,value"];
    for (let d = 1; d <= 28; d++) for (const v of [1, 2]) rows.push(`2024-02-${String(d).padStart(2, "0")} 10:00,${d * v + 0.5}`);
    const p = await profile(tmp.write("repeats.csv", rows.join("\n")));
    expect(p.time).toMatchObject({ column: "when", repeated: true, idColumn: null, label: "daily" });
  });

  it("reads hourly, monthly and numbered steps", async () => {
    const hourly = ["ts,load", ...Array.from({ length: 50 }, (_, i) => `${new Date(Date.UTC(2024, 0, 1, i)).toISOString()},${i % 24}`)];
    expect((await profile(tmp.write("hourly.csv", hourly.join("\n")))).time).toMatchObject({ frequency: "h", label: "hourly" });
    const monthly = ["month,revenue", ...Array.from({ length: 30 }, (_, i) => `${2020 + Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, "0")}-01,${100 + i}`)];
    expect((await profile(tmp.write("monthly.csv", monthly.join("\n")))).time).toMatchObject({ frequency: "MS", label: "monthly" });
    const steps = ["t,reading", ...Array.from({ length: 40 }, (_, i) => `${i * 5},${Math.sin(i)}`)];
    expect((await profile(tmp.write("steps.csv", steps.join("\n")))).time).toMatchObject({ column: "t", kind: "number", step: 5, label: "steps of 5" });
    const plain = await profile(tmp.write("plain.csv", "a,b\n1,2\n3,4\n5,6\n"));
    expect(plain.time).toBeNull();
  });

  it("turns a horizon in time units into steps of the data", () => {
    expect(describeStep(15 * 60_000, "datetime", false)).toEqual({ frequency: "15min", label: "every 15 minutes" });
    const daily = { kind: "datetime", step: 86_400_000 } as const;
    const hourly = { kind: "datetime", step: 3_600_000 } as const;
    expect(horizonSteps(14, "day", daily as never)).toBe(14);
    expect(horizonSteps(2, "day", hourly as never)).toBe(48);
    expect(horizonSteps(2, "week", daily as never)).toBe(14);
    expect(horizonSteps(24, "step", null)).toBe(24);
    expect(horizonSteps(3, "day", { kind: "number", step: 1 } as never)).toBeNull();
  });
});

describe("node table and edge list", () => {
  it("finds which file lists edges and which column holds the node ids, whatever their order", async () => {
    const g = writeGraphCsvs(join(tmp.dir, "papers.csv"), join(tmp.dir, "cites.csv"), { nodes: 60 });
    for (const [first, second] of [
      [g.file, g.edges],
      [g.edges, g.file],
    ]) {
      const p = await profile(first, [second]);
      expect(p.name).toBe("papers.csv");
      expect(p.graph).toMatchObject({
        edgesFile: g.edges,
        edgesMember: null,
        nodesMember: null,
        nodeIdColumn: "node_id",
        sourceColumn: "source",
        targetColumn: "target",
        nodes: 60,
        edges: g.edgeCount,
        unknownEndpoints: 0,
      });
      expect(p.inputs).toEqual([g.file, g.edges]);
    }
  });

  it("counts edges to unknown nodes and isolated nodes", async () => {
    const nodes = tmp.write("n.csv", "id,x,label\na,1,u\nb,2,v\nc,3,u\nd,4,\n");
    const edges = tmp.write("e.csv", "from,to\na,b\nb,c\nc,a\na,c\nb,a\nc,zz\n");
    const p = await profile(nodes, [edges]);
    expect(p.graph).toMatchObject({ nodeIdColumn: "id", sourceColumn: "from", targetColumn: "to", edges: 6, unknownEndpoints: 1, isolated: 1 });
  });

  it("reads both tables from inside a zip archive", async () => {
    const g = writeGraphCsvs(join(tmp.dir, "z", "nodes.csv"), join(tmp.dir, "z", "edges.csv"), { nodes: 45 });
    const { readFileSync } = await import("node:fs");
    const zip = writeZip(join(tmp.dir, "cora.zip"), [
      { name: "cora/nodes.csv", data: readFileSync(g.file) },
      { name: "cora/edges.csv", data: readFileSync(g.edges) },
      { name: "cora/README.txt", data: "citation graph" },
    ]);
    const p = await profile(zip);
    expect(p.file).toBe(zip);
    expect(p.graph).toMatchObject({ edgesFile: zip, edgesMember: "cora/edges.csv", nodesMember: "cora/nodes.csv", nodes: 45, nodeIdColumn: "node_id" });
    expect(p.columns.map((c) => c.name)).toContain("label");
  });

  it("leaves two unrelated tables as one table", async () => {
    const a = tmp.write("first.csv", "x,y\n1,2\n3,4\n5,6\n");
    const b = tmp.write("second.csv", "k,v\nq,1\nr,2\n");
    const p = await profile(a, [b]);
    expect(p.graph).toBeUndefined();
    expect(p.file).toBe(a);
  });
});

describe("images", () => {
  const images = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ name: `${prefix}${["cat", "dog"][i % 2]}_${i}.png`, data: PNG, cls: ["cat", "dog"][i % 2] }));

  it("finds a labels CSV beside the archive and the column naming the images", async () => {
    const files = images("pics/", 30);
    const zip = writeZip(join(tmp.dir, "pets.zip"), [...files, { name: "__MACOSX/._pics", data: "x" }, { name: "pics/.DS_Store", data: "x" }]);
    const labels = tmp.write("labels.csv", ["file,kind,photographer", ...files.map((f, i) => `${f.name.replace("pics/", "")},${f.cls},p${i % 3}`)].join("\n"));
    const p = await profile(zip, [labels]);
    expect(p.images).toMatchObject({ kind: "zip", images: 30, formats: { png: 30 }, layout: "labels_csv", filenameColumn: "file", matched: 30, unlabelled: 0 });
    expect(p.images!.labels).toEqual([{ file: labels, member: null, delimiter: "," }]);
    expect(p.columns.map((c) => c.name)).toEqual(["file", "kind", "photographer"]);
    expect(p.candidateTargets).not.toContain("file");
    expect(p.inputs).toEqual([zip, labels]);
    // given the other way round, the archive still leads
    expect((await profile(labels, [zip])).file).toBe(zip);
  });

  it("joins train and test labels CSVs inside the archive", async () => {
    const files = images("img/", 20);
    const csv = (part: typeof files) => ["image,label", ...part.map((f) => `${f.name},${f.cls}`)].join("\n");
    const zip = writeZip(join(tmp.dir, "shop.zip"), [...files, { name: "train_labels.csv", data: csv(files.slice(0, 14)) }, { name: "test_labels.csv", data: csv(files.slice(14)) }]);
    const p = await profile(zip);
    expect(p.images).toMatchObject({ layout: "labels_csv", filenameColumn: "image", matched: 20 });
    expect(p.images!.labels.map((l) => l.member).sort()).toEqual(["test_labels.csv", "train_labels.csv"]);
    expect(p.rows).toBe(20);
  });

  it("reads class folders, and says when there are no labels at all", async () => {
    const folders = writeZip(join(tmp.dir, "classes.zip"), images("", 24).map((f) => ({ name: `${f.cls}/${f.name}`, data: f.data })));
    const p = await profile(folders);
    expect(p.images).toMatchObject({ layout: "folders", matched: 24 });
    expect(p.columns.map((c) => c.name)).toEqual(["filename", "label"]);
    expect(p.columns[1].top.map((t) => t.value).sort()).toEqual(["cat", "dog"]);
    const flat = writeZip(join(tmp.dir, "flat.zip"), images("", 24));
    expect((await profile(flat)).images).toMatchObject({ layout: "none", matched: 0, unlabelled: 24 });
  });

  it("reads a folder and never follows its links", async () => {
    const root = join(tmp.dir, "photos");
    for (const f of images("", 20)) {
      mkdirSync(join(root, f.cls), { recursive: true });
      writeFileSync(join(root, f.cls, f.name), f.data);
    }
    symlinkSync("/etc/hostname", join(root, "cat", "sneaky.png"));
    const p = await profile(root);
    expect(p.images).toMatchObject({ kind: "folder", images: 20, layout: "folders" });
  });

  it("refuses archives with unsafe entries, links or nothing to read", async () => {
    const escape = writeZip(join(tmp.dir, "escape.zip"), [...images("", 12), { name: "../../evil.png", data: PNG }]);
    await expect(profile(escape)).rejects.toThrow(/unsafe path \(\.\.\/\.\.\/evil\.png\)/);
    const link = writeZip(join(tmp.dir, "link.zip"), [...images("", 12), { name: "cat/x.png", data: "/etc/passwd", link: true }]);
    await expect(profile(link)).rejects.toThrow(/symbolic link/);
    const empty = writeZip(join(tmp.dir, "docs.zip"), [{ name: "notes.txt", data: "hello" }]);
    await expect(profile(empty)).rejects.toBeInstanceOf(DataError);
    await expect(profile(empty)).rejects.toThrow(/no images .* and no node table/);
  });
});
