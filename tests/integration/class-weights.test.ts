import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { OfflineDataAgent } from "../../graphs/automl/agents/offline/data.js";
import { OfflineManagerAgent } from "../../graphs/automl/agents/offline/manager.js";
import { OfflineModelAgent } from "../../graphs/automl/agents/offline/model.js";
import type { DataProfile } from "../../graphs/automl/agents/types.js";
import { harnessInputs } from "../../graphs/automl/harness-inputs.js";
import type { SearchCandidate } from "../../runners/contract.js";
import { requirePython } from "../helpers/cli.js";
import { harnessWorkspace, runHarness } from "../helpers/harness.js";
import { makeRequirements } from "../helpers/requirements.js";
import { tempDir } from "../helpers/tmp.js";

// Rare classes end to end on real data: the candidates the planner makes for card_fraud.csv (16% fraud)
// search class weights, and every family flagged for them really fits with class_weight="balanced".

const FRAUD = join(import.meta.dirname, "../fixtures/requests/data2/card_fraud.csv");
const tmp = tempDir("threadml-class-weights-");
let profile: DataProfile;

beforeAll(async () => {
  requirePython();
  profile = await new OfflineDataAgent().profile(FRAUD, { maxBytes: 10 * 1048576 });
});

describe("class weights for a rare class", () => {
  it("are searched by every plan's flagged families, and each fits and scores with balanced weights", async () => {
    const req = makeRequirements({ target: "is_fraud", metric: { name: "f1", direction: "max" }, drop_columns: ["TransactionID"] });
    // every plan the planner offers, XGBoost included
    const plans = await new OfflineManagerAgent().plan({ requirements: req, profile, knowledge: [], count: 5, feedback: [], failures: [], installed: { xgboost: true } });
    expect(plans[0].notices.some((n) => n.startsWith('Classes are imbalanced ("1" is 16% of rows)'))).toBe(true);
    const modelPlans = await new OfflineModelAgent().decompose({ plans, dataPlans: [], requirements: req, profile });
    const weighted = modelPlans.flatMap((m) => m.candidates).filter((c) => c.space.class_weight);
    expect(weighted.map((c) => c.estimator.split(".").pop()).sort()).toEqual(
      ["ExtraTreesClassifier", "HistGradientBoostingClassifier", "LogisticRegression", "RandomForestClassifier", "SVC", "XGBClassifier"].sort(),
    );
    // each with the weights set, so the search's draw cannot skip them
    const candidates: SearchCandidate[] = weighted.map((c) => ({ ...c, params: { ...c.params, class_weight: "balanced" }, space: {} }));
    const { files, spec } = harnessInputs(profile, req, 42);
    const dir = harnessWorkspace(join(tmp.dir, "search"), "", Object.fromEntries(files.map((f) => [f.dest, f.source])));
    const run = await runHarness(dir, { ...spec, mode: "search", search: { candidates, n_iter: 1, budget_s: 300, cv_folds: 3, sample_rows: 3000, sampler: "random" } });
    expect(run.code, run.stderr).toBe(0);
    for (const c of run.result.search!.candidates) {
      expect(c.error, `${c.id}: ${c.error}`).toBeUndefined();
      expect(c.trials[0].params.class_weight).toBe("balanced");
      expect(c.best_score, c.id).not.toBeNull();
    }
  });
});
