import { Requirements } from "../../src/schema/requirements.js";
import type { DataProfile } from "../../graphs/automl/agents/types.js";

/** Valid requirements for unit tests, with overrides. */
export function makeRequirements(partial: Partial<Requirements> = {}): Requirements {
  return Requirements.parse({
    user: { intent: "build" },
    problem: { area: "tabular data analysis", downstream_task: "classification" },
    confidence: { score: 1 },
    task: "classification",
    target: "y",
    metric: { name: "accuracy", direction: "max" },
    ...partial,
  });
}

export function makeProfile(rows = 1000): DataProfile {
  return {
    file: "/data/x.csv",
    name: "x.csv",
    bytes: 1000,
    rows,
    sampled: false,
    delimiter: ",",
    duplicateRows: 0,
    candidateTargets: ["y"],
    columns: [
      { name: "a", kind: "numeric", missing: 0, unique: 500, examples: [], stats: { min: 0, max: 1, mean: 0.5, integer: false }, top: [], suspect: null },
      { name: "b", kind: "categorical", missing: 3, unique: 4, examples: [], stats: null, top: [], suspect: null },
      { name: "y", kind: "categorical", missing: 0, unique: 2, examples: ["0", "1"], stats: null, top: [{ value: "1", count: 600 }, { value: "0", count: 400 }], suspect: null },
    ],
  };
}
