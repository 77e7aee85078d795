import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { LlmOperationAgent, FALLBACK_NOTE } from "../../graphs/automl/agents/llm/operation.js";
import type { Client } from "../../graphs/automl/agents/llm/shared.js";
import { OfflineOperationAgent, renderSolution } from "../../graphs/automl/agents/offline/operation.js";
import type { Implementation, Instructions, RankedCandidate } from "../../graphs/automl/agents/types.js";
import { recipesFor } from "../../graphs/automl/knowledge/index.js";
import { pyImportPath, pyLiteral, pyStr } from "../../graphs/automl/python-source.js";
import { METRICS_BY_TASK, TASK_KINDS, type Requirements, type TaskKind } from "../../src/schema/requirements.js";
import { makeRequirements } from "../helpers/requirements.js";

// Every renderer of Python source, fed hostile names (column names, labels, plan ids, notes, LLM
// summaries). Each value must come back from Python's parser as a string constant equal to the
// input, and the code around it must be exactly the template's: no new names, calls or statements.

const python = process.env.THREADML_PYTHON ?? "/usr/bin/python3";

const HOSTILE = [
  'q"""+__import__("os").system("id")+"""',
  "q'''+__import__('os').system('id')+'''",
  'q"""+open("pwned","w").write("x")+"""',
  '")\nimport os\nos.system("id")\n#',
  '"""\nimport os\n"""',
  '\\"""+exec("1")+"""',
  'f"{__import__(\'os\').system(\'id\')}"',
  'say "hi"',
  "it's",
  "back\\slash \\n \\x41 \\u0041 \\N{BULLET}",
  "trailing\\",
  "line\nbreak",
  "carriage\rreturn\r\n",
  "{braces} {0} {{x}}",
  "%s %d %(x)s",
  "# not a comment",
  "ctl\x01\x07\x08\x0b\x0c\x1b\x1f\x7f\x85 end",
  "sep\u2028line\u2029para",
  "bidi \u202eevil\u202c \u200b \ufeff",
  "café",
  "中文列",
  "emoji 🍌😀 \u{10ffff}",
  "lone \ud800 high",
  "lone \udfff low",
  "",
  " ",
];

/** The benign twin of a hostile value: same position in the template, harmless text. */
const benign = (i: number) => `s${i}`;

interface Case {
  name: string;
  source: string;
  /** The same render with benign values, for the structure comparison. */
  twin: string;
  /** Strings that must appear, exactly, as string constants. */
  expected: string[];
}

const PY_CHECK = String.raw`
import ast, json, sys

BANNED = {"__import__", "exec", "eval", "compile", "system", "open", "getattr", "globals", "breakpoint"}

class Blank(ast.NodeTransformer):
    def visit_Constant(self, node):
        if isinstance(node.value, str):
            return ast.copy_location(ast.Constant(value=""), node)
        return node

def shape(tree):
    return ast.dump(Blank().visit(tree))

def names(tree):
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update(a.name for a in n.names)
    return out

cases = json.loads(sys.stdin.buffer.read().decode("utf-8"))
report = []
for c in cases:
    errors = []
    try:
        tree = ast.parse(c["source"])
        compile(c["source"], "solution.py", "exec")
    except SyntaxError as e:
        report.append({"name": c["name"], "errors": ["does not parse: %s" % e]})
        continue
    twin = ast.parse(c["twin"])
    consts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    for s in c["expected"]:
        if s not in consts:
            errors.append("missing string constant %r" % s)
    if ast.get_docstring(tree, clean=False) != ast.get_docstring(twin, clean=False):
        errors.append("the docstring carries a value")
    if shape(tree) != shape(twin):
        errors.append("the code differs from the template's beyond its string constants")
    extra = names(tree) - names(twin)
    if extra:
        errors.append("new names: %s" % sorted(extra))
    banned = names(tree) & BANNED
    if banned:
        errors.append("banned names: %s" % sorted(banned))
    if any(not (32 <= ord(ch) < 127 or ch == "\n") for ch in c["source"]):
        errors.append("the source is not plain ASCII")
    report.append({"name": c["name"], "errors": errors})

print(json.dumps(report))
`;

const PY_LITERALS = String.raw`
import ast, json, sys
items = json.loads(sys.stdin.buffer.read().decode("utf-8"))
print(json.dumps([ast.literal_eval(i["literal"]) == i["value"] for i in items]))
`;

function runPython(script: string, input: unknown): unknown {
  // JSON.stringify escapes lone surrogates (\udXXX), which json.loads turns back into the same code units
  const out = execFileSync(python, ["-c", script], { input: JSON.stringify(input), encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out);
}

function candidateOf(task: TaskKind, familyIndex: number, label: string, paramKey: string, paramValue: string): RankedCandidate {
  const families = recipesFor(task)!.families;
  const f = families[familyIndex % families.length];
  return {
    id: `plan-1:${f.id}`,
    label,
    estimator: f.estimator,
    preprocess: f.preprocess,
    ...(f.strategy ? { strategy: f.strategy } : {}),
    params: { ...f.params, [paramKey]: paramValue, nested: [paramValue, { [paramKey]: paramValue }] },
    score: 0.5,
    trials: 1,
  };
}

function requirementsOf(task: TaskKind, target: string, column: string): Requirements {
  const req = makeRequirements({ task, target: task === "clustering" ? null : "y", metric: { name: METRICS_BY_TASK[task][0], direction: "max" } });
  // Assigned after parsing: the renderers must not rely on the schema to keep strings tame.
  return {
    ...req,
    target,
    positive_class: column,
    labels_column: column,
    drop_columns: [column],
    forecast: task === "time_series_forecasting" ? { time_column: column, id_column: column, horizon: 3, horizon_phrase: column, frequency: null, exogenous: [column] } : null,
    graph: task === "node_classification" ? { edges: column, node_id_column: column, source_column: column, target_column: column } : null,
    images: task === "image_classification" ? { layout: "labels_csv", labels: [column], filename_column: column } : null,
  } as Requirements;
}

/** An LLM client whose every answer holds no usable code, so the agent falls back to the template. */
const uselessClient: Client = {
  json: async () => {
    throw new Error("no JSON steps expected");
  },
  text: async () => "I cannot write that.",
};

async function buildCases(): Promise<Case[]> {
  const cases: Case[] = [];
  for (const task of TASK_KINDS) {
    const families = recipesFor(task)!.families.length;
    // enough values to give every family of the task at least one hostile render
    const rounds = Math.max(HOSTILE.length, families);
    for (let i = 0; i < rounds; i++) {
      const h = (k: number) => HOSTILE[(i + k) % HOSTILE.length];
      const b = (k: number) => benign((i + k) % HOSTILE.length) + `_${k}`;
      const render = (v: (k: number) => string) =>
        renderSolution(candidateOf(task, i, v(1), v(2), v(3)), requirementsOf(task, v(0), v(4)), v(5), [v(6), v(7), FALLBACK_NOTE]);
      const expected = [h(0), h(1), h(2), h(3), h(5), h(6), h(7)];
      cases.push({ name: `${task} #${i} renderSolution`, source: render(h), twin: render(b), expected });
    }
  }

  // The agents' own paths: the offline implement and fix (notes from adjustments), and the LLM
  // engine's fallback to the template, with hostile LLM summaries carried into the notes.
  for (const [i, task] of TASK_KINDS.entries()) {
    const make = async (v: (k: number) => string) => {
      const candidate = candidateOf(task, i, v(1), v(2), v(3));
      const requirements = requirementsOf(task, v(0), v(4));
      const instructions: Instructions = { planId: v(5), candidate, alternatives: [], dropColumns: [v(4)], notes: [v(6)] };
      const offline = new OfflineOperationAgent();
      const first = await offline.implement({ instructions, requirements });
      const previous: Implementation = { ...first, adjustments: [v(7)] };
      const reset = await offline.fix({ instructions, requirements, previous, failure: "runtime_error", message: v(8), memory: [v(9)] });
      const llm = new LlmOperationAgent(uselessClient, { codeAttempts: 1 });
      const fallback = await llm.implement({ instructions, requirements });
      const onTemplate: Implementation = { ...fallback, adjustments: [v(7), `${FALLBACK_NOTE} after 1 failed attempt`] };
      const llmFix = await llm.fix({ instructions, requirements, previous: onTemplate, failure: "runtime_error", message: v(8), memory: [] });
      return { first, reset: reset!, fallback, llmFix: llmFix! };
    };
    const h = (k: number) => HOSTILE[(i * 3 + k) % HOSTILE.length];
    const b = (k: number) => `${benign((i * 3 + k) % HOSTILE.length)}_${k}`;
    const hostile = await make(h);
    const twin = await make(b);
    const base = [h(0), h(1), h(2), h(3), h(5)];
    for (const key of ["first", "reset", "fallback", "llmFix"] as const) {
      expect(hostile[key], `${task} ${key}`).toBeTruthy();
      const expected = key === "reset" || key === "llmFix" ? [h(0), h(1), h(5), h(7)] : base;
      cases.push({ name: `${task} agent ${key}`, source: hostile[key].code, twin: twin[key].code, expected });
    }
  }
  return cases;
}

describe("generated Python with hostile names", () => {
  it("keeps every value a string constant, equal to the input, in every template", async () => {
    const cases = await buildCases();
    expect(cases.length).toBeGreaterThan(TASK_KINDS.length * HOSTILE.length);
    const report = runPython(PY_CHECK, cases) as { name: string; errors: string[] }[];
    expect(report).toHaveLength(cases.length);
    const failed = report.filter((r) => r.errors.length > 0);
    expect(failed).toEqual([]);
  });

  it("writes every string as a plain-ASCII Python literal that reads back exactly", () => {
    for (const s of HOSTILE) {
      expect(pyStr(s)).toMatch(/^"[\x20-\x7e]*"$/);
      // nothing inside can end the literal: every quote and backslash is escaped
      expect(pyStr(s).slice(1, -1)).toMatch(/^(?:[^"\\]|\\.)*$/);
    }
    const values: unknown[] = [
      ...HOSTILE,
      { [HOSTILE[0]]: HOSTILE.slice(1), nested: { x: [1, 2.5, -3, 1e21, 1e-7, true, false, null] } },
    ];
    const ok = runPython(PY_LITERALS, values.map((value) => ({ literal: pyLiteral(value), value }))) as boolean[];
    expect(ok).toEqual(values.map(() => true));
  });

  it("refuses estimators that are not plain dotted names from the recipes' packages", () => {
    const req = makeRequirements();
    const base = candidateOf("classification", 0, "x", "k", "v");
    for (const estimator of [
      "os.system",
      "subprocess.Popen",
      "sklearn.ensemble.RandomForestClassifier; import os",
      "sklearn.ensemble import RandomForestClassifier\nimport os\nfrom os",
      "sklearn.ensemble.RandomForestClassifier as X, os",
      "__import__('os').system",
      "sklearn..RandomForestClassifier",
      "sklearn.class.RandomForestClassifier",
      "sklearn.ensemble.Fôrest",
      "RandomForestClassifier",
      "sklearn.ensemble.",
      "",
    ]) {
      expect(() => renderSolution({ ...base, estimator }, req, "plan-1", []), estimator).toThrow(/refusing to generate code/);
    }
    expect(pyImportPath("sklearn.ensemble.RandomForestClassifier", ["sklearn"])).toEqual({ module: "sklearn.ensemble", name: "RandomForestClassifier" });
    expect(() => pyImportPath("numpy.ndarray", ["sklearn"])).toThrow(/not one of sklearn/);
  });

  it("keeps values out of the docstring and comments", () => {
    const hostile = HOSTILE[0];
    const code = renderSolution(candidateOf("regression", 0, hostile, hostile, hostile), requirementsOf("regression", hostile, hostile), hostile, [hostile]);
    const docstring = code.slice(0, code.indexOf('"""', 3) + 3);
    expect(docstring).not.toContain("__import__");
    expect(code.split("\n").filter((l) => /^\s*#/.test(l))).toEqual([]);
    expect(code).toContain(`TARGET = ${pyStr(hostile)}`);

    // the forecast line is the one docstring line with values: a whole number and a known strategy
    const ts = requirementsOf("time_series_forecasting", hostile, hostile);
    const plain = renderSolution(candidateOf("time_series_forecasting", 0, "x", "k", "v"), ts, "plan-1", []);
    expect(plain).toMatch(/Forecast: 3 steps ahead, (direct|recursive) strategy/);
    const forged = renderSolution(
      { ...candidateOf("time_series_forecasting", 0, "x", "k", "v"), strategy: hostile as "direct" },
      { ...ts, forecast: { ...ts.forecast!, horizon: hostile as unknown as number } },
      "plan-1",
      [],
    );
    expect(forged).toMatch(/Forecast: \? steps ahead, direct strategy/);
    expect(forged.slice(0, forged.indexOf('"""', 3))).not.toContain("__import__");
  });
});
