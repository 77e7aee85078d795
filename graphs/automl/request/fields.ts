// Fields read from the request: target, labels, exclusions, positive class, cluster count, models, paths, domain.

import { type TaskKind } from "../../../src/schema/requirements.js";
import { firstNameAfter, looksLikeNonColumn, readName, resolveColumn, type ColumnMention } from "./columns.js";
import { count } from "./forecast.js";
import { DOMAIN_KEYWORDS, HORIZON_UNIT_SRC, MODEL_SYNONYMS, NAME_STOP, NOT_A_COLUMN, NUMBER_WORDS, NUMBER_WORD_SRC } from "./lexicon.js";
import { targetFromAim, targetFromMentions } from "./roles.js";
import { Span, allMatches, mask } from "./text.js";

/** Where model names are written, so their digits ("ResNet50") and words are not read as anything else. */
export function findModelSpans(text: string): Span[] {
  let work = text;
  const spans: Span[] = [];
  for (const { re } of MODEL_SYNONYMS) {
    const found: Span[] = [];
    for (const m of allMatches(work, re)) found.push({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length });
    spans.push(...found);
    work = mask(work, found);
  }
  return spans;
}

export function findModels(text: string): string[] {
  let work = text;
  const hits: { key: string; start: number }[] = [];
  for (const { key, re } of MODEL_SYNONYMS) {
    const spans: Span[] = [];
    for (const m of allMatches(work, re)) {
      const start = m.index ?? 0;
      spans.push({ start, end: start + m[0].length });
      // "don't use XGBoost", "avoid neural networks": a refusal, not a request.
      const before = text.slice(Math.max(0, start - 25), start);
      if (/\b(?:not|don't|never|avoid|avoiding|without|except|no|instead\s+of|rather\s+than)\b[^.,;]*$/i.test(before)) continue;
      hits.push({ key, start });
    }
    work = mask(work, spans);
  }
  hits.sort((a, b) => a.start - b.start);
  return [...new Set(hits.map((h) => h.key))];
}

const PATH_EXT_RE = /[\w-]\.(?:csv|tsv|zip|json|jsonl|ndjson|parquet|txt|xlsx|xlsm|xls)(?:\.(?:gz|zip|bz2))?$/i;
/** A folder written with a trailing slash ("photos/", "./data/pets/"). */
const FOLDER_RE = /^(?:~|\.{1,2})?\/?(?:[\w.-]+\/)+$/;

function isDataPath(token: string): boolean {
  return PATH_EXT_RE.test(token) || (FOLDER_RE.test(token) && !token.includes("//") && /[A-Za-z]/.test(token));
}

/** File-name tokens: quoted strings (may hold spaces) and bare words ending in a data extension. */
export function findPathSpans(text: string): (Span & { path: string })[] {
  const hits: (Span & { path: string })[] = [];
  for (const m of text.matchAll(/(["'`])([^"'`\n]{1,200}?)\1/g)) {
    const inner = m[2].trim();
    if (!isDataPath(inner)) continue;
    const start = m.index ?? 0;
    hits.push({ start, end: start + m[0].length, path: inner });
  }
  const quoted = [...hits];
  // Scanning whole tokens keeps this linear; a regex with an open prefix backtracks badly on long words.
  for (const m of text.matchAll(/[^\s"'`<>()[\]{}|,;]+/g)) {
    const start = m.index ?? 0;
    if (quoted.some((h) => start >= h.start && start < h.end)) continue;
    const token = /\/$/.test(m[0]) ? m[0] : m[0].replace(/[.:!?]+$/, "");
    if (!isDataPath(token)) continue;
    hits.push({ start, end: start + token.length, path: token });
  }
  return hits.sort((a, b) => a.start - b.start);
}

export function findDataPaths(text: string): string[] {
  return [...new Set(findPathSpans(text).map((h) => h.path))];
}

export function findTarget(
  text: string,
  columns: string[] | undefined,
  task: TaskKind | null,
  mentions: ColumnMention[] = [],
  valueTarget: string | null = null,
): string | null {
  const verb = "\\b(?:predict(?:s|ing|ion\\s+of)?|estimat(?:e|es|ing)|forecast(?:s|ing)?|model(?:s|ing)?|classify(?:ing)?)\\s+(?:the\\s+)?(?:column\\s+|variable\\s+)?";
  // Quoted names first: they are the user's exact spelling.
  const quotedFirst = firstNameAfter(
    text,
    [
      new RegExp(`${verb}(?=['"\`])`, "gi"),
      /\btarget(?:\s+(?:column|variable|feature|field|attribute|label))?\s*(?:is|=|:|should\s+be|will\s+be|named|called)?\s*(?=['"`])/gi,
      /\blabel\s+(?:column|variable|field)\s*(?:is|=|:|named|called)?\s*(?=['"`])/gi,
    ],
    columns,
    { quotedOnly: true },
  );
  if (quotedFirst) return quotedFirst;
  const quotedColumn = firstNameAfter(
    text,
    [/\b(?:model|regression|classifier|classification|regressor|predictor)\s+(?:for|of|on)\s+(?:the\s+)?(?=['"`])/gi],
    columns,
    { quotedOnly: true, accept: (_name, rest) => /^\s+(?:column|variable|field|target)\b/i.test(rest) },
  );
  if (quotedColumn) return quotedColumn;
  const quotedIsTarget = /(['"`])([^'"`\n]{1,60})\1\s+(?:column\s+)?(?:is|as)\s+(?:the|my|our)\s+(?:target|label)\b/i.exec(text);
  if (quotedIsTarget) {
    const r = resolveColumn(quotedIsTarget[2], columns);
    if (r) return r;
  }

  const explicit = firstNameAfter(
    text,
    [
      /\btarget\s+(?:column|variable|feature|field|attribute|label)\s*(?:is|=|:|should\s+be|will\s+be|named|called)?\s*/gi,
      /\btarget\s*(?:is|=|:|should\s+be|will\s+be|named|called)\s*/gi,
      /\blabel\s+(?:column|variable|field)\s*(?:is|=|:|named|called)?\s*/gi,
      /\blabel\s*(?:is|=|:)\s*/gi,
      /\b(?:use|using|treat)\s+(?:the\s+)?(?=\S+\s+(?:column\s+)?as\s+(?:the\s+)?(?:target|label)\b)/gi,
    ],
    columns,
  );
  if (explicit) return explicit;
  const wordIsTarget = /\b(?:the\s+)?([A-Za-z_][\w-]*)\s+(?:column\s+)?is\s+(?:the|my|our)\s+(?:target|label)\b/i.exec(text);
  if (wordIsTarget && !NAME_STOP.has(wordIsTarget[1].toLowerCase()) && !looksLikeNonColumn(wordIsTarget[1])) {
    const r = resolveColumn(wordIsTarget[1], columns);
    if (r) return r;
  }

  // Roles from the words around a named column: "Churn is what I want to predict", "a classifier for the Churn column".
  const byRole = targetFromMentions(text, mentions);
  if (byRole) return byRole;

  // The verb patterns below read free text; for images, graphs and series the thing predicted
  // ("the category of each paper", "the next sequence") is not a column name. Text classification
  // runs on a table, so there a name counts when it is one of the file's columns.
  const hasColumns = (columns ?? []).length > 0;
  if (task && !["classification", "regression"].includes(task) && !(task !== "clustering" && hasColumns)) return null;

  const afterVerb = firstNameAfter(
    text,
    [/\b(?:predict(?:s|ing|ion\s+of)?|estimat(?:e|es|ing)|forecast(?:s|ing)?)\s+(?:(?:the|a|an|its|their|each|every|future)\s+)*/gi],
    columns,
  );
  if (afterVerb) return afterVerb;
  // "forecast the next 48 hours of load", "14 days of sales": the quantity after the horizon
  if (hasColumns) {
    const ofHorizon = firstNameAfter(
      text,
      [new RegExp(`\\b(?:next|coming|following|upcoming)?\\s*(?:\\d{1,5}|${NUMBER_WORD_SRC})\\s+(?:${HORIZON_UNIT_SRC})\\s+(?:ahead\\s+)?of\\s+(?:the\\s+)?`, "gi")],
      columns,
    );
    if (ofHorizon) return ofHorizon;
  }

  const modifier = targetFromMentions(text, mentions, true);
  if (modifier) return modifier;
  // "predict which tumours are malignant": the column holding the value, before looser readings of the words
  if (valueTarget) return valueTarget;
  const aimed = targetFromAim(text, mentions);
  if (aimed) return aimed;

  // "classify the support tickets into their category": the grouping after "into", when it is a column.
  if (hasColumns) {
    const into = firstNameAfter(
      text,
      [
        /\b(?:classif(?:y|ies|ying)|categori[sz](?:e|es|ing)|sort(?:s|ing)?|assign(?:s|ing)?)\b[^.?!\n]{0,80}?\binto\s+(?:(?:their|its|the|a|an|one\s+of\s+(?:the|their|its))\s+)?(?:(?:respective|correct|right|proper)\s+)?/gi,
      ],
      columns,
    );
    if (into) return into;
  }

  // "classify banana quality as Good or Bad": the attribute being labelled; "classify Quality in
  // x.csv" when the word is exactly one of the file's columns.
  const classifyAs = firstNameAfter(text, [/\bclassify\s+(?:the\s+)?(?=[A-Za-z])/gi], columns, {
    // A plural ("classify patients as ...") names the rows, not a column.
    accept: (name, rest) =>
      /^\s+(?:as|into)\b/i.test(rest)
        ? !/[^su]s$/i.test(name.split(/\s+/).pop() ?? "")
        : (columns ?? []).some((c) => c.toLowerCase() === name.toLowerCase()),
  });
  if (classifyAs) return classifyAs;

  // "predict whether a customer will churn" → churn.
  const whether = /\b(?:predict|determine|tell)\w*\s+(?:whether|if)\s+(?:(?:a|an|the|each|this)\s+)?(?:[A-Za-z]+\s+){0,2}?(?:will|would|is|are|was|were|has|have|did|does|can)\s+(?:be\s+)?(?:not\s+)?([A-Za-z_][\w-]*)/i.exec(text);
  if (whether && !NAME_STOP.has(whether[1].toLowerCase())) {
    const r = resolveColumn(whether[1], columns);
    if (r) return r;
  }
  return null;
}

export function findLabelsColumn(text: string, columns: string[] | undefined): string | null {
  const anchors = [
    /\b(?:test|tested|check|checked|compare|compared|evaluate|evaluated|validate|validated|score|scored|measure|measured|assess|assessed|benchmark|benchmarked)\s+(?:it\s+|them\s+)?against\s+(?:the\s+)?(?:(?:known|true|ground[\s-]truth|actual)\s+)?(?:(?:target|label|class)\s+(?:variable|column|labels?)\s+)?(?:column\s+)?/gi,
    /\b(?:evaluate|evaluated|compare|compared|check|checked|score|scored)\s+(?:it\s+|them\s+)?(?:with|using|to)\s+(?:the\s+)?(?:(?:known|true)\s+)?(?:(?:labels?|target|class)\s+)?column\s+/gi,
    /\b(?:known|true|ground[\s-]truth)\s+(?:labels?|groups|classes)\s+(?:are\s+|is\s+)?(?:in\s+)?(?:the\s+)?(?:column\s+)?/gi,
    /\btarget\s+(?:column|variable|feature|field|attribute|label)\s*(?:is|=|:|named|called)?\s*/gi,
    /\blabels?\s+(?:column|variable|field)\s*(?:is|=|:|named|called)?\s*/gi,
  ];
  return firstNameAfter(text, anchors, columns);
}

export function findPositiveClass(text: string): string | null {
  const strip = (s: string) => s.replace(/^['"`]|['"`]$/g, "").trim();
  const tok = "(['\"`][^'\"`\\n]{1,40}['\"`]|[\\w-]+)";
  const rules = [
    new RegExp(`\\bpositive\\s+(?:class|label)\\s*(?:is|=|:|should\\s+be|will\\s+be|of)?\\s*${tok}`, "i"),
    new RegExp(`\\btreat(?:ing)?\\s+${tok}\\s+as\\s+(?:the\\s+)?positive\\b`, "i"),
    new RegExp(`(?<![\\w'"\`-])${tok}\\s+(?:is|as)\\s+(?:the\\s+)?positive\\s+(?:class|label)\\b`, "i"),
    new RegExp(`=\\s*${tok}\\s*\\)?\\s+(?:is|as)\\s+(?:the\\s+)?positive\\b`, "i"),
    new RegExp(`\\bpositive\\s*[=:]\\s*${tok}`, "i"),
  ];
  for (const r of rules) {
    const m = r.exec(text);
    if (m && !/^(?:the|a|an|is|be|of|class|label)$/i.test(m[1])) return strip(m[1]);
  }
  return null;
}

function readCount(raw: string): number | null {
  const n = /^\d+$/.test(raw) ? Number(raw) : NUMBER_WORDS[raw.toLowerCase()];
  return n !== undefined && Number.isInteger(n) && n >= 2 && n <= 1000 ? n : null;
}

export function findClusterCount(text: string, task: TaskKind | null): number | null {
  const count = `(\\d+|${NUMBER_WORD_SRC})`;
  const rules: { re: RegExp; needsClustering: boolean }[] = [
    { re: new RegExp(`\\b${count}[\\s-]+(?:distinct\\s+|separate\\s+|different\\s+)?clusters?\\b`, "i"), needsClustering: false },
    { re: new RegExp(`\\bnumber\\s+of\\s+clusters\\s*(?:is|=|:|should\\s+be|of|to)?\\s*${count}\\b`, "i"), needsClustering: false },
    { re: new RegExp(`\\bn_?clusters\\s*[=:]\\s*${count}\\b`, "i"), needsClustering: false },
    { re: new RegExp(`\\b${count}[\\s-]+(?:[a-z]+[\\s-]+)?(?:groups|segments|communities|clusters|types|kinds)\\b`, "i"), needsClustering: true },
    { re: /\bk\s*=\s*(\d+)\b/i, needsClustering: true },
    { re: new RegExp(`\\bclust\\w*\\b[^.;!?\\n]{0,40}?\\b(?:into|in)\\s+${count}\\b(?!\\s*(?:%|percent|min|minutes?|s|sec|seconds?|h|hours?))`, "i"), needsClustering: true },
    { re: new RegExp(`\\(\\s*${count}\\s+of\\s+them\\s*\\)`, "i"), needsClustering: true },
  ];
  for (const { re, needsClustering } of rules) {
    if (needsClustering && task !== "clustering") continue;
    for (const m of allMatches(text, re)) {
      const n = readCount(m[1]);
      if (n !== null) return n;
    }
  }
  return null;
}

export function findDropColumns(text: string, columns: string[] | undefined): string[] {
  const anchors = [
    /\b(?:ignore|ignoring|exclude|excluding|drop|dropping|remove|removing|leave\s+out|leaving\s+out|omit|omitting|disregard|discard|skip)\s+(?:the\s+)?(?:columns?\s+|features?\s+|fields?\s+|variables?\s+)?/gi,
    /\b(?:don't|do\s+not|never|doesn't|does\s+not|should\s+not|shouldn't|must\s+not|mustn't)\s+use\s+(?:the\s+)?(?:columns?\s+|features?\s+|fields?\s+)?/gi,
    /\bwithout\s+using\s+(?:the\s+)?(?:columns?\s+|features?\s+)?/gi,
    /\bwithout\s+(?:the\s+)?(?:columns?|features?)\s+/gi,
  ];
  const out: string[] = [];
  for (const anchor of anchors) {
    for (const m of allMatches(text, anchor)) {
      let pos = (m.index ?? 0) + m[0].length;
      // A list: "CustomerID and Name", "a, b, and c", "'x' & 'y'".
      for (let guard = 0; guard < 20; guard++) {
        const got = readName(text, pos, 3);
        if (!got) break;
        const name = got.name.replace(/\s+(?:columns?|features?|fields?)$/i, "");
        if (!NOT_A_COLUMN.test(name) && (got.quoted || !looksLikeNonColumn(name))) {
          const r = resolveColumn(name, columns);
          if (r && !out.includes(r)) out.push(r);
        }
        const sep = /^\s*(?:columns?|features?|fields?)?\s*(?:,\s*(?:and|or)?|\band\b|\bor\b|&|\/)\s*(?:the\s+)?/i.exec(text.slice(got.end, got.end + 40));
        if (!sep) break;
        pos = got.end + sep[0].length;
      }
    }
  }
  return out;
}

export function findDomain(text: string): string {
  let best = "";
  let bestScore = 0;
  for (const { domain, re } of DOMAIN_KEYWORDS) {
    const score = allMatches(text, re).length;
    if (score > bestScore) {
      best = domain;
      bestScore = score;
    }
  }
  return best;
}
