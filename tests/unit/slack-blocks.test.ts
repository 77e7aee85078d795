import { describe, expect, it } from "vitest";
import { render, renderFile, renderPlans, renderQuestion, renderReport, renderStatus, renderTable, reviseModal, type Rendered } from "../../adapters/slack/blocks.js";
import { ReviseMetadata } from "../../adapters/slack/payloads.js";
import type { Plan, Question } from "../../graphs/automl/agents/types.js";
import type { Report } from "../../graphs/automl/state.js";
import type { StatusView } from "../../src/conversation/status.js";
import { blockText, elements, type Block } from "../helpers/fake-slack.js";

const plan = (i: number, over: Partial<Plan> = {}): Plan => ({
  id: `plan-${i}`,
  title: `Model family ${i}`,
  approach: "ensemble",
  summary: `Summary ${i}`,
  preprocessing: ["scale numbers"],
  models: [{ family: "random_forest", label: "Random forest", estimator: "RandomForestClassifier" }],
  training: "3-fold CV",
  inference: "batch",
  rationale: "works on tables",
  notices: [],
  ...over,
});

const question = (n: number, over: Partial<Question> = {}): Question => ({
  slot: "target",
  text: "Which column should I predict?",
  choices: Array.from({ length: n }, (_, i) => ({ label: `column ${i}`, value: `c${i}` })),
  allowFreeText: true,
  ...over,
});

const report = (over: Partial<Report> = {}): Report => ({
  status: "deployed",
  title: "Model deployed",
  summary: ["Random forest; accuracy 0.97."],
  metrics: { accuracy: 0.97123, f1: 0.95 },
  constraints: [
    { name: "accuracy", op: ">=", target: 0.9, actual: 0.97, met: true },
    { name: "latency_ms", op: "<=", target: 5, actual: 9, met: false },
  ],
  endpoint: { url: "http://127.0.0.1:4000", check: { ok: true, prediction: ["Good"] }, serving: true },
  curl: "curl -s -X POST http://127.0.0.1:4000/predict -d '{\"rows\":[{\"a\":1}]}'",
  artifacts: { model: "/w/model.pkl", code: "/w/solution.py", report: "/w/report.md", plots: ["/w/confusion.png"] },
  notices: [],
  llm: null,
  ...over,
});

const blocks = (r: Rendered) => r.blocks as unknown as Block[];
const actionIds = (r: Rendered) => elements(blocks(r)).map((e) => e.action_id);

/** Slack's documented limits, checked on everything we render. */
function withinLimits(r: Rendered): void {
  expect(r.blocks.length).toBeLessThanOrEqual(50);
  for (const b of blocks(r)) {
    const text = (b.text as { text?: string } | undefined)?.text;
    if (b.type === "section" && text) expect(text.length).toBeLessThanOrEqual(3000);
    if (b.type === "header") expect(text!.length).toBeLessThanOrEqual(150);
  }
  for (const e of elements(blocks(r))) {
    if (e.text) expect(e.text.text.length).toBeLessThanOrEqual(75);
    if (e.value) expect(e.value.length).toBeLessThanOrEqual(2000);
  }
}

describe("Slack Block Kit rendering", () => {
  it("renders a question's choices as buttons with a free-text hint, and closes it when answered", () => {
    const open = renderQuestion(question(3));
    expect(actionIds(open)).toEqual(["threadml.answer.0", "threadml.answer.1", "threadml.answer.2"]);
    expect(elements(blocks(open)).map((e) => e.value)).toEqual(["c0", "c1", "c2"]);
    expect(blockText(blocks(open))).toMatch(/or reply in this thread/);
    expect(open.text).toMatch(/1\) column 0/);
    const answered = renderQuestion(question(3), true);
    expect(actionIds(answered)).toEqual([]);
    expect(blockText(blocks(answered))).toMatch(/Answered/);
  });

  it("switches to a menu for many choices and keeps labels within Slack's limits", () => {
    const many = renderQuestion(question(140, { allowFreeText: false }));
    const [menu] = elements(blocks(many));
    expect(menu).toMatchObject({ type: "static_select", action_id: "threadml.answer" });
    expect((menu.options as unknown[]).length).toBe(100);
    expect(blockText(blocks(many))).toMatch(/Click a choice\.$/m);
    const long = renderQuestion({ ...question(1), choices: [{ label: "x".repeat(200), value: "v" }] });
    withinLimits(long);
    expect(elements(blocks(long))[0].text!.text).toMatch(/…$/);
  });

  it("escapes mrkdwn in text that comes from data or models", () => {
    const r = renderQuestion({ ...question(0), text: "Predict <b> & <@U123>?" });
    expect(blockText(blocks(r))).toContain("Predict &lt;b&gt; &amp; &lt;@U123&gt;?");
  });

  it("renders plan cards with per-plan and card-level actions, and a decided card without any", () => {
    const plans = [plan(1), plan(2, { title: "Boosting <fast>" }), plan(3)];
    const open = renderPlans(plans, "plan-2", ["XGBoost is not installed"]);
    expect(actionIds(open)).toEqual(["threadml.approve.plan.1", "threadml.approve.plan.2", "threadml.approve.plan.3", "threadml.approve.best", "threadml.revise", "threadml.cancel"]);
    expect(elements(blocks(open)).find((e) => e.action_id === "threadml.approve.plan.2")?.value).toBe("plan-2");
    const text = blockText(blocks(open));
    expect(text).toMatch(/Plan 2 — Boosting &lt;fast&gt;\* \(recommended\)/);
    expect(text).toMatch(/Note: XGBoost is not installed/);
    expect(elements(blocks(open)).find((e) => e.action_id === "threadml.cancel")?.confirm).toBeTruthy();

    const decided = renderPlans(plans, "best", [], { by: "UALICE0001", text: "approved plan 2 (Boosting)" });
    expect(actionIds(decided)).toEqual([]);
    expect(blockText(blocks(decided))).toMatch(/Decision:\* <@UALICE0001> approved plan 2 \(Boosting\)\./);
    withinLimits(renderPlans(Array.from({ length: 5 }, (_, i) => plan(i, { summary: "s".repeat(5000) })), "best", ["n".repeat(4000)]));
  });

  it("puts the reading at the top of the plan card as plain text, so column names cannot format or mention", () => {
    const reading = "I read: predict *bold* <@U123> `x` · leaving out a & b";
    for (const decided of [undefined, { by: "UALICE0001", text: "approved the best plan after evaluation" }]) {
      const r = renderPlans([plan(1)], "best", [], decided, reading);
      const first = blocks(r)[0] as { type: string; text: { type: string; text: string; emoji?: boolean } };
      expect(first).toEqual({ type: "section", text: { type: "plain_text", text: reading, emoji: false } });
      // Nothing of it reaches a mrkdwn text unescaped, and the notification text has it escaped.
      const mrkdwn = JSON.stringify(blocks(r).slice(1));
      expect(mrkdwn).not.toContain("<@U123>");
      expect(r.text.endsWith("\nI read: predict *bold* &lt;@U123&gt; `x` · leaving out a &amp; b")).toBe(true);
    }
    expect(blocks(renderPlans([plan(1)], "best", []))[0]).toMatchObject({ type: "section", text: { type: "mrkdwn" } });
  });

  it("puts the data section under the reading as plain text, so hostile column names cannot mention or format", () => {
    const data = ["Data: loans.csv · 62 rows × 13 columns", "Columns: numbers <!channel>, *bold* (+4) · categories @everyone, `x` · target <@U123>"];
    for (const decided of [undefined, { by: "UALICE0001", text: "approved the best plan after evaluation" }]) {
      const r = renderPlans([plan(1)], "best", [], decided, "I read: predict y", data);
      expect(blocks(r)[1]).toEqual({
        type: "context",
        elements: data.map((text) => ({ type: "plain_text", text, emoji: false })),
      });
      // no mrkdwn text anywhere carries the names unescaped
      const mrkdwn = JSON.stringify(blocks(r).filter((b, i) => i > 1));
      for (const hostile of ["<!channel>", "<@U123>", "*bold*"]) expect(mrkdwn).not.toContain(hostile);
      expect(r.text).not.toContain("<!channel>");
    }
    // long lines are cut to a section's limit; with no reading the data still comes first
    const r = renderPlans([plan(1)], "best", [], undefined, undefined, ["x".repeat(5000)]);
    expect(blocks(r)[0]).toMatchObject({ type: "context" });
    expect((blocks(r)[0] as unknown as { elements: Array<{ text: string }> }).elements[0].text.length).toBeLessThanOrEqual(3000);
    withinLimits(r);
  });

  it("renders the status checklist, progress bar and metrics, with Cancel while a stage runs", () => {
    const view: StatusView = {
      stages: [
        { stage: "execute", state: "done" },
        { stage: "train", state: "running" },
      ],
      current: "train",
      progress: { label: "fit", done: 3, total: 10 },
      metrics: { train_seconds: 1.5, ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`valid_m${i}`, i / 10])) },
      notices: ["a", "b", "c", "d"],
    };
    const r = renderStatus(view);
    const text = blockText(blocks(r));
    expect(text).toMatch(/\*Train\* `\[######--------------\] 3\/10` fit/);
    expect(text).toMatch(/✅ Evaluate plans\n⏳ Train/);
    const fields = (blocks(r).find((b) => "fields" in b)!.fields as Array<{ text: string }>).map((f) => f.text);
    expect(fields).toHaveLength(10);
    expect(fields.every((f) => f.startsWith("*valid_"))).toBe(true);
    expect(text).not.toMatch(/Note: a/);
    expect(actionIds(r)).toEqual(["threadml.cancel"]);
    expect(actionIds(renderStatus(view, true))).toEqual([]);
    expect(actionIds(renderStatus({ ...view, stages: [{ stage: "train", state: "done" }] }))).toEqual([]);
  });

  it("renders the report: metrics and constraints tables, endpoint, curl and plots", () => {
    const r = renderReport(report());
    const text = blockText(blocks(r));
    expect(blocks(r)[0]).toMatchObject({ type: "header", text: { text: "Model deployed" } });
    expect(text).toMatch(/accuracy +0\.971/);
    expect(text).toMatch(/accuracy +&gt;= 0\.9 +0\.970 +✅ met/);
    expect(text).toMatch(/latency_ms +&lt;= 5 +9\.000 +❌ NOT met/);
    expect(text).toMatch(/Endpoint:\* http:\/\/127\.0\.0\.1:4000 \(serving; check ok/);
    expect(text).toMatch(/```curl -s -X POST/);
    expect(text).toMatch(/1 plot: attached below/);
    expect(r.text).toBe("Model deployed. Endpoint: http://127.0.0.1:4000");
    const stopped = blockText(blocks(renderReport(report({ endpoint: { url: "http://x", check: { ok: false, prediction: null }, serving: false } }))));
    expect(stopped).not.toMatch(/curl/);
    expect(stopped).toMatch(/stopped; check failed/);
    withinLimits(renderReport(report({ title: "t".repeat(400), summary: ["s".repeat(9000)] })));
  });

  it("reports how the model was trained as plain text, after a bold heading", () => {
    const training = ["Optuna TPE search: 23 trials (4 pruned) over 2 models", "Set aside by the harness: <!channel> (identifier), *x* (empty)"];
    const r = renderReport(report({ training }));
    const i = blocks(r).findIndex((b) => (b.text as { text?: string } | undefined)?.text === "*How it was trained*");
    expect(i).toBeGreaterThan(0);
    expect(blocks(r)[i + 1]).toEqual({ type: "section", text: { type: "plain_text", text: training.map((t) => `• ${t}`).join("\n"), emoji: false } });
    expect(JSON.stringify(blocks(r).filter((_, j) => j !== i + 1))).not.toContain("<!channel>");
    expect(blockText(blocks(renderReport(report())))).not.toContain("How it was trained");
    withinLimits(renderReport(report({ training: Array.from({ length: 40 }, () => "t".repeat(300)) })));
  });

  it("builds the revise modal within Slack's limits, carrying the thread in its metadata", () => {
    const modal = reviseModal({ channel: "C1", thread: "1.2", message: "1.3" });
    expect(modal.title.text.length).toBeLessThanOrEqual(24);
    expect(modal.callback_id).toBe("threadml.revise");
    expect(ReviseMetadata.parse(JSON.parse(modal.private_metadata!))).toEqual({ channel: "C1", thread: "1.2", message: "1.3" });
  });
});

describe("Slack follow-up rendering", () => {
  // Cells from data and the registry: markup, mentions, links, code fences and control characters.
  const hostile = ["<!channel> `rm` ```x```", "*bold* <@U123>\nsecond line\u0007", "<https://evil.example|click> & <#C1>"];
  const modelsTable = () =>
    renderTable(
      "This thread's models",
      ["name", "model", "accuracy", "status"],
      [
        ["loans-1", "Random forest", "0.910", "serving"],
        ["loans-2", "Gradient boosting", "0.935", "stopped"],
      ],
      ["`undeploy <name>` stops one."],
    );

  it("renders a table as a padded code block under a bold title, with notes under it", () => {
    const r = modelsTable();
    const [table, notes] = blocks(r) as Array<Block & { text?: { text: string }; elements?: Array<{ text: string }> }>;
    expect(table.text!.text).toBe(
      "*This thread's models*\n```name     model              accuracy  status\nloans-1  Random forest      0.910     serving\nloans-2  Gradient boosting  0.935     stopped```",
    );
    expect(notes).toMatchObject({ type: "context", elements: [{ type: "mrkdwn", text: "`undeploy &lt;name&gt;` stops one." }] });
    expect(r.text).toBe("This thread's models (2 rows)");
    expect(render({ kind: "table", title: "T", header: ["a"], rows: [["1"]] })).toEqual(renderTable("T", ["a"], [["1"]]));
  });

  it("keeps hostile cells on one line, escaped, and unable to close the code block", () => {
    const r = renderTable("Models <!here>", ["name", "value"], hostile.map((h, i) => [h, String(i)]));
    const text = (blocks(r)[0].text as { text: string }).text;
    for (const raw of ["<!channel>", "<@U123>", "<https://", "<#C1>", "<!here>"]) expect(JSON.stringify(r)).not.toContain(raw);
    expect(text).toContain("&lt;!channel&gt;");
    // One opening and one closing fence: the cells' backticks became look-alikes.
    expect(text.match(/```/g)).toHaveLength(2);
    const rows = text.slice(text.indexOf("```") + 3, text.lastIndexOf("```")).split("\n");
    expect(rows).toHaveLength(4);
    expect(rows[2]).toMatch(/^\*bold\* &lt;@U123&gt; second line +1$/);
    expect(text).not.toContain("\u0007");
  });

  it("cuts a long table to the section limit and says how many rows were left out", () => {
    const rows = Array.from({ length: 400 }, (_, i) => [`model-${i}`, "<&>".repeat(30), `${i}`]);
    const r = renderTable("All models", ["name", "description", "n"], rows, Array.from({ length: 14 }, (_, i) => `note ${i}`));
    withinLimits(r);
    const text = (blocks(r)[0].text as { text: string }).text;
    expect(text.length).toBeLessThanOrEqual(3000);
    expect(text.endsWith("```")).toBe(true);
    const shown = text.split("\n").filter((l) => l.startsWith("model-")).length;
    expect(shown).toBeGreaterThan(5);
    expect(text).toMatch(new RegExp(`… ${400 - shown} more rows\`\`\`$`));
    // Cells are cut too: a 90-character description shows at most 40 of them.
    expect(text).toContain(`${"&lt;&amp;&gt;".repeat(13)}…  0`);
    expect((blocks(r)[1].elements as unknown[]).length).toBe(10);
  });

  it("renders a file's lines, the headline first and in bold, the rest as plain text", () => {
    const lines = ["Scored 120 rows of new_loans.csv with loans-1.", "Predicted Loan_Status: Y 80 (66.7%), <!channel> 40 (33.3%).", "*kept*"];
    const r = renderFile("new_loans-predictions.csv", lines);
    expect(blocks(r)[0]).toMatchObject({ type: "section", text: { type: "mrkdwn", text: "*Scored 120 rows of new_loans.csv with loans-1.*" } });
    expect(blocks(r)[1]).toEqual({ type: "section", text: { type: "plain_text", text: `${lines[1]}\n${lines[2]}`, emoji: false } });
    expect(blockText(blocks(r))).toMatch(/new_loans-predictions\.csv: attached below/);
    expect(r.text).toBe(lines[0]);
    const bad = renderFile("<@U1>.csv", ["<!channel> headline\nsecond"]);
    expect(JSON.stringify(bad)).not.toMatch(/<!channel>|<@U1>/);
    expect(bad.blocks).toHaveLength(2);
    expect((bad.blocks[0] as { text: { text: string } }).text.text).toBe("*&lt;!channel&gt; headline second*");
  });

  it("adds the registered name, the comparison table and the follow-up buttons to the report", () => {
    const comparison = { header: ["model", "accuracy", "status"], rows: [["loans-2 (this one)", "0.935", "serving"], ["loans-1 <!channel>", "0.910", "stopped"]] };
    const r = renderReport(report({ comparison, artifacts: { ...report().artifacts, bundle: "/w/bundle.zip" } }), { model: "loans-2", followUps: ["explain", "compare", "undeploy"] });
    withinLimits(r);
    const text = blockText(blocks(r));
    expect(text).toContain("*Registered as* `loans-2`");
    expect(text).toMatch(/\*Compared with this thread's earlier models\*\n```model +accuracy +status\nloans-2 \(this one\) +0\.935 +serving\nloans-1 &lt;!channel&gt; +0\.910 +stopped```/);
    expect(text).toMatch(/bundle \(model, serving script, requirements, Dockerfile, model card\): attached below/);
    expect(r.text).toBe("Model deployed. Endpoint: http://127.0.0.1:4000 Registered as loans-2.");
    const last = blocks(r).at(-1)!;
    expect(last.type).toBe("actions");
    const buttons = elements([last]);
    expect(buttons.map((b) => [b.action_id, b.text!.text, b.value])).toEqual([
      ["threadml.followup.explain", "What matters?", "explain"],
      ["threadml.followup.compare", "Compare models", "compare"],
      ["threadml.followup.undeploy", "Stop serving", "undeploy"],
    ]);
    expect(buttons[2]).toMatchObject({ style: "danger", confirm: { title: { text: "Stop serving this model?" } } });
    // Only the follow-ups asked for, and none without any.
    expect(actionIds(renderReport(report(), { followUps: ["explain"] }))).toEqual(["threadml.followup.explain"]);
    expect(actionIds(renderReport(report()))).toEqual([]);
    expect(blockText(blocks(renderReport(report())))).not.toMatch(/Registered as|Compared with|bundle/);
    expect(render({ kind: "report", report: report(), model: "m", followUps: ["compare"] })).toEqual(renderReport(report(), { model: "m", followUps: ["compare"] }));
  });

  it("keeps a hostile model name in its code span and the buttons within the block limit", () => {
    const r = renderReport(report(), { model: "a`<!channel>`b\nc", followUps: ["explain"] });
    expect(blockText(blocks(r))).toContain("*Registered as* `a\u02cb&lt;!channel&gt;\u02cbb c`");
    expect(r.text).toContain("Registered as a`&lt;!channel&gt;`b c.");
    const crowded = renderReport(report({ notices: [], training: ["t"], comparison: { header: ["m"], rows: Array.from({ length: 2000 }, (_, i) => [`m${i}`]) } }), { followUps: ["explain", "undeploy"] });
    withinLimits(crowded);
    expect(actionIds(crowded)).toEqual(["threadml.followup.explain", "threadml.followup.undeploy"]);
    expect(blockText(blocks(crowded))).toMatch(/… \d+ more rows```/);
  });
});

