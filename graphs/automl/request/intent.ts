// What kind of request this is: the task, the intent (build, consult, ask) and whether it is about ML at all.

import { type TaskKind } from "../../../src/schema/requirements.js";
import { MetricMention } from "./constraints.js";
import { count } from "./forecast.js";
import { HORIZON_TASK, METRIC_FAMILY } from "./lexicon.js";
import { Intent, sentences } from "./text.js";

export const STRONG_CLASSIFY = /\bclassif(?:y|ies|ied|ying|ication|ier|iers)\b|\bcategori[sz](?:e|es|ed|ing|ation)\b/i;
export const STRONG_REGRESS = /\bregress(?:ion|or|ors)\b/i;
export const WEAK_CLASSIFY = [
  /\bbinary\b|\bmulti-?class\b|\bmulticlass\b/i,
  /\b(?:predict|determine|tell)\w*\s+(?:whether|if)\b/i,
  /\byes\s*(?:or|\/)\s*no\b|\btrue\s+or\s+false\b/i,
  /\bas\s+['"`]?[A-Za-z]+['"`]?\s+or\s+['"`]?[A-Za-z]+['"`]?(?:\b|$)/i,
];
export const WEAK_REGRESS = [
  /\b(?:predict|estimat)\w*\s+(?:the\s+|a\s+|an\s+|their\s+|its\s+|future\s+)?(?:[a-z']+\s+){0,2}?(?:prices?|costs?|amounts?|revenues?|sales|ages?|temperatures?|salar(?:y|ies)|incomes?|quantit(?:y|ies)|demand|durations?|yields?)\b(?!\s+(?:groups?|categor(?:y|ies)|class(?:es)?|ranges?|brackets?|bands?|levels?|tiers?))/i,
  /\b(?:predict|estimat)\w*\s+how\s+(?:much|many|long)\b/i,
];

export function detectTask(text: string): TaskKind | null {
  // "logistic regression" names a classifier, so it must not count as a regression request.
  const t = text.replace(/logistic[\s-]+regression/gi, "logistic model");
  if (/\bnode[\s-]+classification\b|\bgcn\b|\bgnn\b|\bgraph[\s-]+(?:neural|convolutional|attention)\b|\bcora\b|\bciteseer\b|\bpubmed\b|\bplanetoid\b|torch_geometric/i.test(t)) {
    return "node_classification";
  }
  if (/\bgraph\b/i.test(t) && /\bnodes?\b/i.test(t) && STRONG_CLASSIFY.test(t)) return "node_classification";
  if (/\bforecast(?:s|ing|er|ers)?\b|\btime[\s-]?series\b|\bfuture\s+sequences?\b/i.test(t)) return "time_series_forecasting";
  if (HORIZON_TASK.test(t)) return "time_series_forecasting";
  const classifyish = STRONG_CLASSIFY.test(t) || /\brecogni[sz]\w*|\bidentif\w*|\bspecies\b|\bsentiment\b|\bentailment\b|\bspam\b/i.test(t);
  if (/\b(?:images?|photos?|pictures?|pixels?|cnns?|resnet[\w-]*|convolutional|computer\s+vision)\b/i.test(t) && classifyish) return "image_classification";
  if (
    /\b(?:texts?|textual|sentences?|reviews?|tweets?|nlp|natural\s+language|language\s+models?|bert|transformers?|sentiment|entailment|headlines?|spam)\b/i.test(t) &&
    classifyish
  ) {
    return "text_classification";
  }
  if (
    /\bclust(?:er|ers|ering|ered)\b|\bunsupervised\b|\bk[\s-]?means\b|\bsegmentation\b|\bsegment\s+(?:[a-z]+\s+){0,3}?into\b|\bgroup\s+(?:[a-z]+\s+){0,4}?into\s+\S+\s+(?:groups|clusters|segments)\b/i.test(t)
  ) {
    return "clustering";
  }
  const strongC = STRONG_CLASSIFY.test(t);
  const strongR = STRONG_REGRESS.test(t);
  if (strongC && !strongR) return "classification";
  if (strongR && !strongC) return "regression";
  if (strongC && strongR) return null;
  const weakC = WEAK_CLASSIFY.some((r) => r.test(t));
  const weakR = WEAK_REGRESS.some((r) => r.test(t));
  if (weakC && !weakR) return "classification";
  if (weakR && !weakC) return "regression";
  return null;
}

/** With no task words, the family of the named metric is the best evidence left. */
export function taskFromMetrics(mentions: MetricMention[]): TaskKind | null {
  const kinds = new Set(
    mentions.map((m) =>
      (["classification", "regression", "clustering"] as const).find((k) => METRIC_FAMILY[k].includes(m.metric)),
    ),
  );
  return kinds.size === 1 ? ([...kinds][0] ?? null) : null;
}

/** Words that mark a message as being about models or data analysis. */
export const RELEVANT_WORDS = [
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

export const CONSULT_RES = [
  /\b(?:which|what)\s+(?:kind\s+of\s+|type\s+of\s+|sort\s+of\s+)?(?:[a-z]+\s+){0,2}?(?:models?|algorithms?|approach(?:es)?|methods?|architectures?|techniques?|classifiers?|estimators?)\b[^.?!]*\b(?:should|would|could|do\s+you|to\s+use|recommend|suggest|best|work)/i,
  /\bhow\s+(?:would|should|could|do|can)\s+(?:you|i|we)\b/i,
  /\b(?:recommend|suggest|advise|advice)\b/i,
  /\bshould\s+(?:i|we)\s+use\b/i,
  /\bwhich\s+(?:one\s+)?(?:is|would\s+be|works)\s+(?:better|best)\b/i,
  /\bwhat(?:'s|\s+is)\s+the\s+best\s+(?:model|algorithm|approach|way|method)/i,
];
export const INQUIRE_RES = [
  /^(?:what|why|when|how\s+(?:does|do|is|are|can)\s+(?!(?:you|i|we)\b))\b[^?]*\?\s*$/i,
  /^(?:what(?:'s|\s+is|\s+are|\s+does)|why|explain|describe|define|tell\s+me\s+about|can\s+you\s+explain|could\s+you\s+explain)\b/i,
  /\bdifference\s+between\b|\bwhat\s+do(?:es)?\s+\S+\s+mean\b|\bmeaning\s+of\b/i,
];
export const BUILD_RES = [
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
