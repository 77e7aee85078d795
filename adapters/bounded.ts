import { oneLine } from "../graphs/automl/format.js";

// Small memory-bounded collections: a long-running bot sees an unbounded number of events and messages,
// and only recent ones matter (platforms retry within minutes, buttons are clicked soon after posting).
// And tables bounded to a platform's message size.

/** A Map that forgets its oldest entries beyond `limit`. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.has(key)) this.delete(key);
    super.set(key, value);
    while (this.size > this.limit) this.delete(this.keys().next().value as K);
    return this;
  }

  /** Records `key`; true when it was already there (a duplicate delivery). */
  seen(key: K, value: V): boolean {
    if (this.has(key)) return true;
    this.set(key, value);
    return false;
  }
}

/** Remembers recent keys; `firstTime` is true only the first time a key is seen. */
export class RecentKeys {
  private readonly keys: BoundedMap<string, true>;

  constructor(limit = 20_000) {
    this.keys = new BoundedMap(limit);
  }

  firstTime(...keys: string[]): boolean {
    const seen = keys.some((k) => this.keys.has(k));
    for (const k of keys) this.keys.set(k, true);
    return !seen;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }
}

/**
 * A table as aligned text lines that fit in `max` characters (joined by newlines): every cell on one line
 * and cut to `cell` characters, every line cut to `line`, and the rows that do not fit replaced by one
 * "… N more rows" line. `measure` is how the platform counts a line (Slack counts its escapes).
 */
export function fitTable(
  header: string[],
  rows: string[][],
  o: { max: number; cell?: number; line?: number; measure?: (text: string) => number; clean?: (cell: string) => string },
): string {
  const cellMax = o.cell ?? 40;
  const lineMax = o.line ?? 120;
  const measure = o.measure ?? ((t: string) => t.length);
  const clean = (c: unknown) => {
    const text = oneLine(typeof c === "string" ? c : String(c ?? ""), cellMax);
    return o.clean ? o.clean(text) : text;
  };
  // Rows are fitted to the header's columns: a short row is padded, a long one cut.
  const table = [header, ...rows].map((r) => header.map((_, i) => clean(r[i])));
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const cut = (l: string) => (l.length <= lineMax ? l : `${l.slice(0, lineMax - 1)}…`);
  const lines = table.map((r) => cut(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()));
  const more = (n: number) => `… ${n} more row${n === 1 ? "" : "s"}`;
  const out: string[] = [];
  let used = -1;
  for (let i = 0; i < lines.length; i++) {
    const left = lines.length - i - 1;
    // Room for this line, and for the "more" line should any row after it not fit.
    const tail = left ? measure(more(left)) + 1 : 0;
    if (used + 1 + measure(lines[i]) + tail > o.max && i > 0) {
      out.push(more(lines.length - i));
      return out.join("\n");
    }
    out.push(lines[i]);
    used += 1 + measure(lines[i]);
  }
  return out.join("\n");
}
