// What kind of request this is: the task, the intent (build, consult, ask) and whether it is about ML at all.

import { METRICS_BY_TASK, TABULAR_TASKS } from "../../../src/schema/requirements.js";
import { CLASSIFY_WORDS, LOOSE_CLASSIFY_WORDS, TASK_SPECS, type TaskKind, taskSpec } from "../../../src/schema/tasks.js";
import { MetricMention } from "./constraints.js";
import { HORIZON_TASK } from "./lexicon.js";
import { Intent, sentences } from "./text.js";

// The words for each task kind come from the registry (src/schema/tasks.ts); this reader only
// decides the order in which the kinds are tried.

const rx = (src: string) => new RegExp(src, "i");
const CLASSIFY = rx(CLASSIFY_WORDS);
const LOOSE_CLASSIFY = rx(LOOSE_CLASSIFY_WORDS);

/**
 * Phrases that hold a kind's words but name something else ("logistic regression" is a classifier):
 * inside them the kind's own words become "model", so "logistic regression" reads "logistic model".
 */
const EXCEPTIONS = TASK_SPECS.flatMap(({ words }) =>
  words.except ? [{ phrase: new RegExp(words.except, "gi"), names: words.names ? new RegExp(words.names, "gi") : null }] : [],
);

/** Words for a kind that the registry does not hold, built from this reader's time units. */
const EXTRA_NAMES: Partial<Record<TaskKind, RegExp>> = { time_series_forecasting: HORIZON_TASK };

/**
 * Kinds named by words of their own, in the order they are tried, the narrower first: a graph's
 * nodes, a forecast, images, text, clusters. Only then is it plain classification or regression.
 */
const NAMED_KINDS: readonly TaskKind[] = ["node_classification", "time_series_forecasting", "image_classification", "text_classification", "clustering"];

function namedBy(kind: TaskKind): (t: string) => boolean {
  const { names, withClassify } = taskSpec(kind).words;
  const nameRe = names ? rx(names) : undefined;
  const extra = EXTRA_NAMES[kind];
  const all = withClassify?.all.map(rx);
  const loose = withClassify?.loose ?? false;
  return (t) =>
    !!nameRe?.test(t) ||
    !!extra?.test(t) ||
    (!!all && all.every((r) => r.test(t)) && (CLASSIFY.test(t) || (loose && LOOSE_CLASSIFY.test(t))));
}

const NAMED = NAMED_KINDS.map((kind) => ({ kind, test: namedBy(kind) }));

/** The two plain kinds weighed against each other: names first, weak hints when no name decides. */
function plainWords(kind: "classification" | "regression") {
  const { names, hints } = taskSpec(kind).words;
  return { names: rx(names!), hints: (hints ?? []).map(rx) };
}
const CLASSIFICATION = plainWords("classification");
const REGRESSION = plainWords("regression");

export function detectTask(text: string): TaskKind | null {
  let t = text;
  for (const { phrase, names } of EXCEPTIONS) t = t.replace(phrase, (m) => (names ? m.replace(names, "model") : " "));
  for (const { kind, test } of NAMED) if (test(t)) return kind;
  const strongC = CLASSIFICATION.names.test(t);
  const strongR = REGRESSION.names.test(t);
  if (strongC && !strongR) return "classification";
  if (strongR && !strongC) return "regression";
  if (strongC && strongR) return null;
  const weakC = CLASSIFICATION.hints.some((r) => r.test(t));
  const weakR = REGRESSION.hints.some((r) => r.test(t));
  if (weakC && !weakR) return "classification";
  if (weakR && !weakC) return "regression";
  return null;
}

/** With no task words, the family of the named metric is the best evidence left. */
export function taskFromMetrics(mentions: MetricMention[]): TaskKind | null {
  const kinds = new Set(mentions.map((m) => TABULAR_TASKS.find((k) => METRICS_BY_TASK[k].includes(m.metric))));
  return kinds.size === 1 ? ([...kinds][0] ?? null) : null;
}

/** Words that mark a message as being about models or data analysis. */
const RELEVANT_WORDS = [
  "(?:the|my|our)\\s+target", "target\\s*(?:is|=|:)", "target\\s+(?:column|variable)",
  "models?", "modell?ing", "machine[\\s-]+learning", "ml", "ai", "deep\\s+learning", "neural", "training", "trained",
  "predict\\w*", "classif\\w*", "categori[sz]\\w*", "cluster\\w*", "segment(?:s|ing|ation)?", "regress\\w*",
  "forecasting", "time[\\s-]?series", "supervised", "unsupervised", "inference", "embeddings?",
  "datasets?", "data\\s+sets?", "data\\s+(?:analysis|science|frame)", "dataframes?", "csv", "tsv", "parquet",
  "features?", "labels?", "columns?", "eda", "correlations?", "statistics",
  "accuracy", "precision", "recall", "f1", "auc", "rmse", "rmsle", "mae", "overfitting", "underfitting", "hyper-?parameters?",
  "xgboost", "lightgbm", "catboost", "random\\s+forests?", "k-?means",
];
export const RELEVANT_RE = new RegExp(`\\b(?:${RELEVANT_WORDS.join("|")})\\b`, "i");

export function isRelevant(text: string, hasOtherSignals: boolean): boolean {
  if (hasOtherSignals) return true;
  if (RELEVANT_RE.test(text)) return true;
  if (/\btrain(?:s|ed)?\s+(?:a|an|the|my|our|some|it|this|models?|on|using|with)\b/i.test(text)) return true;
  if (/\bforecast\b/i.test(text) && !/\bweather\s+forecast\b/i.test(text)) return true;
  if (/\banaly[sz](?:e|is|ing)\s+(?:the\s+|this\s+|my\s+|our\s+)?data\b/i.test(text)) return true;
  return false;
}

const CONSULT_RES = [
  /\b(?:which|what)\s+(?:kind\s+of\s+|type\s+of\s+|sort\s+of\s+)?(?:[a-z]+\s+){0,2}?(?:models?|algorithms?|approach(?:es)?|methods?|architectures?|techniques?|classifiers?|estimators?)\b[^.?!]*\b(?:should|would|could|do\s+you|to\s+use|recommend|suggest|best|work)/i,
  /\bhow\s+(?:would|should|could|do|can)\s+(?:you|i|we)\b/i,
  /\b(?:recommend|suggest|advise|advice)\b/i,
  /\bshould\s+(?:i|we)\s+use\b/i,
  /\bwhich\s+(?:one\s+)?(?:is|would\s+be|works)\s+(?:better|best)\b/i,
  /\bwhat(?:'s|\s+is)\s+the\s+best\s+(?:model|algorithm|approach|way|method)/i,
];
const INQUIRE_RES = [
  /^(?:what|why|when|how\s+(?:does|do|is|are|can)\s+(?!(?:you|i|we)\b))\b[^?]*\?\s*$/i,
  /^(?:what(?:'s|\s+is|\s+are|\s+does)|why|explain|describe|define|tell\s+me\s+about|can\s+you\s+explain|could\s+you\s+explain)\b/i,
  /\bdifference\s+between\b|\bwhat\s+do(?:es)?\s+\S+\s+mean\b|\bmeaning\s+of\b/i,
];
const BUILD_RES = [
  /\b(?:build|train|create|develop|make|fit|construct|design|implement|produce|deliver|provide|need|want|require|get|give|prepare|set\s+up|optimi[sz]e|(?:'d|would)\s+like)\b[^.?!]{0,120}?\b(?:models?|classifiers?|regressors?|predictors?|networks?|pipelines?|forecasters?|solutions?)\b/i,
  /\b(?:train|fit)\s+(?:a|an|the|some|my|our|it)\b/i,
  /^\s*(?:please\s+|now\s+)?(?:predict|classify|cluster|forecast|segment|estimate|group|categori[sz]e|train|build|create|develop|detect)\b/i,
  /\b(?:want|need|would\s+like|like|help\s+me|asked|task\s+is)\s+(?:you\s+)?to\s+(?:predict|classify|cluster|forecast|estimate|build|train|create|segment|group|model|develop)\b/i,
  /\b(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:build|train|create|develop|make|fit|predict|classify|cluster|forecast)\b/i,
  /\byou\s+are\s+solving\b/i,
  /^\s*(?:please\s+)?use\b[^.?!]{0,80}?\bto\s+(?:predict|classify|cluster|forecast|estimate|segment|group|train|build)\b/i,
];

export function detectIntent(text: string): Intent {
  let consult = false;
  let inquire = false;
  let build = false;
  let consultThenBuild = false;
  // Dashes, colons and semicolons also start imperatives: "my data is at x.csv - predict mpg".
  for (const s of sentences(text).flatMap((x) => x.split(/[;:]\s+|\s-\s/))) {
    const isConsult = CONSULT_RES.some((r) => r.test(s));
    const isInquire = !isConsult && INQUIRE_RES.some((r) => r.test(s));
    if (isConsult) {
      consult = true;
      if (/\b(?:and|then)\s+(?:then\s+)?(?:build|train|fit|implement|create|develop)\s+(?:it|that|one|them|the\s+model)\b|\bgo\s+ahead\b/i.test(s)) consultThenBuild = true;
    } else if (isInquire) {
      inquire = true;
    } else if (BUILD_RES.some((r) => r.test(s))) {
      build = true;
    }
  }
  if (consult && (build || consultThenBuild)) return "consult-build";
  if (consult) return "consult";
  if (build) return "build";
  if (inquire) return "inquire";
  return "unclear";
}
