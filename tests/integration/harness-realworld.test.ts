import { spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../graphs/automl/holdout.js";
import { HarnessResult, type HarnessSpecInput } from "../../runners/contract.js";
import { requirePython } from "../helpers/cli.js";
import { harnessWorkspace, postPredict, PYTHON, runHarness, startServe, type HarnessRun } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// The harness on data as people upload it: a date column carrying the signal, columns no model should
// see (a constant, e-mail addresses), a rare positive class judged by F1 or precision, string labels for
// XGBoost, class weights, and Optuna's search with pruning. Real Python and libraries, seeded data.

const tmp = tempDir("threadml-realworld-");
const servers: ChildProcess[] = [];
const EXAMPLE = readFileSync(fileURLToPath(new URL("../../runners/python/solution_example.py", import.meta.url)), "utf8");
const XGB_SOLUTION = [
  "from sklearn.pipeline import Pipeline",
  "from xgboost import XGBClassifier",
  "",
  "def build(ctx):",
  "    return Pipeline([('pre', ctx.preprocessor(encode='ordinal')), ('model', XGBClassifier(n_estimators=60, max_depth=3, random_state=ctx.seed))])",
  "",
  "def predict(model, X):",
  "    return model.predict(X)",
  "",
].join("\n");

beforeAll(() => requirePython());
afterAll(() => {
  for (const s of servers) s.kill("SIGTERM");
});

function normal(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function csv(header: string[], rows: (string | number)[][]): string {
  return [header.join(","), ...rows.map((r) => r.join(","))].join("\n") + "\n";
}

/** Daily sales: weekends sell 30 more, a yearly season ±20, a numeric driver x; plus a constant column and e-mails. */
function salesCsv(rows: number, seed: number): string {
  const rand = mulberry32(seed);
  const gauss = normal(rand);
  const start = Date.UTC(2021, 0, 1);
  const out: (string | number)[][] = [];
  for (let i = 0; i < rows; i++) {
    const day = new Date(start + Math.floor(rand() * 3 * 365) * 86_400_000);
    const dow = day.getUTCDay();
    const doy = (day.getTime() - Date.UTC(day.getUTCFullYear(), 0, 1)) / 86_400_000;
    const x = gauss();
    const sales = 100 + 30 * Number(dow === 0 || dow === 6) + 20 * Math.sin((2 * Math.PI * doy) / 365.25) + 3 * x + 4 * gauss();
    out.push([day.toISOString().slice(0, 10), x.toFixed(4), "shop-1", `c${i}.${Math.floor(rand() * 1000)}@mail.com`, sales.toFixed(3)]);
  }
  return csv(["day", "x", "store", "email", "sales"], out);
}

/** About 4% positives ("yes"), a logistic function of five features and a category. */
function rareRows(rows: number, seed: number): (string | number)[][] {
  const rand = mulberry32(seed);
  const gauss = normal(rand);
  const out: (string | number)[][] = [];
  for (let i = 0; i < rows; i++) {
    const f = [gauss(), gauss(), gauss(), gauss(), gauss()];
    const group = ["north", "south", "east"][Math.floor(rand() * 3)];
    const logit = -4.3 + 1.4 * f[0] + 1.0 * f[1] - 0.8 * f[2] + 0.6 * f[3] * f[4] + (group === "east" ? 0.5 : 0);
    const label = rand() < 1 / (1 + Math.exp(-logit)) ? "yes" : "no";
    out.push([...f.map((v) => v.toFixed(4)), group, label]);
  }
  return out;
}
const RARE_HEADER = ["a", "b", "c", "d", "e", "group", "churn"];

/** Loan-like rows with string labels Y/N. */
function loansCsv(rows: number, seed: number): string {
  const rand = mulberry32(seed);
  const gauss = normal(rand);
  const out: (string | number)[][] = [];
  for (let i = 0; i < rows; i++) {
    const income = Math.exp(8 + 0.5 * gauss());
    const amount = Math.exp(6 + 0.6 * gauss());
    const credit = rand() < 0.8 ? 1 : 0;
    const area = ["Urban", "Rural", "Semiurban"][Math.floor(rand() * 3)];
    const score = 2.5 * credit - 1.5 + 0.8 * Math.log(income / amount / 20) + (area === "Semiurban" ? 0.4 : 0) + 0.5 * gauss();
    out.push([income.toFixed(0), amount.toFixed(0), credit, area, score > 0 ? "Y" : "N"]);
  }
  return csv(["income", "amount", "credit_history", "area", "Loan_Status"], out);
}

const serve = (dir: string) => startServe(dir, servers);
const meta = (dir: string) => JSON.parse(readFileSync(join(dir, "out", "model_meta.json"), "utf8")) as Record<string, unknown>;

function f1(truth: string[], pred: string[], pos: string): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  truth.forEach((t, i) => {
    if (pred[i] === pos && t === pos) tp++;
    else if (pred[i] === pos) fp++;
    else if (t === pos) fn++;
  });
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

describe("harness on real-world data", () => {
  describe.sequential("a date column and columns set aside", () => {
    const data = tmp.write("sales.csv", salesCsv(900, 11));
    const spec: HarnessSpecInput = { mode: "train", task: "regression", data: "sales.csv", target: "sales", metric: "rmse", plots: false };
    let dir: string;
    let withDates: HarnessRun;
    let withoutDates: HarnessRun;
    beforeAll(async () => {
      dir = harnessWorkspace(join(tmp.dir, "sales"), EXAMPLE, { "sales.csv": data });
      const other = harnessWorkspace(join(tmp.dir, "sales-nodate"), EXAMPLE, { "sales.csv": data });
      [withDates, withoutDates] = await Promise.all([runHarness(dir, spec), runHarness(other, { ...spec, drop_columns: ["day"] })]);
    }, 300_000);

    it("turns the date into calendar features and beats the same model without it", () => {
      expect(withDates.code, withDates.stderr).toBe(0);
      expect(withoutDates.code, withoutDates.stderr).toBe(0);
      expect(withDates.result.features).toEqual({ numeric: ["x"], categorical: [], text: [], dates: ["day"] });
      const rmse = withDates.result.metrics.rmse;
      const rmseNoDate = withoutDates.result.metrics.rmse;
      console.log(`sales: test RMSE ${rmse.toFixed(2)} with calendar features, ${rmseNoDate.toFixed(2)} without the date`);
      expect(rmse).toBeLessThan(0.6 * rmseNoDate);
      expect(meta(dir).dates).toEqual(["day"]);
    });

    it("sets aside the constant column and the e-mails, never the numeric column", () => {
      const { details, features, warnings } = withDates.result;
      expect(details.set_aside).toEqual([
        { column: "store", reason: "constant" },
        { column: "email", reason: "identifier" },
      ]);
      const used = [...features!.numeric, ...features!.categorical, ...features!.text, ...features!.dates];
      expect(used).not.toContain("store");
      expect(used).not.toContain("email");
      expect(used).toContain("x"); // all distinct values, yet a measurement
      expect(warnings.some((w) => /'email' is set aside/.test(w))).toBe(true);
      expect(meta(dir).features).toEqual(["day", "x"]);
    });

    it("serves predictions from date strings, ISO or not, and refuses what is no date", async () => {
      const url = await serve(dir);
      const sample = withDates.result.sample!;
      const same = await postPredict<number>(url, { rows: sample.rows });
      expect(same.status).toBe(200);
      same.body.predictions!.forEach((p, i) => expect(p).toBeCloseTo(sample.predictions[i] as number, 6));
      // a Saturday and the Monday after: the weekend effect the model learnt from the dates
      const res = await postPredict<number>(url, { rows: [{ day: "2023-06-03", x: 0 }, { day: "2023-06-05T09:30:00Z", x: 0 }, { day: "06/05/2023", x: 0 }, { day: null, x: 0 }] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const [saturday, monday, mondayUs] = res.body.predictions!;
      expect(saturday - monday).toBeGreaterThan(15);
      expect(mondayUs).toBeCloseTo(monday, 6);
      const bad = await postPredict(url, { rows: [{ day: "next tuesday-ish", x: 0 }] });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/column 'day' expects a date/);
    });
  });

  describe.sequential("a rare positive class: the decision threshold", () => {
    const rows = rareRows(3000, 5);
    const cut = Math.floor(rows.length * 0.85);
    const train = tmp.write("rare.csv", csv(RARE_HEADER, rows.slice(0, cut)));
    const testFeatures = tmp.write("rare-test-features.csv", csv(RARE_HEADER.slice(0, -1), rows.slice(cut).map((r) => r.slice(0, -1))));
    const testLabelled = tmp.write("rare-test.csv", csv(RARE_HEADER, rows.slice(cut)));
    const truth = rows.slice(cut).map((r) => String(r.at(-1)));
    const base: HarnessSpecInput = { mode: "train", task: "classification", data: "rare.csv", target: "churn", metric: "f1", plots: false };
    let dir: string;
    let byF1: HarnessRun;
    let byAccuracy: HarnessRun;
    beforeAll(async () => {
      dir = harnessWorkspace(join(tmp.dir, "rare-f1"), EXAMPLE, { "rare.csv": train, "test.csv": testFeatures });
      const other = harnessWorkspace(join(tmp.dir, "rare-accuracy"), EXAMPLE, { "rare.csv": train, "test.csv": testFeatures });
      [byF1, byAccuracy] = await Promise.all([
        runHarness(dir, { ...base, holdout: { features: "test.csv" } }),
        runHarness(other, { ...base, metric: "accuracy", holdout: { features: "test.csv" } }),
      ]);
    }, 300_000);

    it("chooses a threshold on the validation rows for F1 and saves it with the model", () => {
      expect(byF1.code, byF1.stderr).toBe(0);
      const t = byF1.result.threshold!;
      expect(t).not.toBeNull();
      expect(t.metric).toBe("f1");
      expect(t.value).not.toBe(0.5);
      expect(t.valid_chosen).toBeGreaterThan(t.valid_default);
      expect(meta(dir).threshold).toEqual({ value: t.value, positive_class: "yes", metric: "f1" });
      expect(byAccuracy.code, byAccuracy.stderr).toBe(0);
      expect(byAccuracy.result.threshold).toBeNull();
      expect(meta(join(tmp.dir, "rare-accuracy")).threshold).toBeUndefined();
    });

    it("predicts the held-out rows at the threshold, and the scorer's F1 is theirs", async () => {
      const t = byF1.result.threshold!;
      const written = JSON.parse(readFileSync(join(dir, "out", "predictions.json"), "utf8")) as { predictions: string[]; proba: number[][]; proba_classes: string[] };
      const col = written.proba_classes.indexOf("yes");
      expect(written.predictions).toEqual(written.proba.map((p) => (p[col] >= t.value ? "yes" : "no")));
      const scoreDir = harnessWorkspace(join(tmp.dir, "rare-score"), "", { "test.csv": testLabelled, "predictions.json": join(dir, "out", "predictions.json") });
      const scored = await runHarness(scoreDir, { mode: "score", task: "classification", data: "test.csv", target: "churn", metric: "f1", plots: false, score: { predictions: "predictions.json" } });
      expect(scored.code, scored.stderr).toBe(0);
      const atThreshold = f1(truth, written.predictions, "yes");
      const atHalf = f1(truth, written.proba.map((p) => (p[col] >= 0.5 ? "yes" : "no")), "yes");
      expect(scored.result.metrics.f1).toBeCloseTo(atThreshold, 9);
      console.log(`rare class (${truth.filter((v) => v === "yes").length} positives in ${truth.length} test rows): test F1 ${atHalf.toFixed(3)} at 0.5, ${atThreshold.toFixed(3)} at the chosen ${t.value.toFixed(3)} (validation ${t.valid_default.toFixed(3)} -> ${t.valid_chosen.toFixed(3)})`);
    }, 120_000);

    it("serves the same decisions as the harness", async () => {
      const url = await serve(dir);
      const written = JSON.parse(readFileSync(join(dir, "out", "predictions.json"), "utf8")) as { predictions: string[] };
      const features = rows.slice(cut).map((r) => Object.fromEntries(RARE_HEADER.slice(0, -1).map((h, i) => [h, r[i]])));
      const res = await postPredict<string>(url, { rows: features });
      expect(res.status).toBe(200);
      expect(res.body.predictions).toEqual(written.predictions);
      const sample = byF1.result.sample!;
      expect((await postPredict<string>(url, { rows: sample.rows })).body.predictions).toEqual(sample.predictions);
    });

    it("for precision with a goal, picks a threshold whose validation precision reaches it", async () => {
      const goal = 0.6;
      const run = await runHarness(harnessWorkspace(join(tmp.dir, "rare-precision"), EXAMPLE, { "rare.csv": train }), {
        ...base,
        metric: "precision",
        metric_goal: goal,
      });
      expect(run.code, run.stderr).toBe(0);
      const t = run.result.threshold!;
      expect(t).toMatchObject({ metric: "precision" });
      expect(t.valid_default).toBeLessThan(goal);
      expect(t.valid_chosen).toBeGreaterThanOrEqual(goal);
      expect(t.value).toBeGreaterThan(0.5);
    }, 180_000);

    it("chooses the threshold by the rules, from validation scores alone", () => {
      // threshold.choose on scores where the rules have one answer each
      const code = [
        "import json, threshold as T",
        "s = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]",
        "y = [1, 1, 0, 1, 0, 1, 0, 0]",
        "print(json.dumps([T.choose(s, y, 'f1'), T.choose(s, y, 'precision', 0.75), T.choose(s, y, 'recall', 1.0), T.choose(s, y, 'precision', 1.01), T.choose(s, [0] * 8, 'f1')]))",
      ].join("\n");
      const out = spawnSync(PYTHON, ["-B", "-c", code], { cwd: fileURLToPath(new URL("../../runners/python/", import.meta.url)), encoding: "utf8" });
      expect(out.status, out.stderr).toBe(0);
      const [byF1, byPrecision, byRecall, unreachable, noPositives] = JSON.parse(out.stdout) as [number, string, number][];
      // 6 predicted positives, 4 right: F1 0.8, between the scores 0.3 and 0.2
      expect(byF1[0]).toBeCloseTo(0.25, 9);
      expect(byF1.slice(1)).toEqual(["f1", 0.8]);
      expect(byPrecision.slice(1)).toEqual(["precision", 0.75]); // the lowest threshold at precision 3/4
      expect(byPrecision[0]).toBeCloseTo(0.5, 9);
      expect(byRecall.slice(1)).toEqual(["recall", 1]); // the highest threshold still finding every positive
      expect(byRecall[0]).toBeCloseTo(0.25, 9);
      expect(unreachable[1]).toBe("f0.5"); // no threshold reaches the goal: the best F0.5
      expect(noPositives).toBeNull();
    });
  });

  describe("XGBoost and class weights", () => {
    const loans = tmp.write("loans.csv", loansCsv(700, 21));

    it("trains XGBoost on Y/N labels from the name plans use, predicts Y/N and reloads in the server", async () => {
      const dir = harnessWorkspace(join(tmp.dir, "xgb"), XGB_SOLUTION, { "loans.csv": loans });
      const run = await runHarness(dir, { mode: "train", task: "classification", data: "loans.csv", target: "Loan_Status", metric: "accuracy", plots: false });
      expect(run.code, run.stderr).toBe(0);
      expect(run.result.classes).toEqual(["N", "Y"]);
      expect(run.result.metrics.accuracy).toBeGreaterThan(0.75);
      const sample = run.result.sample!;
      expect(sample.predictions.every((p) => p === "Y" || p === "N")).toBe(true);
      const url = await serve(dir);
      const res = await postPredict<string>(url, { rows: sample.rows });
      expect(res.body.predictions).toEqual(sample.predictions);
    }, 180_000);

    it("searches class_weight for logistic regression, gradient boosting and XGBoost", async () => {
      const dir = harnessWorkspace(join(tmp.dir, "weights"), EXAMPLE, { "loans.csv": loans });
      const weighted = { class_weight: { type: "choice" as const, values: ["balanced"] } };
      const run = await runHarness(dir, {
        mode: "search",
        task: "classification",
        data: "loans.csv",
        target: "Loan_Status",
        metric: "f1",
        positive_class: "N",
        search: {
          n_iter: 2,
          budget_s: 300,
          sampler: "random",
          candidates: [
            { id: "lr", estimator: "sklearn.linear_model.LogisticRegression", preprocess: { scale: true }, params: { max_iter: 500 }, space: weighted },
            { id: "hgb", estimator: "sklearn.ensemble.HistGradientBoostingClassifier", preprocess: { encode: "ordinal" }, params: { max_iter: 40 }, space: weighted },
            { id: "xgb", estimator: "xgboost.XGBClassifier", preprocess: { encode: "ordinal" }, params: { n_estimators: 40 }, space: weighted },
            { id: "knn", estimator: "sklearn.neighbors.KNeighborsClassifier", preprocess: { scale: true }, space: weighted },
          ],
        },
      });
      expect(run.code, run.stderr).toBe(0);
      const byId = Object.fromEntries(run.result.search!.candidates.map((c) => [c.id, c]));
      for (const id of ["lr", "hgb", "xgb"]) {
        expect(byId[id].trials.map((t) => t.params.class_weight)).toEqual([undefined, "balanced"]);
        expect(byId[id].trials.every((t) => t.score !== null && t.error === undefined), JSON.stringify(byId[id])).toBe(true);
      }
      // a model without class weights is searched without them rather than failing
      expect(byId.knn.trials).toHaveLength(1);
      expect(byId.knn.best_score).not.toBeNull();
    }, 300_000);
  });

  describe("Optuna", () => {
    const rows = rareRows(1500, 9);
    const data = tmp.write("optuna.csv", csv(RARE_HEADER, rows));
    const spec = (sampler: "tpe" | "random"): HarnessSpecInput => ({
      mode: "search",
      task: "classification",
      data: "optuna.csv",
      target: "churn",
      metric: "f1",
      search: {
        n_iter: 12,
        budget_s: 300,
        cv_folds: 3,
        sampler,
        candidates: [
          {
            id: "lr",
            estimator: "sklearn.linear_model.LogisticRegression",
            preprocess: { scale: true },
            params: { max_iter: 500 },
            // tiny C predicts no positive at all (F1 0): a region the pruner should stop early
            space: { C: { type: "log", low: 1e-7, high: 100 }, class_weight: { type: "choice", values: [null, "balanced"] } },
          },
        ],
      },
    });

    it("searches with TPE, defaults first, and prunes trials from the bad region", async () => {
      const [tpe, random] = await Promise.all([
        runHarness(harnessWorkspace(join(tmp.dir, "tpe"), EXAMPLE, { "optuna.csv": data }), spec("tpe")),
        runHarness(harnessWorkspace(join(tmp.dir, "random"), EXAMPLE, { "optuna.csv": data }), spec("random")),
      ]);
      expect(tpe.code, tpe.stderr).toBe(0);
      expect(random.code, random.stderr).toBe(0);
      // the result file, pruned trials included, is what the contract describes
      const raw = JSON.parse(readFileSync(join(tmp.dir, "tpe", "out", "result.json"), "utf8"));
      expect(HarnessResult.safeParse(raw).success).toBe(true);

      const search = tpe.result.search!;
      expect(search.sampler).toBe("tpe");
      const lr = search.candidates[0];
      expect(lr.trials.length).toBeGreaterThan(6);
      expect(lr.trials[0].params).toEqual({ max_iter: 500 });
      expect(lr.trials[0].pruned).toBeUndefined();
      expect(lr.trials.slice(1).every((t) => typeof t.params.C === "number" && t.params.max_iter === 500)).toBe(true);
      expect(lr.trials.some((t) => t.params.class_weight === null)).toBe(true);
      const pruned = lr.trials.filter((t) => t.pruned);
      expect(pruned.length).toBeGreaterThan(0);
      const complete = lr.trials.filter((t) => !t.pruned && t.score !== null).map((t) => t.score!);
      expect(lr.best_score).toBe(Math.max(...complete));

      expect(random.result.search!.sampler).toBe("random");
      const r = random.result.search!.candidates[0];
      expect(r.trials).toHaveLength(12);
      expect(r.trials.some((t) => t.pruned)).toBe(false);
      console.log(`optuna: best CV F1 ${lr.best_score!.toFixed(3)} with TPE (${pruned.length} of ${lr.trials.length} trials pruned), ${r.best_score!.toFixed(3)} with random search`);
    }, 300_000);
  });
});
