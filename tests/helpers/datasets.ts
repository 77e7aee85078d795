import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

// Seeded synthetic CSVs for tests: same seed, same bytes.

export interface DatasetInfo {
  file: string;
  target: string | null;
  columns: string[];
  rows: number;
  labels?: string;
}

/** mulberry32: tiny, fast and good enough for test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
