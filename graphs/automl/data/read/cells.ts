// Cell conventions shared by the profile and the readers.

const MISSING = new Set(["", "na", "n/a", "nan", "null", "none", "?", "-"]);

/** A cell the profile counts as missing. */
export function isMissing(value: string): boolean {
  return MISSING.has(value.trim().toLowerCase());
}

/** Header cells as every reader names them: trimmed, blank ones numbered. */
export function headerNames(cells: readonly string[]): string[] {
  return cells.map((h, i) => h.trim() || `column_${i + 1}`);
}

/** The first name that appears twice, if any. */
export function duplicateName(names: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) return n;
    seen.add(n);
  }
  return undefined;
}
