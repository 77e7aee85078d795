import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, requirePython, runCli } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// `threadml run --thread NAME` as a script uses it: separate processes that continue one named
// conversation through the file store (no Redis) — a plan card approved by the next run, follow-ups of
// the model it trained, a retrain that compares — and `threadml models list|stop`.

const tmp = tempDir("threadml-cli-thread-");
const env = { THREADML_SEARCH_BUDGET_S: "2" };
const cli = (args: string[], timeoutMs = 150_000) => runCli(args, { cwd: tmp.dir, env, timeoutMs });

function models(args: string[]): Promise<{ code: number | null; out: unknown }> {
  const child = spawn(process.execPath, [BIN, "models", ...args, "--json"], { cwd: tmp.dir, env: { ...process.env, LOG_LEVEL: "warn" } });
  let stdout = "";
  child.stdout.on("data", (d) => (stdout += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out: JSON.parse(stdout.trim().split("\n").pop() ?? "null") })));
}

beforeAll(() => {
  requirePython();
  writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 400, seed: 11 });
  // new rows to score: the same columns without the label
  const lines = readFileSync(join(tmp.dir, "bananas.csv"), "utf8").trim().split("\n").slice(0, 31);
  writeFileSync(join(tmp.dir, "fresh.csv"), `${lines.map((l) => l.split(",").slice(0, 7).join(",")).join("\n")}\n`);
  writeFileSync(join(tmp.dir, "wrong.csv"), "Size,Weight,Colour\n1,2,yellow\n3,4,green\n");
});

describe("threadml run --thread", () => {
  it("keeps a plan card open between runs and approves it in the next one", async () => {
    const first = await cli(["--thread", "bananas", "--data", "bananas.csv", "predict Quality, accuracy at least 0.7"]);
    expect(first.result.status).toBe("needs_input");
    expect(first.result.thread).toBe("bananas");
    expect(first.result.questions?.[0]).toMatch(/^I read: predict Quality.*Approve a plan\?/);

    // a script that runs the same line again with --yes approves the waiting card; the words are not a revision
    const second = await cli(["--thread", "bananas", "--yes", "predict Quality, accuracy at least 0.7"]);
    expect(second.result.status, second.stderr).toBe("deployed");
    expect(second.result.model).toBe("quality");
    expect(second.result.constraints[0]).toMatchObject({ name: "accuracy", op: ">=", target: 0.7 });
    expect(second.result.artifacts.bundle).toMatch(/quality-model\.zip$/);
  }, 300_000);

  it("scores a file typed as a path, and explains a file whose columns do not match", async () => {
    const scored = await cli(["--thread", "bananas", "score fresh.csv"]);
    expect(scored.result.followup?.kind).toBe("file");
    expect(scored.result.followup?.lines[0]).toMatch(/^Scored 30 rows of fresh\.csv with quality/);
    const csv = readFileSync(scored.result.followup!.file!, "utf8").trim().split("\n");
    expect(csv).toHaveLength(31);
    expect(csv[0]).toMatch(/^Size,Weight,Sweetness,Softness,HarvestTime,Ripeness,Acidity,prediction/);

    const wrong = await cli(["--thread", "bananas", "score wrong.csv"]);
    expect(wrong.result.status).toBe("failed");
    expect(wrong.result.error).toMatch(/wrong\.csv lacks 5 columns quality needs: "Sweetness", "Softness"/);
  }, 120_000);

  it("names what matters, retrains with a change and compares", async () => {
    const explained = await cli(["--thread", "bananas", "what matters most?"]);
    expect(explained.result.followup?.file).toMatch(/importance\.png$/);
    // Size and Sweetness carry most of the label (tests/helpers/datasets.ts)
    expect(explained.result.followup?.lines[1]).toMatch(/^1\. (Size|Sweetness) /);

    const retrained = await cli(["--thread", "bananas", "--yes", "try again without Size"]);
    expect(retrained.result.status).toBe("deployed");
    expect(retrained.result.model).toBe("quality-2");
    expect((retrained.result.requirements as { drop_columns: string[] }).drop_columns).toContain("Size");
    expect(retrained.result.summary.join("\n")).toMatch(/Compared with quality \(.+\): accuracy [\d.]+ → [\d.]+, (better|worse|the same)\./);
    expect(retrained.result.comparison?.rows.map((r) => r[1])).toEqual(["new", "quality"]);
  }, 300_000);

  it("lists the registry and stops a model from another process", async () => {
    const listed = await models(["list"]);
    expect(listed.code).toBe(0);
    const entries = (listed.out as { models: Array<{ name: string; status: string; thread: string; token: unknown; context?: unknown }> }).models;
    expect(entries.map((e) => e.name)).toEqual(["quality", "quality-2"]);
    expect(entries[0].thread).toBe("cli:local:bananas");
    expect(entries[0].context).toBeUndefined();
    const stopped = await models(["stop", "quality-2"]);
    expect(stopped.code).toBe(0);
    expect((stopped.out as { model: { status: string } }).model.status).toBe("stopped");
    expect((await models(["stop", "nope"])).code).toBe(1);
  }, 60_000);

  it("refuses a thread name that is not a plain name", async () => {
    const bad = await cli(["--thread", "../etc", "predict Quality"]);
    expect(bad.result.status).toBe("failed");
    expect(bad.result.error).toMatch(/--thread/);
  });
});
