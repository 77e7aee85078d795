// Number formatting shared by the reports, the plan cards and every chat renderer.

/** A metric or measurement for people: whole numbers when large, three significant figures when small. */
export function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined) return "n/a";
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  if (Math.abs(value) >= 1) return value.toFixed(3);
  return value.toPrecision(3);
}
