import type { Requirements } from "../../../../src/schema/requirements.js";
import type { HarnessResult, SearchCandidate } from "../../../../runners/contract.js";
import { better } from "../../constraints.js";
import { classImbalance } from "../../imbalance.js";
import { recipesFor } from "../../knowledge/index.js";
import type { DataPlan, DataProfile, ModelAgent, ModelPlan, Plan, RankedCandidate } from "../types.js";

export class OfflineModelAgent implements ModelAgent {
  async decompose({ plans, requirements, profile }: { plans: Plan[]; dataPlans: DataPlan[]; requirements: Requirements; profile: DataProfile }): Promise<ModelPlan[]> {
    // Both engines build their candidates here (the LLM only narrows these spaces), so the rule holds for both.
    const weighted = classImbalance(profile, requirements) !== null;
    return plans.map((plan) => this.decomposeOne(plan, requirements, weighted));
  }

  private decomposeOne(plan: Plan, requirements: Requirements, weighted: boolean): ModelPlan {
    const recipes = recipesFor(requirements.task);
    const candidates: SearchCandidate[] = [];
    const labels: Record<string, string> = {};
    for (const choice of plan.models) {
      const family = recipes?.families.find((f) => f.id === choice.family);
      if (!family) continue;
      const id = `${plan.id}:${family.id}`;
      const space = { ...family.space };
      // Without a requested number of groups the search picks it.
      if (requirements.task === "clustering" && requirements.n_clusters === null) {
        const key = family.estimator.endsWith("GaussianMixture") ? "n_components" : "n_clusters";
        space[key] = { type: "int", low: 2, high: 8 };
      }
      // A rare class: unweighted and balanced classes are both tried, and cross-validation decides.
      if (weighted && family.class_weight && !("class_weight" in family.params)) space.class_weight = { type: "choice", values: [null, "balanced"] };
      candidates.push({
        id,
        estimator: family.estimator,
        preprocess: family.preprocess,
        params: family.params,
        space,
        ...(requirements.task === "time_series_forecasting" ? { strategy: family.strategy ?? "direct" } : {}),
      });
      labels[id] = family.label;
    }
    if (candidates.length === 0) throw new Error(`${plan.id} names no known model family`);
    return { planId: plan.id, candidates, labels, expected: {} };
  }

  async rank({ modelPlan, result, topK }: { modelPlan: ModelPlan; result: HarnessResult; topK: number }): Promise<RankedCandidate[]> {
    const metric = result.search?.metric ?? "";
    const found = new Map((result.search?.candidates ?? []).map((c) => [c.id, c]));
    const ranked = modelPlan.candidates.map((cand): RankedCandidate => {
      const r = found.get(cand.id);
      return {
        id: cand.id,
        label: modelPlan.labels[cand.id] ?? cand.estimator,
        estimator: cand.estimator,
        preprocess: cand.preprocess,
        params: r?.best_params ?? cand.params,
        ...(cand.strategy ? { strategy: cand.strategy } : {}),
        score: r?.best_score ?? null,
        trials: r?.trials.length ?? 0,
        ...(r?.error || !r ? { error: r?.error ?? "not evaluated within the search budget" } : {}),
      };
    });
    ranked.sort((a, b) => (better(metric, a.score, b.score) ? -1 : better(metric, b.score, a.score) ? 1 : 0));
    return ranked.slice(0, topK);
  }
}
