import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// A CSV whose column names are Python injection attempts, run through the headless CLI on the
// offline engine with the real bubblewrap sandbox. The names must reach the generated solution only
// as data: the marker file the target's name would write must never appear, and the run succeeds.

const MARKER = "pwned";
const TARGET = `q"""+open("${MARKER}","w").write("x")+"""`;
// Feature names: quotes, braces, format codes, a comment sign, backslashes and non-ASCII text.
const FEATURES = [
  `it's "quoted"`,
  `q'''+open('${MARKER}2','w').write('x')+'''`,
  "{braces} %s #hash",
  "back\\slash\\",
  "café",
  "中文列",
  "emoji 🍌",
];

const tmp = tempDir("threadml-hostile-");
const cwd = tmp.dir;
const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SANDBOX: "bubblewrap" };

const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function findAll(dir: string, name: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => name.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

beforeAll(() => {
  requirePython();
  const file = join(cwd, "hostile.csv");
  writeClassificationCsv(file, { rows: 500, seed: 21 });
  const lines = readFileSync(file, "utf8").split("\n");
  lines[0] = [...FEATURES, TARGET].map(csvField).join(",");
  writeFileSync(file, lines.join("\n"));
});

describe("hostile column names through the CLI", () => {
  it("trains and deploys with an injection string as the target, and nothing is injected", async () => {
    const { result } = await runCli(["--yes", "--answer", TARGET, "Build a classifier for hostile.csv"], { cwd, env, timeoutMs: 170_000 });
    expect(findAll(cwd, new RegExp(`^${MARKER}`))).toEqual([]);
    expect(result.status, `${result.error ?? ""}\n${result.notices.join("\n")}`).toBe("deployed");
    expect((result.requirements as { target: string }).target).toBe(TARGET);
    expect(result.metrics.accuracy).toBeGreaterThan(0.6);
    expect(result.endpoint?.check.ok).toBe(true);
    expect(["Good", "Bad"]).toContain(result.endpoint?.check.prediction);
    // the name sits in the solution as an escaped literal, never in the docstring
    const code = readFileSync(result.artifacts.code!, "utf8");
    expect(code).toContain('TARGET = "q\\"\\"\\"+open(\\"pwned\\",\\"w\\").write(\\"x\\")+\\"\\"\\""');
    expect(code.slice(0, code.indexOf('"""', 3))).not.toContain("open(");
  }, 180_000);
});
