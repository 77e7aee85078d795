import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ForecastStrategy, ParamSpace, Preprocess } from "../../../runners/contract.js";
import { fromRoot } from "../../../src/paths.js";
import { TASK_KINDS } from "../../../src/schema/tasks.js";
import type { KnowledgeItem } from "../agents/types.js";

// The recipe knowledge base (recipes.yaml beside this file), validated once on first use.

export const Family = z.object({
  id: z.string(),
  label: z.string(),
  approach: z.string(),
  type: z.string(),
  estimator: z.string(),
  requires: z.array(z.string()).default([]),
  substitute: z.string().optional(),
  preprocess: Preprocess,
  params: z.record(z.string(), z.unknown()).default({}),
  space: z.record(z.string(), ParamSpace).default({}),
  aliases: z.array(z.string()).default([]),
  max_rows: z.number().int().positive().optional(),
  /** Cannot take sparse input (TF-IDF of text columns); left out when the data has text. */
  dense_only: z.boolean().default(false),
  /** Takes scikit-learn's `class_weight`: searched over [None, "balanced"] when a class is rare (../imbalance.ts). */
  class_weight: z.boolean().default(false),
  strengths: z.string().default(""),
  /** Forecasting: direct (the step ahead is a feature) or recursive (a one-step model fed its forecasts). */
  strategy: ForecastStrategy.optional(),
  /** What to install on the runner for `requires`, as pip names it ("torch torchvision"). */
  install: z.string().optional(),
  /** Said on every plan that uses the family. */
  note: z.string().optional(),
  /** Said on the first plan when the family's modules are missing and nobody asked for it: what installing them adds. */
  unavailable_note: z.string().optional(),
});
export type Family = z.infer<typeof Family>;

const TaskRecipes = z.object({
  advice: z.array(z.string()),
  families: z.array(Family).min(1),
  approaches: z.array(z.string()).min(1),
});
export type TaskRecipes = z.infer<typeof TaskRecipes>;

// An enum-keyed record is exhaustive: every task kind needs its recipes.
const KnowledgeBase = z.record(z.enum(TASK_KINDS), TaskRecipes);
export type KnowledgeBase = z.infer<typeof KnowledgeBase>;
export type RecipeTask = keyof KnowledgeBase;

let cached: KnowledgeBase | null = null;

export function loadKnowledgeBase(file = fromRoot("graphs/automl/knowledge/recipes.yaml")): KnowledgeBase {
  if (cached) return cached;
  cached = KnowledgeBase.parse(parseYaml(readFileSync(file, "utf8")));
  return cached;
}

export function recipesFor(task: string): TaskRecipes | null {
  const kb = loadKnowledgeBase();
  return Object.hasOwn(kb, task) ? kb[task as RecipeTask] : null;
}

/** Knowledge retrieval from the local base: the task's advice and the families' strengths. */
export function retrieveLocal(task: string): KnowledgeItem[] {
  const recipes = recipesFor(task);
  if (!recipes) return [];
  return [
    ...recipes.advice.map((text, i) => ({ source: "local", title: `${task} advice ${i + 1}`, text })),
    ...recipes.families.map((f) => ({ source: "local", title: f.label, text: `${f.label} (${f.approach}): ${f.strengths}` })),
  ];
}

/** Python modules that some families need beyond scikit-learn. */
export function optionalModules(): string[] {
  const kb = loadKnowledgeBase();
  const all = Object.values(kb).flatMap((r) => r.families.flatMap((f) => f.requires));
  return [...new Set(all)];
}
