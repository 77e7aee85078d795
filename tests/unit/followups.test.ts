import { describe, expect, it } from "vitest";
import { readFollowUp } from "../../src/conversation/followups.js";
import { nameStem, registryTable } from "../../src/conversation/registry.js";
import type { ModelEntry } from "../../src/store/types.js";

// What a message after a trained model asks for, from ordinary words (the same for both engines).

const o = { columns: ["tenure", "plan", "monthly_charges", "churn"], names: ["churn", "churn-2"], localPaths: false, target: "churn" };
const kind = (text: string, files: string[] = [], opts = o) => readFollowUp(text, files, opts).kind;

describe("readFollowUp", () => {
  it("reads the registry, undeploy and compare requests", () => {
    for (const t of ["models", "/models", "list the models", "which models are running?"]) expect(kind(t)).toBe("models");
    for (const t of ["undeploy", "stop serving", "stop the server please", "take it down"]) expect(kind(t)).toBe("undeploy");
    expect(readFollowUp("undeploy churn-2", [], o)).toEqual({ kind: "undeploy", name: "churn-2" });
    for (const t of ["compare", "compare the models", "which model is better?", "how do they compare"]) expect(kind(t)).toBe("compare");
  });

  it("reads explanations in several wordings", () => {
    for (const t of ["what matters most?", "explain the model", "feature importance please", "which features matter", "what drives churn?", "why does it predict that"])
      expect(kind(t)).toBe("explain");
  });

  it("scores attached files, and typed paths only where paths may be read", () => {
    expect(readFollowUp("", ["/up/new.csv"], o)).toEqual({ kind: "score", files: ["/up/new.csv"], paths: [] });
    expect(kind("score this", ["/up/new.csv"])).toBe("score");
    expect(kind("predict these customers", ["/up/new.csv"])).toBe("score");
    expect(readFollowUp("score data/march.csv", [], { ...o, localPaths: true })).toMatchObject({ kind: "score", paths: ["data/march.csv"] });
    // a chat user's typed path is never read from this machine
    expect(kind("score data/march.csv")).not.toBe("score");
    expect(kind("predict churn for these", ["/up/new.csv"])).toBe("score");
    // new data with a request to train on it, or to predict another column, is a new conversation
    expect(kind("train a new model on this one", ["/up/other.csv"])).toBe("new");
    expect(kind("Predict price in houses.csv", [], { ...o, localPaths: true })).toBe("new");
  });

  it("reads changes to retrain with, and more time", () => {
    for (const t of ["try again without tenure", "use a random forest instead", "F1 at least 0.8", "drop plan", "retrain with more time", "now optimise recall"])
      expect(kind(t)).toBe("retrain");
    expect(readFollowUp("give it more time", [], o)).toMatchObject({ kind: "retrain", moreTime: true });
    expect(readFollowUp("without plan", [], o)).toMatchObject({ kind: "retrain", moreTime: false, change: "without plan" });
  });

  it("starts afresh on `new:` and answers chatter with help", () => {
    expect(readFollowUp("new: predict plan from customers", [], o)).toEqual({ kind: "new", text: "predict plan from customers" });
    for (const t of ["thanks!", "great", "hello"]) expect(kind(t)).toBe("help");
  });
});

describe("registry names and tables", () => {
  it("derives safe names from the target", () => {
    expect(nameStem("Churn", "binary_classification")).toBe("churn");
    expect(nameStem("Prix de vente (€)", "regression")).toBe("prix-de-vente");
    expect(nameStem(null, "clustering")).toBe("clustering");
    expect(nameStem("🙂", "regression")).toBe("model");
  });

  it("lists models with their metric, constraints and endpoint", () => {
    const entry = {
      name: "churn",
      description: "Random forest",
      metric: { name: "f1", direction: "max" },
      metrics: { f1: 0.8123 },
      constraints: [{ name: "f1", op: ">=", target: 0.8, actual: 0.81, met: true }],
      status: "serving",
      url: "http://127.0.0.1:9000",
      createdBy: "U1",
      createdAt: Date.UTC(2026, 11, 6, 9, 30),
    } as unknown as ModelEntry;
    const t = registryTable([entry], { all: true });
    expect(t.rows[0]).toEqual(["churn", "Random forest", "f1 0.812", "1/1", "serving", "http://127.0.0.1:9000", "U1", "2026-12-06 09:30"]);
    expect(registryTable([{ ...entry, status: "stopped" }], { all: false }).rows[0][5]).toBe("—");
  });
});
