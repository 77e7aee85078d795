import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requirePython, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

// A model the user names is the model built, whatever scored a little better, and the plan card and the
// result say how the data was read: the CLI end to end, offline engine, local runner.

const tmp = tempDir("threadml-requested-");
const cwd = tmp.dir;
// a short search: these tests are about the data and the notices, not the tuning
const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "2" };
const FIXTURES = join(import.meta.dirname, "../fixtures/requests/data2");

beforeAll(() => {
  requirePython();
  copyFileSync(join(FIXTURES, "loans.csv"), join(cwd, "loans.csv"));
});

describe("threadml run with a requested model", () => {
  it("states the data on the plan card, before anything trains", async () => {
    const { result } = await runCli(["--data", "loans.csv", "Predict Loan_Status with xgboost"], { cwd, env });
    expect(result.status).toBe("needs_input");
    expect(result.data[0]).toMatch(/^Data: loans\.csv · 62 rows × 13 columns\b/);
    expect(result.data[1]).toMatch(/^Columns: numbers ApplicantIncome, CoapplicantIncome \(\+3\) · categories Gender, Married \(\+4\) · /);
    expect(result.data[1]).toMatch(/ · set aside loan_id \(identifier\) · target Loan_Status$/);
  });

  it("builds XGBoost when asked for it, saying so when another family scored better", async () => {
    // a whole conversation with every plan searched: slow on a busy two-core machine
    const { result } = await runCli(["--yes", "--data", "loans.csv", "Predict Loan_Status with xgboost"], { cwd, env, timeoutMs: 230_000 });
    expect(result.status, result.error).toBe("deployed");
    // the search line names the model built; only its searched settings follow
    expect(result.training[0]).toMatch(/^(Optuna TPE|Random) search: \d+ trials? (\(\d+ pruned\) )?over \d+ models; (best|built): XGBoost\b/);
    expect(result.notices.some((n) => n.startsWith("You asked for XGBoost, but"))).toBe(false);
    const chosen = result.notices.find((n) => /^XGBoost (from plan-\d+ )?scored accuracy /.test(n));
    expect(chosen, result.notices.join("\n")).toBeDefined();
    // built over a better scorer: the note names it and its score; else XGBoost was the best anyway
    if (result.training[0].includes("built: XGBoost")) expect(chosen).toMatch(/^XGBoost scored accuracy [\d.]+ in cross-validation; .+ scored [\d.]+ but you asked for XGBoost\.$/);
    else expect(chosen).toMatch(/the best of \d+ candidate/);
  }, 240_000);
});
