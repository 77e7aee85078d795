import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HarnessResult } from "../../runners/contract.js";
import { INTAKE_LIMITS, intakeRun, readResult, takeArtifacts } from "../../runners/intake.js";
import { tempDir } from "../helpers/tmp.js";

// The intake treats a workspace as hostile: every trick a run can leave there is refused, and what
// passes is copied into a host-owned folder.

const tmp = tempDir("threadml-intake-");
let n = 0;
const SECRET = "SLACK_BOT_TOKEN=xoxb-secret-123";

function workspace(): { ws: string; dest: string; secret: string } {
  const ws = join(tmp.dir, `ws-${++n}`);
  mkdirSync(join(ws, "out", "plots"), { recursive: true });
  const secret = join(tmp.dir, `secret-${n}.txt`);
  writeFileSync(secret, SECRET);
  return { ws, dest: join(tmp.dir, `host-${n}`, "artifacts"), secret };
}

const result = (over: Partial<HarnessResult> = {}): HarnessResult => HarnessResult.parse({ status: "ok", mode: "train", task: "classification", ...over });

describe("runners/intake", () => {
  it("copies a plain model, its meta, plots and the code, keeping the workspace layout", async () => {
    const { ws, dest } = workspace();
    writeFileSync(join(ws, "out", "model.pkl"), "model");
    writeFileSync(join(ws, "out", "model_meta.json"), "{}");
    writeFileSync(join(ws, "out", "plots", "confusion_matrix.png"), "png");
    writeFileSync(join(ws, "solution.py"), "def build(ctx): pass\n");
    writeFileSync(join(ws, "out", "result.json"), JSON.stringify(result({ model_path: "out/model.pkl", plots: ["out/plots/confusion_matrix.png"] })));
    const taken = await intakeRun({ workspace: ws, outDir: "out", dest, solution: "solution.py" });
    expect(taken.notes).toEqual([]);
    expect(taken.artifacts).toMatchObject({ model: join(dest, "out", "model.pkl"), code: join(dest, "solution.py"), plots: [join(dest, "out", "plots", "confusion_matrix.png")] });
    expect(existsSync(join(dest, "out", "model_meta.json"))).toBe(true);
    expect(readFileSync(taken.artifacts!.model!, "utf8")).toBe("model");
  });

  it("refuses paths out of the output folder, links, FIFOs, non-images and oversize files", async () => {
    const { ws, dest, secret } = workspace();
    symlinkSync(secret, join(ws, "out", "plots", "link.png"));
    symlinkSync("/proc/self/environ", join(ws, "out", "plots", "environ.png"));
    symlinkSync(join(tmp.dir), join(ws, "out", "linkdir"));
    execFileSync("mkfifo", [join(ws, "out", "plots", "fifo.png")]);
    writeFileSync(join(ws, "out", "plots", "big.png"), Buffer.alloc(INTAKE_LIMITS.plotBytes + 1));
    writeFileSync(join(ws, "out", "notes.txt"), "text");
    symlinkSync(secret, join(ws, "out", "model.pkl"));
    const plots = [
      "../../../proc/self/environ",
      "/etc/passwd",
      "out/../../secret.png",
      "out/plots/link.png",
      "out/plots/environ.png",
      `out/linkdir/secret-${n}.png`,
      "out/plots/fifo.png",
      "out/plots/big.png",
      "out/notes.txt",
      "solution.py",
    ];
    const taken = await takeArtifacts({ workspace: ws, outDir: "out", dest, result: result({ model_path: "out/model.pkl", plots }) });
    expect(taken.artifacts.plots).toEqual([]);
    expect(taken.artifacts.model).toBeNull();
    expect(taken.result.model_path).toBeNull();
    expect(taken.result.plots).toEqual([]);
    expect(taken.notes).toHaveLength(plots.length + 1);
    expect(taken.notes.join("\n")).toMatch(/symbolic link/);
    expect(taken.notes.join("\n")).toMatch(/not a regular file/);
    expect(taken.notes.join("\n")).toMatch(/larger than/);
    expect(taken.notes.join("\n")).not.toContain("xoxb");
  });

  it("reads result.json only as a plain file and never quotes it", async () => {
    const { ws, secret } = workspace();
    symlinkSync(secret, join(ws, "out", "result.json"));
    const linked = await readResult(ws, "out");
    expect(linked.result).toBeNull();
    expect(linked.note).toMatch(/symbolic link/);

    const other = workspace();
    writeFileSync(join(other.ws, "out", "result.json"), SECRET);
    const garbage = await readResult(other.ws, "out");
    expect(garbage.note).toBe("[runner] result.json is not valid JSON");

    const third = workspace();
    symlinkSync(tmp.dir, join(third.ws, "evil"));
    expect((await readResult(third.ws, "../evil")).note).toMatch(/not a plain folder/);
    expect((await readResult(third.ws, "evil")).note).toMatch(/refused: it a folder on its path is a link|refused/);
  });

  it("takes a predict run's scored file only as out/predictions.csv, never a link or another path", async () => {
    const predicted = (file: string) => ({ rows: 1, file, counts: { a: 1 }, range: null, ignored_columns: [], metrics: null });
    const { ws, dest, secret } = workspace();
    writeFileSync(join(ws, "out", "predictions.csv"), "x,prediction\n1,a\n");
    const ok = await takeArtifacts({ workspace: ws, outDir: "out", dest, result: result({ mode: "predict", predicted: predicted("out/predictions.csv") }) });
    expect(ok.notes).toEqual([]);
    expect(readFileSync(ok.artifacts.scored!, "utf8")).toBe("x,prediction\n1,a\n");

    writeFileSync(join(ws, "solution.py"), "code");
    writeFileSync(join(ws, "out", "plots", "predictions.csv"), "x");
    for (const file of ["../../../etc/passwd", "solution.py", "out/plots/predictions.csv", "out/result.json"]) {
      const taken = await takeArtifacts({ workspace: ws, outDir: "out", dest, result: result({ mode: "predict", predicted: predicted(file) }) });
      expect(taken.artifacts.scored).toBeNull();
      expect(taken.notes.join("\n")).toMatch(/scored file/);
    }
    const linked = workspace();
    symlinkSync(secret, join(linked.ws, "out", "predictions.csv"));
    const taken = await takeArtifacts({ workspace: linked.ws, outDir: "out", dest: linked.dest, result: result({ mode: "predict", predicted: predicted("out/predictions.csv") }) });
    expect(taken.artifacts.scored).toBeNull();
    expect(taken.notes.join("\n")).toMatch(/symbolic link/);
    expect(taken.notes.join("\n")).not.toContain("xoxb");
  });

  it("never writes through a name planted in the host folder's place", async () => {
    const { ws, dest, secret } = workspace();
    writeFileSync(join(ws, "out", "model.pkl"), "model");
    mkdirSync(join(dest, "out"), { recursive: true });
    symlinkSync(secret, join(dest, "out", "model.pkl"));
    const taken = await takeArtifacts({ workspace: ws, outDir: "out", dest, result: result({ model_path: "out/model.pkl" }) });
    expect(readFileSync(taken.artifacts.model!, "utf8")).toBe("model");
    expect(readFileSync(secret, "utf8")).toBe(SECRET);
  });
});
