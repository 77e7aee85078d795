import { isClassification, type Requirements } from "../../../../src/schema/requirements.js";
import type { DataAgent, DataPlan, DataProfile, Plan } from "../types.js";
import { recipesFor } from "../../knowledge/index.js";
import { profileCsv, textFeatureColumns } from "./profile.js";

/** Findings a data scientist would mention before modelling, from the real profile. */
export function dataFindings(profile: DataProfile, req: Requirements): string[] {
  const findings = [`${profile.rows} rows, ${profile.columns.length} columns`];
  const target = req.target ? profile.columns.find((c) => c.name === req.target) : undefined;
  if (target && isClassification(req.task)) {
    const total = target.top.reduce((s, t) => s + t.count, 0) || 1;
    const shares = target.top.slice(0, 6).map((t) => `${t.value} ${((100 * t.count) / total).toFixed(0)}%`);
    findings.push(`classes of "${target.name}": ${shares.join(", ")}`);
    const minority = Math.min(...target.top.map((t) => t.count)) / total;
    if (minority < 0.1) findings.push("the classes are imbalanced; F1 or ROC AUC say more than accuracy");
  }
  if (target && req.task === "regression" && target.stats)
    findings.push(`"${target.name}" ranges from ${target.stats.min} to ${target.stats.max} (mean ${target.stats.mean.toFixed(2)})`);
  const missing = profile.columns.filter((c) => c.missing > 0);
  if (missing.length) findings.push(`missing values in ${missing.map((c) => `${c.name} (${c.missing})`).join(", ")}`);
  for (const c of profile.columns.filter((c) => c.suspect)) findings.push(`"${c.name}" looks like ${c.suspect === "id" ? "an identifier" : c.suspect === "constant" ? "a constant" : "a mostly empty column"}; it is left out`);
  const text = textFeatureColumns(profile, req);
  if (text.length) findings.push(`free text in ${text.map((c) => `"${c}"`).join(", ")}; it becomes TF-IDF features`);
  if (profile.duplicateRows) findings.push(`${profile.duplicateRows} duplicate rows`);
  return findings;
}

export class OfflineDataAgent implements DataAgent {
  profile(file: string, options: { maxBytes: number }): Promise<DataProfile> {
    return profileCsv(file, options);
  }

  async decompose({ plans, requirements, profile }: { plans: Plan[]; requirements: Requirements; profile: DataProfile }): Promise<DataPlan[]> {
    const findings = dataFindings(profile, requirements);
    return plans.map((plan) => {
      const family = recipesFor(requirements.task)?.families.find((f) => f.id === plan.models[0].family);
      return {
        planId: plan.id,
        steps: plan.preprocessing,
        dropColumns: requirements.drop_columns,
        preprocess: family?.preprocess ?? { scale: true, encode: "onehot" },
        findings,
      };
    });
  }
}
