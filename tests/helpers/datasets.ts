import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { mulberry32 } from "../../graphs/automl/holdout.js";

// Seeded synthetic CSVs for tests: same seed, same bytes.

export interface DatasetInfo {
  file: string;
  target: string | null;
  columns: string[];
  rows: number;
  labels?: string;
}

/** Seeded test data: the product's own generator (mulberry32). */
const prng = mulberry32;

function gaussian(rand: () => number): () => number {
  return () => {
    // Box-Muller; 1 - u keeps log away from 0
    const u = 1 - rand();
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

function fmt(x: number, digits = 6): string {
  return Number(x.toFixed(digits)).toString();
}

function writeCsv(file: string, header: string[], rows: string[][]): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const lines = [header.join(","), ...rows.map((r) => r.join(","))];
  writeFileSync(file, lines.join("\n") + "\n", "utf8");
}

/**
 * Banana-quality-like binary classification: seven numeric features and Quality = Good/Bad.
 * The label is a nonlinear (mostly step-wise) function of the features, split at its median so the
 * classes are balanced, with `noise` of the labels flipped.
 */
export function writeClassificationCsv(file: string, opts: { rows?: number; seed?: number; noise?: number } = {}): DatasetInfo {
  const rows = opts.rows ?? 1000;
  const rand = prng(opts.seed ?? 1);
  const normal = gaussian(rand);
  const noise = opts.noise ?? 0.03;
  const columns = ["Size", "Weight", "Sweetness", "Softness", "HarvestTime", "Ripeness", "Acidity"];

  const feats: number[][] = [];
  const scores: number[] = [];
  for (let i = 0; i < rows; i++) {
    const f = columns.map(() => normal() * 2);
    const [size, weight, sweet, soft, harvest, ripe, acid] = f;
    // mostly axis-aligned steps (learnable by trees) plus a small smooth term that breaks ties
    const score =
      2 * Number(size > 0) +
      2 * Number(sweet > 0) +
      1.2 * Number(weight > -1) -
      1.0 * Number(harvest > 1) +
      0.6 * Number(Math.abs(ripe) > 2) +
      0.1 * Math.tanh(acid) +
      0.05 * Math.tanh(soft);
    feats.push(f);
    scores.push(score);
  }
  const median = [...scores].sort((a, b) => a - b)[Math.floor(rows / 2)];
  const out = feats.map((f, i) => {
    let good = scores[i] >= median;
    if (rand() < noise) good = !good;
    return [...f.map((x) => fmt(x)), good ? "Good" : "Bad"];
  });
  writeCsv(file, [...columns, "Quality"], out);
  return { file, target: "Quality", columns: [...columns, "Quality"], rows };
}

/**
 * Crab-age-like regression: Sex (M/F/I) plus six size measurements and Age (1..30). Sizes grow
 * with age; immature crabs (I) are younger. About 3% of Height cells are empty.
 */
export function writeRegressionCsv(file: string, opts: { rows?: number; seed?: number } = {}): DatasetInfo {
  const rows = opts.rows ?? 1000;
  const rand = prng(opts.seed ?? 2);
  const normal = gaussian(rand);
  const columns = ["Sex", "Length", "Diameter", "Height", "Weight", "ShuckedWeight", "ShellWeight", "Age"];

  const out: string[][] = [];
  for (let i = 0; i < rows; i++) {
    const r = rand();
    const sex = r < 0.32 ? "I" : r < 0.66 ? "M" : "F";
    const age = Math.min(30, Math.max(1, Math.round(sex === "I" ? 3 + rand() * 7 : 6 + rand() * 16 + Math.abs(normal()) * 2)));
    const growth = 1 - Math.exp(-0.17 * age);
    const sexScale = sex === "F" ? 1.05 : sex === "M" ? 1.0 : 0.95;
    const length = Math.max(0.2, 1.85 * growth * sexScale + normal() * 0.06);
    const diameter = Math.max(0.15, 0.78 * length + normal() * 0.03);
    const height = Math.max(0.05, 0.27 * length + normal() * 0.02);
    const weight = Math.max(0.5, 14 * length * diameter * height * 10 * (1 + normal() * 0.06));
    const shucked = weight * (0.43 + normal() * 0.02);
    const shell = weight * (0.29 + normal() * 0.02) * (1 + 0.01 * age);
    out.push([
      sex,
      fmt(length, 4),
      fmt(diameter, 4),
      rand() < 0.03 ? "" : fmt(height, 4),
      fmt(weight, 4),
      fmt(shucked, 4),
      fmt(shell, 4),
      String(age),
    ]);
  }
  writeCsv(file, columns, out);
  return { file, target: "Age", columns, rows };
}

/** Well-separated gaussian blobs in five numeric features, with the true group in `group`. */
export function writeClusteringCsv(file: string, opts: { rows?: number; seed?: number; clusters?: number } = {}): DatasetInfo {
  const rows = opts.rows ?? 1000;
  const k = Math.max(1, opts.clusters ?? 3);
  const rand = prng(opts.seed ?? 3);
  const normal = gaussian(rand);
  const dims = 5;
  const features = Array.from({ length: dims }, (_, i) => `f${i + 1}`);

  // centres drawn until they sit far apart, so the blobs are easy to separate
  const centres: number[][] = [];
  for (let tries = 0; centres.length < k && tries < 10_000; tries++) {
    const c = features.map(() => (rand() * 2 - 1) * 10);
    const farEnough = centres.every((o) => Math.hypot(...o.map((x, j) => x - c[j])) > 8);
    if (farEnough || tries > 5000) centres.push(c);
  }
  const out: string[][] = [];
  for (let i = 0; i < rows; i++) {
    const g = i % k;
    out.push([...centres[g].map((m) => fmt(m + normal(), 4)), `g${g}`]);
  }
  // shuffle so groups are not in blocks (Fisher-Yates with the same generator)
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  const columns = [...features, "group"];
  writeCsv(file, columns, out);
  return { file, target: null, columns, rows, labels: "group" };
}

/** A CSV field, quoted when it holds a delimiter, a quote or a line break. */
function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

// Per-category vocabularies for the product descriptions; a few words sit in two of them on purpose.
const TEXT_VOCAB: Record<string, string[]> = {
  Electronics: [
    "wireless", "bluetooth", "charger", "battery", "usb", "hdmi", "screen", "display", "speaker", "headphones",
    "laptop", "smartphone", "tablet", "camera", "processor", "ram", "ssd", "keyboard", "mouse", "router",
    "watt", "charging", "pixel", "audio", "digital", "led", "remote", "gaming", "adapter", "cable",
  ],
  Household: [
    "kitchen", "cookware", "nonstick", "pan", "pot", "skillet", "blender", "vacuum", "mop", "detergent",
    "towel", "bedsheet", "pillow", "curtain", "storage", "container", "jar", "lid", "dish", "cutlery",
    "spatula", "broom", "cleaning", "furniture", "shelf", "lamp", "mattress", "rug", "decor", "cotton",
  ],
  Books: [
    "novel", "author", "paperback", "hardcover", "edition", "chapters", "story", "fiction", "biography", "history",
    "guide", "poetry", "literature", "reader", "bestseller", "publisher", "pages", "illustrated", "memoir", "mystery",
    "thriller", "textbook", "volume", "series", "classic", "essays", "narrative", "foreword", "anthology", "romance",
  ],
  Clothing: [
    "shirt", "tshirt", "jeans", "dress", "jacket", "sleeve", "collar", "denim", "cotton", "polyester",
    "slim", "casual", "formal", "waist", "hoodie", "sweater", "socks", "trousers", "kurta", "saree",
    "leggings", "fabric", "wear", "button", "zipper", "pockets", "stretch", "women", "men", "display",
  ],
};
const TEXT_FILLER = [
  "this", "product", "is", "ideal", "for", "daily", "use", "with", "premium", "quality", "and", "great", "value",
  "perfect", "gift", "the", "a", "new", "best", "durable", "design", "comfortable", "easy", "home", "family",
  "lightweight", "stylish", "soft", "black", "set", "pack", "of", "classic", "modern", "original", "brand",
];
const TEXT_PRICE: Record<string, number> = { Electronics: 120, Household: 35, Books: 14, Clothing: 30 };

/**
 * Text classification: short product descriptions (`text`) labelled with one of four categories
 * (`category`), plus `price` and a `product_id` identifier. Each description mixes words of its own
 * category with shared filler words and, now and then, a word of another category; 3% of the labels
 * are flipped and 1% of the descriptions are empty. A TF-IDF linear model scores about 0.9 accuracy.
 */
export function writeTextClassificationCsv(file: string, opts: { rows?: number; seed?: number } = {}): DatasetInfo {
  const rows = opts.rows ?? 800;
  const rand = prng(opts.seed ?? 4);
  const normal = gaussian(rand);
  const categories = Object.keys(TEXT_VOCAB);
  const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)];

  const out: string[][] = [];
  for (let i = 0; i < rows; i++) {
    const category = categories[i % categories.length];
    const words: string[] = [];
    const own = 2 + Math.floor(rand() * 4);
    for (let k = 0; k < own; k++) words.push(pick(TEXT_VOCAB[category]));
    const others = categories.filter((c) => c !== category);
    if (rand() < 0.5) words.push(pick(TEXT_VOCAB[pick(others)]));
    if (rand() < 0.15) words.push(pick(TEXT_VOCAB[pick(others)]));
    const fillers = 4 + Math.floor(rand() * 5);
    for (let k = 0; k < fillers; k++) words.push(pick(TEXT_FILLER));
    for (let k = words.length - 1; k > 0; k--) {
      const j = Math.floor(rand() * (k + 1));
      [words[k], words[j]] = [words[j], words[k]];
    }
    // a comma now and then, so the field has to be quoted
    const cut = 2 + Math.floor(rand() * (words.length - 3));
    const sentence = rand() < 0.3 ? `${words.slice(0, cut).join(" ")}, ${words.slice(cut).join(" ")}` : words.join(" ");
    const text = rand() < 0.01 ? "" : `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.`;
    const label = rand() < 0.03 ? pick(others) : category;
    const price = TEXT_PRICE[category] * Math.exp(0.5 * normal());
    out.push([String(1001 + i), csvField(text), price.toFixed(2), label]);
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  const columns = ["product_id", "text", "price", "category"];
  writeCsv(file, columns, out);
  return { file, target: "category", columns, rows };
}

/**
 * Daily sales of a few stores: a weekly pattern, a slow trend, an autocorrelated `price` that lowers
 * sales a little, and noise. Columns date, store, price, sales; rows in date order, stores interleaved.
 * A model on lags and the season beats the seasonal-naive forecast (the value a week before).
 */
export function writeSeriesCsv(file: string, opts: { days?: number; stores?: string[]; seed?: number; noise?: number } = {}): DatasetInfo & { time: string; id: string } {
  const days = opts.days ?? 240;
  const stores = opts.stores ?? ["north", "south"];
  const rand = prng(opts.seed ?? 5);
  const normal = gaussian(rand);
  const weekly = [0.85, 0.9, 0.95, 1.0, 1.15, 1.35, 0.8];
  const start = Date.UTC(2023, 0, 2);
  const prices = stores.map(() => 3);
  const out: string[][] = [];
  for (let d = 0; d < days; d++) {
    const date = new Date(start + d * 86_400_000).toISOString().slice(0, 10);
    const dow = (new Date(start + d * 86_400_000).getUTCDay() + 6) % 7;
    stores.forEach((store, s) => {
      prices[s] = Math.max(2, Math.min(4, prices[s] + normal() * 0.05));
      const level = (60 + 50 * s) * (1 + 0.002 * d);
      const sales = level * weekly[dow] * (1 - 0.08 * (prices[s] - 3)) + normal() * (opts.noise ?? 2.5) * (1 + s);
      out.push([date, store, fmt(prices[s], 3), fmt(Math.max(0, sales), 2)]);
    });
  }
  const columns = ["date", "store", "price", "sales"];
  writeCsv(file, columns, out);
  return { file, target: "sales", columns, rows: out.length, time: "date", id: "store" };
}

/**
 * A planted-partition graph: `nodes` nodes in `communities` groups, edges far likelier inside a group,
 * labels that follow the groups (a share left empty: unlabelled nodes) and noisy features that hint at
 * the group only weakly. Features alone give a mediocre classifier; features propagated over the graph
 * a good one. Writes the node table (node_id, f1..f6, label) and the edge list (source, target).
 */
export function writeGraphCsvs(
  nodesFile: string,
  edgesFile: string,
  opts: { nodes?: number; communities?: number; seed?: number; unlabelled?: number } = {},
): DatasetInfo & { edges: string; edgeCount: number } {
  const n = opts.nodes ?? 240;
  const k = opts.communities ?? 3;
  const rand = prng(opts.seed ?? 6);
  const normal = gaussian(rand);
  const group = Array.from({ length: n }, (_, i) => i % k);
  const features = 6;
  const rows: string[][] = [];
  for (let i = 0; i < n; i++) {
    const x = Array.from({ length: features }, (_, j) => normal() + (j % k === group[i] ? 0.6 : 0));
    const label = rand() < (opts.unlabelled ?? 0.25) ? "" : `topic_${group[i]}`;
    rows.push([`p${1000 + i}`, ...x.map((v) => fmt(v, 3)), label]);
  }
  const edges: string[][] = [];
  const inside = 6 / (n / k);
  const across = 0.6 / n;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) if (rand() < (group[i] === group[j] ? inside : across)) edges.push([`p${1000 + i}`, `p${1000 + j}`]);
  const columns = ["node_id", ...Array.from({ length: features }, (_, j) => `f${j + 1}`), "label"];
  writeCsv(nodesFile, columns, rows);
  writeCsv(edgesFile, ["source", "target"], edges);
  return { file: nodesFile, target: "label", columns, rows: n, edges: edgesFile, edgeCount: edges.length };
}

// Draws the shape images with PIL and packs them; arguments: out, per_class, size, seed, layout.
const SHAPES_SCRIPT = String.raw`
import io, os, sys, zipfile, random
from PIL import Image, ImageDraw
out, per_class, size, seed, layout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(seed)
classes = ["circle", "square", "stripes"]
items = []
for i in range(per_class * len(classes)):
    cls = classes[i % len(classes)]
    img = Image.new("RGB", (size, size), tuple(rng.randint(0, 100) for _ in range(3)))
    d = ImageDraw.Draw(img)
    colour = tuple(rng.randint(110, 255) for _ in range(3))
    s = size * rng.uniform(0.45, 0.7)
    x, y = rng.uniform(0, size - s), rng.uniform(0, size - s)
    if cls == "circle":
        d.ellipse([x, y, x + s, y + s], fill=colour)
    elif cls == "square":
        d.rectangle([x, y, x + s, y + s], fill=colour)
    else:
        step = rng.choice([3, 4])
        for k in range(0, size, step):
            d.line([k, 0, k, size], fill=colour, width=1)
    px = img.load()
    for _ in range(size * size // 6):  # speckle noise
        u, v = rng.randrange(size), rng.randrange(size)
        px[u, v] = tuple(min(255, max(0, c + rng.randint(-60, 60))) for c in px[u, v])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    items.append((f"img_{i:04d}.png", cls, buf.getvalue()))
rng.shuffle(items)
labels = "filename,label\n" + "".join(f"{n},{c}\n" for n, c, _ in items)
if layout == "zip+csv":
    with zipfile.ZipFile(out + ".zip", "w") as zf:
        for n, c, data in items:
            zf.writestr(f"images/{n}", data)
    with open(os.path.join(os.path.dirname(out), "labels.csv"), "w") as f:
        f.write(labels)
elif layout == "zip-folders":
    with zipfile.ZipFile(out + ".zip", "w") as zf:
        for n, c, data in items:
            zf.writestr(f"{c}/{n}", data)
else:
    for n, c, data in items:
        os.makedirs(os.path.join(out, c), exist_ok=True)
        with open(os.path.join(out, c, n), "wb") as f:
            f.write(data)
`;

/**
 * Small synthetic images in three classes (a filled circle, a filled square, vertical stripes) in
 * random colours, sizes and places, with speckle noise; drawn with PIL, as PNG. Layouts: "zip+csv" is
 * `<base>.zip` of images/… with labels.csv (filename,label) beside it; "zip-folders" is `<base>.zip`
 * with one folder per class; "folders" is the folder `<base>` with one subfolder per class.
 */
export function writeShapeImages(base: string, opts: { perClass?: number; size?: number; seed?: number; layout?: "zip+csv" | "zip-folders" | "folders"; python?: string } = {}): { path: string; labels: string | null; images: number } {
  const layout = opts.layout ?? "zip+csv";
  const perClass = opts.perClass ?? 40;
  mkdirSync(path.dirname(path.resolve(base)), { recursive: true });
  const python = opts.python ?? process.env.THREADML_PYTHON ?? "/usr/bin/python3";
  const run = spawnSync(python, ["-c", SHAPES_SCRIPT, base, String(perClass), String(opts.size ?? 16), String(opts.seed ?? 7), layout], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`drawing test images with ${python} failed (needs PIL: python3-pil): ${run.stderr || run.error}`);
  return {
    path: layout === "folders" ? base : `${base}.zip`,
    labels: layout === "zip+csv" ? path.join(path.dirname(path.resolve(base)), "labels.csv") : null,
    images: perClass * 3,
  };
}

/** CRC-32 (zip's checksum), bitwise: test archives are small. */
function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * A zip archive of stored (uncompressed) entries, written byte by byte so that tests can also make the
 * entries a careful reader must refuse: a `link` is marked as a unix symbolic link, names are kept as given.
 */
export function writeZip(file: string, entries: Array<{ name: string; data: Buffer | string; link?: boolean }>): string {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    const name = Buffer.from(e.name, "utf8");
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.link ? 0o120777 : 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, Buffer.concat([...locals, cd, end]));
  return file;
}
