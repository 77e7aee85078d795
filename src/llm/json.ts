// Tolerant readers for model output. Even in JSON mode, OpenAI-compatible servers (and the models behind
// them) wrap answers in code fences, add a sentence before or after, or open with a reasoning block;
// these helpers find the payload instead of failing on the decoration.

interface Fence {
  lang: string;
  body: string;
}

// Reasoning models served by vLLM, Ollama or llama.cpp often emit <think>…</think> before the answer;
// braces or fences inside that block must not be mistaken for the answer.
function stripThinking(text: string): string {
  return text.replace(/^\uFEFF/, "").replace(/^\s*<think>[\s\S]*?<\/think>/i, "");
}

/** Fenced blocks (``` or ~~~) in order; an unterminated last fence runs to the end (truncated output). */
function fences(text: string): Fence[] {
  const out: Fence[] = [];
  const lines = text.split(/\r?\n/);
  let open: { marker: string; lang: string; lines: string[] } | null = null;
  for (const line of lines) {
    if (!open) {
      const m = /^\s*(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
      if (m) open = { marker: m[1], lang: m[2].toLowerCase(), lines: [] };
      continue;
    }
    const trimmed = line.trim();
    // A closing fence uses the same character, at least as many of them, and nothing else.
    if (trimmed.length >= open.marker.length && trimmed === open.marker[0].repeat(trimmed.length)) {
      out.push({ lang: open.lang, body: open.lines.join("\n") });
      open = null;
    } else {
      open.lines.push(line);
    }
  }
  if (open) out.push({ lang: open.lang, body: open.lines.join("\n") });
  return out;
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** End index (exclusive) of the balanced {...} or [...] that starts at `start`, or -1. Strings are skipped. */
function balancedEnd(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{") stack.push("}");
    else if (c === "[") stack.push("]");
    else if (c === "}" || c === "]") {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i + 1;
    }
  }
  return -1;
}

function firstBalanced(text: string): { ok: true; value: unknown } | { ok: false } {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "{" && c !== "[") continue;
    const end = balancedEnd(text, i);
    if (end < 0) continue;
    const parsed = tryParse(text.slice(i, end));
    // "[1]" inside prose like "see note [1]" parses too; that is accepted, as a caller's schema will reject it.
    if (parsed.ok) return parsed;
  }
  return { ok: false };
}

/**
 * The JSON value in a model's answer: the whole text, the first ```json fence (or any fence holding
 * JSON), or the first balanced {...} / [...] that parses. Throws an Error saying what was seen otherwise.
 */
export function extractJson(text: string): unknown {
  const cleaned = stripThinking(text).trim();
  if (!cleaned) throw new Error("The answer was empty; expected a JSON object.");

  const whole = tryParse(cleaned);
  if (whole.ok) return whole.value;

  const blocks = fences(cleaned);
  const ordered = [...blocks.filter((b) => b.lang === "json"), ...blocks.filter((b) => b.lang !== "json")];
  for (const block of ordered) {
    const parsed = tryParse(block.body.trim());
    if (parsed.ok) return parsed.value;
  }
  for (const block of ordered) {
    const parsed = firstBalanced(block.body);
    if (parsed.ok) return parsed.value;
  }

  const found = firstBalanced(cleaned);
  if (found.ok) return found.value;

  const preview = cleaned.length > 80 ? `${cleaned.slice(0, 80)}…` : cleaned;
  const hasBrace = /[{[]/.test(cleaned);
  throw new Error(
    hasBrace
      ? `The answer contains no valid JSON (unbalanced brackets or invalid syntax); it starts with: ${JSON.stringify(preview)}`
      : `The answer contains no JSON object; it starts with: ${JSON.stringify(preview)}`,
  );
}

const LANG_ALIASES: Record<string, string[]> = {
  python: ["python", "py", "python3"],
  javascript: ["javascript", "js"],
  typescript: ["typescript", "ts"],
  bash: ["bash", "sh", "shell"],
};

/**
 * The code in a model's answer: the first fenced block in `lang` (aliases such as "py" count), else the
 * first fenced block of any language, else the whole text when it has no fence.
 */
export function extractCode(text: string, lang = "python"): string {
  const cleaned = stripThinking(text);
  const blocks = fences(cleaned);
  if (blocks.length === 0) return cleaned.trim();
  const wanted = LANG_ALIASES[lang.toLowerCase()] ?? [lang.toLowerCase()];
  const match = blocks.find((b) => wanted.includes(b.lang)) ?? blocks[0];
  return match.body.replace(/^\s*\n/, "").replace(/\s+$/, "");
}
