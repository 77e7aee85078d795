// What a named column is for, from the words around it: the target, a column to leave out, the labels
// to judge clusters by. These readers start from the columns found in the text (never free noun
// phrases), so whatever they return is a real column.

import { fold, type ColumnMention } from "./columns.js";

const PREDICT_VERB = "(?:predict(?:ed|ing)?|forecast(?:ed|ing)?|estimat(?:e|ed|ing)|classif(?:y|ied|ying)|model(?:l?ed|l?ing)?|guess(?:ed|ing)?|determin(?:e|ed|ing)|learn(?:ed|ing)?)";

/** Words after a column that make it the target: "Churn is what I want to predict", "price prediction". */
const TARGET_AFTER = [
  new RegExp(
    `^\\s*(?:column\\s+)?(?:is|are|=|:)?\\s*(?:what|the\\s+(?:thing|one|column|value)(?:\\s+that)?|which)\\s+(?:i|we|you|they)\\s*(?:'d|would|want|wanna|need|have|am|are|'m|'re|like|plan|hope|try|trying)?(?:\\s+(?:like|want|need|going|trying|hoping|planning))?\\s*(?:to\\s+)?(?:be\\s+)?${PREDICT_VERB}`,
    "i",
  ),
  /^\s*(?:column\s+)?(?:is|will\s+be|should\s+be|=|:|as)\s+(?:the|my|our|your)\s+(?:target|label|outcome|output|response|dependent\s+variable|y)\b/i,
  /^\s*(?:column\s+)?(?:is|are)\s+(?:to\s+be|what\s+should\s+be|the\s+thing\s+to\s+be)\s+predicted\b/i,
  /^\s*(?:column\s+)?(?:should|must|needs?\s+to)\s+be\s+predicted\b/i,
];
/** Weaker: a column used as a noun's modifier, "a churn model", "SalePrice regression"; read after the verbs. */
const TARGET_AFTER_WEAK = [
  /^\s*(?:column\s+)?(?:prediction|predictor|classifier|classification|regression|regressor|forecast(?:ing|er)?|estimation|estimator)\b/i,
  /^\s*(?:column\s+)?(?:model|modell?ing)\b(?!\s+(?:size|file))/i,
];

/** Words before a column that make it the target: "a classifier for the Churn column", "target: variety". */
const TARGET_BEFORE = [
  /\b(?:target|label|outcome|y)\s*(?:column|variable|field)?\s*(?:is|=|:|->|should\s+be|will\s+be)\s*(?:the\s+)?(?:column\s+)?['"`]?$/i,
  /\b(?:model|classifier|classification|regression|regressor|predictor|estimator)\s+(?:for|of|on|that\s+predicts|to\s+predict|predicting)\s+(?:the\s+)?(?:column\s+)?['"`]?$/i,
  new RegExp(`\\b${PREDICT_VERB}\\b[^.;!?\\n]{0,60}\\(\\s*(?:the\\s+|i\\.?e\\.?,?\\s+|aka\\s+|column\\s+)?(?:column\\s+)?['"\`]?$`, "i"),
  new RegExp(`\\b${PREDICT_VERB}\\s+(?:the\\s+|a\\s+|an\\s+|its\\s+|their\\s+|each\\s+|every\\s+)?(?:column\\s+|value\\s+of\\s+(?:the\\s+)?)?['"\`]?$`, "i"),
  /\b(?:use|using|treat|take)\s+(?:the\s+)?['"`]?$/i,
];
const TARGET_AFTER_USE = /^\s*(?:column\s+)?as\s+(?:the\s+)?(?:target|label|outcome|y)\b/i;

/** Words before a column that leave it out: "ignore the name column", "don't look at region", "(not the id)". */
const DROP_BEFORE = [
  /\b(?:ignore|ignoring|exclude|excluding|drop|dropping|remove|removing|omit|omitting|disregard|disregarding|discard|discarding|skip|skipping|minus|except(?:\s+for)?|apart\s+from|other\s+than|besides)\s+(?:the\s+|any\s+|all\s+)?(?:columns?\s+|features?\s+|fields?\s+)?['"`]?$/i,
  /\b(?:leave|leaving|keep|keeping|take|taking)\s+out\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i,
  /\b(?:don'?t|do\s+not|doesn'?t|does\s+not|never|shouldn'?t|should\s+not|mustn'?t|must\s+not|won'?t|will\s+not|please\s+don'?t|no\s+need\s+to)\s+(?:use|look\s+at|include|consider|touch|feed(?:\s+it)?|train\s+on|rely\s+on|need)\s+(?:the\s+|any\s+)?(?:columns?\s+|features?\s+)?['"`]?$/i,
  /\bwithout\s+(?:using\s+|looking\s+at\s+)?(?:the\s+|any\s+)?(?:columns?\s+|features?\s+)?['"`]?$/i,
  /(?:^|[(,;:]|\bbut|\band)\s*(?:not|no)\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i,
  /\bnot\s+(?:using|including|with)\s+(?:the\s+)?['"`]?$/i,
];
/** Words after a column that leave it out: "leave the variety column out", "region is just noise". */
const DROP_AFTER = [
  /^\s*['"`]?\s*(?:columns?\s+)?(?:out|aside)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:is|are)\s+(?:just\s+|only\s+|an?\s+|the\s+)*(?:id|ids|identifier|useless|irrelevant|noise|not\s+(?:useful|needed|relevant|a\s+feature)|leak(?:y|age)?)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:should(?:n'?t|\s+not)|must(?:n'?t|\s+not)|can(?:'?t|not))\s+be\s+used\b/i,
];
const LEAVE_BEFORE = /\b(?:leave|leaving|keep|keeping|take|taking|set|put)\s+(?:the\s+)?['"`]?$/i;

/** Words before a column that make it the labels to judge clusters by: "score the groups against variety". */
const LABELS_BEFORE = [
  /\b(?:score|scored|scoring|evaluat\w*|compar\w*|check\w*|judg\w*|validat\w*|measur\w*|assess\w*|test\w*|benchmark\w*|grad\w*|match\w*|rat\w*)\b[^.;!?\n]{0,50}?\b(?:against|versus|vs\.?|with|using|by|to|on)\s+(?:the\s+)?(?:known\s+|true\s+|actual\s+|real\s+|existing\s+|given\s+)?(?:labels?\s+(?:in|of|from)\s+(?:the\s+)?)?(?:column\s+)?['"`]?$/i,
  /\b(?:known|true|ground[\s-]truth|actual|real)\s+(?:labels?|groups|classes|categories)\s+(?:are\s+|is\s+|live\s+)?(?:in\s+|from\s+)?(?:the\s+)?(?:column\s+)?['"`]?$/i,
];
const LABELS_AFTER = /^\s*['"`]?\s*(?:column\s+)?(?:as|for)\s+(?:the\s+)?(?:ground[\s-]truth|reference|labels?|true\s+labels?|answer\s+key)\b/i;

function clauseBefore(text: string, m: ColumnMention, reach = 90): string {
  return text.slice(Math.max(0, m.start - reach), m.start);
}

function after(text: string, m: ColumnMention, reach = 80): string {
  return text.slice(m.end, m.end + reach);
}

/** The column the words around it make the target; the first such mention wins. */
export function targetFromMentions(text: string, mentions: ColumnMention[], weak = false): string | null {
  for (const m of mentions) {
    if (weak) {
      if (TARGET_AFTER_WEAK.some((r) => r.test(after(text, m)))) return m.column;
      continue;
    }
    const before = clauseBefore(text, m);
    const next = after(text, m);
    if (TARGET_AFTER.some((r) => r.test(next))) return m.column;
    const strong = TARGET_BEFORE.slice(0, 4);
    if (strong.some((r) => r.test(before))) return m.column;
    if (TARGET_BEFORE[4].test(before) && TARGET_AFTER_USE.test(next)) return m.column;
  }
  return null;
}

/** Columns the words around them leave out, including lists ("PassengerId, Name and Ticket"). */
export function dropsFromMentions(text: string, mentions: ColumnMention[]): string[] {
  const out: string[] = [];
  let previous: ColumnMention | null = null;
  let previousDropped = false;
  for (const m of mentions) {
    const before = clauseBefore(text, m);
    const next = after(text, m);
    const listed: boolean = previous !== null && previousDropped && /^\s*['"`]?\s*(?:columns?\s+)?(?:,\s*(?:and\s+|or\s+|nor\s+)?|\s(?:and|or|nor)\s|\s*&\s*|\s*\/\s*|\s*\+\s*)(?:the\s+|also\s+)?['"`]?\s*$/i.test(text.slice(previous.end, m.start));
    const dropped: boolean =
      listed ||
      DROP_BEFORE.some((r) => r.test(before)) ||
      DROP_AFTER.some((r) => r.test(next)) ||
      (LEAVE_BEFORE.test(before) && /^\s*['"`]?\s*(?:columns?\s+)?(?:out|aside)\b/i.test(next));
    if (dropped && !out.includes(m.column)) out.push(m.column);
    previous = m;
    previousDropped = dropped;
  }
  return out;
}

/** The column the words around it make the clusters' reference labels. */
export function labelsFromMentions(text: string, mentions: ColumnMention[]): string | null {
  for (const m of mentions) {
    if (LABELS_BEFORE.some((r) => r.test(clauseBefore(text, m, 120))) || LABELS_AFTER.test(after(text, m))) return m.column;
  }
  return null;
}

/**
 * A category value named as the thing to predict: "predict which tumours are malignant" makes the
 * column holding "malignant" the target and "malignant" its positive class. Only a value found in
 * exactly one column counts.
 */
export function targetFromValues(text: string, values: Record<string, readonly string[]>): { column: string; value: string } | null {
  const patterns = [
    /\b(?:predict|tell|determin|flag|detect|identif|spot|find|classif|know|guess|work\s+out|figure\s+out)\w*\s+(?:which|whether|if|who|what|when)\b[^.;!?\n]{0,60}?\b(?:is|are|was|were|will\s+be|would\s+be|will|would|gets?|turns?\s+out|becomes?|ends?\s+up|be)\s+(?:(?:a|an|not|going\s+to)\s+)?(?:be\s+)?([\p{L}][\p{L}\p{N}_-]*)/giu,
    /\b(?:flag|detect|identify|spot|find|catch|predict)\w*\s+(?:the\s+|all\s+)?([\p{L}][\p{L}\p{N}_-]*)\s+(?:ones|cases|rows|records|customers|patients|tumou?rs|samples|items|transactions|people)\b/giu,
  ];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const word = fold(m[1]);
      if (word.length < 3) continue;
      const owners = Object.entries(values).flatMap(([column, vals]) => vals.filter((v) => fold(v) === word).map((v) => ({ column, value: v })));
      if (owners.length === 1) return owners[0];
    }
  }
  return null;
}
