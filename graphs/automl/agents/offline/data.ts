import { harnessVariantOf, isClassification, type Requirements } from "../../../../src/schema/requirements.js";
import type { DataAgent, DataPlan, DataProfile, Plan } from "../types.js";
import { recipesFor } from "../../knowledge/index.js";
import { basename } from "node:path";
import { textFeatureColumns } from "../../data/profile.js";
import { profileData } from "../../data/profile-data.js";

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
  for (const c of profile.columns.filter((c) => c.suspect && c.name !== req.target)) {
    const what = c.suspect === "id" ? "an identifier" : c.suspect === "constant" ? "a constant" : "a mostly empty column";
    findings.push(`"${c.name}" looks like ${what}; ${req.drop_columns.includes(c.name) ? "it is left out" : "it is kept, as asked"}`);
  }
  if (harnessVariantOf(req.task) !== "tabular") return [...variantFindings(profile, req), ...findings.slice(1)];
  const text = textFeatureColumns(profile, req);
  if (text.length) findings.push(`free text in ${text.map((c) => `"${c}"`).join(", ")}; it becomes TF-IDF features`);
  if (profile.duplicateRows) findings.push(`${profile.duplicateRows} duplicate rows`);
  return findings;
}

/** What the variants' data looks like: series and their frequency, the graph, the images. */
function variantFindings(profile: DataProfile, req: Requirements): string[] {
  const out: string[] = [];
  const t = profile.time;
  if (req.forecast && t) {
    out.push(`${t.series} series${t.idColumn ? ` (one per "${t.idColumn}")` : ""} of ${t.points.min === t.points.max ? t.points.min : `${t.points.min}-${t.points.max}`} ${t.label} points, from ${t.start} to ${t.end}`);
    if (req.forecast.exogenous.length) out.push(`other inputs: ${req.forecast.exogenous.map((c) => `"${c}"`).join(", ")}, at their value when the forecast is made`);
  }
  const g = profile.graph;
  if (g) {
    out.push(`${g.nodes} nodes and ${g.edges} edges (ends in "${g.sourceColumn}" and "${g.targetColumn}", node ids in "${g.nodeIdColumn}")`);
    if (g.unknownEndpoints) out.push(`${g.unknownEndpoints} edges name a node the table does not have; they are left out`);
    if (g.isolated) out.push(`${g.isolated} nodes have no edge; their propagated features are their own`);
    const target = req.target ? profile.columns.find((c) => c.name === req.target) : undefined;
    if (target?.missing) out.push(`${target.missing} nodes have no label: they take part in propagation but not in training or testing`);
  }
  const im = profile.images;
  if (im) {
    const formats = Object.entries(im.formats).map(([ext, n]) => `${n} ${ext}`).join(", ");
    out.push(`${im.images} images (${formats}) in ${im.kind === "zip" ? "the archive" : "the folder"} ${profile.name}`);
    out.push(im.layout === "folders" ? "labels from the class folders" : `labels from ${im.labels.map((l) => l.member ?? basename(l.file ?? "")).join(", ")}, file names in "${im.filenameColumn}"`);
    if (im.unlabelled) out.push(`${im.unlabelled} images have no label and are not used`);
  }
  return out;
}

export class OfflineDataAgent implements DataAgent {
  profile(file: string, options: Parameters<DataAgent["profile"]>[1]): Promise<DataProfile> {
    return profileData(file, options.others ?? [], options);
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
