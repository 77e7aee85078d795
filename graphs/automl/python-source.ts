// The one way values enter generated Python source. User-, data- and LLM-provided strings (column
// names, labels, notes) go in only as literals from pyStr / pyLiteral; names spliced in as code
// (an estimator's module and class) must pass pyImportPath first. Nothing else is interpolated.

const HEX = (n: number, width: number) => n.toString(16).padStart(width, "0");

/**
 * A Python str literal that evaluates to exactly `s`. The output is printable ASCII only: no raw
 * newline, U+2028, bidi control or other character that an editor or tokenizer could read as
 * anything but part of the string. Astral characters use \U (a surrogate pair spelled as two \u
 * escapes would be two lone surrogates in Python); a lone surrogate stays a lone surrogate.
 */
export function pyStr(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < s.length) {
      const low = s.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        out += `\\U${HEX(((unit - 0xd800) << 10) + (low - 0xdc00) + 0x10000, 8)}`;
        i++;
        continue;
      }
    }
    if (unit === 0x5c) out += "\\\\";
    else if (unit === 0x22) out += '\\"';
    else if (unit === 0x0a) out += "\\n";
    else if (unit === 0x0d) out += "\\r";
    else if (unit === 0x09) out += "\\t";
    else if (unit >= 0x20 && unit < 0x7f) out += s[i];
    else if (unit <= 0xff) out += `\\x${HEX(unit, 2)}`;
    else out += `\\u${HEX(unit, 4)}`;
  }
  return `${out}"`;
}

/** A JSON-like value as a Python literal; strings via pyStr, anything else unrepresentable as None. */
export function pyLiteral(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  // String(number) is a valid Python float/int literal ("1e+21", "-0.5") whenever it is finite
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
  if (typeof value === "string") return pyStr(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(", ")}]`;
  if (typeof value === "object")
    return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyStr(k)}: ${pyLiteral(v)}`).join(", ")}}`;
  return "None";
}

const PY_KEYWORDS = new Set([
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else",
  "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
  "return", "try", "while", "with", "yield",
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `module.Class` split for `from module import Class`, after checking that every part is a plain
 * ASCII identifier and the top-level package is allowed. Throws rather than emit anything else.
 */
export function pyImportPath(path: string, allowedRoots?: Iterable<string>): { module: string; name: string } {
  const parts = typeof path === "string" ? path.split(".") : [];
  if (parts.length < 2 || !parts.every((p) => IDENT.test(p) && !PY_KEYWORDS.has(p)))
    throw new Error(`refusing to generate code for estimator ${JSON.stringify(path)}: not a dotted Python name (module.Class)`);
  if (allowedRoots) {
    const roots = new Set(allowedRoots);
    if (!roots.has(parts[0]))
      throw new Error(`refusing to generate code for estimator ${JSON.stringify(path)}: package ${parts[0]} is not one of ${[...roots].sort().join(", ")}`);
  }
  return { module: parts.slice(0, -1).join("."), name: parts[parts.length - 1] };
}
