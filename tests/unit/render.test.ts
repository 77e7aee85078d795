import { describe, expect, it } from "vitest";
import { renderPlans, renderQuestion, renderReport, renderStatusFull, renderStatusLine } from "../../adapters/shell/render.js";
import type { Plan } from "../../graphs/automl/agents/types.js";
import type { Report } from "../../graphs/automl/state.js";
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

describe("report LLM usage", () => {
  it("shows calls, tokens and the estimated cost when the LLM engine ran", () => {
    const text = renderReport(baseReport({ llm: { calls: 11, prompt_tokens: 9000, completion_tokens: 1000, cost_usd: 0.0021 } }));
    expect(text).toMatch(/LLM: 11 calls, 10000 tokens, about \$0\.0021/);
    expect(renderReport(baseReport())).not.toMatch(/LLM:/);
  });
});
