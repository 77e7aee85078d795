import type { ScriptReply, ScriptedRequest } from "./openai-server.js";

// A competent scripted model for the LLM engine: every step answered with valid output grounded on what
// the prompt shows (the banana-quality classification data of the tests).

export const FAMILIES = ["hist_gradient_boosting", "logistic_regression", "random_forest", "extra_trees", "svm", "knn", "mlp"];
export const user = (r: ScriptedRequest) => r.messages.filter((m) => m.role === "user").map((m) => m.content).join("\n");
export const planIds = (r: ScriptedRequest) => [...new Set(user(r).match(/plan-\d+/g) ?? [])];
export const json = (value: unknown): ScriptReply => ({ content: JSON.stringify(value) });

export function goodCode(r: ScriptedRequest, firstLine = ""): string {
  // The implement prompt names the import; the fix prompt names the estimator's dotted path.
  const estimator = user(r).match(/`((?:sklearn|xgboost|lightgbm|catboost)\.[\w.]+)`/)![1];
  const cls = estimator.slice(estimator.lastIndexOf(".") + 1);
  const m = [estimator, cls, estimator.slice(0, estimator.lastIndexOf("."))];
  return [
    "```python",
    "from sklearn.pipeline import Pipeline",
    `from ${m[2]} import ${m[1]}`,
    "",
    "def build(ctx):",
    firstLine,
    `    return Pipeline([("pre", ctx.preprocessor(scale=True, encode="onehot")), ("model", ${m[1]}())])`,
    "```",
    `SUMMARY: ${r.step === "fix" ? "rewrote the pipeline without the failing part" : "wrote a plain pipeline"}`,
  ].join("\n");
}

/** A competent model: answers every step with valid, grounded output. */
export function competent(r: ScriptedRequest): ScriptReply {
  const text = user(r);
  switch (r.step) {
    case "verify-request": {
      // Only the user's own words count, not the column names in the profile.
      const said = text.slice(0, text.indexOf("Files attached to the conversation"));
      return json(
        /\bQuality\b/.test(said)
          ? { relevant: true, task: "classification", target: "Quality", labels_column: null, adequate: true, missing: [], questions: [], decline_reason: null, notes: [] }
          : { relevant: true, task: "classification", target: null, adequate: false, missing: ["target"], questions: [{ slot: "target", text: "Which column should I predict?", choices: ["Quality"] }], decline_reason: null, notes: [] },
      );
    }
    case "parse":
      return json({ task: "classification", target: "Quality", metric: "accuracy", constraints: [], requested_models: [], drop_columns: [] });
    case "knowledge":
      return json({ insights: ["Gradient boosting is a strong default on tabular data."] });
    case "plan": {
      const family = FAMILIES.find((f) => text.includes(f)) ?? "hist_gradient_boosting";
      return json({ title: `Plan with ${family}`, summary: "A sound plan.", preprocessing: ["impute", "encode"], models: [family], training: "CV search", inference: "HTTP", rationale: "fits the data" });
    }
    case "data-decompose":
      return json({ plans: planIds(r).map((id) => ({ plan_id: id, steps: ["impute medians"], preprocess: null, drop_suggestions: [], findings: ["classes are balanced"] })) });
    case "model-decompose":
      return json({ plans: planIds(r).map((id) => ({ plan_id: id, candidates: [] })) });
    case "verify-execution":
      return json({ verdicts: planIds(r).map((id) => ({ plan_id: id, pass: true, reasons: ["scores look right"] })) });
    case "select": {
      const id = text.match(/plan-\d+:[a-z_]+/)![0];
      return json({ candidate_id: id, reason: "best evidence", notes: [] });
    }
    case "implement":
    case "fix":
      return { content: goodCode(r) };
    case "verify-implementation":
      return json({ verdict: "met", reasons: [] });
    default:
      return { status: 400, body: { error: { message: `unscripted step ${r.step}` } } };
  }
}
