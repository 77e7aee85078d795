import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeShapeImages } from "../helpers/datasets.js";
import { PYTHON } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// The small CNN for real: PyTorch's CPU build (Debian's python3-torch, installed by `bin/setup.sh --test`)
// trains the network on pictures the test draws, and the CLI carries a request for a CNN from plain
// words to a deployed, checked endpoint that answers with the network.

const tmp = tempDir("threadml-cnn-");
const cwd = tmp.dir;

beforeAll(() => {
  requirePython();
  const probe = spawnSync(PYTHON, ["-c", "import torch, torchvision"], { encoding: "utf8" });
  if (probe.status !== 0)
    throw new Error(`PyTorch is missing for ${PYTHON}: install python3-torch python3-torchvision (bash bin/setup.sh --test)\n${probe.stderr}`);
  writeShapeImages(join(cwd, "shapes"), { perClass: 40, seed: 11 });
});

describe("threadml run: a CNN on CPU", () => {
  it("trains the requested CNN on the pixels and deploys it", async () => {
    const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "3", THREADML_SANDBOX: "off" };
    const { result } = await runCli(["--yes", "Train a CNN to classify the images in shapes.zip using labels.csv"], { cwd, env, timeoutMs: 240_000 });
    expect(result.status, result.error).toBe("deployed");
    const plans = result.plans as Array<{ models: Array<{ family: string }> }>;
    expect(plans[0].models.map((m) => m.family)).toContain("small_cnn");
    const plan = result.plan as { models: Array<{ family: string; estimator: string }> };
    expect(plan.models[0]).toMatchObject({ family: "small_cnn", estimator: "variant_images.SmallCNNClassifier" });
    // three classes: chance is a third
    expect(result.metrics.accuracy).toBeGreaterThan(0.6);
    expect(result.endpoint?.check.ok).toBe(true);
    expect(["circle", "square", "stripes"]).toContain(result.endpoint?.check.prediction);
  });
});
