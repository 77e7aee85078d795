// Number and text formatting shared by the reports, the plan cards and every chat renderer.

/** A metric or measurement for people: whole numbers when large, three significant figures when small. */
export function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined) return "n/a";
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  if (Math.abs(value) >= 1) return value.toFixed(3);
  return value.toPrecision(3);
}

/**
 * A name or message from a file, the harness or a model on one short line: control characters (C0, DEL,
 * C1, which holds terminal escapes) and line separators become spaces, and a long text is cut with "…".
 */
export function oneLine(text: string, max: number): string {
  const line = text.replace(/[\s\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** A name for files, URLs and commands: accents dropped, lower-case letters, digits and dashes, at most 40 characters ("" when nothing is left). */
export function slug(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
}
