import path from "node:path";
import { harnessInputs } from "../harness-inputs.js";
import { applyHoldout } from "../holdout.js";
import { fmt, oneLine } from "../format.js";
import { failed, followUpRunId, modelFiles, runFollowUp, trainedUnder, type FollowUpAnswer, type FollowUpDeps, type FollowUpModel } from "./job.js";

const NAMED = 5;

/**
 * Permutation importance of a registered model on the validation rows it was trained beside: the same
 * inputs, holdout and seed as its training run, so the rows are the ones the search and the threshold
 * saw, never the test rows. Answers with the plot and the top features in words.
 */
export async function explainModel(deps: FollowUpDeps, model: FollowUpModel): Promise<FollowUpAnswer> {
  const loaded = await modelFiles(model);
  if (typeof loaded === "string") return failed(loaded);
  if (loaded.meta.variant)
    return failed(`Explaining by shuffled columns works for models trained on a table; ${model.name} is a ${loaded.meta.variant} model.`);
  const under = trainedUnder(model);
  if (!under) return failed(`The request ${model.name} was trained for is no longer on record, so its validation rows cannot be rebuilt.`);
  // the seed the model was trained under: the same holdout and validation rows
  const seed = typeof model.context.seed === "number" ? model.context.seed : deps.config.seed;
  const inputs = harnessInputs(under.profile, under.requirements, seed);
  try {
    await applyHoldout(inputs, { file: under.profile.file, seed, dir: path.resolve(deps.cwd, deps.config.dataDir, "holdout"), full: false });
  } catch (err) {
    return failed(`The data ${model.name} was trained on cannot be read again (${(err as Error).message}).`);
  }
  const run = await runFollowUp(deps, {
    runId: followUpRunId(model, "explain"),
    files: [...inputs.files, ...loaded.files],
    spec: { ...inputs.spec, mode: "explain", explain: { model_dir: "model" }, plots: true },
  });
  if (typeof run === "string") return failed(`Explaining ${model.name} failed: ${run}`);
  const imp = run.result.importance;
  const plot = run.artifacts?.plots[0];
  if (!imp || !imp.features.length) return failed(`Explaining ${model.name} failed: the run measured no importances.`);
  // a column counts when shuffling it costs more than the spread between repeats
  const top = imp.features.filter((f) => f.mean > 0 && f.mean > f.std).slice(0, NAMED);
  const flat = imp.features.filter((f) => !top.includes(f) && f.mean <= Math.max(1e-9, f.std)).map((f) => f.feature);
  const lines = [`What matters most to ${model.name}: how much ${imp.metric} worsens when one column is shuffled, on ${imp.rows.toLocaleString("en-US")} validation rows.`];
  if (top.length) lines.push(top.map((f, i) => `${i + 1}. ${oneLine(f.feature, 60)} (${fmt(f.mean)} ± ${fmt(f.std)})`).join("  "));
  else lines.push("No single column changes its predictions much on its own: the model leans on several together, or on none.");
  if (flat.length) lines.push(`Barely used: ${flat.slice(0, 8).map((c) => oneLine(c, 40)).join(", ")}${flat.length > 8 ? ` and ${flat.length - 8} more` : ""}.`);
  return { ok: true, lines, ...(plot ? { file: { path: plot, name: "importance.png" } } : {}) };
}
