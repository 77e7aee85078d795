// What a named column is for, from the words around it: the target, a column to leave out, the labels
// to judge clusters by. These readers start from the columns found in the text (never free noun
// phrases), so whatever they return is a real column.

import { fold, nameWords, squash, wordKey, type ColumnMention } from "./columns.js";

const PREDICT_VERB = "(?:predict(?:ed|ing)?|forecast(?:ed|ing)?|estimat(?:e|ed|ing)|classif(?:y|ied|ying)|model(?:l?ed|l?ing)?|guess(?:ed|ing)?|determin(?:e|ed|ing)|learn(?:ed|ing)?)";
/** Verbs that aim at the thing to predict with a few words between: "predict which customers will churn". */
const AIM_VERB = `(?:${PREDICT_VERB}|flag(?:ging)?|detect(?:ing)?|identify(?:ing)?|spot(?:ting)?|know|tell|find\\s+out|work\\s+out|figure\\s+out|regress(?:ing)?|regression\\s+(?:on|of|for|sur)|classifier\\s+(?:on|of|for)|clf\\s+(?:on|of|for))`;
/** Words that end the aim: what follows them are inputs, not the target. */
const AIM_BREAK = "(?:from|using|use|with|based|by|without|except|given|via|and|or|but|on|in|at|for|into|then|than|so|because)";
const AIM_LOOSE = new RegExp(`\\b${AIM_VERB}\\b(?:\\s+(?!${AIM_BREAK}\\b)[\\p{L}\\p{N}'’-]+){0,6}\\s+['"\`]?$`, "iu");
/** A question about a column: "which variety is it?", "whats the churn gonna be?", "is it a high demand day?". */
const QUESTION_BEFORE = /(?:^|[.!?]\s*|\b(?:so|and|but)\s+)(?:what(?:'s|s|\s+is|\s+will\s+be)?|which|is\s+(?:it|this|the\s+\p{L}+)(?:\s+(?:a|an))?|are\s+(?:they|the\s+\p{L}+)|will\s+(?:it|they|(?:the|a|an|this|my|each|our)\s+\p{L}+))\s+(?:the\s+)?(?:\p{L}+\s+){0,3}?['"`]?$/iu;
const CLASSIFY_BY = /\b(?:classif(?:y|ying)|categori[sz]e|sort|group|split)\s+(?:the\s+|all\s+)?\p{L}+\s+(?:by|into|according\s+to)\s+(?:their\s+|its\s+|the\s+)?['"`]?$/iu;

/** Words after a column that make it the target: "Churn is what I want to predict", "price prediction". */
const TARGET_AFTER = [
  new RegExp(
    `^\\s*(?:column\\s+)?(?:is|are|=|:)?\\s*(?:what|the\\s+(?:thing|one|column|value)(?:\\s+that)?|which)\\s+(?:i|we|you|they)\\s*(?:'d|would|want|wanna|need|have|am|are|'m|'re|like|plan|hope|try|trying)?(?:\\s+(?:like|want|need|going|trying|hoping|planning))?\\s*(?:to\\s+)?(?:be\\s+)?${PREDICT_VERB}`,
    "i",
  ),
  /^\s*(?:column\s+)?(?:is|will\s+be|should\s+be|=|:|as)\s+(?:the|my|our|your)\s+(?:target|label|outcome|output|response|dependent\s+variable|y)\b/i,
  /^\s*(?:is|are)\s+what\s+(?:i|we|you|they)(?:'re|'m|\s+are|\s+am)?\s+(?:after|interested\s+in|looking\s+for|care\s+about)\b/i,
  /^\s*(?:is|will\s+be)\s+the\s+(?:column|one)\b(?!\s+to\s+(?:drop|ignore|exclude|leave))/i,
  /^\s*(?:column\s+)?(?:is|are)\s+(?:to\s+be|what\s+should\s+be|the\s+thing\s+to\s+be)\s+predicted\b/i,
  /^\s*(?:column\s+)?(?:should|must|needs?\s+to)\s+be\s+predicted\b/i,
];
/** Weaker: a column used as a noun's modifier, "a churn model", "SalePrice regression"; read after the verbs. */
const TARGET_AFTER_WEAK = [
  /^\s*[)'"`]?\s*(?:column\s+)?(?:as\s+an?\s+|[\p{L}]+\s+(?=(?:prediction|regression|classifier|classification|model)\b))?(?:(?:yes\/no|yes-no|0\/1|binary|multi-?class|two-class)\s+)?(?:prediction|predictor|classifier|classification|regression|regressor|forecast(?:ing|er)?|estimation|estimator|analysis)\b/iu,
  /^\s*(?:column\s+)?(?:model|modell?ing)\b(?!\s+(?:size|file))/i,
];

/** Words before a column that make it the target: "a classifier for the Churn column", "target: variety". */
const TARGET_BEFORE = [
  /\b(?:target|tgt|label|outcome|y)\s*(?:column|variable|field)?\s*(?:is|=|:|->|should\s+be|will\s+be)?\s*(?:the\s+)?(?:column\s+)?['"`]?$/i,
  /(?:^|[.!?]\s+)(?:the\s+)?column\s+(?:is|=|:)\s*['"`]?$/i,
  /(?:->|=>|→)\s*['"`]?$/,
  /\b(?:model|classifier|classification|regression|regressor|predictor|estimator)\s+(?:for|of|on|that\s+predicts|to\s+predict|predicting)\s+(?:the\s+)?(?:column\s+)?['"`]?$/i,
  new RegExp(`\\b${AIM_VERB}\\b[^.;!?\\n]{0,80}\\(\\s*(?:the\\s+|i\\.?e\\.?,?\\s+|aka\\s+|column\\s+)?(?:column\\s+)?['"\`]?$`, "i"),
  new RegExp(`\\b${PREDICT_VERB}\\s+(?:the\\s+|a\\s+|an\\s+|its\\s+|their\\s+|each\\s+|every\\s+)?(?:column\\s+|value\\s+of\\s+(?:the\\s+)?)?['"\`]?$`, "i"),
];
/** "use Survived as the label": the verb before, the role after. */
const USE_BEFORE = /\b(?:use|using|treat|take)\s+(?:the\s+)?['"`]?$/i;
/** "I'd like the sale prices predicted", "survived? predict it". */
const TARGET_AFTER_LOOSE = [
  /^\s*['"`]?\s*(?:predicted|forecast(?:ed)?|estimated|classified)\b/i,
  /^\s*['"`]?\s*\?/,
  /^[^.;!?\n]{0,30}?\b(?:be|being|get|gets)\s+(?:predicted|forecast|estimated|classified)\b/i,
  /^[^.;!?\n]{0,20}?\b(?:can|could|would)\s+you\s+(?:predict|model|estimate|forecast|classify)\s+(?:it|them|this|that)\b/i,
];
/** "R² ≥ 0.85 for SalePrice": a goal stated for a column. */
const GOAL_FOR = /\d%?\s+(?:for|on|when\s+predicting)\s+(?:the\s+)?['"`]?$/i;
const TARGET_AFTER_USE = /^\s*(?:column\s+)?as\s+(?:the\s+)?(?:target|label|outcome|y)\b/i;

/** Words before a column that leave it out: "ignore the name column", "don't look at region", "(not the id)". */
const DROP_BEFORE = [
  /\b(?:no|drop\s*:|exclude\s*:|ignore\s*:)\s+(?:the\s+)?['"`]?$/i,
  /\b(?:ignore|ignoring|exclude|excluding|drop|dropping|remove|removing|omit|omitting|disregard|disregarding|discard|discarding|skip|skipping|minus|except(?:\s+for)?|apart\s+from|other\s+than|besides|throw\s+(?:away|out)|throwing\s+(?:away|out)|get\s+rid\s+of|toss|ditch|lose)\s+(?:the\s+|any\s+|all\s+)?(?:columns?\s+|features?\s+|fields?\s+)?['"`]?$/i,
  /\b(?:everything|all(?:\s+(?:the\s+)?(?:other\s+)?(?:columns|features))?)\s+(?:but|except|save)\s+(?:the\s+)?['"`]?$/i,
  /\bexclu(?:ded|de|sions?)\s*(?:features?|columns?|fields?|inputs?)?\s*[:=-]\s*['"`]?$/i,
  /\b(?:without|w\/o)\s+(?:using\s+|looking\s+at\s+)?(?:the\s+|any\s+)\p{L}+\s+['"`]?$/iu,
  /\bnot\s+(?:take|taking|use|using|include|including)\s+(?:the\s+|its\s+|their\s+|his\s+|her\s+)?['"`]?$/i,
  /\b(?:leave|leaving|keep|keeping|take|taking)\s+out\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i,
  /\b(?:don'?t|do\s+not|doesn'?t|does\s+not|never|shouldn'?t|should\s+not|mustn'?t|must\s+not|won'?t|will\s+not|please\s+don'?t|no\s+need\s+to)\s+(?:use|look\s+at|include|consider|touch|feed(?:\s+it)?|train\s+on|rely\s+on|need)\s+(?:the\s+|any\s+)?(?:columns?\s+|features?\s+)?['"`]?$/i,
  /(?:\bwithout|\bw\/o)\s+(?:using\s+|looking\s+at\s+)?(?:the\s+|any\s+|la\s+|le\s+|les\s+|l')?(?:columns?\s+|features?\s+)?['"`]?$/i,
  /(?:^|[(,;:.!?]|\bbut|\band)\s*(?:not|no)\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i,
  /\bno\s+(?:use|using)\s+(?:of\s+)?(?:the\s+)?['"`]?$/i,
  /\bnot\s+(?:using|including|with)\s+(?:the\s+|its\s+|their\s+)?['"`]?$/i,
];
/** Verbs and function words that cannot be a describing word before a column name. */
const ANY_VERB = new RegExp(`^(?:${PREDICT_VERB}|use|using|and|or|but|then|the|with|from|predict|keep|include|only|also|not|all)$`, "i");

/** Words after a column that leave it out: "leave the variety column out", "region is just noise". */
const DROP_AFTER = [
  /^\s*['"`]?\s*(?:columns?\s+|fields?\s+|features?\s+|variables?\s+)?(?:out|aside)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:(?:is|are)\s+(?:off[\s-]limits|not\s+allowed|forbidden|excluded|banned|out)|(?:stays?|remains?|kept|is\s+kept|are\s+kept)\s+out|excluded|dropped|removed|ignored)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:is|are)\s+(?:just\s+|only\s+|an?\s+|the\s+)*(?:id|ids|identifier|useless|irrelevant|noise|not\s+(?:useful|needed|relevant|a\s+feature)|leak(?:y|age)?)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:should(?:n'?t|\s+not)|must(?:n'?t|\s+not)|can(?:'?t|not))\s+be\s+used\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?[^.;!?\n]{0,80}?\b(?:must|should|can|may)(?:\s+\w+)?\s+(?:not|never)\s+be\s+used\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?[^.;!?\n]{0,40}?\b(?:must|should|can|may)(?:\s+\w+)?\s+(?:not|never)\s+be\s+(?:an?\s+)?(?:input|feature|predictor)s?\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?[^.;!?\n]{0,60}?\b(?:must|should|needs?\s+to|has\s+to|have\s+to)\s+be\s+(?:excluded|dropped|removed|ignored|left\s+out|discarded)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:is|are)\s+(?:just\s+|only\s+|mere\s+)?(?:an?\s+)?(?:row\s+)?identifiers?\b/i,
];
const LEAVE_BEFORE = /\b(?:leave|leaving|keep|keeping|take|taking|set|put)\s+(?:the\s+)?['"`]?$/i;

/** Words before a column that make it the labels to judge clusters by: "score the groups against variety". */
const LABELS_BEFORE = [
  /\b(?:score|scored|scoring|evaluat\w*|compar\w*|check\w*|judg\w*|validat\w*|measur\w*|assess\w*|test\w*|benchmark\w*|grad\w*|match\w*|rat\w*|correspond\w*|line\s+up|lines\s+up|lining\s+up|align\w*|agree\w*|overlap\w*|recover\w*|reproduc\w*|captur\w*)\b[^.;!?\n]{0,50}?\b(?:against|versus|vs\.?|with|using|by|to|on)\s+(?:(?:whether|if|how)\s+(?:they|it|the\s+\p{L}+)\s+(?:were|was|are|is|have|has|did)?\s*)?(?:the\s+|their\s+|its\s+)?(?:known\s+|true\s+|actual\s+|real\s+|existing\s+|given\s+)?(?:labels?\s+(?:in|of|from)\s+(?:the\s+)?)?(?:column\s+)?['"`]?$/iu,
  /\b(?:match|matches|matching|correspond(?:s|ing)?\s+to|line\s+up\s+with|align\s+with|recover|recovers|reproduce|capture)\s+(?:the\s+|their\s+|its\s+)?(?:\p{L}+\s+)?['"`]?$/iu,
  /\b(?:known|true|ground[\s-]truth|actual|real)\s+(?:labels?|groups|classes|categories)\s+(?:are\s+|is\s+|live\s+)?(?:in\s+|from\s+)?(?:the\s+)?(?:column\s+)?['"`]?$/i,
];
const LABELS_VS = /\b(?:against|versus|vs\.?)\s+(?:the\s+)?(?:known\s+|true\s+|actual\s+)?(?:column\s+)?['"`]?$/i;
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
    // "a model on the energy data" names the dataset, not a column
    if (/^\s*(?:data|dataset|file|table|csv|sheet|spreadsheet)\b/i.test(next)) continue;
    if (TARGET_BEFORE.some((r) => r.test(before))) return lastOfRun(text, mentions, m);
    if (USE_BEFORE.test(before) && TARGET_AFTER_USE.test(next)) return m.column;
    if (CLASSIFY_BY.test(before) || GOAL_FOR.test(before)) return m.column;
  }
  return null;
}

/** Looser readings, tried after the anchored ones: a verb a few words before, a question, "… predicted". */
export function targetFromAim(text: string, mentions: ColumnMention[]): string | null {
  // a column's full name before a lone word: "which pumps will fail next month" is about `Failure Next Month`
  const ordered = [...mentions.filter((m) => m.how !== "partial"), ...mentions.filter((m) => m.how === "partial")];
  for (const m of ordered) {
    const before = clauseBefore(text, m, 70);
    const next = after(text, m);
    if (AIM_LOOSE.test(before) && !DROP_BEFORE.some((r) => r.test(before))) return lastOfRun(text, mentions, m);
    if (TARGET_AFTER_LOOSE.some((r) => r.test(next))) return m.column;
    if (QUESTION_BEFORE.test(before) && /^[^.!?\n]{0,30}\?/.test(next)) return m.column;
  }
  return null;
}

/** "classify review sentiment": of two names written side by side, the last is the one meant. */
function lastOfRun(text: string, mentions: ColumnMention[], m: ColumnMention): string {
  let cur = m;
  for (const n of mentions) if (n.start >= cur.end && n.how !== "partial" && /^ ['"`]?$/.test(text.slice(cur.end, n.start))) cur = n;
  return cur.column;
}

/**
 * Two columns given as the target ("predict Churn and TotalCharges", "size_mm or radius_mean"): the
 * request names both, so the engine asks which rather than pick one.
 */
export function rivalTargets(text: string, mentions: ColumnMention[], target: string): string[] {
  const i = mentions.findIndex((m) => m.column === target);
  if (i < 0) return [];
  const rivals = [target];
  for (const step of [1, -1]) {
    let cur = mentions[i];
    for (let j = i + step; j >= 0 && j < mentions.length; j += step) {
      const n = mentions[j];
      const gap = step === 1 ? text.slice(cur.end, n.start) : text.slice(n.end, cur.start);
      if (!/^\s*['"`]?\s*(?:,\s*(?:or|and)?|\s(?:or|and|and\/or|vs\.?|versus)\s|\/)\s*(?:the\s+|maybe\s+|perhaps\s+)?['"`]?\s*$/i.test(gap)) break;
      if (DROP_BEFORE.some((r) => r.test(text.slice(Math.max(0, n.start - 40), n.start)))) break;
      if (n.column !== target && !rivals.includes(n.column)) rivals.push(n.column);
      cur = n;
    }
  }
  return rivals.length > 1 ? rivals : [];
}

/** "using annual_income and spending_score only": the columns to keep; everything else is left out. */
export function onlyColumns(text: string, mentions: ColumnMention[], columns: readonly string[] = []): string[] {
  // "from the petal measurements only": a word several columns share names the group
  const group = /\b(?:from|using|with|on|use)\s+(?:only\s+|just\s+)?(?:the\s+|their\s+)?(\p{L}{3,})\s+(?:measurements|columns|features|values|variables|fields|readings)\s+(?:only|alone)\b|\b(?:only|just)\s+(?:use\s+|using\s+)?(?:the\s+|their\s+)?(\p{L}{3,})\s+(?:measurements|columns|features|values|variables|fields|readings)\b/iu.exec(text);
  if (group) {
    const key = wordKey(group[1] ?? group[2]);
    const members = columns.filter((c) => nameWords(c).includes(key));
    if (members.length >= 2) return members;
  }
  for (let i = 0; i < mentions.length; i++) {
    const before = clauseBefore(text, mentions[i], 40);
    const lead = /\b(?:using|use|with|on|from|based\s+on)\s+(?:only|just|solely)\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i.test(before) || /\b(?:only|just|solely)\s+(?:use|using|with|on|from)\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i.test(before);
    const trail = /\b(?:using|use|with|on|from|based\s+on)\s+(?:the\s+)?(?:columns?\s+)?['"`]?$/i.test(before);
    const run = [mentions[i]];
    for (let j = i + 1; j < mentions.length; j++) {
      if (!/^\s*['"`]?\s*(?:,\s*(?:and\s+)?|\s(?:and|&)\s|\s*\+\s*)(?:the\s+)?['"`]?\s*$/i.test(text.slice(run[run.length - 1].end, mentions[j].start))) break;
      run.push(mentions[j]);
    }
    const tail = text.slice(run[run.length - 1].end, run[run.length - 1].end + 25);
    // "predict horsepower from displacement, weight and cylinders": a list of inputs after "from" is the whole list
    const fromList = /\bfrom\s+(?:the\s+|their\s+|its\s+)?(?:columns?\s+)?['"`]?$/i.test(before) && new Set(run.map((m) => m.column)).size >= 2 && !/^\s*(?:,|and|etc|\.\.\.|…)?\s*(?:etc|and\s+(?:more|others|so\s+on|the\s+rest))\b/i.test(tail);
    // "… from income and age... actually use all columns except CustomerID": the correction wins
    const corrected = /\b(?:actually|instead|on\s+second\s+thought|scratch\s+that|i\s+mean)\b[^.;!?\n]{0,40}\b(?:all|every)\s+(?:the\s+)?(?:other\s+)?(?:columns|features|fields)\b/i.test(text.slice(run[run.length - 1].end));
    if (corrected) continue;
    if (lead || fromList || (trail && /^\s*['"`]?\s*(?:columns?\s+)?(?:only|alone)\b/i.test(tail))) return [...new Set(run.map((m) => m.column))];
  }
  return [];
}

/** Columns the words around them leave out, including lists ("PassengerId, Name and Ticket"). */
export function dropsFromMentions(text: string, mentions: ColumnMention[]): string[] {
  const out: string[] = [];
  let previous: ColumnMention | null = null;
  let previousDropped = false;
  for (const m of mentions) {
    const before = clauseBefore(text, m);
    const next = after(text, m);
    const listed: boolean = previous !== null && (previousDropped || out.includes(previous.column)) && /^\s*[)'"`]?\s*(?:columns?\s+)?\(?\s*(?:,\s*(?:and\s+|or\s+|nor\s+)?|\s(?:and|or|nor)\s|\s*&\s*|\s*\/\s*|\s*\+\s*)(?:the\s+|also\s+|(?:whether|if)\s+(?:it|they|the\s+\p{L}+)\s+(?:was|were|is|are|got|gets|has\s+been)\s+)?(?:\p{L}{3,}\s+)?['"`]?\s*$/iu.test(text.slice(previous.end, m.start));
    // "don't use the reviewer name": one describing word may stand between the verb and the column
    const skipped = before.replace(/(?<=\s)(\p{L}{3,})\s+$/u, (w, word: string) => (ANY_VERB.test(word) ? w : ""));
    const dropped: boolean =
      listed ||
      DROP_BEFORE.some((r) => r.test(before) || (skipped !== before && r.test(skipped))) ||
      DROP_AFTER.some((r) => r.test(next)) ||
      (LEAVE_BEFORE.test(before) && /^\s*['"`]?\s*(?:columns?\s+|fields?\s+|features?\s+)?(?:out|aside)\b/i.test(next));
    if (dropped && !out.includes(m.column)) out.push(m.column);
    // "leave petal.width and petal.length out": the list before the closing "out" is left out too
    if (!listed && dropped && (DROP_AFTER.some((r) => r.test(next)) || /^\s*['"`]?\s*(?:columns?\s+|fields?\s+|features?\s+)?(?:out|aside)\b/i.test(next))) {
      let k = mentions.indexOf(m);
      while (k > 0 && /^\s*['"`]?\s*(?:,\s*(?:and\s+)?|\s(?:and|or)\s|\s*&\s*)(?:the\s+)?['"`]?\s*$/i.test(text.slice(mentions[k - 1].end, mentions[k].start))) {
        k--;
        if (!out.includes(mentions[k].column)) out.push(mentions[k].column);
      }
    }
    previous = m;
    previousDropped = dropped;
  }
  return out;
}

/** Words before a column that keep it as an input: "keep approved_code", "use the code anyway", "leave X in". */
const KEEP_BEFORE = /\b(?:keep|keeping|use|using|include|including|retain|retaining|allow|allowing)\s+(?:the\s+|column\s+)?(?:columns?\s+|features?\s+)?['"`]?$/i;
const KEEP_NOT = /\b(?:don'?t|do\s+not|doesn'?t|does\s+not|never|not|no\s+need\s+to|stop|shouldn'?t|should\s+not|mustn'?t|must\s+not|won'?t)\s+\p{L}+\s+(?:the\s+|column\s+)?(?:columns?\s+|features?\s+)?['"`]?$/iu;
/** Words after a column that keep it: "approved_code is fine", "X is not a leak", "keep X in". */
const KEEP_AFTER = [
  /^\s*['"`]?\s*(?:columns?\s+)?(?:is|are|'s)\s+(?:fine|ok|okay|legit(?:imate)?|allowed|valid|good\s+to\s+use|a\s+(?:real|legitimate|valid|genuine|fair)\s+(?:feature|input|predictor)|not\s+(?:a\s+)?leak(?:age|ing|y)?)\b/i,
  /^\s*['"`]?\s*(?:columns?\s+)?(?:can|may|should)\s+(?:stay|be\s+used|be\s+kept|be\s+included)\b/i,
];
const LEAVE_IN = /^\s*['"`]?\s*(?:columns?\s+|features?\s+)?in\b/i;

/**
 * Columns the words keep as inputs: a column set aside (an identifier, a column that predicts the
 * target on its own) comes back when the user asks for it. Never one used as the target ("use Survived
 * as the label"); the caller leaves out the columns the same words drop.
 */
export function keptFromMentions(text: string, mentions: ColumnMention[]): string[] {
  const out: string[] = [];
  let previousKept = false;
  let previous: ColumnMention | null = null;
  for (const m of mentions) {
    const before = clauseBefore(text, m, 60);
    const next = after(text, m);
    const listed: boolean = previousKept && previous !== null && /^\s*['"`]?\s*(?:,\s*(?:and\s+)?|\s(?:and|&)\s)(?:the\s+)?['"`]?\s*$/i.test(text.slice(previous.end, m.start));
    const keeps: boolean =
      (listed || (KEEP_BEFORE.test(before) && !KEEP_NOT.test(before)) || KEEP_AFTER.some((r) => r.test(next)) || (LEAVE_BEFORE.test(before) && LEAVE_IN.test(next))) &&
      !TARGET_AFTER_USE.test(next) &&
      !DROP_AFTER.some((r) => r.test(next));
    if (keeps && !out.includes(m.column)) out.push(m.column);
    previousKept = keeps;
    previous = m;
  }
  return out;
}

/** The column the words around it make the clusters' reference labels. */
export function labelsFromMentions(text: string, mentions: ColumnMention[]): string | null {
  for (const m of mentions) {
    const before = clauseBefore(text, m, 120);
    if (LABELS_BEFORE.some((r) => r.test(before)) || LABELS_VS.test(before) || LABELS_AFTER.test(after(text, m))) return m.column;
  }
  return null;
}

/**
 * A category value named as the thing to predict: "predict which tumours are malignant" makes the
 * column holding "malignant" the target and "malignant" its positive class. Only a value found in
 * exactly one column counts.
 */
export function targetFromValues(text: string, values: Record<string, readonly string[]>): { column: string; value: string | null } | null {
  const patterns: RegExp[] = [
    /\b(?:predict|tell|determin|flag|detect|identif|spot|find|classif|know|guess|work\s+out|figure\s+out)\w*(?:\s+(?:me|us))?\s+(?:which|whether|if|who|what|when)\b[^.;!?\n]{0,60}?\b(?:is|are|was|were|will\s+be|would\s+be|will|would|gets?|turns?\s+out|becomes?|ends?\s+up|be)\s+(?:(?:a|an|not|going\s+to)\s+)?(?:be\s+)?([\p{L}][\p{L}\p{N}_-]*)/giu,
    /\b(?:flag|detect|identify|spot|find|catch|predict|pick\s+out|single\s+out)\w*(?:\s+(?:me|us))?\s+(?:the\s+|all\s+|any\s+)?([\p{L}][\p{L}\p{N}_-]*)\s+(?:ones|\p{L}+s)\b/giu,
  ];
  // Two values of one column set against each other: "benign or malignant?", "tell spam from ham".
  for (const m of text.matchAll(/\b([\p{L}][\p{L}\p{N}_-]*)(?:\s+(?:or|vs\.?|versus|from|and)\s+(?:not\s+)?|\s*\/\s*)([\p{L}][\p{L}\p{N}_-]*)\b/giu)) {
    const [a, b] = [fold(m[1]), fold(m[2])];
    if (a === b) continue;
    const owners = Object.entries(values).filter(([, vals]) => vals.some((v) => fold(v) === a) && vals.some((v) => fold(v) === b));
    if (owners.length === 1) return { column: owners[0][0], value: null };
  }
  patterns.push(/(?:^|[.!?]\s*)(?:which|what)\s+\p{L}+\s+(?:are|is|were|was|will\s+be)\s+(?:a\s+|an\s+)?([\p{L}][\p{L}\p{N}_-]*)/giu);
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

/** "precision above 0.8 for negative reviews", "90% recall on malignant": the class a goal is about. */
export function positiveFromGoal(text: string, values: readonly string[]): string | null {
  for (const m of text.matchAll(/\b(?:precision|recall|f1|f-score|sensitivity)\b(?:[^.;!?\n]|\.\d){0,40}?\b(?:for|on|of)\s+(?:the\s+)?(?:['"`]([^'"`\n]{1,40})['"`]|([\p{L}][\p{L}\p{N}_-]*))/giu)) {
    const v = values.find((x) => fold(x) === fold(m[1] ?? m[2]));
    if (v) return v;
  }
  return null;
}

/** Words before a column that make it an input: "using LotArea", "from the weather", "based on age". */
const FEATURE_BEFORE = /\b(?:from|using|use|with|given|based\s+on|via|features?:?|inputs?:?|predictors?:?)\s+(?:the\s+|its\s+|their\s+)?(?:columns?\s+)?['"`]?$/i;

/**
 * The one column a short request names without a role ("SalePrice. r2 ≥ 0.8", "churn, precision ≥ 0.65"):
 * with nothing else named, it is what the user wants predicted. Inputs and left-out columns never count.
 */
export function soleColumn(text: string, mentions: ColumnMention[], taken: readonly string[]): string | null {
  const open = mentions.filter((m) => !taken.includes(m.column) && !/^\s*(?:data|dataset|file|table|csv|sheet)\b/i.test(after(text, m)));
  const full = open.filter((m) => m.how !== "partial");
  // a lone word counts only when nothing else is named at all: "who lived and who died" for `Survived`
  const named = full.length ? full : new Set(open.map((m) => m.column)).size === 1 ? open : [];
  const columns = [...new Set(named.map((m) => m.column))];
  if (columns.length !== 1) return null;
  return named.some((m) => FEATURE_BEFORE.test(clauseBefore(text, m, 40))) ? null : columns[0];
}

/**
 * Columns left out as a group: "ignore both loads", "without any of the glazing columns", "don't use the
 * PAY_AMT columns": every column whose name holds the word (or starts with the written prefix), when
 * there are at least two.
 */
export function groupDrops(text: string, columns: readonly string[]): string[] {
  const out: string[] = [];
  const re = /\b(?:ignore|ignoring|exclude|excluding|drop|dropping|remove|removing|omit|skip|without|w\/o|(?:don'?t|do\s+not|never)\s+(?:use|include))\s+(?:both|all|any|all\s+of|any\s+of)?\s*(?:the\s+)?([\p{L}][\p{L}\p{N}_.-]*?)(?:\s+(?:columns|features|fields|variables|measurements)|s)\b/giu;
  for (const m of text.matchAll(re)) {
    const word = m[1];
    const key = wordKey(word);
    let members = columns.filter((c) => nameWords(c).includes(key));
    if (members.length < 2) members = columns.filter((c) => squash(c).startsWith(squash(word)) && squash(word).length >= 3);
    if (members.length >= 2) for (const c of members) if (!out.includes(c)) out.push(c);
  }
  return out;
}