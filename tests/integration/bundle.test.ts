import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { unzipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { HarnessResult } from "../../runners/contract.js";
import { bundleName, dockerfile, pickleModules, requirementsFor } from "../../graphs/automl/bundle.js";
import type { GraphDeps } from "../../graphs/automl/deps.js";
import { fmt } from "../../graphs/automl/format.js";
import { mulberry32 } from "../../graphs/automl/holdout.js";
import { finishNode } from "../../graphs/automl/nodes/finish.js";
import type { Report, State } from "../../graphs/automl/state.js";
import { Requirements } from "../../src/schema/requirements.js";
import { requirePython, runCli, type CliRun } from "../helpers/cli.js";
import { PYTHON, postPredict } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// The portable bundle end to end: a whole offline conversation, then its zip unpacked somewhere else
// and served by the system Python from the unpacked folder alone, as someone without ThreadML runs it.

const tmp = tempDir("threadml-bundle-");
const cwd = tmp.dir;
const env = { THREADML_DATA_DIR: join(cwd, ".threadml") };
const servers: ChildProcess[] = [];
afterAll(() => servers.forEach((s) => s.kill("SIGTERM")));

const HOSTILE = "be`ta|<script>alert(1)</script>";
const REQUEST = "predict label with accuracy at least 0.6 and model under 5 MB";

/** Two numbers (one with a hostile name) and a colour decide the label, with some noise. */
function writeData(file: string): void {
  const rand = mulberry32(7);
  const colours = ["red", "green", "blue"];
  const lines = [["alpha", HOSTILE, "colour", "label"].join(",")];
  for (let i = 0; i < 700; i++) {
    const a = rand() * 4 - 2;
    const b = rand() * 4 - 2;
    const c = colours[Math.floor(rand() * 3)];
    const score = a + 0.5 * b + (c === "red" ? 1 : 0) + (rand() - 0.5);
    lines.push([a.toFixed(4), b.toFixed(4), c, score > 0.3 ? "yes" : "no"].join(","));
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
}

/** Unpacks a zip into `dest`, refusing any name that would leave it. */
function unpack(zip: string, dest: string): string[] {
  const entries = unzipSync(readFileSync(zip));
  for (const [name, data] of Object.entries(entries)) {
    expect(name).not.toMatch(/(^|\/)\.\.(\/|$)|^\//);
    mkdirSync(dirname(join(dest, name)), { recursive: true });
    writeFileSync(join(dest, name), data);
  }
  return Object.keys(entries);
}

/** serve.py started as the Dockerfile's CMD starts it, on a free local port instead of 0.0.0.0:8080. */
function startAsDockerfile(dir: string, cmd: string[]): Promise<string> {
  const args = cmd.slice(1).map((a, i, all) => (all[i - 1] === "--host" ? "127.0.0.1" : all[i - 1] === "--port" ? "0" : a));
  const child = spawn(PYTHON, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  servers.push(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      if (!buf.includes("\n")) return;
      const ev = JSON.parse(buf.split("\n")[0]) as { event: string; host: string; port: number; message?: string };
      if (ev.event === "listening") resolve(`http://${ev.host}:${ev.port}`);
      else reject(new Error(`serve.py: ${ev.message}`));
    });
    child.on("exit", (code) => reject(new Error(`serve.py exited (${code}): ${stderr.slice(-2000)}`)));
  });
}

/** The card without its code blocks: what a markdown viewer renders as text. */
const prose = (card: string) => card.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, "");

describe("the portable bundle of a deployed model", () => {
  let run: CliRun;
  let root: string;
  let names: string[];

  beforeAll(async () => {
    requirePython();
    writeData(join(cwd, "signals.csv"));
    run = await runCli(["--yes", "--data", "signals.csv", REQUEST], { cwd, env, timeoutMs: 170_000 });
    expect(run.result.status, run.result.error ?? run.stderr).toBe("deployed");
    const zip = run.result.artifacts.bundle;
    expect(zip, "the result names no bundle").toBeTruthy();
    const into = join(cwd, "elsewhere");
    names = unpack(zip!, into);
    root = join(into, "label-model");
  }, 180_000);

  it("is a zip named after the target, beside report.md, holding the model, its code and the serving files", () => {
    const zip = run.result.artifacts.bundle!;
    expect(basename(zip)).toBe("label-model.zip");
    expect(dirname(zip)).toBe(dirname(run.result.artifacts.report!));
    expect(readdirSync(dirname(zip)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    for (const f of ["out/model.pkl", "out/model_meta.json", "solution.py", "serve.py", "harness.py", "features.py", "estimators.py", "requirements.txt", "Dockerfile", "MODEL_CARD.md"])
      expect(names, f).toContain(`label-model/${f}`);
    expect(names).not.toContain("label-model/serve_launch.py");
    expect(names.every((n) => n.startsWith("label-model/"))).toBe(true);
    expect(readFileSync(join(root, "out/model.pkl")).equals(readFileSync(run.result.artifacts.model!))).toBe(true);
  });

  it("serves, from the unpacked folder alone and with the Dockerfile's flags, the predictions the deploy check got", async () => {
    const docker = readFileSync(join(root, "Dockerfile"), "utf8");
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(docker)![1]) as string[];
    expect(cmd).toEqual(["python", "serve.py", "--host", "0.0.0.0", "--port", "8080", "--workspace", ".", "--out-dir", "out"]);
    const url = await startAsDockerfile(root, cmd);
    const sample = HarnessResult.parse(JSON.parse(readFileSync(join(root, "out/result.json"), "utf8"))).sample!;
    expect(sample.rows.length).toBeGreaterThan(0);
    const { status, body } = await postPredict(url, { rows: sample.rows });
    expect(status).toBe(200);
    expect(body.predictions).toEqual(sample.predictions);
    expect(body.predictions![0]).toEqual(run.result.endpoint!.check.prediction);
    // the example request the card points at answers the same
    const example = JSON.parse(readFileSync(join(root, "example.json"), "utf8")) as unknown;
    expect((await postPredict(url, example)).body.predictions).toEqual(sample.predictions);
  });

  it("pins the libraries the model was trained with and builds a non-root image on that Python", () => {
    const result = HarnessResult.parse(JSON.parse(readFileSync(join(root, "out/result.json"), "utf8")));
    const reqs = readFileSync(join(root, "requirements.txt"), "utf8").split("\n");
    const docker = readFileSync(join(root, "Dockerfile"), "utf8");
    if (result.env) {
      const installed = spawnSync(PYTHON, ["-c", "import sklearn; print(sklearn.__version__)"], { encoding: "utf8" }).stdout.trim();
      expect(reqs).toContain(`scikit-learn==${installed}`);
      expect(reqs).toContain(`pandas==${result.env.packages.pandas}`);
      expect(docker).toContain(`FROM python:${result.env.python.split(".").slice(0, 2).join(".")}-slim`);
    } else {
      expect(reqs).toContain("scikit-learn");
      expect(reqs.join("\n")).toMatch(/versions were not recorded/);
    }
    expect(reqs.some((l) => /^xgboost|^torch/.test(l))).toBe(false);
    const order = ["COPY requirements.txt .", "RUN pip install --no-cache-dir -r requirements.txt", "COPY . .", "USER threadml", "EXPOSE 8080"].map((l) => docker.indexOf(l));
    expect(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]))).toBe(true);
  });

  it("has a model card with every constraint and its actual value, the request quoted, and hostile names escaped", () => {
    const card = readFileSync(join(root, "MODEL_CARD.md"), "utf8");
    expect(run.result.constraints).toHaveLength(2);
    const constraints = card.slice(card.indexOf("## Constraints"), card.indexOf("## Intended use"));
    for (const c of run.result.constraints) {
      const row = constraints.split("\n").find((l) => l.startsWith(`| ${c.name.replace(/_/g, "\\_")} |`));
      expect(row, c.name).toBeDefined();
      expect(row).toContain(`| ${c.op} ${c.target} | ${fmt(c.actual)} | ${c.met ? "yes" : "**no**"} |`);
    }
    expect(card).toContain(`> ${REQUEST}`);
    expect(card).toMatch(/## Limits[\s\S]*Trained on \d+ rows; every metric above comes from \d+ test rows/);
    expect(card).toContain("THREADML_SERVE_TOKEN");
    expect(card).toContain("docker build -t label-model .");
    // rendered text never holds the raw name: no tag, no code span, no extra table cell
    const text = prose(card);
    expect(text).toContain("be\\`ta\\|\\<script\\>alert\\(1\\)\\</script\\>");
    expect(text).not.toContain("<script>");
    const rangeRow = text.split("\n").find((l) => l.startsWith("| be\\`ta"))!;
    expect(rangeRow.replace(/\\\|/g, "").split("|")).toHaveLength(4);
    // the curl example keeps the real name, inside a fence no backtick in it can close
    expect(card).toContain(`"${HOSTILE}":`);
  });
});

describe("bundle parts", () => {
  it("names the bundle from the target in plain letters, with a fallback", () => {
    expect(bundleName("Sale Price (€)")).toBe("sale-price-model");
    expect(bundleName("Ünïcode_Tårget")).toBe("unicode-target-model");
    expect(bundleName("../../etc")).toBe("etc-model");
    expect(bundleName("日本")).toBe("threadml-model");
    expect(bundleName(null)).toBe("threadml-model");
    expect(bundleName("x".repeat(100)).length).toBeLessThanOrEqual(46);
  });

  it("finds the libraries a pickle loads from its globals, not from strings that only look like them", () => {
    const py = [
      "import pickle, sys, collections",
      "import xgboost",
      // a category value and a key spelled like modules must not count
      "obj = {'m': xgboost.XGBClassifier(n_estimators=3), 'values': ['torch', 'PIL'], 'torch': 1}",
      "sys.stdout.buffer.write(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))",
    ].join("\n");
    const out = spawnSync(PYTHON, ["-c", py], { maxBuffer: 1 << 26 });
    expect(out.status, out.stderr?.toString()).toBe(0);
    const modules = new Set<string>();
    pickleModules(out.stdout.toString("latin1"), modules);
    expect(modules.has("xgboost")).toBe(true);
    expect(modules.has("torch")).toBe(false);
    expect(modules.has("PIL")).toBe(false);
    const reqs = requirementsFor(modules, { python: "3.11.2", packages: { xgboost: "1.7.4", "scikit-learn": "1.2.1", numpy: "1.24.2" } });
    expect(reqs.lines).toEqual(expect.arrayContaining(["xgboost==1.7.4", "scikit-learn==1.2.1", "numpy==1.24.2", "pandas", "scipy"]));
    expect(reqs.pinned).toBe(false);
    expect(reqs.openmp).toBe(true);
    expect(dockerfile("3.11", "out", reqs.openmp)).toMatch(/libgomp1/);
  });

  it("pins a pre-release build by its series, PyTorch's CPU build from its own index, and drops malformed entries", () => {
    const reqs = requirementsFor(new Set(["torch", "torchvision"]), {
      python: "3.11.2",
      packages: { numpy: "1.24.2", pandas: "1.5.3", scipy: "1.10.1", "scikit-learn": "1.2.1", torch: "1.13.0a0", torchvision: "0.14.1+cpu", "evil\nname": "1", joblib: "1.2; rm -rf /" },
    });
    expect(reqs.lines).toContain("torch==1.13.*");
    expect(reqs.lines).toContain("torchvision==0.14.1+cpu");
    expect(reqs.text).toContain("--extra-index-url https://download.pytorch.org/whl/cpu");
    expect(reqs.text).not.toMatch(/evil|rm -rf/);
    expect(requirementsFor(new Set(), null).text).toMatch(/versions were not recorded/);
  });
});

describe("a bundle that cannot be built", () => {
  it("leaves a notice in the report, no zip, and the conversation finishes", async () => {
    // a copy of the first conversation's artifacts folder without model_meta.json
    const jobs = join(cwd, ".threadml", "jobs");
    const source = readdirSync(jobs)
      .map((d) => join(jobs, d, "artifacts"))
      .find((d) => existsSync(join(d, "out", "model.pkl")) && existsSync(join(d, "solution.py")));
    expect(source, "run the end-to-end test first: it trains the model this one copies").toBeDefined();
    const dir = join(cwd, "broken", "artifacts");
    cpSync(source!, dir, { recursive: true });
    rmSync(join(dir, "out", "model_meta.json"));
    for (const f of readdirSync(dir)) if (f.endsWith(".zip") || f === "report.md") rmSync(join(dir, f));

    const requirements = Requirements.parse({
      problem: { downstream_task: "binary classification" },
      dataset: [],
      user: { intent: "build" },
      confidence: { score: 0.9 },
      task: "classification",
      target: "label",
      metric: { name: "accuracy", direction: "max" },
      constraints: [{ name: "accuracy", op: ">=", target: 0.6 }],
    });
    const result = HarnessResult.parse({ status: "ok", mode: "train", task: "classification", metrics: { accuracy: 0.9 }, model_path: "out/model.pkl" });
    const state = {
      messages: [REQUEST],
      requester: "someone",
      requirements,
      profile: null,
      plans: [],
      runs: [],
      executions: [],
      modelPlans: [],
      earlier: [],
      notices: [],
      endpoint: null,
      status: "running",
      error: null,
      llm: { calls: 0, prompt_tokens: 0, completion_tokens: 0 },
      best: {
        runId: "r",
        workspace: dir,
        runnerDir: dir,
        candidateId: null,
        description: "Logistic regression",
        implementation: {},
        result,
        artifacts: { dir, model: join(dir, "out", "model.pkl"), code: join(dir, "solution.py"), plots: [] },
        verdict: { failure: "success", checks: [{ name: "accuracy", op: ">=", target: 0.6, actual: 0.9, met: true }], reasons: [] },
      },
    } as unknown as State;
    const warn = vi.fn();
    const deps = {
      config: { llm: { pricing: { promptPerMTok: 0, completionPerMTok: 0 } } },
      logger: { warn, info: vi.fn(), debug: vi.fn(), error: vi.fn() },
      emit: () => {},
      jobSignal: () => new AbortController().signal,
    } as unknown as GraphDeps;

    const update = (await finishNode(deps)(state, { configurable: { thread_id: "t" } })) as { status: string; report: Report; notices: string[] };
    expect(update.status).toBe("trained");
    expect(update.report.artifacts.bundle).toBeNull();
    expect(update.notices).toEqual([expect.stringMatching(/bundle .* could not be built: model_meta\.json \(out\/model_meta\.json\) in the model's artifacts folder is missing\./)]);
    expect(update.notices[0]).not.toContain(dir);
    expect(update.report.notices).toContain(update.notices[0]);
    expect(warn).toHaveBeenCalled();
    expect(readFileSync(join(dir, "report.md"), "utf8")).toContain("could not be built");
    expect(readdirSync(dir).filter((f) => f.endsWith(".zip") || f.endsWith(".tmp"))).toEqual([]);
  });
});
