import { quote } from "../../../../src/llm/prompts.js";
import type { Requirements } from "../../../../src/schema/requirements.js";
import type { HarnessResult, ParamSpace } from "../../../../runners/contract.js";
import { recipesFor } from "../../knowledge/index.js";
import { OfflineModelAgent } from "../offline/model.js";
import type { DataPlan, DataProfile, ModelAgent, ModelPlan, Plan, RankedCandidate } from "../types.js";
import { CandidateOutput, ModelDecomposeOutput, RangeOutput } from "./schemas.js";
import { askJson, orOffline, requirementsForPrompt, type Client } from "./shared.js";

type Choice = string | number | boolean | null;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Narrows a recipe range with a proposed one: numeric ranges are clipped to the recipe's bounds,
 * choices intersected with the recipe's values. Null when the proposal does not fit (keep the recipe's).
 */
export function narrowSpace(base: ParamSpace, proposal: unknown): ParamSpace | null {
  const parsed = RangeOutput.safeParse(proposal);
  if (!parsed.success) return null;
  const p = parsed.data;
  if (base.type === "choice") {
    const values: Choice[] = Array.isArray(p) ? p : "values" in p ? p.values : [];
    const kept = base.values.filter((v) => values.some((w) => same(v, w) || (typeof v === "number" && Number(w) === v) || (v === null && w === "null")));
    return kept.length ? { type: "choice", values: kept } : null;
  }
  if (Array.isArray(p) || !("low" in p)) return null;
  let low = Number(p.low);
  let high = Number(p.high);
  if (!Number.isFinite(low) || !Number.isFinite(high)) return null;
  if (low > high) [low, high] = [high, low];
  low = Math.max(low, base.low);
  high = Math.min(high, base.high);
  if (base.type === "int") {
    low = Math.ceil(low);
    high = Math.floor(high);
  }
  if (low > high) return null;
  if (base.type === "log" && low <= 0) return null;
  return { ...base, low, high } as ParamSpace;
}

/**
 * The LLM model agent: for every plan in one call, hyperparameter ranges for each of its families and
 * an expected score. Candidates are built from the recipe family (estimator, preprocessing, fixed
 * parameters); the LLM may only narrow the recipe's search space, never widen it or add parameters.
 * Ranking uses the real cross-validation results, no LLM.
 */
export class LlmModelAgent implements ModelAgent {
  private readonly offline = new OfflineModelAgent();

  constructor(
    private readonly client: Client,
  ) {}

  async decompose(input: { plans: Plan[]; dataPlans: DataPlan[]; requirements: Requirements; profile: DataProfile }): Promise<ModelPlan[]> {
    const base = await this.offline.decompose(input);
    if (base.length === 0) return base;
    return orOffline(
      () => this.decomposeWithLlm(input, base),
      async () => base,
    );
  }

  private async decomposeWithLlm(
    { plans, dataPlans, requirements, profile }: { plans: Plan[]; dataPlans: DataPlan[]; requirements: Requirements; profile: DataProfile },
    base: ModelPlan[],
  ): Promise<ModelPlan[]> {
    const recipes = recipesFor(requirements.task);
    const view = base.map((mp) => {
      const plan = plans.find((p) => p.id === mp.planId);
      return {
        plan_id: mp.planId,
        title: plan?.title ?? mp.planId,
        candidates: mp.candidates.map((c) => {
          const family = recipes?.families.find((f) => f.estimator === c.estimator);
          return { family: family?.id ?? c.id, label: mp.labels[c.id], fixed_params: c.params, space: c.space };
        }),
      };
    });
    const dataView = dataPlans.map((d) => ({ plan_id: d.planId, preprocess: d.preprocess, findings: d.findings.slice(0, 8) }));
    const out = await askJson(
      this.client,
      "model",
      "model-decompose",
      {
        requirements: requirementsForPrompt(requirements),
        rows: profile.rows,
        columns: profile.columns.length,
        metric: `${requirements.metric.name} (${requirements.metric.direction === "max" ? "higher" : "lower"} is better)`,
        data: quote(JSON.stringify(dataView), 4000, "data agent's results"),
        plans: JSON.stringify(view),
      },
      ModelDecomposeOutput,
    );
    const expected: Record<string, { low: number; high: number }> = {};
    const result = base.map((mp) => {
      const mine = out.plans.find((p) => p.plan_id === mp.planId);
      if (!mine) return mp;
      const proposals = mine.candidates.flatMap((c) => {
        const parsed = CandidateOutput.safeParse(c);
        return parsed.success ? [parsed.data] : [];
      });
      const candidates = mp.candidates.map((cand) => {
        const family = recipes?.families.find((f) => f.estimator === cand.estimator);
        const proposal = proposals.find((p) => p.family === family?.id || p.family === cand.id);
        if (!proposal) return cand;
        if (proposal.expected) {
          const { low, high } = proposal.expected;
          if (Number.isFinite(low) && Number.isFinite(high)) expected[cand.id] = { low: Math.min(low, high), high: Math.max(low, high) };
        }
        const space: Record<string, ParamSpace> = {};
        for (const [key, range] of Object.entries(cand.space)) {
          // Class weights for a rare class stay a choice: the plan card promised them (../../imbalance.ts).
          space[key] = key in proposal.ranges && key !== "class_weight" ? (narrowSpace(range, proposal.ranges[key]) ?? range) : range;
        }
        return { ...cand, space };
      });
      return { ...mp, candidates, expected: { ...mp.expected, ...expected } };
    });
    return result;
  }

  rank(input: { modelPlan: ModelPlan; result: HarnessResult; topK: number }): Promise<RankedCandidate[]> {
    return this.offline.rank(input);
  }
}
