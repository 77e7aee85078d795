import { spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeShapeImages, writeZip } from "../helpers/datasets.js";
import { harnessWorkspace, postPredict, runHarness, startServe, PYTHON } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// Image classification end to end: the harness's images variant on small synthetic pictures (circles,
// squares, stripes) from a zip with a labels CSV, from class folders, and from a folder; safe archive
// handling; the model server taking base64 images; the environment_error a CNN gets on a runner without
// PyTorch; and the CLI from plain words to a checked endpoint, offering scikit-learn models instead.

const tmp = tempDir("threadml-images-");
const cwd = tmp.dir;
const servers: ChildProcess[] = [];
let shapes: ReturnType<typeof writeShapeImages>;
let folders: ReturnType<typeof writeShapeImages>;
let noTorchPython: string;

const LINEAR = [
  "from sklearn.linear_model import LogisticRegression",
  "from sklearn.pipeline import Pipeline",
  "def build(ctx):",
  "    assert ctx.image_column == 'image'",
  "    return Pipeline([('pre', ctx.preprocessor(scale=True)), ('model', LogisticRegression(max_iter=3000, C=0.5))])",
  "",
].join("\n");
const CNN = ["from variant_images import SmallCNNClassifier", "PARAMS = {'epochs': 2}", "def build(ctx):", "    return SmallCNNClassifier(**PARAMS)", ""].join("\n");

/** Runs Python with torch hidden (sys.modules entries set to None), whatever this machine has installed. */
const HIDE_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None";

beforeAll(() => {
  requirePython();
  shapes = writeShapeImages(join(cwd, "shapes"), { perClass: 40, seed: 3 });
  folders = writeShapeImages(join(cwd, "byclass", "shapes"), { perClass: 30, seed: 4, layout: "folders" });
  // An interpreter for the CLI that lacks torch even where torch is installed: a virtual environment on
  // the system's packages whose .pth hides torch. Its sys.executable is itself, so the runner's module
  // probe and its harness runs both see the hiding.
  const venv = join(cwd, "notorch-venv");
  const made = spawnSync(PYTHON, ["-m", "venv", "--without-pip", "--system-site-packages", venv], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`making a virtual environment failed: ${made.stderr}`);
  noTorchPython = join(venv, "bin", "python");
  const site = spawnSync(noTorchPython, ["-c", "import site; print(site.getsitepackages()[0])"], { encoding: "utf8" }).stdout.trim();
  writeFileSync(join(site, "threadml_hide_torch.pth"), `${HIDE_TORCH}\n`);
});
afterAll(() => {
  for (const s of servers) s.kill("SIGTERM");
});

const workspace = (name: string, solution: string, data: Record<string, string>) => harnessWorkspace(join(cwd, name), solution, data);
const serve = (dir: string) => startServe(dir, servers);
const post = (url: string, body: unknown) => postPredict<string>(url, body);

const base = { mode: "train", task: "classification", variant: "images", target: "label", metric: "accuracy" } as const;
const csvLabels: NonNullable<HarnessSpecInput["images"]> = { labels: [{ file: "labels.csv" }], filename_column: "filename", size: 16 };

describe("harness: the images variant", () => {
  describe.sequential("a zip of images with a labels CSV beside it", () => {
    let dir: string;
    let run: Awaited<ReturnType<typeof runHarness>>;
    beforeAll(async () => {
      dir = workspace("zipcsv", LINEAR, { "shapes.zip": shapes.path, "labels.csv": shapes.labels! });
      run = await runHarness(dir, { ...base, data: "shapes.zip", images: csvLabels });
    });

    it("decodes, featurises and classifies far above chance", () => {
      expect(run.code, run.stderr).toBe(0);
      expect(run.result.details).toMatchObject({ images: 120, unreadable: 0, size: 16, layout: "labels_csv", classes: 3 });
      expect(run.result.rows).toEqual({ train: 84, valid: 18, test: 18 });
      expect(run.result.classes).toEqual(["circle", "square", "stripes"]);
      expect(run.result.metrics.accuracy).toBeGreaterThan(0.7);
      expect(run.result.plots).toEqual(["out/plots/confusion_matrix.png"]);
    });

    it("serves base64 images, answering as the harness did", async () => {
      const sample = run.result.sample!;
      const request = sample.request as { images: string[] };
      expect(request.images).toHaveLength(3);
      expect(Buffer.from(request.images[0], "base64").subarray(1, 4).toString()).toBe("PNG");
      const url = await serve(dir);
      const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: "ok", variant: "images", image_size: 16, classes: ["circle", "square", "stripes"] });
      expect(await post(url, request)).toEqual({ status: 200, body: { predictions: sample.predictions } });
      const asRows = await post(url, { rows: [{ image: `data:image/png;base64,${request.images[0]}` }] });
      expect(asRows.body.predictions).toEqual([sample.predictions[0]]);
    });

    it("answers what is not an image with clear 400s", async () => {
      const url = await serve(dir);
      const cases: Array<[unknown, RegExp]> = [
        [{ images: ["%%%not base64%%%"] }, /image 0 is not valid base64/],
        [{ images: [Buffer.from("just some text").toString("base64")] }, /image 0: not a readable image/],
        [{ images: [42] }, /image 0 is not a base64 string/],
        [{ pictures: [] }, /expected \{"images"/],
      ];
      for (const [body, error] of cases) {
        const res = await post(url, body);
        expect(res.status).toBe(400);
        expect(res.body.error).toMatch(error);
      }
    });
  });

  it("reads a labels CSV inside the archive", async () => {
    const images = readdirSync(folders.path).flatMap((cls) => readdirSync(join(folders.path, cls)).map((f) => ({ cls, name: f, data: readFileSync(join(folders.path, cls, f)) })));
    const labels = ["file,kind", ...images.map((i) => `pics/${i.name},${i.cls}`)].join("\n");
    const zip = writeZip(join(cwd, "inside.zip"), [...images.map((i) => ({ name: `data/pics/${i.name}`, data: i.data })), { name: "data/labels.csv", data: labels }]);
    const dir = workspace("inside", LINEAR, { "inside.zip": zip });
    const run = await runHarness(dir, { ...base, target: "kind", data: "inside.zip", images: { labels: [{ member: "labels.csv" }], filename_column: "file", size: 16 } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.result.details).toMatchObject({ images: 90, layout: "labels_csv" });
    expect(run.result.metrics.accuracy).toBeGreaterThan(0.6);
  });

  it("reads labels from class folders, in a folder or in a zip", async () => {
    const fromFolder = workspace("folders", LINEAR, { images: folders.path });
    const a = await runHarness(fromFolder, { ...base, data: "images", images: { size: 16 } });
    expect(a.code, a.stderr).toBe(0);
    expect(a.result.details).toMatchObject({ images: 90, layout: "folders" });
    expect(a.result.metrics.accuracy).toBeGreaterThan(0.6);
    const zipped = writeShapeImages(join(cwd, "zf", "shapes"), { perClass: 20, seed: 5, layout: "zip-folders" });
    const fromZip = workspace("zipfolders", LINEAR, { "shapes.zip": zipped.path });
    const b = await runHarness(fromZip, { ...base, data: "shapes.zip", images: { size: 16 } });
    expect(b.code, b.stderr).toBe(0);
    expect(b.result.details).toMatchObject({ images: 60, layout: "folders" });
  });

  it("refuses unsafe archives and explains data it cannot use", async () => {
    const png = readFileSync(join(folders.path, "circle", readdirSync(join(folders.path, "circle"))[0]));
    const ok = Array.from({ length: 12 }, (_, i) => ({ name: `${["a", "b"][i % 2]}/${i}.png`, data: png }));
    writeZip(join(cwd, "escape.zip"), [...ok, { name: "../../outside.png", data: png }]);
    writeZip(join(cwd, "link.zip"), [...ok, { name: "a/link.png", data: "/etc/passwd", link: true }]);
    writeZip(join(cwd, "flat.zip"), ok.map((e) => ({ ...e, name: basename(e.name) })));
    // five megabytes of zeros deflate to a few kilobytes: an archive that inflates that far is refused
    const bomb = spawnSync(PYTHON, ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED).writestr('a/big.png', bytes(5 << 20))", join(cwd, "bomb.zip")]);
    expect(bomb.status, String(bomb.stderr)).toBe(0);
    const dir = workspace("unsafe", LINEAR, {
      "escape.zip": join(cwd, "escape.zip"),
      "link.zip": join(cwd, "link.zip"),
      "flat.zip": join(cwd, "flat.zip"),
      "bomb.zip": join(cwd, "bomb.zip"),
      "labels.csv": shapes.labels!,
    });
    const cases: Array<[Partial<HarnessSpecInput>, RegExp]> = [
      [{ data: "escape.zip", images: { size: 16 } }, /escape\.zip holds an entry with an unsafe path \('\.\.\/\.\.\/outside\.png'\); it was not read/],
      [{ data: "link.zip", images: { size: 16 } }, /holds a symbolic link \(a\/link\.png\)/],
      [{ data: "bomb.zip", images: { size: 16 } }, /a\/big\.png in bomb\.zip inflates \d+ times; the archive was refused/],
      [{ data: "flat.zip", images: { size: 16 } }, /have no labels: give a CSV of file names and labels, or put each class in its own folder/],
      [{ data: "flat.zip", images: csvLabels }, /No labelled images were found in flat\.zip/],
      [{ data: "labels.csv", images: { size: 16 } }, /labels\.csv is neither a folder nor a zip archive/],
    ];
    for (const [over, message] of cases) {
      const run = await runHarness(dir, { ...base, ...over } as HarnessSpecInput);
      expect(run.code).toBe(1);
      expect(run.result.error).toMatchObject({ class: "value_error" });
      expect(run.result.error!.message).toMatch(message);
    }
  });

  it("gives a CNN on a runner without PyTorch an environment_error naming torch torchvision", async () => {
    const dir = workspace("notorch", CNN, { "shapes.zip": shapes.path, "labels.csv": shapes.labels! });
    const trained = await runHarness(dir, { ...base, data: "shapes.zip", images: csvLabels }, HIDE_TORCH);
    expect(trained.code).toBe(1);
    expect(trained.result.error).toMatchObject({ class: "environment_error" });
    expect(trained.result.error!.message).toMatch(/'torch', which is not installed for .*python.*Install it on the runner \(Debian\/Ubuntu: apt-get install python3-torch python3-torchvision; or pip install torch torchvision\)/);

    const searched = await runHarness(
      dir,
      {
        ...base,
        mode: "search",
        data: "shapes.zip",
        images: csvLabels,
        search: {
          candidates: [
            { id: "cnn", estimator: "variant_images.SmallCNNClassifier", preprocess: { raw: true }, params: { epochs: 2 } },
            { id: "linear", estimator: "sklearn.linear_model.LogisticRegression", preprocess: { scale: true }, params: { max_iter: 2000 } },
          ],
          n_iter: 1,
        },
      },
      HIDE_TORCH,
    );
    expect(searched.code, searched.stderr).toBe(0);
    const [cnn, linear] = searched.result.search!.candidates;
    expect(cnn.error).toMatch(/^environment_error: SmallCNNClassifier needs the module 'torch'.*install it on the runner \(Debian\/Ubuntu: apt-get install python3-torch python3-torchvision; or pip install torch torchvision\)/);
    expect(linear.best_score).toBeGreaterThan(0.6);
  });
});

describe("threadml run: image classification", () => {
  const env = () => ({ THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "3", THREADML_PYTHON: noTorchPython, THREADML_SANDBOX: "off" });

  it("asks for labels when the archive has none", async () => {
    const png = readFileSync(join(folders.path, "square", readdirSync(join(folders.path, "square"))[0]));
    writeZip(join(cwd, "loose.zip"), Array.from({ length: 30 }, (_, i) => ({ name: `shot_${i}.png`, data: png })));
    const { result } = await runCli(["Classify the pictures in loose.zip"], { cwd, env: env() });
    expect(result.status, result.error).toBe("needs_input");
    expect(result.questions![0]).toMatch(/I found 30 images in loose\.zip but no labels/);
  });

  it("offers the scikit-learn variant for a requested ResNet without PyTorch, and deploys a checked endpoint", async () => {
    const { result } = await runCli(["--yes", "Fine-tune a ResNet to classify the images in shapes.zip using labels.csv, accuracy at least 0.7"], {
      cwd,
      env: env(),
      timeoutMs: 200_000,
    });
    expect(result.status, result.error).toBe("deployed");
    const req = result.requirements as { task: string; target: string; images: Record<string, unknown>; requested_models: string[] };
    expect(req).toMatchObject({ task: "image_classification", target: "label", requested_models: ["resnet"] });
    expect(req.images).toEqual({ layout: "labels_csv", labels: ["labels.csv"], filename_column: "filename" });
    const plans = result.plans as Array<{ models: Array<{ family: string }>; notices: string[] }>;
    expect(plans.flatMap((p) => p.models.map((m) => m.family))).not.toContain("small_cnn");
    expect(plans[0].notices.join(" ")).toMatch(/PyTorch\) was requested but the Python module torch is not installed on the runner \(install torch torchvision there/);
    expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0.7);
    expect(result.endpoint?.check.ok).toBe(true);
    expect(["circle", "square", "stripes"]).toContain(result.endpoint?.check.prediction);
  });
});
