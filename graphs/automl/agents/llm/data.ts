import { quote } from "../../../../src/llm/prompts.js";
import type { Requirements } from "../../../../src/schema/requirements.js";
import { recipesFor } from "../../knowledge/index.js";
import { dataFindings, OfflineDataAgent } from "../offline/data.js";
import { exactColumn, resolveColumn } from "../offline/prompt.js";
import type { DataAgent, DataPlan, DataProfile, Plan } from "../types.js";
import { DataDecomposeOutput, DropSuggestion } from "./schemas.js";
import { askJson, clip, clipAll, orOffline, profileForPrompt, requirementsForPrompt, type Client } from "./shared.js";

const MAX_LLM_FINDINGS = 5;

/**
 * The LLM data agent. The profile is the real one (read by the offline agent); the LLM turns every
 * approved plan into data steps in one call, grounded on that profile. The columns the harness drops
 * stay the agreed ones (the search and the final run must see the same features): the LLM's further
 * suggestions are reported as findings, not applied.
 */
export class LlmDataAgent implements DataAgent {
  private readonly offline = new OfflineDataAgent();

  constructor(private readonly client: Client) {}

  profile(file: string, options: Parameters<DataAgent["profile"]>[1]): Promise<DataProfile> {
    return this.offline.profile(file, options);
  }

  async decompose(input: { plans: Plan[]; requirements: Requirements; profile: DataProfile }): Promise<DataPlan[]> {
    const fallback = await this.offline.decompose(input);
    if (input.plans.length === 0) return fallback;
    return orOffline(
      () => this.decomposeWithLlm(input, fallback),
      async () => fallback,
    );
  }

  private async decomposeWithLlm(
    { plans, requirements, profile }: { plans: Plan[]; requirements: Requirements; profile: DataProfile },
    fallback: DataPlan[],
  ): Promise<DataPlan[]> {
    const facts = dataFindings(profile, requirements);
    const planView = plans.map((p) => ({
      plan_id: p.id,
      title: p.title,
      approach: p.approach,
      models: p.models.map((m) => m.label),
      preprocessing: p.preprocessing,
    }));
    const out = await askJson(
      this.client,
      "data",
      "data-decompose",
      {
        requirements: requirementsForPrompt(requirements),
        profile: profileForPrompt(profile),
        facts: quote(facts.join("\n"), 2000, "measured facts"),
        dropped: quote(JSON.stringify(requirements.drop_columns), 1000, "columns already left out"),
        plans: quote(JSON.stringify(planView), 4000, "plans"),
      },
      DataDecomposeOutput,
    );
    const protectedCols = new Set([requirements.target, requirements.labels_column].filter((c): c is string => !!c));
    return fallback.map((base) => {
      const plan = plans.find((p) => p.id === base.planId)!;
      const mine = out.plans.find((p) => p.plan_id === base.planId);
      if (!mine) return base;
      const family = recipesFor(requirements.task)?.families.find((f) => f.id === plan.models[0]?.family);
      const needsScale = family?.preprocess.scale ?? false;
      // a raw-input model (the CNN) takes no feature preprocessing, whatever the suggestion
      const preprocess = mine.preprocess && !family?.preprocess.raw ? { scale: mine.preprocess.scale || needsScale, encode: mine.preprocess.encode } : base.preprocess;
      const suggestions = mine.drop_suggestions.flatMap((s) => {
        const parsed = DropSuggestion.safeParse(s);
        if (!parsed.success) return [];
        const column = exactColumn(profile, parsed.data.column);
        if (!column || protectedCols.has(column) || requirements.drop_columns.includes(column)) return [];
        return [`worth checking: "${column}" could be left out${parsed.data.reason ? ` (${clip(parsed.data.reason, 160)})` : ""}; it is kept, as agreed`];
      });
      const steps = clipAll(mine.steps, 10, 240);
      return {
        planId: base.planId,
        steps: steps.length ? steps : base.steps,
        dropColumns: requirements.drop_columns,
        preprocess,
        findings: [...facts, ...clipAll(mine.findings, MAX_LLM_FINDINGS, 240), ...suggestions.slice(0, 3)],
      };
    });
  }
}
