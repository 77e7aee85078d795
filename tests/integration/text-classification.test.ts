import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { HarnessResult, HarnessSpec, type HarnessSpecInput } from "../../runners/contract.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeTextClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// Text classification end to end: the harness types and vectorises a text column itself, and the
// headless CLI takes a request in plain words to a deployed endpoint that answers a text row.

const PYTHON = process.env.THREADML_PYTHON || "/usr/bin/python3";
const PY_DIR = fileURLToPath(new URL("../../runners/python/", import.meta.url));
const tmp = tempDir("threadml-text-");
const cwd = tmp.dir;
const env = { THREADML_DATA_DIR: join(cwd, ".threadml") };

beforeAll(() => {
  requirePython();
  writeTextClassificationCsv(join(cwd, "products.csv"), { rows: 800, seed: 21 });
});

/** A workspace with the harness files, the products data and a solution; returns its folder. */
function workspace(name: string, solution: string): string {
  const dir = join(cwd, name);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(PY_DIR)) if (f.endsWith(".py")) copyFileSync(join(PY_DIR, f), join(dir, f));
  copyFileSync(join(cwd, "products.csv"), join(dir, "data.csv"));
  writeFileSync(join(dir, "solution.py"), solution);
  return dir;
}

function runHarness(dir: string, spec: HarnessSpecInput): Promise<{ code: number | null; stderr: string; result: HarnessResult }> {
  writeFileSync(join(dir, "spec.json"), JSON.stringify(HarnessSpec.parse(spec)));
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["harness.py"], { cwd: dir, env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const result = HarnessResult.parse(JSON.parse(readFileSync(join(dir, "out", "result.json"), "utf8")));
      resolve({ code, stderr, result });
    });
  });
}

const LINEAR = [
  "from sklearn.linear_model import LogisticRegression",
  "from sklearn.pipeline import Pipeline",
  "def build(ctx):",
  "    assert ctx.text_columns, 'the harness found no text column'",
  "    return Pipeline([('pre', ctx.preprocessor(scale=True)), ('model', LogisticRegression(max_iter=2000, C=10.0))])",
  "",
].join("\n");

describe("harness: text columns", () => {
  it("keeps an unlisted long string column categorical", async () => {
    const dir = workspace("unlisted", LINEAR.replace("    assert ctx.text_columns, 'the harness found no text column'\n", ""));
    const { code, stderr, result } = await runHarness(dir, { mode: "train", task: "classification", data: "data.csv", target: "category", metric: "accuracy", drop_columns: ["product_id"], plots: false });
    expect(code, stderr).toBe(0);
    expect(result.features).toEqual({ numeric: ["price"], categorical: ["text"], text: [], dates: [] });
  });

  it("vectorises a listed text column with TF-IDF", async () => {
    const dir = workspace("train", LINEAR);
    const { code, stderr, result } = await runHarness(dir, {
      mode: "train",
      task: "classification",
      data: "data.csv",
      target: "category",
      metric: "accuracy",
      drop_columns: ["product_id"],
      text_columns: ["text"],
    });
    expect(code, stderr).toBe(0);
    expect(result.features).toEqual({ numeric: ["price"], categorical: [], text: ["text"], dates: [] });
    expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0.85);
    const meta = JSON.parse(readFileSync(join(dir, "out", "model_meta.json"), "utf8"));
    expect(meta.text).toEqual(["text"]);
    expect(typeof result.sample!.rows[0].text).toBe("string");
    // the fitted preprocessor holds a vocabulary of words and word pairs from the descriptions
    const probe = [
      "import pickle, sys",
      "m = pickle.load(open('out/model.pkl', 'rb'))",
      "vec = m.named_steps['pre'].named_transformers_['text0']",
      "print(type(vec).__name__, len(vec.vocabulary_), any(' ' in t for t in vec.vocabulary_), vec.stop_words_ is None)",
    ].join("\n");
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(PYTHON, ["-c", probe], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
      child.on("error", reject);
      child.on("close", () => resolve(text.trim()));
    });
    const [kind, size, bigrams, trimmed] = out.split(" ");
    expect(kind).toBe("TfidfVectorizer");
    expect(Number(size)).toBeGreaterThan(100);
    expect(bigrams).toBe("True");
    expect(trimmed).toBe("True");
  });

  it("vectorises a column the spec names as text, and clusters sparse features without crashing", async () => {
    const kmeans = [
      "from sklearn.cluster import KMeans",
      "from sklearn.pipeline import Pipeline",
      "def build(ctx):",
      "    return Pipeline([('pre', ctx.preprocessor(scale=True)), ('model', KMeans(n_clusters=4, n_init=3, random_state=ctx.seed))])",
      "",
    ].join("\n");
    const dir = workspace("clusters", kmeans);
    const { code, stderr, result } = await runHarness(dir, {
      mode: "train",
      task: "clustering",
      data: "data.csv",
      target: null,
      labels_column: "category",
      n_clusters: 4,
      metric: "silhouette",
      // product_id is a number; named as text it is vectorised all the same
      text_columns: ["text", "product_id"],
    });
    expect(code, stderr).toBe(0);
    expect(result.features!.text).toEqual(["product_id", "text"]);
    expect(result.metrics.silhouette).toBeDefined();
    expect(result.metrics.rand_index).toBeGreaterThan(0);
    expect(result.plots).toEqual(["out/plots/clusters.png"]);
  });
});

describe("threadml run: text classification", () => {
  it("trains TF-IDF models on the text column, deploys, and the endpoint answers a text row", async () => {
    const { result } = await runCli(
      ["--yes", "Classify the support tickets in products.csv into their category using the text column. Accuracy at least 0.8"],
      { cwd, env, timeoutMs: 150_000 },
    );
    expect(result.status, result.error).toBe("deployed");
    const req = result.requirements as { task: string; target: string; drop_columns: string[] };
    expect(req.task).toBe("text_classification");
    expect(req.target).toBe("category");
    expect(req.drop_columns).toEqual(["product_id"]);
    expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0.8);
    expect(result.constraints[0]).toMatchObject({ name: "accuracy", op: ">=", target: 0.8, met: true });

    const plans = result.plans as Array<{ approach: string; models: Array<{ estimator: string }> }>;
    expect(plans.map((p) => p.approach)).toEqual(["linear", "margin", "probabilistic"]);

    expect(result.endpoint?.check.ok).toBe(true);
    expect(["Electronics", "Household", "Books", "Clothing"]).toContain(result.endpoint?.check.prediction);

    const code = readFileSync(result.artifacts.code!, "utf8");
    expect(code).toMatch(/ctx\.preprocessor\(\*\*PREPROCESS\)/);
    expect(code).toMatch(/from sklearn\.(linear_model|svm|naive_bayes) import/);
  });

  it("serves the deployed model, which labels new descriptions", async () => {
    const { result } = await runCli(["--yes", "Text classification: predict category from the product descriptions in products.csv"], { cwd, env, timeoutMs: 150_000 });
    expect(result.status, result.error).toBe("deployed");
    // classification over a free-text column is text classification
    expect((result.requirements as { task: string }).task).toBe("text_classification");
    const model = result.artifacts.model!;
    const server = spawn(PYTHON, [join(PY_DIR, "serve.py"), "--port", "0", "--workspace", dirname(dirname(model)), "--out-dir", basename(dirname(model))], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const first = await new Promise<string>((resolve, reject) => {
        let buf = "";
        const timer = setTimeout(() => reject(new Error("serve.py did not start")), 30_000);
        server.stdout!.setEncoding("utf8").on("data", (d: string) => {
          buf += d;
          if (buf.includes("\n")) {
            clearTimeout(timer);
            resolve(buf.slice(0, buf.indexOf("\n")));
          }
        });
        server.on("exit", (code) => reject(new Error(`serve.py exited (${code})`)));
      });
      const { host, port } = JSON.parse(first) as { host: string; port: number };
      const res = await fetch(`http://${host}:${port}/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          rows: [
            { product_id: 1, text: "Wireless bluetooth headphones with a usb charging cable and long battery life", price: 59.9 },
            { product_id: 2, text: "A hardcover mystery novel by a bestseller author, illustrated edition", price: 12.5 },
            { product_id: 3, text: null, price: 30 },
          ],
        }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { predictions: string[] };
      expect(body.predictions.slice(0, 2)).toEqual(["Electronics", "Books"]);
      expect(body.predictions).toHaveLength(3);
    } finally {
      server.kill("SIGTERM");
    }
  });
});
