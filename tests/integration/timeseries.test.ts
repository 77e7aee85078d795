import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeSeriesCsv } from "../helpers/datasets.js";
import { harnessWorkspace, postPredict, runHarness, startServe } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// Forecasting end to end: the harness's timeseries variant on a generated seasonal series (time-ordered
// split, direct and recursive forecasts, a seasonal-naive baseline, rolling-origin search), the model
// server's history-in / forecast-out endpoint, and the headless CLI from plain words to a checked endpoint.

const tmp = tempDir("threadml-ts-");
const cwd = tmp.dir;
const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "3" };
const servers: ChildProcess[] = [];

const HGB = [
  "from sklearn.ensemble import HistGradientBoostingRegressor",
  "from sklearn.pipeline import Pipeline",
  "def build(ctx):",
  "    assert ctx.horizon == 7 and ctx.season_length == 7, (ctx.horizon, ctx.season_length)",
  "    model = HistGradientBoostingRegressor(max_iter=80, learning_rate=0.1, max_leaf_nodes=15, random_state=ctx.seed)",
  "    return Pipeline([('pre', ctx.preprocessor(encode='ordinal')), ('model', model)])",
  "",
].join("\n");
const RIDGE = [
  "from sklearn.linear_model import Ridge",
  "from sklearn.pipeline import Pipeline",
  "def build(ctx):",
  "    return Pipeline([('pre', ctx.preprocessor(scale=True)), ('model', Ridge(alpha=1.0))])",
  "",
].join("\n");

beforeAll(() => {
  requirePython();
  writeSeriesCsv(join(cwd, "sales.csv"), { days: 300, seed: 11 });
});
afterAll(() => {
  for (const s of servers) s.kill("SIGTERM");
});

const workspace = (name: string, solution: string, data: Record<string, string> = { "sales.csv": join(cwd, "sales.csv") }) => harnessWorkspace(join(cwd, name), solution, data);
const serve = (dir: string) => startServe(dir, servers);
const post = (url: string, body: unknown) => postPredict<Record<string, unknown>>(url, body);

const base = { task: "regression", variant: "timeseries", data: "sales.csv", target: "sales", metric: "rmse" } as const;

describe("harness: the timeseries variant", () => {
  describe.sequential("a direct forecaster of two stores", () => {
    let dir: string;
    let run: Awaited<ReturnType<typeof runHarness>>;
    beforeAll(async () => {
      dir = workspace("direct", HGB);
      run = await runHarness(dir, { ...base, mode: "train", timeseries: { time_column: "date", id_column: "store", horizon: 7, exogenous: ["price"] } });
    });

    it("holds out the last blocks of every series and beats the seasonal-naive forecast", () => {
      expect(run.code, run.stderr).toBe(0);
      const { details, rows, metrics } = run.result;
      expect(details).toMatchObject({ series: 2, frequency: "D", horizon: 7, season_length: 7, strategy: "direct" });
      const blocks = details.test_blocks as number;
      expect(rows).toMatchObject({ valid: 2 * 7, test: 2 * 7 * blocks });
      for (const name of ["rmse", "mae", "mape", "smape", "baseline_rmse", "baseline_mae"]) expect(metrics[name]).toBeGreaterThan(0);
      expect(metrics.rmse).toBeLessThan(metrics.baseline_rmse);
      expect(metrics.mae).toBeLessThan(metrics.baseline_mae);
      expect(run.result.plots).toEqual(["out/plots/forecast.png"]);
      expect(readFileSync(join(dir, "out", "plots", "forecast.png")).subarray(1, 4).toString()).toBe("PNG");
    });

    it("forecasts past the end of the data when served, as the harness did for its sample", async () => {
      const sample = run.result.sample!;
      const request = sample.request as { history: Array<Record<string, unknown>>; horizon: number };
      expect(request.horizon).toBe(7);
      expect(Object.keys(request.history[0]).sort()).toEqual(["date", "price", "sales", "store"]);
      expect(sample.predictions).toHaveLength(2 * 7);
      const url = await serve(dir);
      const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: "ok", variant: "timeseries", horizon: 7, frequency: "D" });
      const answer = await post(url, request);
      expect(answer.status).toBe(200);
      expect(answer.body.predictions).toEqual(sample.predictions);
      const first = answer.body.predictions![0];
      expect(Object.keys(first).sort()).toEqual(["date", "sales", "store"]);
      const last = request.history.filter((r) => r.store === first.store).map((r) => String(r.date)).sort().pop()!;
      expect(String(first.date) > last).toBe(true);
      // fewer steps than trained, and one store alone
      const north = request.history.filter((r) => r.store === "north");
      const short = await post(url, { history: north, horizon: 3 });
      expect(short.body.predictions!.map((p) => p.store)).toEqual(["north", "north", "north"]);
    });

    it("answers bad histories with clear 400s", async () => {
      const url = await serve(dir);
      const request = run.result.sample!.request as { history: Array<Record<string, unknown>> };
      const cases: Array<[unknown, RegExp]> = [
        [{ history: request.history.slice(0, 3) }, /has 3 points; at least \d+ are needed/],
        [{ history: request.history, horizon: 30 }, /from 1 to 7/],
        [{ history: request.history.map(({ price: _p, ...r }) => r) }, /lacks price/],
        [{ rows: "x" }, /non-empty list/],
      ];
      for (const [body, error] of cases) {
        const res = await post(url, body);
        expect(res.status).toBe(400);
        expect(res.body.error).toMatch(error);
      }
    });
  });

  it("forecasts recursively one series counted in plain steps", async () => {
    const rows = ["t,level"];
    for (let i = 0; i < 160; i++) rows.push(`${i},${(50 + 0.1 * i + 8 * Math.sin((2 * Math.PI * i) / 12) + ((i * 7919) % 13) / 6.5).toFixed(3)}`);
    const file = tmp.write("steps.csv", rows.join("\n"));
    const dir = workspace("recursive", RIDGE, { "steps.csv": file });
    const run = await runHarness(dir, {
      ...base,
      data: "steps.csv",
      target: "level",
      metric: "mae",
      mode: "train",
      timeseries: { time_column: "t", horizon: 6, strategy: "recursive", season_length: 12 },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.result.details).toMatchObject({ series: 1, frequency: "step 1", strategy: "recursive", season_length: 12 });
    expect(run.result.metrics.mae).toBeLessThan(run.result.metrics.baseline_mae);
    const url = await serve(dir);
    const answer = await post(url, run.result.sample!.request);
    expect(answer.body.predictions).toEqual(run.result.sample!.predictions);
    expect(answer.body.predictions![0]).toMatchObject({ t: 160 });
  });

  it("searches with rolling-origin backtests, each candidate with its own strategy", async () => {
    const dir = workspace("search", HGB);
    const run = await runHarness(dir, {
      ...base,
      mode: "search",
      metric: "mae",
      timeseries: { time_column: "date", id_column: "store", horizon: 7 },
      search: {
        candidates: [
          { id: "hgb", estimator: "sklearn.ensemble.HistGradientBoostingRegressor", preprocess: { encode: "ordinal" }, params: { max_iter: 50 }, strategy: "direct" },
          { id: "ridge", estimator: "sklearn.linear_model.Ridge", preprocess: { scale: true }, params: {}, strategy: "recursive" },
        ],
        n_iter: 1,
        budget_s: 30,
      },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.result.search!.metric).toBe("mae");
    for (const c of run.result.search!.candidates) expect(c.best_score, c.error).toBeGreaterThan(0);
  });

  it("explains data it cannot forecast", async () => {
    const dir = workspace("bad", HGB);
    const cases: Array<[Partial<HarnessSpecInput>, RegExp]> = [
      [{ target: "store" }, /target 'store' is not numeric/],
      [{ timeseries: { time_column: "price", horizon: 7 } }, /the series misses \d+ of \d+ steps at frequency [\d.]+; its timestamps do not fit one grid/],
      [{ timeseries: { time_column: "date", id_column: "store", horizon: 120 } }, /needs at least \d+ points per series; the longest has 300/],
      [{ timeseries: { time_column: "when", horizon: 7 } }, /time_column 'when' is not a column/],
      [{ timeseries: { time_column: "store", horizon: 7 } }, /the time column 'store' holds no readable dates, times or numbers/],
    ];
    for (const [over, message] of cases) {
      const run = await runHarness(dir, { ...base, mode: "train", timeseries: { time_column: "date", id_column: "store", horizon: 7 }, ...over } as HarnessSpecInput);
      expect(run.code).toBe(1);
      expect(run.result.error).toMatchObject({ class: "value_error" });
      expect(run.result.error!.message).toMatch(message);
    }
  });
});

describe("threadml run: forecasting", () => {
  it("asks for the horizon when the request has none, then forecasts, checks and deploys", async () => {
    const asked = await runCli(["Forecast sales for each store in sales.csv"], { cwd, env });
    expect(asked.result.status).toBe("needs_input");
    expect(asked.result.questions![0]).toMatch(/How many steps ahead should I forecast\? The data is daily\./);

    const { result } = await runCli(["--yes", "--answer", "7", "Forecast sales for each store in sales.csv"], { cwd, env, timeoutMs: 200_000 });
    expect(result.status, result.error).toBe("deployed");
    const req = result.requirements as { task: string; target: string; forecast: Record<string, unknown> };
    expect(req.task).toBe("time_series_forecasting");
    expect(req.target).toBe("sales");
    expect(req.forecast).toMatchObject({ time_column: "date", id_column: "store", horizon: 7, exogenous: ["price"] });
    expect(result.metrics.rmse).toBeLessThan(result.metrics.baseline_rmse);
    expect(result.endpoint?.check.ok).toBe(true);
    expect(result.endpoint?.check.prediction).toMatchObject({ store: expect.any(String), sales: expect.any(Number) });
    expect(result.artifacts.plots.some((p) => p.endsWith("forecast.png"))).toBe(true);
    const code = readFileSync(result.artifacts.code!, "utf8");
    expect(code).toMatch(/Forecast: 7 steps ahead, (direct|recursive) strategy/);
    expect(existsSync(result.artifacts.model!)).toBe(true);
  });
});
