import { describe, expect, it } from "vitest";
import { renderFile, renderPlans, renderQuestion, renderReport, renderStatusFull, renderStatusLine, renderTable } from "../../adapters/shell/render.js";
import type { ColumnProfile, DataProfile, Plan } from "../../graphs/automl/agents/types.js";
import { DATA_LINE_MAX, dataCard } from "../../graphs/automl/data-card.js";
import { renderMarkdown } from "../../graphs/automl/report.js";
import { trainingLines } from "../../graphs/automl/report-training.js";
import type { Report, State } from "../../graphs/automl/state.js";
import { HarnessResult } from "../../runners/contract.js";
import { makeRequirements } from "../helpers/requirements.js";
import { StatusTracker, progressBar, type StatusView } from "../../src/conversation/status.js";

const plan = (id: string, title: string, preprocessing: string[] = []): Plan => ({
  id,
  title,
  approach: "ensemble",
  summary: `${title}: a solid baseline`,
  preprocessing,
  models: [{ family: "random_forest", label: "Random forest", estimator: "RandomForestClassifier" }],
  training: "random search with 3-fold CV",
  inference: "batch",
  rationale: `${title} suits tabular data`,
  notices: [],
});

const baseReport = (over: Partial<Report> = {}): Report => ({
  status: "deployed",
  llm: null,
  title: "Banana quality classifier",
  summary: ["Trained a random forest.", "All constraints are met."],
  metrics: { accuracy: 0.9712, f1: 0.95 },
  constraints: [],
  endpoint: null,
  curl: null,
  artifacts: { model: null, code: null, report: null, plots: [] },
  notices: [],
  ...over,
});

const view = (over: Partial<StatusView> = {}): StatusView => ({ stages: [], current: null, progress: null, metrics: {}, notices: [], ...over });

describe("renderQuestion", () => {
  it("numbers the choices and says how to answer", () => {
    const text = renderQuestion({
      slot: "target",
      text: "Which column should I predict?",
      choices: [
        { label: "quality", value: "quality" },
        { label: "ripeness", value: "ripeness" },
      ],
      allowFreeText: true,
    });
    expect(text.split("\n")).toEqual(["Which column should I predict?", "  1) quality", "  2) ripeness", "Type a number, or type your answer."]);
  });

  it("asks only for a number when free text is not allowed", () => {
    const text = renderQuestion({ slot: "task", text: "Which task?", choices: [{ label: "classification", value: "c" }], allowFreeText: false });
    expect(text.split("\n").at(-1)).toBe("Type a number.");
  });

  it("shows just the text of an open question", () => {
    expect(renderQuestion({ slot: "dataset", text: "Which data file?", choices: [], allowFreeText: true })).toBe("Which data file?");
  });
});

describe("renderPlans", () => {
  const plans = [plan("p1", "Forest", ["impute medians", "one-hot encode"]), plan("p2", "Boosting"), plan("p3", "Linear")];

  it("lists every plan with its number and the reply instructions", () => {
    const text = renderPlans(plans, ["XGBoost is not installed; using HistGradientBoosting."]);
    expect(text.startsWith("I have 3 plans:")).toBe(true);
    expect(text).toContain("Plan 1 — Forest");
    expect(text).toContain("Plan 2 — Boosting");
    expect(text).toContain("Plan 3 — Linear");
    expect(text).toContain("  Data: impute medians; one-hot encode");
    expect(text).toContain("  Training: random search with 3-fold CV");
    expect(text).toContain("  Why: Forest suits tabular data");
    expect(text).toContain("Note: XGBoost is not installed; using HistGradientBoosting.");
    expect(text).toContain("1-3 to build one plan");
    expect(text).toMatch(/Reply a to approve/);
    expect(text).not.toContain("Decision:");
    // Plans keep their order.
    expect(text.indexOf("Plan 1")).toBeLessThan(text.indexOf("Plan 2"));
    expect(text.indexOf("Plan 2")).toBeLessThan(text.indexOf("Plan 3"));
  });

  it("uses the singular for one plan", () => {
    expect(renderPlans([plans[0]], []).split("\n")[0]).toBe("I have 1 plan:");
  });

  it("states the reading first, on one line, before the plans", () => {
    const text = renderPlans(plans, [], undefined, "I read: predict *bold* <@U123> `x`\u001b[2J\nSurvived · ROC AUC > 0.8");
    const lines = text.split("\n");
    expect(lines[0]).toBe("I read: predict *bold* <@U123> `x` [2J Survived · ROC AUC > 0.8");
    expect(lines.slice(1, 3)).toEqual(["", "I have 3 plans:"]);
  });

  it("puts the data section after the reading, each line on its own line, control characters made spaces", () => {
    const data = ["Data: loans.csv · 614 rows × 13 columns", "Columns: numbers *a*, <!channel>\u001b[2J\nb · target `y`"];
    const lines = renderPlans(plans, [], undefined, "I read: predict y", data).split("\n");
    expect(lines.slice(0, 5)).toEqual(["I read: predict y", data[0], "Columns: numbers *a*, <!channel> [2J b · target `y`", "", "I have 3 plans:"]);
    // without a reading the data section still comes first
    expect(renderPlans(plans, [], undefined, undefined, data.slice(0, 1)).split("\n").slice(0, 3)).toEqual([data[0], "", "I have 3 plans:"]);
  });

  it("shows the decision instead of the instructions once decided", () => {
    const text = renderPlans(plans, [], { by: "alice", text: "approved the best plan after evaluation" });
    expect(text.split("\n").at(-1)).toBe("Decision: alice approved the best plan after evaluation.");
    expect(text).not.toContain("Reply a to approve");
    expect(text).toContain("Plan 3 — Linear");
  });
});

describe("status rendering", () => {
  it("shows the stage label, a progress bar and validation metrics", () => {
    const line = renderStatusLine(
      view({ current: "train", progress: { label: "epochs", done: 5, total: 10 }, metrics: { train_loss: 0.2, valid_accuracy: 0.9123 } }),
    );
    expect(line).toBe(`Train ${progressBar(5, 10)} epochs · valid_accuracy 0.912`);
    expect(line).toContain("[##########----------] 5/10");
    expect(line).not.toContain("train_loss");
  });

  it("shows at most the last three metrics", () => {
    const line = renderStatusLine(view({ current: "execute", metrics: { valid_a: 1, valid_b: 2, valid_c: 3, test_d: 4 } }));
    expect(line).toBe("Evaluate plans · valid_b 2.000, valid_c 3.000, test_d 4.000");
  });

  it("says Working before any stage started", () => {
    expect(renderStatusLine(view())).toBe("Working");
  });

  it("renders the stage checklist with a mark per state", () => {
    const tracker = new StatusTracker();
    tracker.apply({ type: "stage", stage: "decompose", state: "start" });
    tracker.apply({ type: "stage", stage: "decompose", state: "done" });
    tracker.apply({ type: "stage", stage: "execute", state: "start" });
    tracker.apply({ type: "stage", stage: "verify_request", state: "failed" });
    // Stages come in pipeline order, not event order.
    expect(renderStatusFull(tracker.view())).toBe("[✗] Check the request  [✓] Decompose plans  […] Evaluate plans");
  });
});

describe("StatusTracker and progressBar", () => {
  it("folds events into a view and starts fresh metrics for each run", () => {
    const tracker = new StatusTracker();
    tracker.apply({ type: "stage", stage: "smoke", state: "start" });
    tracker.apply({ type: "progress", stage: "smoke", done: 1, total: 3 });
    tracker.apply({ type: "metric", name: "accuracy", value: 0.5, split: "valid" });
    tracker.apply({ type: "notice", text: "sampled 300 rows" });
    expect(tracker.view()).toMatchObject({ current: "smoke", progress: { label: "smoke", done: 1, total: 3 }, metrics: { valid_accuracy: 0.5 }, notices: ["sampled 300 rows"] });

    tracker.apply({ type: "stage", stage: "train", state: "start" });
    const v = tracker.view();
    expect(v.current).toBe("train");
    expect(v.progress).toBeNull();
    expect(v.metrics).toEqual({});
    expect(v.notices).toEqual(["sampled 300 rows"]);
  });

  it("hands out copies, so a posted view does not change later", () => {
    const tracker = new StatusTracker();
    tracker.apply({ type: "metric", name: "rmse", value: 1 });
    const before = tracker.view();
    tracker.apply({ type: "metric", name: "rmse", value: 2 });
    tracker.apply({ type: "notice", text: "later" });
    expect(before.metrics).toEqual({ rmse: 1 });
    expect(before.notices).toEqual([]);
  });

  it("clamps the bar and copes with an unknown total", () => {
    expect(progressBar(0, 4, 4)).toBe("[----] 0/4");
    expect(progressBar(4, 4, 4)).toBe("[####] 4/4");
    expect(progressBar(9, 4, 4)).toBe("[####] 9/4");
    expect(progressBar(-1, 4, 4)).toBe("[----] -1/4");
    expect(progressBar(3, 0, 4)).toBe("[----] 3/0");
  });
});

describe("renderReport", () => {
  it("shows the title, summary and a metric table", () => {
    const lines = renderReport(baseReport()).split("\n");
    expect(lines.slice(0, 3)).toEqual(["== Banana quality classifier ==", "Trained a random forest.", "All constraints are met."]);
    const i = lines.indexOf("Test-split metrics:");
    expect(i).toBeGreaterThan(0);
    expect(lines[i + 1]).toMatch(/^metric\s+value$/);
    expect(lines[i + 2]).toMatch(/^-+\s+-+$/);
    expect(lines[i + 3]).toMatch(/^accuracy\s+0\.971$/);
    expect(lines[i + 4]).toMatch(/^f1\s+0\.950$/);
  });

  it("marks each constraint as met, not met or not measured", () => {
    const text = renderReport(
      baseReport({
        constraints: [
          { name: "accuracy", op: ">=", target: 0.95, actual: 0.97, met: true },
          { name: "latency_ms", op: "<=", target: 5, actual: 12.5, met: false },
          { name: "model_size_mb", op: "<=", target: 50, actual: null, met: null },
        ],
      }),
    );
    const lines = text.split("\n");
    expect(lines).toContain("Constraints:");
    expect(lines.find((l) => l.startsWith("accuracy ") && l.includes(">= 0.95"))).toMatch(/0\.970\s+yes$/);
    expect(lines.find((l) => l.startsWith("latency_ms"))).toMatch(/<= 5\s+12\.500\s+NO$/);
    expect(lines.find((l) => l.startsWith("model_size_mb"))).toMatch(/<= 50\s+n\/a\s+not measured$/);
  });

  it("lists how the model was trained, one line each, after the constraints", () => {
    const training = ["Optuna TPE search: 23 trials (4 pruned) over 2 models; best: XGBoost max_depth=5", "Set aside by the harness: a\u001b[2J\nb (identifier)"];
    const lines = renderReport(baseReport({ training })).split("\n");
    const i = lines.indexOf("How it was trained:");
    expect(i).toBeGreaterThan(lines.indexOf("Test-split metrics:"));
    expect(lines.slice(i + 1, i + 3)).toEqual([`  ${training[0]}`, "  Set aside by the harness: a [2J b (identifier)"]);
    expect(renderReport(baseReport())).not.toContain("How it was trained");
  });

  it("shows the endpoint, and the curl example only while it is serving", () => {
    const endpoint = { url: "http://127.0.0.1:8123/predict", check: { ok: true, prediction: 1 }, serving: true };
    const curl = "curl -s http://127.0.0.1:8123/predict -d '{}'";
    const serving = renderReport(baseReport({ endpoint, curl }));
    expect(serving).toContain("Endpoint: http://127.0.0.1:8123/predict (serving; check ok)");
    expect(serving).toContain(`Try it: ${curl}`);

    const stopped = renderReport(baseReport({ endpoint: { ...endpoint, serving: false, check: { ok: false, prediction: null, error: "timeout" } }, curl }));
    expect(stopped).toContain("(stopped; check failed)");
    expect(stopped).not.toContain("Try it:");

    const none = renderReport(baseReport({ curl }));
    expect(none).not.toContain("Endpoint:");
    expect(none).not.toContain("Try it:");
  });

  it("lists artifacts and notes, and leaves out empty sections", () => {
    const text = renderReport(
      baseReport({
        metrics: {},
        artifacts: { model: "/w/model.joblib", code: "/w/train.py", report: null, plots: ["/w/confusion.png", "/w/importance.png"] },
        notices: ["XGBoost was not installed."],
      }),
    );
    const lines = text.split("\n");
    const i = lines.indexOf("Artifacts:");
    expect(lines.slice(i + 1, i + 5)).toEqual(["  model: /w/model.joblib", "  code: /w/train.py", "  plot: /w/confusion.png", "  plot: /w/importance.png"]);
    expect(lines.at(-1)).toBe("Note: XGBoost was not installed.");
    expect(text).not.toContain("report:");
    expect(text).not.toContain("Test-split metrics:");
    expect(text).not.toContain("Constraints:");

    const bare = renderReport(baseReport({ metrics: {} }));
    expect(bare).not.toContain("Artifacts:");
    expect(bare).not.toContain("Note:");
  });
});

describe("follow-ups in the terminal", () => {
  it("prints a table with a rule under its header, cells on one line, and its notes", () => {
    const text = renderTable(
      "This thread's models",
      ["name", "model", "accuracy"],
      [
        ["loans-1", "Random forest\u001b[2J\nx", "0.910"],
        ["loans-2", "Gradient boosting", "0.935", "extra cell"],
        ["loans-3", "y".repeat(100)],
      ],
      ["Type `undeploy <name>` to stop one."],
    );
    expect(text.split("\n")).toEqual([
      "This thread's models:",
      `name     model${" ".repeat(57)}accuracy`,
      `-------  ${"-".repeat(60)}  --------`,
      `loans-1  ${"Random forest [2J x".padEnd(60)}  0.910`,
      `loans-2  ${"Gradient boosting".padEnd(60)}  0.935`,
      `loans-3  ${"y".repeat(59)}…`,
      "Type `undeploy <name>` to stop one.",
    ]);
  });

  it("prints a file's lines and where the file is", () => {
    expect(renderFile("/w/out/new-predictions.csv", ["Scored 12 rows of new.csv.", "Predicted: Y 8, N\u001b]0;x\u0007 4."]).split("\n")).toEqual([
      "Scored 12 rows of new.csv.",
      "Predicted: Y 8, N ]0;x  4.",
      "File: /w/out/new-predictions.csv",
    ]);
  });

  it("adds the registered name, the comparison, the bundle and what can be typed next to the report", () => {
    const text = renderReport(
      baseReport({
        artifacts: { model: "/w/model.joblib", code: null, report: null, plots: [], bundle: "/w/loans-2-bundle.zip" },
        comparison: { header: ["model", "accuracy"], rows: [["loans-2 (this one)", "0.935"], ["loans-1", "0.910"]] },
      }),
      { model: "loans-2", followUps: ["explain", "compare", "undeploy"] },
    );
    const lines = text.split("\n");
    expect(lines).toContain("Registered as loans-2");
    const i = lines.indexOf("Compared with this thread's earlier models:");
    expect(lines.slice(i + 1, i + 5)).toEqual(["model               accuracy", "------------------  --------", "loans-2 (this one)  0.935", "loans-1             0.910"]);
    expect(lines).toContain("  bundle: /w/loans-2-bundle.zip");
    expect(lines.at(-1)).toBe("Next: type `explain`, `compare`, `undeploy`, `models`, or a file path to score, or a change to retrain with.");
    // Only the follow-ups offered; no hint, name or comparison when there are none.
    expect(renderReport(baseReport(), { followUps: ["explain"] }).split("\n").at(-1)).toBe("Next: type `explain`, `models`, or a file path to score, or a change to retrain with.");
    expect(renderReport(baseReport())).not.toMatch(/Next:|Registered as|Compared with|bundle:/);
  });
});

describe("report LLM usage", () => {
  it("shows calls, tokens and the estimated cost when the LLM engine ran", () => {
    const text = renderReport(baseReport({ llm: { calls: 11, prompt_tokens: 9000, completion_tokens: 1000, cost_usd: 0.0021 } }));
    expect(text).toMatch(/LLM: 11 calls, 10000 tokens, about \$0\.0021/);
    expect(renderReport(baseReport())).not.toMatch(/LLM:/);
  });
});

describe("data card", () => {
  const profile = (over: Partial<DataProfile> = {}): DataProfile => {
    const col = (name: string, kind: ColumnProfile["kind"], suspect: ColumnProfile["suspect"] = null): ColumnProfile => ({
      name,
      kind,
      missing: suspect === "mostly_missing" ? 500 : 0,
      unique: 10,
      examples: [],
      stats: null,
      top: [],
      suspect,
    });
    return {
      file: "/data/loans.csv",
      name: "loans.csv",
      bytes: 1000,
      rows: 614,
      sampled: false,
      delimiter: ";",
      duplicateRows: 0,
      candidateTargets: ["Loan_Status"],
      columns: [
        col("loan_id", "categorical", "id"),
        col("ApplicantIncome", "numeric"),
        col("LoanAmount", "numeric"),
        col("Term", "numeric"),
        col("Gender", "categorical"),
        col("Married", "boolean"),
        col("Date", "datetime"),
        col("Review", "text"),
        col("Notes", "categorical", "mostly_missing"),
        col("approved_code", "categorical"),
        col("Loan_Status", "categorical"),
      ],
      ...over,
    };
  };
  const source = (over: Partial<NonNullable<DataProfile["source"]>> = {}): NonNullable<DataProfile["source"]> => ({
    format: "csv",
    original: "loans.csv",
    encoding: "cp1252",
    delimiter: ";",
    decimal: ",",
    thousands: null,
    sheet: null,
    sheets: [],
    dates: [],
    ...over,
  });
  const req = makeRequirements({
    target: "Loan_Status",
    drop_columns: ["loan_id", "Notes", "approved_code"],
    leakage: [{ column: "approved_code", reason: '"approved_code" alone separates the classes of "Loan_Status" (ROC AUC 1.000)', kept: false }],
  });

  it("states the file, its size and how it was read, then each column as understood", () => {
    expect(dataCard(profile({ source: source() }), req)).toEqual([
      'Data: loans.csv · 614 rows × 11 columns · read as cp1252 (Latin-1), ";" separated, decimal comma',
      "Columns: numbers ApplicantIncome, LoanAmount (+1) · categories Gender, Married · dates Date → calendar features · text Review → words · " +
        "set aside loan_id (identifier), Notes (mostly empty), approved_code (predicts the target) · target Loan_Status",
    ]);
  });

  it("names the file, never a path on this host", () => {
    expect(dataCard(profile({ source: source({ original: "/srv/uploads/u1/Loans 2024.csv" }) }), req)[0]).toMatch(/^Data: Loans 2024\.csv · /);
  });

  it("names the sheet of a workbook and a date column the reader parsed, and says nothing of a reading it was not told", () => {
    const excel = dataCard(profile({ source: source({ format: "excel", encoding: null, delimiter: null, decimal: ".", sheet: "Loans", sheets: ["Loans", "Notes"], dates: [{ column: "Term", format: "%d/%m/%Y" }] }) }), req);
    expect(excel[0]).toBe('Data: loans.csv · 614 rows × 11 columns · read as Excel, sheet "Loans" (1 of 2)');
    const second = dataCard(profile({ source: source({ format: "excel", encoding: null, delimiter: null, decimal: ".", sheet: "Notes", sheets: ["Loans", "Notes"] }) }), req);
    expect(second[0]).toContain('sheet "Notes" (2 of 2)');
    expect(excel[1]).toContain("numbers ApplicantIncome, LoanAmount · ");
    expect(excel[1]).toContain("dates Term, Date → calendar features");
    expect(dataCard(profile(), req)[0]).toBe("Data: loans.csv · 614 rows × 11 columns");
    expect(dataCard(null, req)).toEqual([]);
  });

  it("keeps a leaking column the user kept in view, and names columns left out on request", () => {
    const lines = dataCard(profile(), { ...req, drop_columns: ["loan_id", "Term"], leakage: [{ column: "approved_code", reason: "predicts the target", kept: true }] });
    expect(lines[1]).toContain("set aside loan_id (identifier), Term (as asked)");
    expect(lines[1]).toContain("kept on request approved_code (predicts the target)");
  });

  it("states a forecast's time axis, its series and the numbers it reads", () => {
    const forecast = { time_column: "Date", id_column: "store", horizon: 7, horizon_phrase: null, frequency: "D", exogenous: ["Term"] };
    const lines = dataCard(profile(), makeRequirements({ task: "time_series_forecasting", target: "LoanAmount", metric: { name: "rmse", direction: "min" }, forecast }));
    expect(lines[1]).toBe("Columns: numbers Term · time Date · one series per store · target LoanAmount");
  });

  it("stays short and on one line whatever the column names", () => {
    const hostile = Array.from({ length: 300 }, (_, i) => ({ name: `<!channel> *b* @everyone \`x\`\n${"n".repeat(80)}${i}`, kind: "numeric" as const, missing: 0, unique: 9, examples: [], stats: null, top: [], suspect: null }));
    const lines = dataCard(profile({ columns: hostile }), makeRequirements({ target: null, task: "clustering", metric: { name: "silhouette", direction: "max" } }));
    expect(lines[1]).toMatch(/^Columns: numbers <!channel> \*b\* @everyone `x` n+…, .+ \(\+298\)$/);
    for (const line of lines) {
      expect(line.length).toBeLessThanOrEqual(DATA_LINE_MAX);
      expect(line).not.toMatch(/[\n\r\u0000-\u001f]/);
    }
  });
});

describe("how the model was trained", () => {
  const candidate = (id: string, params: Record<string, unknown>, score: number | null, trials: Array<{ pruned?: boolean }>) => ({
    id,
    estimator: "x",
    best_params: score === null ? null : params,
    best_score: score,
    trials: trials.map((t) => ({ params, score, fit_s: 0.1, ...t })),
  });
  const search = {
    metric: "f1",
    greater_is_better: true,
    sampler: "tpe",
    candidates: [
      candidate("plan-1:xgboost", { n_estimators: 300, learning_rate: 0.0812345, max_depth: 5 }, 0.71, [{}, {}, { pruned: true }]),
      candidate("plan-1:random_forest", { n_estimators: 100, max_depth: null }, 0.73, [{}, { pruned: true }]),
    ],
  };
  const state = (result: Record<string, unknown>) =>
    ({
      requirements: makeRequirements({ metric: { name: "f1", direction: "max" } }),
      runs: [{ kind: "search", result: HarnessResult.parse({ status: "ok", mode: "search", task: "classification", search }) }],
      executions: [{ planId: "plan-1", metric: "f1", dataFindings: [], candidates: [{ id: "plan-1:xgboost", label: "XGBoost", estimator: "xgboost.XGBClassifier", preprocess: { scale: false, encode: "ordinal" }, params: {}, score: 0.71, trials: 3 }] }],
      modelPlans: [],
      best: { candidateId: "plan-1:xgboost", result: HarnessResult.parse({ status: "ok", mode: "train", task: "classification", ...result }) },
    }) as unknown as State;

  it("states the search, the threshold, the date features and what the harness set aside, from the harness's result", () => {
    const lines = trainingLines(
      state({
        threshold: { value: 0.2312, metric: "f1", valid_default: 0.31, valid_chosen: 0.38 },
        features: { numeric: ["a"], categorical: [], dates: ["Date", "Signup"] },
        details: { set_aside: [{ column: "loan_id", reason: "identifier" }, { column: "Notes", reason: "mostly_empty" }] },
      }),
    );
    expect(lines).toEqual([
      // the built model is not the top scorer here (a requested one): "built", with only its searched settings
      "Optuna TPE search: 5 trials (2 pruned) over 2 models; built: XGBoost learning_rate=0.0812, max_depth=5",
      "Decision threshold 0.231, chosen on the validation split: F1 0.310 → 0.380",
      "Date columns turned into calendar features: Date, Signup",
      "Set aside by the harness: loan_id (identifier), Notes (mostly empty)",
    ]);
  });

  it("goes into report.md under its own heading, markdown in column names shown as written", () => {
    const md = renderMarkdown({ ...baseReport(), training: ["Set aside by the harness: *a*_b (identifier)"] }, { best: null, plans: [] } as unknown as State);
    expect(md).toContain("## How it was trained\n\n- Set aside by the harness: \\*a\\*\\_b \\(identifier\\)\n");
    expect(renderMarkdown(baseReport(), { best: null, plans: [] } as unknown as State)).not.toContain("How it was trained");
  });

  it("says nothing it was not told, and ignores a malformed set-aside list", () => {
    const lines = trainingLines(state({ details: { set_aside: "loan_id" } }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Optuna TPE search: /);
    expect(trainingLines({ ...state({}), runs: [], best: null } as unknown as State)).toEqual([]);
  });
});
