import { describe, expect, it } from "vitest";
import { buildEmbeds, embedsLength } from "../../adapters/discord/embeds.js";
import { chunks } from "../../adapters/discord/limits.js";
import { render, renderFile, renderModal, renderPlans, renderQuestion, renderReport, renderStatus, renderTable, type Row } from "../../adapters/discord/render.js";
import type { Plan, Question } from "../../graphs/automl/agents/types.js";
import type { Report } from "../../graphs/automl/state.js";

// Discord renderings: within every Discord limit whatever the input, and with the controls each card needs.

const opts = { readsReplies: true };
type Control = { type: number; custom_id?: string; label?: string; style?: number; options?: Array<{ label: string; value: string }> };
const controls = (rows: Row[]) => rows.flatMap((r) => r.components as Control[]);

const question = (n: number, extra: Partial<Question> = {}): Question => ({
  slot: "target",
  text: "Which column of data.csv should I predict?",
  choices: Array.from({ length: n }, (_, i) => ({ label: `column_${i}`, value: `column_${i}` })),
  allowFreeText: true,
  ...extra,
});

const long = (n: number) => "word ".repeat(n).trim();

const plan = (i: number, size = 10): Plan => ({
  id: `p${i}`,
  title: `Family ${i}`,
  approach: "tree ensemble",
  summary: long(size),
  preprocessing: [long(size)],
  models: [{ family: "random_forest", label: "Random forest", estimator: "RandomForestClassifier" }],
  training: long(size),
  inference: "batch",
  rationale: long(size),
  notices: [],
});

function withinLimits(embeds: ReturnType<typeof buildEmbeds>): void {
  expect(embeds.length).toBeLessThanOrEqual(10);
  expect(embedsLength(embeds)).toBeLessThanOrEqual(6000);
  for (const e of embeds) {
    expect(e.title?.length ?? 0).toBeLessThanOrEqual(256);
    expect(e.description?.length ?? 0).toBeLessThanOrEqual(4096);
    for (const f of e.fields ?? []) {
      expect(f.value.length).toBeLessThanOrEqual(1024);
      expect(f.value.length).toBeGreaterThan(0);
      // Code blocks stay closed after any cut.
      expect((f.value.match(/```/g) ?? []).length % 2).toBe(0);
    }
  }
}

describe("question cards", () => {
  it("puts up to 20 choices on buttons, five to a row, with Type an answer and Cancel in a last row", () => {
    const m = renderQuestion(question(20), opts);
    expect(m.components).toHaveLength(5);
    for (const row of m.components) expect(row.components.length).toBeLessThanOrEqual(5);
    const all = controls(m.components);
    expect(all.slice(0, 20).map((c) => c.custom_id)).toEqual(Array.from({ length: 20 }, (_, i) => `tml:answer=column_${i}`));
    expect(all[0].style).toBe(1); // the likeliest choice stands out
    expect(all.slice(20).map((c) => c.label)).toEqual(["Type an answer…", "Cancel"]);
    expect(m.content).toMatch(/reply in this thread/);
  });

  it("switches to a select menu past 20 choices, capped at Discord's 25 options", () => {
    const m = renderQuestion(question(30), opts);
    const [select] = m.components[0].components as Control[];
    expect(select).toMatchObject({ type: 3, custom_id: "tml:pick" });
    expect(select.options).toHaveLength(25);
    expect(select.options?.[24]).toEqual({ label: "column_24", value: "=column_24" });
    expect(controls(m.components).map((c) => c.label).slice(1)).toEqual(["Type an answer…", "Cancel"]);
  });

  it("clips long labels to 80 characters and asks for a file, not a typed path, for the dataset", () => {
    const m = renderQuestion(question(1, { choices: [{ label: "x".repeat(200), value: "x" }] }), opts);
    expect(controls(m.components)[0].label).toHaveLength(80);
    const d = renderQuestion(question(0, { slot: "dataset", text: "Which dataset should I use?" }), { readsReplies: false });
    expect(controls(d.components).map((c) => c.label)).toEqual(["Cancel"]);
    expect(d.content).toMatch(/Attach the file \(a CSV, or a zip[^)]*\) to a message in this thread \(mention me in it\)/);
  });

});

describe("plan cards", () => {
  it("shows one embed per plan with Build plan N, Approve, Revise and Cancel, within limits however long the plans", () => {
    const m = renderPlans([1, 2, 3, 4, 5].map((i) => plan(i, 900)), ["XGBoost is not installed; using histogram gradient boosting."], undefined, opts);
    withinLimits(m.embeds);
    expect(m.embeds.map((e) => e.title)).toEqual(["Plan 1 — Family 1", "Plan 2 — Family 2", "Plan 3 — Family 3", "Plan 4 — Family 4", "Plan 5 — Family 5", "Notes"]);
    expect(controls(m.components).map((c) => c.custom_id)).toEqual([
      "tml:approve=p1",
      "tml:approve=p2",
      "tml:approve=p3",
      "tml:approve=p4",
      "tml:approve=p5",
      "tml:approve=best",
      "tml:revise",
      "tml:cancel",
    ]);
    expect(m.content).toMatch(/reply `a`, `1`-`5`/);
  });

  it("states the reading as the first line, with markdown, links and mentions in column names escaped", () => {
    const reading = "I read: predict *bold* <@U123> `x` · leaving out [a](http://evil), __b__\nc";
    const m = render({ kind: "plans", plans: [plan(1)], recommended: "best", notices: [], reading }, opts)[0];
    const [first, second] = m.content.split("\n");
    expect(first).toBe("I read: predict \\*bold\\* \\<@U123> \\`x\\` · leaving out \\[a](http://evil), \\_\\_b\\_\\_ c");
    expect(second).toMatch(/^I have 1 plan\./);
    const decided = renderPlans([plan(1)], [], { by: "123", text: "approved plan 1 (Family 1)" }, opts, "I read: predict y");
    expect(decided.content).toBe("I read: predict y\nDecision: <@123> approved plan 1 (Family 1).");
  });

  it("puts the data section under the reading, escaped, and keeps the instructions whatever its length", () => {
    const data = ["Data: loans.csv · 62 rows × 13 columns", "Columns: numbers @everyone, *bold* (+4) · categories <@&123>, `x` · target __y__"];
    const m = render({ kind: "plans", plans: [plan(1)], recommended: "best", notices: [], reading: "I read: predict y", data }, opts)[0];
    const lines = m.content.split("\n");
    expect(lines[0]).toBe("I read: predict y");
    expect(lines[1]).toBe(data[0]);
    expect(lines[2]).toBe("Columns: numbers @\u200beveryone, \\*bold\\* (+4) · categories \\<@&123>, \\`x\\` · target \\_\\_y\\_\\_");
    expect(lines[3]).toMatch(/^I have 1 plan\./);
    // pings are off (allowedMentions) and the escaped forms cannot render as mentions or markup
    expect(m.content).not.toMatch(/(?<!\\)<@&123>|@everyone|(?<!\\)\*bold/);
    const long = render({ kind: "plans", plans: [plan(1)], recommended: "best", notices: [], reading: "r".repeat(1500), data: ["d".repeat(600), "c".repeat(600)] }, opts)[0];
    expect(long.content.length).toBeLessThanOrEqual(2000);
    expect(long.content).toMatch(/\nI have 1 plan\. \*\*Approve\*\*/);
  });

  it("shows who decided what and loses its buttons once decided", () => {
    const m = renderPlans([plan(1)], [], { by: "123", text: "approved plan 1 (Family 1)" }, opts);
    expect(m.content).toBe("Decision: <@123> approved plan 1 (Family 1).");
    expect(m.components).toEqual([]);
  });
});

describe("status card", () => {
  const view = (state: "running" | "done" | "failed") => ({
    stages: [
      { stage: "execute" as const, state: "done" as const },
      { stage: "train" as const, state },
    ],
    current: "train" as const,
    progress: { label: "fit", done: 4, total: 7 },
    metrics: { search_score: 0.5, valid_accuracy: 0.971 },
    notices: ["a", "b", "c", "d"],
  });

  it("shows the stage, a progress bar, validation metrics first and a Cancel job button while running", () => {
    const m = renderStatus(view("running"));
    const [e] = m.embeds;
    expect(e.title).toBe("Train");
    expect(e.description).toContain("`[###########---------] 4/7` fit");
    expect(e.description).toContain("✓ Evaluate plans  ▶ Train");
    expect(e.fields?.map((f) => f.name)).toEqual(["valid_accuracy", "search_score", "Notes"]);
    expect(e.fields?.at(-1)?.value).toBe("b\nc\nd");
    expect(controls(m.components)).toMatchObject([{ custom_id: "tml:stop", label: "Cancel job" }]);
  });

  it("has no button once nothing runs", () => {
    expect(renderStatus(view("done")).components).toEqual([]);
    expect(renderStatus(view("failed")).embeds[0].color).toBe(0xda3633);
  });
});

describe("report", () => {
  const report = (over: Partial<Report> = {}): Report => ({
    status: "deployed",
    title: "Model deployed",
    summary: ["Random forest, classification of Quality."],
    metrics: { accuracy: 0.9712, f1: 0.97 },
    constraints: [{ name: "accuracy", op: ">=", target: 0.95, actual: 0.9712, met: true }],
    endpoint: { url: "http://127.0.0.1:4000", check: { ok: true, prediction: ["Good"] }, serving: true },
    curl: `curl -s -X POST http://127.0.0.1:4000/predict -H 'Content-Type: application/json' -d '{"rows":[{"a":1}]}'`,
    artifacts: { model: "/runs/r1/model.joblib", code: "/runs/r1/solution.py", report: "/runs/r1/report.md", plots: ["/runs/r1/confusion matrix.png", "/runs/r1/gone.png", "/runs/r1/huge.png"] },
    notices: [],
    llm: null,
    ...over,
  });
  const sizes: Record<string, number | null> = { "/runs/r1/confusion matrix.png": 20_000, "/runs/r1/gone.png": null, "/runs/r1/huge.png": 50 * 1048576, "/runs/r1/report.md": 900 };
  const size = (p: string) => sizes[p] ?? null;

  it("has the metrics and constraints tables, the endpoint, curl, and plots as attachments", () => {
    const m = renderReport(report(), size);
    withinLimits(m.embeds);
    const [main, tryIt] = m.embeds;
    const field = (name: string) => main.fields?.find((f) => f.name === name)?.value;
    expect(field("Test-split metrics")).toBe("```\nmetric    value\naccuracy  0.971\nf1        0.970\n```");
    expect(field("Constraints")).toContain("accuracy    >= 0.95  0.971   yes");
    expect(field("Endpoint")).toBe("http://127.0.0.1:4000 (serving; check ok)");
    expect(tryIt).toMatchObject({ title: "Try it", description: expect.stringContaining("```sh\ncurl -s -X POST http://127.0.0.1:4000/predict") });
    expect(m.files).toEqual([
      { attachment: "/runs/r1/confusion matrix.png", name: "confusion_matrix.png" },
      { attachment: "/runs/r1/report.md", name: "report.md" },
    ]);
    expect(main.image).toEqual({ url: "attachment://confusion_matrix.png" });
    expect(field("Notes")).toBe("• Not attached: gone.png (missing), huge.png (too large to attach).");
  });

  it("leaves out curl when the server is stopped, and keeps within ten files", () => {
    const plots = Array.from({ length: 12 }, (_, i) => `/p/plot${i}.png`);
    const m = renderReport(report({ endpoint: { url: "http://x", check: { ok: true, prediction: null }, serving: false }, artifacts: { model: null, code: null, report: null, plots } }), () => 10);
    expect(m.embeds).toHaveLength(1);
    expect(m.files).toHaveLength(10);
    expect(m.embeds[0].fields?.find((f) => f.name === "Notes")?.value).toMatch(/plot10\.png \(attachment limit\), plot11\.png \(attachment limit\)/);
  });

  it("stays within the embed limits with huge summaries, tables and curl", () => {
    const metrics = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`metric_${i}`, i]));
    const m = renderReport(report({ summary: [long(3000)], metrics, curl: `curl ${"x".repeat(8000)}`, notices: [long(2000)], training: [long(2000)] }), size);
    withinLimits(m.embeds);
  });

  it("says how the model was trained, with column names escaped", () => {
    const training = ["Decision threshold 0.23, chosen on the validation split: F1 0.31 → 0.38", "Set aside by the harness: *a* (identifier), <@123> (empty)"];
    const m = renderReport(report({ training }), size);
    const value = m.embeds[0].fields?.find((f) => f.name === "How it was trained")?.value;
    expect(value).toBe("• Decision threshold 0.23, chosen on the validation split: F1 0.31 → 0.38\n• Set aside by the harness: \\*a\\* (identifier), \\<@123> (empty)");
    expect(renderReport(report(), size).embeds[0].fields?.some((f) => f.name === "How it was trained")).toBe(false);
  });
});

describe("follow-ups", () => {
  const report: Report = {
    status: "deployed",
    title: "Model deployed",
    summary: ["Gradient boosting, classification of Loan_Status."],
    metrics: { accuracy: 0.935 },
    constraints: [],
    endpoint: { url: "http://127.0.0.1:4001", check: { ok: true, prediction: ["Y"] }, serving: true },
    curl: null,
    artifacts: { model: "/runs/r2/model.joblib", code: null, report: null, plots: ["/runs/r2/roc.png"], bundle: "/runs/r2/loans-2-bundle.zip" },
    comparison: { header: ["model", "accuracy", "status"], rows: [["loans-2 (this one)", "0.935", "serving"], ["loans-1 ```@everyone```", "0.910", "stopped"]] },
    notices: [],
    llm: null,
  };
  const sizes: Record<string, number> = { "/runs/r2/roc.png": 30_000, "/runs/r2/loans-2-bundle.zip": 2_000_000, "/out/p.csv": 5_000, "/out/big.csv": 20 * 1048576 };
  const size = (p: string) => sizes[p] ?? null;
  const codeBlocksClosed = (text: string) => expect((text.match(/```/g) ?? []).length % 2).toBe(0);

  it("renders a table as one code block under a bold title, notes after it", () => {
    const m = renderTable("This thread's models", ["name", "model", "accuracy"], [["loans-1", "Random forest", "0.910"], ["loans-2", "Gradient boosting", "0.935"]], ["Stop one with `undeploy <name>`."]);
    expect(m.content).toBe(
      "**This thread's models**\n```\nname     model              accuracy\nloans-1  Random forest      0.910\nloans-2  Gradient boosting  0.935\n```\nStop one with \\`undeploy \\<name>\\`.",
    );
    expect(render({ kind: "table", title: "T", header: ["a"], rows: [["1"]] }, opts)).toEqual([renderTable("T", ["a"], [["1"]])]);
  });

  it("keeps hostile cells on one line inside the block, and a long table within 2000 characters", () => {
    const hostile = renderTable("Models @everyone", ["name", "v"], [["a ```\n@here <@1> **b**", "1"]]);
    codeBlocksClosed(hostile.content);
    const lines = hostile.content.split("\n");
    expect(lines[0]).toBe("**Models @\u200beveryone**");
    expect(lines).toHaveLength(5);
    expect(lines[3]).toBe("a `\u200b`` @here <@1> **b**  1");
    const rows = Array.from({ length: 500 }, (_, i) => [`model-${i}`, "x".repeat(70), "0.9"]);
    const long = renderTable("All", ["name", "description", "score"], rows, ["n".repeat(3000)]);
    expect(long.content.length).toBeLessThanOrEqual(2000);
    codeBlocksClosed(long.content);
    const shown = long.content.split("\n").filter((l) => l.startsWith("model-")).length;
    expect(shown).toBeGreaterThan(10);
    expect(long.content).toContain(`… ${500 - shown} more rows\n\`\`\``);
    // cells are cut to 40 characters
    expect(long.content).toContain(`model-0    ${"x".repeat(39)}…  0.9`);
  });

  it("posts a file with its lines as the message, escaped, the headline in bold", () => {
    const m = renderFile("/out/p.csv", "new loans-predictions.csv", ["Scored 12 rows of new_loans.csv with loans-1.", "Predicted: Y 8 (66.7%), <@&123> 4 (33.3%)."], size);
    expect(m.files).toEqual([{ attachment: "/out/p.csv", name: "new_loans-predictions.csv" }]);
    expect(m.content).toBe("**Scored 12 rows of new\\_loans.csv with loans-1.**\nPredicted: Y 8 (66.7%), \\<@&123> 4 (33.3%).");
    expect(render({ kind: "file", path: "/out/p.csv", name: "p.csv", lines: ["x"] }, { ...opts, fileSize: size })[0].files).toHaveLength(1);
  });

  it("names a file it cannot attach instead of failing the message", () => {
    const big = renderFile("/out/big.csv", "big.csv", ["Scored 9,000,000 rows."], size);
    expect(big.files).toEqual([]);
    expect(big.content).toBe("**Scored 9,000,000 rows.**\nI couldn't attach big.csv (20.0 MB, over the 8 MB a bot may attach); it is kept on the ThreadML host.");
    const gone = renderFile("/out/gone.csv", "gone.csv", ["l".repeat(5000)], size);
    expect(gone.content.length).toBeLessThanOrEqual(2000);
    expect(gone.content).toMatch(/I couldn't attach gone\.csv \(missing\)/);
  });

  it("shows the registered name, the comparison and follow-up buttons, and attaches the bundle first", () => {
    const m = renderReport(report, size, { model: "loans-2", followUps: ["explain", "compare", "undeploy"] });
    withinLimits(m.embeds);
    const field = (name: string) => m.embeds[0].fields?.find((f) => f.name === name)?.value;
    expect(field("Registered as")).toBe("`loans-2`");
    expect(field("Compared with this thread's earlier models")).toBe(
      "```\nmodel                    accuracy  status\nloans-2 (this one)       0.935     serving\nloans-1 `\u200b``@everyone`\u200b``  0.910     stopped\n```",
    );
    expect(m.files.map((f) => f.name)).toEqual(["loans-2-bundle.zip", "roc.png"]);
    expect(m.embeds[0].image).toEqual({ url: "attachment://roc.png" });
    expect(controls(m.components).map((c) => [c.custom_id, c.label])).toEqual([
      ["tml:followup:explain", "What matters?"],
      ["tml:followup:compare", "Compare models"],
      ["tml:followup:undeploy", "Stop serving"],
    ]);
    expect(m.components).toHaveLength(1);
    expect(controls(renderReport(report, size, { followUps: ["compare"] }).components).map((c) => c.custom_id)).toEqual(["tml:followup:compare"]);
    expect(renderReport(report, size).components).toEqual([]);
    const plain = renderReport({ ...report, comparison: null, artifacts: { ...report.artifacts, bundle: null } }, size);
    expect(plain.embeds[0].fields?.map((f) => f.name)).not.toContain("Compared with this thread's earlier models");
    expect(plain.files.map((f) => f.name)).toEqual(["roc.png"]);
  });

  it("keeps a hostile name in its code span and a long comparison within the field", () => {
    const rows = Array.from({ length: 300 }, (_, i) => [`m${i}`, "0.5", "stopped"]);
    const m = renderReport({ ...report, comparison: { header: ["model", "accuracy", "status"], rows } }, size, { model: "a`b\n<@1>" });
    withinLimits(m.embeds);
    expect(m.embeds[0].fields?.find((f) => f.name === "Registered as")?.value).toBe("`a\u02cbb <@1>`");
    expect(m.embeds[0].fields?.find((f) => f.name === "Compared with this thread's earlier models")?.value).toMatch(/… \d+ more rows\n```$/);
    const big = renderReport({ ...report, artifacts: { ...report.artifacts, bundle: "/runs/r2/huge.zip" } }, (p) => (p.endsWith("huge.zip") ? 90 * 1048576 : 10));
    expect(big.files.map((f) => f.name)).toEqual(["roc.png"]);
    expect(big.embeds[0].fields?.find((f) => f.name === "Notes")?.value).toContain("huge.zip (too large to attach)");
  });
});

describe("text and modals", () => {
  it("splits long text into messages of at most 2000 characters without losing any", () => {
    const text = Array.from({ length: 300 }, (_, i) => `line ${i} ${"z".repeat(20)}`).join("\n");
    const parts = render({ kind: "text", text }, opts);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.content.length).toBeLessThanOrEqual(2000);
    expect(parts.map((p) => p.content).join("\n")).toBe(text);
    expect(chunks("x".repeat(4500))).toEqual(["x".repeat(2000), "x".repeat(2000), "x".repeat(500)]);
  });

  it("builds modals within Discord's limits", () => {
    const answer = renderModal("answer", "q".repeat(300));
    expect(answer.title.length).toBeLessThanOrEqual(45);
    expect(answer.components).toHaveLength(1);
    expect(answer.components[0]).toMatchObject({ type: 18, description: expect.any(String), component: { type: 4, custom_id: "text", required: true } });
    expect((answer.components[0] as { description: string }).description.length).toBeLessThanOrEqual(100);
    expect(renderModal("revise").custom_id).toBe("tml:modal:revise");
  });
});
