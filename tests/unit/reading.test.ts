import { describe, expect, it } from "vitest";
import { parseRequest } from "../../graphs/automl/request/parse.js";
import { constraintFromAnswer, numberQuestion, readingLine, readingOf, unplacedNumbers } from "../../graphs/automl/request/reading.js";
import { makeRequirements } from "../helpers/requirements.js";

const COLS = ["customerID", "tenure", "MonthlyCharges", "Churn"];
const uses = (text: string) => parseRequest(text, COLS).numbers.map((n) => [n.raw, n.use]);

describe("every number is placed or asked about", () => {
  it("places thresholds, counts and settings, and leaves only threshold-like numbers open", () => {
    expect(uses("predict Churn, roc auc > 0.8, train within 5 min")).toEqual([["0.8", "constraint"], ["5", "constraint"]]);
    expect(uses("predict Churn with max depth of 5, 200 trees, learning rate 0.1 and 5-fold cv")).toEqual([
      ["5", "setting"],
      ["200", "setting"],
      ["0.1", "setting"],
      ["5", "name"],
    ]);
    expect(uses("predict Churn, hold out 20% for testing, seed 42")).toEqual([["20%", "setting"], ["42", "setting"]]);
    expect(uses("predict Churn, 0.7 would be nice")).toEqual([["0.7", null]]);
    expect(uses("predict Churn and get it above 0.9")).toEqual([["0.9", null]]);
    expect(uses("fraud detection, positive = 1, recall ≥ 0.8")).toEqual([["1", "setting"], ["0.8", "constraint"]]);
  });

  it("asks where an unplaced number belongs and turns the answer into a constraint", () => {
    const parsed = parseRequest("predict Churn, it should get above 0.7", COLS);
    const [n] = unplacedNumbers(parsed);
    const q = numberQuestion(n, 0, "classification");
    expect(q).toMatchObject({ slot: "constraint", text: "You wrote 0.7 — which metric is that for?" });
    expect(q.choices.map((c) => c.value)).toEqual(["accuracy", "f1", "precision", "recall", "roc_auc", "ignore"]);
    expect(constraintFromAnswer(parsed, n, "F1")).toMatchObject({ name: "f1", op: ">", target: 0.7 });
    expect(constraintFromAnswer(parsed, n, "ignore")).toBeNull();
    expect(unplacedNumbers(parsed, { constraint: "f1" })).toEqual([]);
  });
});

describe("the reading stated back", () => {
  it("states target, goals, left-out columns and limits on one line, in the user's units", () => {
    const req = makeRequirements({
      task: "classification",
      target: "Survived",
      metric: { name: "roc_auc", direction: "max" },
      drop_columns: ["PassengerId", "Name"],
      constraints: [
        { name: "roc_auc", op: ">", target: 0.8 },
        { name: "model_size_mb", op: "<", target: 5 },
        { name: "train_time_s", op: "<=", target: 300 },
        { name: "latency_ms_per_row", op: "<", target: 20 },
      ],
    });
    expect(readingLine(req)).toBe("I read: predict Survived · ROC AUC > 0.8 · leaving out PassengerId, Name · model < 5 MB · training ≤ 5 min · latency < 20 ms per row");
    expect(readingLine(makeRequirements({ task: "clustering", target: null, n_clusters: 3, labels_column: "variety", metric: { name: "rand_index", direction: "max" }, constraints: [] }))).toBe(
      "I read: cluster into 3 groups · judged against variety · judged by Rand index",
    );
  });

  it("records which words became which field", () => {
    const parsed = parseRequest("churn is what i want to predict, leave out `customerID`, f1 at least 0.6", COLS);
    const req = makeRequirements({ task: "classification", target: "Churn", drop_columns: ["customerID"], constraints: [{ name: "f1", op: ">=", target: 0.6, phrase: "f1 at least 0.6" }] });
    const reading = readingOf(req, parsed);
    expect(reading.bindings).toEqual(
      expect.arrayContaining([
        { slot: "target", value: "Churn", words: "churn" },
        { slot: "drop", value: "customerID", words: "customerID" },
        { slot: "constraint", value: "F1 ≥ 0.6", words: "f1 at least 0.6" },
      ]),
    );
    expect(reading.unplaced).toEqual([]);
  });
});
