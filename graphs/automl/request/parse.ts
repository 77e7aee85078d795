import { metricDirection, type Constraint, type MetricName, type TaskKind } from "../../../src/schema/requirements.js";

// Rule-based reading of a chat request for the offline engine. Every rule prefers leaving a field
// empty over guessing wrong: later stages can look at the data, but cannot undo a wrong target.

export interface ParsedRequest {
  /** Is this about building/consulting on a machine-learning model or data analysis at all? */
  relevant: boolean;
  intent: "build" | "consult-build" | "consult" | "inquire" | "unclear";
  task: TaskKind | null; // null when the text does not say (the data decides later)
  target: string | null; // resolved to the exact column name when columns are given
  metric: MetricName | null;
  positiveClass: string | null;
  nClusters: number | null;
  labelsColumn: string | null; // clustering: column of known groups to evaluate against
  dropColumns: string[]; // "ignore the id column", "exclude X and Y", "don't use X"
  constraints: Constraint[]; // metric thresholds and complexity limits, in harness units
  requestedModels: string[]; // normalized keys
  dataPaths: string[]; // file paths/names mentioned, in order, deduped (folders end with "/")
  domain: string; // e.g. "agriculture" when words hint at it, else ""
  /** Forecasting: how far ahead, as written ("14 days ahead" → 14 day); `step` when no time unit was given. */
  horizon: { value: number; unit: HorizonUnit; phrase: string } | null;
  /** Forecasting: the time column named ("the date column", "indexed by timestamp"). */
  timeColumn: string | null;
  /** Forecasting: the column that separates series ("one series per store"); only names of real columns. */
  seriesColumn: string | null;
}

export type HorizonUnit = "step" | "second" | "minute" | "hour" | "day" | "week" | "month" | "quarter" | "year";

type Intent = ParsedRequest["intent"];
type Op = Constraint["op"];
type Span = { start: number; end: number };

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/** Metric synonyms in matching priority: longer names first so "RMSLE" is not read as "RMSE". */
const METRIC_SYNONYMS: { metric: MetricName; re: RegExp }[] = [
  { metric: "rmsle", re: /\brmsle\b|\broot[\s-]+mean[\s-]+squared?[\s-]+log(?:arithmic)?[\s-]+error\b/gi },
  { metric: "rmse", re: /\brmse\b|\broot[\s-]+mean[\s-]+squared?[\s-]+error\b/gi },
  { metric: "smape", re: /\bs[\s-]?mape\b|\bsymmetric\s+mean[\s-]+absolute[\s-]+percent(?:age)?[\s-]+error\b/gi },
  { metric: "mape", re: /\bmape\b|\bmean[\s-]+absolute[\s-]+percent(?:age)?[\s-]+error\b/gi },
  { metric: "mae", re: /\bmae\b|\bmean[\s-]+absolute[\s-]+error\b/gi },
  { metric: "r2", re: /\br2\b|\br\s?\^\s?2\b|\br²|\br[\s-]squared?\b|\bcoefficient\s+of\s+determination\b/gi },
  { metric: "adjusted_rand_index", re: /\badjusted[\s-]+rand(?:[\s-]+(?:index|score))?\b|\bari\b/gi },
  { metric: "rand_index", re: /\brand[\s-]+(?:index|score)\b/gi },
  { metric: "nmi", re: /\bnmi\b|\bnormali[sz]ed\s+mutual\s+information\b/gi },
  { metric: "silhouette", re: /\bsilhouette(?:[\s-]+(?:score|coefficient))?\b/gi },
  { metric: "roc_auc", re: /\broc[\s-]*auc\b|\bauc(?:[\s-]*roc)?\b|\barea\s+under\s+(?:the\s+)?(?:roc\s+)?curve\b/gi },
  { metric: "f1", re: /\bf[\s-]?1(?:[\s-]*score)?\b|\bf[\s-]measure\b|\bf[\s-]score\b/gi },
  { metric: "precision", re: /\bprecision\b/gi },
  { metric: "recall", re: /\brecall\b/gi },
  { metric: "accuracy", re: /\baccuracy\b/gi },
];

/** Metrics that live in [0, 1]: "95%" or a bare "95" means 0.95 for these. */
const UNIT_INTERVAL_METRICS = new Set<MetricName>([
  "accuracy", "f1", "precision", "recall", "roc_auc", "r2", "rand_index", "adjusted_rand_index", "nmi", "silhouette", "mape", "smape",
]);

const METRIC_FAMILY: Record<string, MetricName[]> = {
  classification: ["accuracy", "f1", "precision", "recall", "roc_auc"],
  image_classification: ["accuracy", "f1", "precision", "recall", "roc_auc"],
  text_classification: ["accuracy", "f1", "precision", "recall", "roc_auc"],
  node_classification: ["accuracy", "f1", "precision", "recall", "roc_auc"],
  regression: ["rmse", "rmsle", "mae", "r2"],
  time_series_forecasting: ["rmse", "rmsle", "mae", "mape", "smape", "r2"],
  clustering: ["rand_index", "adjusted_rand_index", "nmi", "silhouette"],
};

/**
 * Model synonyms in matching priority; each match is blanked before the next entry runs, so
 * "graph convolutional network" is not also an MLP and "LightGBM" is not also a GBM.
 */
const MODEL_SYNONYMS: { key: string; re: RegExp }[] = [
  { key: "gcn", re: /\bgcn\b|\bgraph[\s-]+convolutional(?:[\s-]+neural)?[\s-]+networks?\b/gi },
  { key: "cnn", re: /\bcnns?\b|\bconvolutional[\s-]+neural[\s-]+net(?:work)?s?\b|\bconvnets?\b/gi },
  { key: "pytorch", re: /\bpy[\s-]?torch\b/gi },
  { key: "lstm", re: /\blstms?\b|\bgrus?\b|\brnns?\b|\brecurrent[\s-]+neural[\s-]+net(?:work)?s?\b/gi },
  { key: "arima", re: /\bs?arima(?:x)?\b|\bautoregressive(?:[\s-]+models?)?\b/gi },
  { key: "hist_gradient_boosting", re: /\bhist(?:ogram)?[\s-]*(?:based[\s-]+)?gradient[\s-]*boost\w*(?:[\s-]+(?:trees|classifier|regressor))?/gi },
  { key: "lightgbm", re: /\blight[\s-]?gbm\b|\blgbm\b|\blgb\b/gi },
  { key: "xgboost", re: /\bxg[\s-]?boost\b|\bxgb\b/gi },
  { key: "catboost", re: /\bcat[\s-]?boost\b/gi },
  { key: "gradient_boosting", re: /\bgradient[\s-]*boost(?:ing|ed)?(?:[\s-]+(?:decision[\s-]+)?(?:trees?|machines?|classifier|regressor))?|\bgbm\b|\bgbdt\b|\bgbt\b/gi },
  { key: "extra_trees", re: /\bextra[\s-]*trees?\b|\bextremely[\s-]+randomi[sz]ed[\s-]+trees\b/gi },
  { key: "random_forest", re: /\brandom[\s-]*forests?\b/gi },
  { key: "logistic_regression", re: /\blogistic[\s-]+regression\b|\blogit\b/gi },
  { key: "linear_regression", re: /\blinear[\s-]+regression\b|\bordinary\s+least\s+squares\b/gi },
  { key: "ridge", re: /\bridge(?:[\s-]+regression)?\b/gi },
  { key: "lasso", re: /\blasso(?:[\s-]+regression)?\b/gi },
  { key: "svm", re: /\bsvms?\b|\bsvc\b|\bsvr\b|\bsupport[\s-]+vector(?:[\s-]+(?:machines?|classifier|regressor|regression))?\b/gi },
  { key: "knn", re: /\bk[\s-]?nn\b|\bk[\s-]+nearest(?:[\s-]+neighbou?rs?)?\b|\bnearest[\s-]+neighbou?rs?\b/gi },
  { key: "decision_tree", re: /\bdecision[\s-]+trees?\b/gi },
  { key: "naive_bayes", re: /\bna[iï]ve[\s-]+bayes\b/gi },
  { key: "kmeans", re: /\bk[\s-]?means\b(?:\+\+)?/gi },
  { key: "gaussian_mixture", re: /\bgmms?\b|\bgaussian[\s-]+mixtures?(?:[\s-]+models?)?\b/gi },
  { key: "agglomerative", re: /\bagglomerative(?:[\s-]+clustering)?\b|\bhierarchical[\s-]+clustering\b/gi },
  { key: "dbscan", re: /\bh?dbscan\b/gi },
  { key: "resnet", re: /\bresnet(?:[\s-]?\d+)?\b/gi },
  { key: "bert", re: /\b(?:distil|ro)?bert(?:a)?\b/gi },
  { key: "transformer", re: /\btransformers?\b/gi },
  { key: "mlp", re: /\bmlps?\b|\bmulti[\s-]?layer[\s-]+perceptrons?\b|\bneural[\s-]+net(?:work)?s?\b/gi },
];

type OpWord = "ge" | "gt" | "le" | "lt" | "better";

/** Comparison phrases. Entries sharing a starting word list the longer phrase first. */
const OP_PHRASES: { src: string; op: OpWord; word: boolean }[] = [
  {
    src: "(?:not|never)\\s+(?:be\\s+|fall\\s+|drop\\s+|go\\s+)?(?:below|under|less\\s+than|lower\\s+than|smaller\\s+than|worse\\s+than)",
    op: "ge",
    word: true,
  },
  {
    src: "(?:not|never)\\s+(?:be\\s+|take\\s+|run\\s+|go\\s+|use\\s+)?(?:above|over|more\\s+than|greater\\s+than|higher\\s+than|longer\\s+than|larger\\s+than|bigger\\s+than)",
    op: "le",
    word: true,
  },
  {
    src:
      "(?:does|do|did|must|should|shall|will|would|can|could|may)\\s+not\\s+exceed|(?:doesn't|don't|mustn't|shouldn't|won't|can't|cannot)\\s+exceed" +
      "|not\\s+to\\s+exceed|never\\s+exceeds?|without\\s+exceeding|not\\s+exceeding",
    op: "le",
    word: true,
  },
  { src: "(?:greater|more|higher)\\s+than\\s+or\\s+equal\\s+to|equal\\s+to\\s+or\\s+(?:greater|higher|more)\\s+than", op: "ge", word: true },
  { src: "(?:less|lower|smaller)\\s+than\\s+or\\s+equal\\s+to|equal\\s+to\\s+or\\s+(?:less|lower|smaller)\\s+than", op: "le", word: true },
  {
    src: "at\\s+least|no\\s+less\\s+than|not\\s+less\\s+than|no\\s+lower\\s+than|not\\s+lower\\s+than|no\\s+worse\\s+than|not\\s+below|a\\s+minimum\\s+of|minimum\\s+of|minimum|min",
    op: "ge",
    word: true,
  },
  {
    src:
      "at\\s+most|no\\s+more\\s+than|not\\s+more\\s+than|no\\s+greater\\s+than|no\\s+higher\\s+than|no\\s+longer\\s+than|not\\s+above|not\\s+over" +
      "|a\\s+maximum\\s+of|maximum\\s+of|maximum|max|up\\s+to|within|limited\\s+to|capped\\s+at|a\\s+(?:time\\s+)?budget\\s+of|(?:time\\s+)?budget\\s+of|a\\s+limit\\s+of|limit\\s+of",
    op: "le",
    word: true,
  },
  { src: "better\\s+than", op: "better", word: true },
  { src: "more\\s+than|greater\\s+than|higher\\s+than|longer\\s+than|larger\\s+than|bigger\\s+than|in\\s+excess\\s+of|above|over|exceeds?|exceeding", op: "gt", word: true },
  { src: "less\\s+than|lower\\s+than|smaller\\s+than|fewer\\s+than|shorter\\s+than|faster\\s+than|below|under|beneath", op: "lt", word: true },
  { src: ">=|≥|=>", op: "ge", word: false },
  { src: "<=|≤|=<", op: "le", word: false },
  { src: ">", op: "gt", word: false },
  { src: "<", op: "lt", word: false },
];

/** "0.9 or higher", "10 minutes or less": a comparison written after the number. */
const TRAILING_OPS: { re: RegExp; op: OpWord }[] = [
  { re: /^or\s+(?:higher|more|above|better|greater|over)$|^at\s+least$/i, op: "ge" },
  { re: /^or\s+(?:lower|less|below|fewer|under|smaller|shorter)$|^at\s+(?:the\s+)?most$|^max(?:imum)?$|^tops$/i, op: "le" },
];
const TRAILING_SRC = "or\\s+(?:higher|more|above|better|greater|over|lower|less|below|fewer|under|smaller|shorter)|at\\s+least|at\\s+(?:the\\s+)?most|max(?:imum)?|tops";

const NUM_SRC = "\\d{1,3}(?:,\\d{3})+(?:\\.\\d+)?|\\d*\\.\\d+|\\d+";
const PCT_SRC = "%|percent\\b|per\\s*cent\\b";

/** Time units in seconds. */
const TIME_UNITS: { re: RegExp; seconds: number }[] = [
  { re: /^(?:milliseconds?|millisecs?|msecs?|ms)$/i, seconds: 0.001 },
  { re: /^(?:seconds?|secs?|s)$/i, seconds: 1 },
  { re: /^(?:minutes?|mins?)$/i, seconds: 60 },
  { re: /^(?:hours?|hrs?|h)$/i, seconds: 3600 },
  { re: /^days?$/i, seconds: 86400 },
];
/** Size units in MB (binary: 1 GB = 1024 MB). */
const SIZE_UNITS: { re: RegExp; mb: number }[] = [
  { re: /^(?:kilobytes?|kib|kb)$/i, mb: 1 / 1024 },
  { re: /^(?:megabytes?|mib|mb)$/i, mb: 1 },
  { re: /^(?:gigabytes?|gib|gb)$/i, mb: 1024 },
  { re: /^(?:terabytes?|tib|tb)$/i, mb: 1024 * 1024 },
];
const PARAM_SCALE: { re: RegExp; factor: number }[] = [
  { re: /^(?:thousand|k)$/i, factor: 1e3 },
  { re: /^(?:million|mln|m)$/i, factor: 1e6 },
  { re: /^(?:billion|bn|b)$/i, factor: 1e9 },
];
const UNIT_SRC =
  "(?:thousand|million|billion|mln|bn|[kmb])?\\s*(?:trainable\\s+)?param(?:eter)?s" +
  "|milliseconds?|millisecs?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?" +
  "|kilobytes?|kib|kb|megabytes?|mib|mb|gigabytes?|gib|gb|terabytes?|tib|tb";

/**
 * What a time limit is about, judged from the words before it. The last keyword before the
 * number wins, so "training ... and the prediction time for each instance is under 5 ms" is latency.
 */
const TIME_SUBJECTS: { re: RegExp; kind: "latency" | "test" | "predict" | "train" }[] = [
  {
    kind: "latency",
    re: /\blatency\b|\bresponse\s+time\b|\bper\s+(?:row|prediction|instance|sample|record|example|query|request|observation)\b|\b(?:for\s+)?(?:each|every|a\s+single|one|single)\s+(?:row|prediction|instance|sample|record|example|observation)\b|\bpredict(?:ing)?\s+(?:a|one|each|every|a\s+single)\s+(?:row|instance|sample|record|example|observation)\b/gi,
  },
  { kind: "test", re: /\btest(?:ing)?\s+(?:set|split|data|file|rows)\b|\bbatch\s+(?:prediction|inference|scoring)\b|\btest\.csv\b/gi },
  { kind: "predict", re: /\bpredict(?:s|ing|ions?)?\b|\binference\b|\bscoring\b/gi },
  {
    kind: "train",
    re: /\btrain(?:s|ed|ing)?\b|\bfit(?:s|ting)?\b|\bclustering\b|\bcomplete[sd]?\b|\bfinish(?:es|ed)?\b|\bbuild(?:ing)?\b|\brun(?:s|ning)?\b|\bruntime\b|\btuning\b|\bsearch\b|\btime\s+(?:budget|limit)\b/gi,
  },
];

const NUMBER_WORDS: Record<string, number> = {
  one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, eleven: 11, twelve: 12,
};
const NUMBER_WORD_SRC = Object.keys(NUMBER_WORDS).join("|");

const DOMAIN_KEYWORDS: { domain: string; re: RegExp }[] = [
  { domain: "agriculture", re: /\b(?:crops?|soil|harvest\w*|bananas?|farm\w*|yields?|fruits?|agricultur\w*|fertili[sz]\w*|irrigation|plants?)\b/gi },
  { domain: "healthcare", re: /\b(?:patients?|diseases?|diagnos\w*|medical|hospitals?|health\w*|smok\w*|cancer|diabet\w*|heart|clinical|drugs?)\b/gi },
  { domain: "education", re: /\b(?:students?|schools?|grades?|exams?|education\w*|courses?|teachers?)\b/gi },
  { domain: "finance", re: /\b(?:loans?|credit|banks?|banking|fraud\w*|stocks?|financ\w*|insurance|income|salar(?:y|ies))\b/gi },
  { domain: "e-commerce", re: /\b(?:e-?commerce|customers?|products?|shop\w*|retail|stores?|purchases?|clothing)\b/gi },
  { domain: "software engineering", re: /\b(?:software|defects?|bugs?)\b/gi },
  { domain: "biology", re: /\b(?:crabs?|species|butterfl(?:y|ies)|genes?|proteins?|animals?|fish)\b/gi },
  { domain: "weather", re: /\b(?:weather|climate|temperatures?|rainfall|precipitation)\b/gi },
  { domain: "energy", re: /\b(?:electricity|energy|power\s+consumption|solar)\b/gi },
  { domain: "academic publications", re: /\b(?:papers?|citations?|cora|citeseer|pubmed)\b/gi },
  { domain: "real estate", re: /\b(?:houses?|housing|real\s+estate|rent(?:al)?s?|propert(?:y|ies))\b/gi },
  { domain: "transportation", re: /\b(?:flights?|traffic|taxis?|vehicles?|cars?)\b/gi },
];

/** Words that end a column name written without quotes. */
const NAME_STOP = new Set(
  (
    "a an the and or but from based using use in into for with given on of by at within to that which as so where when if whether " +
    "while because it its this these those is are was were will would can could should must be been being has have had do does " +
    "than then also only per each every via after before during since accurately correctly well better good using from my our your " +
    "their his her them they we you i me us file files dataset data csv set what who how why here there " +
    "binary numeric numerical categorical continuous imbalanced balanced missing high low good"
  ).split(/\s+/),
);
/** Generic nouns people put after a column name: "the age item", "the id column". */
const GENERIC_NAME_TAIL = /^(?:item|items|column|columns|field|fields|variable|variables|attribute|attributes|feature|features|label|labels|values?|target|col)$/i;
/** Things that follow "drop"/"exclude"/"don't use" but are not columns. */
const NOT_A_COLUMN =
  /^(?:data|dataset|model|models|gpu|gpus|cpu|test|train|training|validation|valid|set|test set|outliers?|missing|missing values|nulls?|nans?|duplicates?|duplicate rows|rows?|it|them|anything|any|deep learning|neural nets?|warnings?|library|libraries|pytorch|tensorflow|sklearn|scikit-learn)$/i;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function normalizeText(text: string): string {
  // Single-character replacements only, so offsets stay valid against the original text.
  return text
    .replace(/[\u2018\u2019\u02BC]/g, "'")
    .replace(/[\u201C\u201D]/g, '"')
    .replace(/[\u00A0\u2007\u202F]/g, " ")
    .replace(/[\u2013\u2014]/g, "-");
}

function parseNumber(raw: string): number {
  return Number(raw.replace(/,/g, ""));
}

function allMatches(text: string, re: RegExp): RegExpExecArray[] {
  const flags = re.flags.includes("g") ? re.flags : re.flags + "g";
  return [...text.matchAll(new RegExp(re.source, flags))];
}

/** Blank out spans with a filler character, keeping offsets. */
function mask(text: string, spans: Span[], fill = " "): string {
  if (spans.length === 0) return text;
  const chars = text.split("");
  for (const s of spans) for (let i = Math.max(0, s.start); i < Math.min(chars.length, s.end); i++) chars[i] = fill;
  return chars.join("");
}

function opFromWords(words: string): OpWord | null {
  const w = words.trim().replace(/\s+/g, " ");
  for (const e of OP_PHRASES) if (new RegExp(`^(?:${e.src})$`, "i").test(w)) return e.op;
  for (const t of TRAILING_OPS) if (t.re.test(w)) return t.op;
  return null;
}

const OPS_SRC = OP_PHRASES.map((e) => (e.word ? `(?<![\\w'])(?:${e.src})(?![\\w])` : `(?:${e.src})`)).join("|");

function toConstraintOp(word: OpWord, direction: "max" | "min"): Op {
  if (word === "better") return direction === "max" ? ">" : "<";
  return ({ ge: ">=", gt: ">", le: "<=", lt: "<" } as const)[word];
}

/** Where the sentence holding `pos` starts; looks back a bounded distance so long texts stay fast. */
function sentenceStart(text: string, pos: number, maxBack = 400): number {
  const from = Math.max(0, pos - maxBack);
  const before = text.slice(from, pos);
  let start = from;
  for (const m of before.matchAll(/[.!?;](?=\s)|\n/g)) start = from + (m.index ?? 0) + 1;
  return start;
}

function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// Names and columns
// ---------------------------------------------------------------------------------------------

const QUOTE_PAIRS: Record<string, string> = { "'": "'", '"': '"', "`": "`" };

/**
 * Read a name starting at `pos`: a quoted string, or up to `maxWords` plain words that are not
 * stop words. Returns the raw name and where it ended.
 */
function readName(text: string, pos: number, maxWords = 3): { name: string; end: number; quoted: boolean } | null {
  let i = pos;
  while (i < text.length && text[i] === " ") i++;
  const q = text[i];
  if (q && QUOTE_PAIRS[q]) {
    const close = text.indexOf(QUOTE_PAIRS[q], i + 1);
    if (close > i + 1 && close - i < 80 && !text.slice(i + 1, close).includes("\n")) {
      return { name: text.slice(i + 1, close).trim(), end: close + 1, quoted: true };
    }
    return null;
  }
  const words: string[] = [];
  let end = i;
  const wordRe = /[A-Za-z_][\w-]*/y;
  let j = i;
  while (words.length < maxWords) {
    wordRe.lastIndex = j;
    const m = wordRe.exec(text);
    if (!m) break;
    const w = m[0].replace(/-+$/, "");
    if (NAME_STOP.has(w.toLowerCase())) break;
    // A possessive only qualifies what follows: "next month's sales", "customer's churn".
    if (text.startsWith("'s ", j + w.length)) {
      words.length = 0;
      j += w.length + 3;
      continue;
    }
    words.push(w);
    end = j + w.length;
    // Names continue only across single spaces; punctuation ends them.
    if (text[end] !== " ") break;
    j = end + 1;
  }
  if (words.length === 0) return null;
  while (words.length > 1 && GENERIC_NAME_TAIL.test(words[words.length - 1])) words.pop();
  return { name: words.join(" "), end, quoted: false };
}

function squash(s: string): string {
  return s.toLowerCase().replace(/[\s_\-.]+/g, "");
}

function stem(s: string): string {
  return s.replace(/(?:ies)$/, "y").replace(/(?:es|s|ed|ing)$/, "");
}

/** Candidate spellings of a name, most specific first: the whole phrase, then its trailing words. */
function nameVariants(name: string): string[] {
  const words = name.split(/\s+/).filter(Boolean);
  const out: string[] = [name];
  for (let k = 1; k < words.length; k++) out.push(words.slice(k).join(" "));
  for (let k = words.length - 1; k >= 1; k--) out.push(words.slice(0, k).join(" "));
  const withSingular: string[] = [];
  for (const v of out) {
    withSingular.push(v);
    if (/ies$/i.test(v)) withSingular.push(v.replace(/ies$/i, "y"));
    if (/s$/i.test(v) && v.length > 3) withSingular.push(v.replace(/s$/i, ""));
  }
  return [...new Set(withSingular)];
}

/** Resolve a written name to one of the columns (exact, then squashed, then stemmed); null if none fits. */
function resolveColumn(raw: string, columns?: string[]): string | null {
  const name = raw.trim().replace(/^['"`]+|['"`.,;:!?)]+$/g, "").trim();
  if (!name) return null;
  if (!columns || columns.length === 0) return name;
  const variants = nameVariants(name);
  for (const v of variants) {
    const exact = columns.find((c) => c.toLowerCase() === v.toLowerCase());
    if (exact) return exact;
    const sq = columns.find((c) => squash(c) === squash(v));
    if (sq) return sq;
  }
  for (const v of variants) {
    const sv = stem(squash(v));
    if (sv.length < 4) continue;
    const hits = columns.filter((c) => stem(squash(c)) === sv);
    if (hits.length === 1) return hits[0];
  }
  return null;
}

/** Names that cannot be columns: numbers, or phrases holding a metric or model name ("high accuracy"). */
function looksLikeNonColumn(name: string): boolean {
  if (!/[A-Za-z]/.test(name)) return true;
  const probe = (re: RegExp) => new RegExp(re.source, "i").test(name);
  return METRIC_SYNONYMS.some((m) => probe(m.re)) || MODEL_SYNONYMS.some((m) => probe(m.re));
}

/** Run anchor regexes; at each anchor's end read a name and return the first that resolves. */
function firstNameAfter(
  text: string,
  anchors: RegExp[],
  columns: string[] | undefined,
  opts: { maxWords?: number; quotedOnly?: boolean; accept?: (name: string, rest: string) => boolean } = {},
): string | null {
  for (const anchor of anchors) {
    for (const m of allMatches(text, anchor)) {
      const end = (m.index ?? 0) + m[0].length;
      const got = readName(text, end, opts.maxWords ?? 3);
      if (!got) continue;
      if (opts.quotedOnly && !got.quoted) continue;
      if (!got.quoted && looksLikeNonColumn(got.name)) continue;
      if (opts.accept && !opts.accept(got.name, text.slice(got.end, got.end + 40))) continue;
      const resolved = resolveColumn(got.name, columns);
      if (resolved) return resolved;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Metrics and constraints
// ---------------------------------------------------------------------------------------------

interface MetricMention extends Span {
  metric: MetricName;
}

function findMetricMentions(text: string): MetricMention[] {
  let work = text;
  const found: MetricMention[] = [];
  for (const { metric, re } of METRIC_SYNONYMS) {
    for (const m of allMatches(work, re)) {
      const start = m.index ?? 0;
      found.push({ metric, start, end: start + m[0].length });
    }
    work = mask(work, found);
  }
  return found.sort((a, b) => a.start - b.start);
}

/** Words between a metric and its comparison: "accuracy [on the test set should be] over 0.9". */
const FILLER_SRC =
  "(?:\\s*\\(?(?!(?:and|but|while|whereas|training|train|time|latency|inference|size|memory|parameters|params)\\b)[a-z'_-]+\\)?){0,8}?";
const AFTER_METRIC = new RegExp(
  `^(?<fill>${FILLER_SRC})\\s*(?:(?<op>${OPS_SRC})|(?<conn>(?<![\\w])(?:of|is|be|reach(?:es|ing)?|to|around|about)(?![\\w])|=|:))?\\s*(?:of\\s+)?` +
    `(?<num>${NUM_SRC})\\s*(?<pct>${PCT_SRC})?(?:\\s*(?<trail>${TRAILING_SRC})(?![\\w]))?`,
  "i",
);
const BEFORE_METRIC = new RegExp(
  `(?:(?<op>${OPS_SRC})\\s*(?:of\\s+)?)?(?<![\\w.=-])(?<num>${NUM_SRC})\\s*(?<pct>${PCT_SRC})?\\s*` +
    `(?:(?:an?|overall|test|testing|validation|classification|balanced|macro|micro|weighted|mean|average|cv|cross-validated)[\\s-]+)*$`,
  "i",
);
/** A number followed by one of these is a count or a duration, not a score. */
const NOT_A_SCORE_AFTER =
  /^\s*(?:milli\w*|ms|msecs?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|kb|mb|gb|tb|kib|mib|gib|thousand|million|billion|k|m|b|param\w*|rows?|samples?|records?|examples?|instances?|features?|columns?|classes|categories|clusters?|groups?|epochs?|trees?|iterations?|folds?|times|x)\b/i;

const PLAUSIBLE_LEAD = /\b(?:achieve[sd]?|achieving|reach(?:es|ing)?|get|gets|getting|hit|target(?:s|ing)?|with|of|at|an?|minimum|aim|want|need)\s*$/i;

function scoreValue(metric: MetricName, raw: string, percent: boolean): number {
  let v = parseNumber(raw);
  if (UNIT_INTERVAL_METRICS.has(metric) && (percent || (v > 1 && v <= 100))) v = v / 100;
  return v;
}

function metricConstraint(text: string, masked: string, m: MetricMention): Constraint | null {
  const direction = metricDirection(m.metric);
  // "top-5 accuracy" is a different measure from accuracy; leave it alone.
  if (/\btop[\s-]*\d+\s*$/i.test(text.slice(Math.max(0, m.start - 12), m.start))) return null;
  const after = AFTER_METRIC.exec(masked.slice(m.end, m.end + 300));
  if (after?.groups) {
    const g = after.groups;
    const matchEnd = m.end + after[0].length;
    if (!NOT_A_SCORE_AFTER.test(text.slice(matchEnd, matchEnd + 40)) || g.pct) {
      let word: OpWord | null = g.trail ? opFromWords(g.trail) : g.op ? opFromWords(g.op) : null;
      // "RMSE exceeds 5" is no goal anyone sets; leave it out rather than invert it.
      if (word === "gt" && /exceed/i.test(g.op ?? "") && direction === "min") word = null;
      // With no comparison word the number must sit right after the metric or after "of"/"is"/":".
      const bare = Boolean(g.conn) || g.fill.trim() === "";
      const op: Op | null = word ? toConstraintOp(word, direction) : bare && !g.op ? (direction === "max" ? ">=" : "<=") : null;
      if (op) {
        return { name: m.metric, op, target: scoreValue(m.metric, g.num, Boolean(g.pct)), phrase: text.slice(m.start, matchEnd).trim() };
      }
    }
  }
  const sentStart = sentenceStart(text, m.start);
  const prefix = masked.slice(sentStart, m.start);
  const before = BEFORE_METRIC.exec(prefix);
  if (before?.groups) {
    const g = before.groups;
    const matchStart = sentStart + (before.index ?? 0);
    // Without a comparison word, a bare number counts only after a verb of aiming: "achieve 0.9 accuracy", "95% accuracy".
    const lead = text.slice(Math.max(sentStart, matchStart - 30), matchStart);
    if (!g.op && /\btop[\s-]*$/i.test(lead)) return null;
    const plausible = Boolean(g.op) || Boolean(g.pct) || PLAUSIBLE_LEAD.test(lead);
    const word = g.op ? opFromWords(g.op) : null;
    if (plausible && !(word === "gt" && direction === "min")) {
      const op: Op = word ? toConstraintOp(word, direction) : direction === "max" ? ">=" : "<=";
      return { name: m.metric, op, target: scoreValue(m.metric, g.num, Boolean(g.pct)), phrase: text.slice(matchStart, m.end).trim() };
    }
  }
  return null;
}

const QTY_RE = new RegExp(
  `(?:(?<op>${OPS_SRC})|(?<in>(?<![\\w])in(?![\\w])))\\s*(?:of\\s+|to\\s+)?(?:about\\s+|around\\s+|approximately\\s+|~\\s*)?` +
    `(?<num>${NUM_SRC})\\s*(?<unit>${UNIT_SRC})(?![\\w])` +
    `(?<per>\\s*(?:per|/|for\\s+each|for\\s+every|for\\s+a|each|a)\\s*(?:single\\s+)?(?:row|prediction|instance|sample|record|example|item|query|request|observation|input)s?\\b)?`,
  "gi",
);
const QTY_TRAILING_RE = new RegExp(
  `(?<![\\w.])(?<num>${NUM_SRC})\\s*(?<unit>${UNIT_SRC})(?![\\w])\\s*(?<trail>or\\s+(?:less|fewer|lower|under|below|shorter|smaller)|at\\s+(?:the\\s+)?most|max(?:imum)?|tops)(?![\\w])`,
  "gi",
);

function unitValue(unitRaw: string, num: number): { kind: "time"; seconds: number } | { kind: "size"; mb: number } | { kind: "params"; count: number } | null {
  const unit = unitRaw.trim().replace(/\s+/g, " ");
  const param = /^(?:(thousand|million|billion|mln|bn|[kmb])\s*)?(?:trainable\s+)?param(?:eter)?s$/i.exec(unit);
  if (param) {
    const factor = param[1] ? PARAM_SCALE.find((p) => p.re.test(param[1]))?.factor ?? 1 : 1;
    return { kind: "params", count: num * factor };
  }
  const t = TIME_UNITS.find((u) => u.re.test(unit));
  if (t) return { kind: "time", seconds: num * t.seconds };
  const s = SIZE_UNITS.find((u) => u.re.test(unit));
  if (s) return { kind: "size", mb: num * s.mb };
  return null;
}

/** The clause before a limit is the part after the last "and"/comma: "..., and the prediction time for each instance is". */
function clauseOffset(prefix: string): number {
  let start = 0;
  for (const m of prefix.matchAll(/,|\band\b|\bwhile\b|\bbut\b/gi)) start = (m.index ?? 0) + m[0].length;
  return start;
}

/** Find the subject of a time limit in the words before it; returns its kind and where its phrase starts. */
function timeSubject(text: string, sentStart: number, opStart: number): { kind: string | null; phraseStart: number } {
  const prefix = text.slice(sentStart, opStart);
  const clauseStart = clauseOffset(prefix);
  const pick = (from: number): { kind: string | null; first: number } => {
    const hits: { kind: string; pos: number }[] = [];
    for (const s of TIME_SUBJECTS) for (const m of allMatches(prefix.slice(from), s.re)) hits.push({ kind: s.kind, pos: from + (m.index ?? 0) });
    if (hits.length === 0) return { kind: null, first: -1 };
    hits.sort((a, b) => a.pos - b.pos);
    // A specific word (per row, test set) outranks the bare verb "predict" anywhere in the clause.
    const specific = [...hits].reverse().find((h) => h.kind === "latency" || h.kind === "test");
    const last = hits[hits.length - 1];
    const kind = last.kind === "predict" && specific ? specific.kind : last.kind;
    return { kind, first: hits[0].pos };
  };
  const inClause = pick(clauseStart);
  if (inClause.kind) return { kind: inClause.kind, phraseStart: sentStart + inClause.first };
  const inSentence = pick(0);
  return { kind: inSentence.kind, phraseStart: opStart };
}

function complexityConstraints(text: string): { constraint: Constraint; start: number }[] {
  const out: { constraint: Constraint; start: number }[] = [];
  const handle = (m: RegExpExecArray, opWord: OpWord | "in" | null, perRow: boolean): void => {
    const g = m.groups ?? {};
    if (opWord !== "le" && opWord !== "lt" && opWord !== "in") return; // only upper limits make sense
    const value = unitValue(g.unit, parseNumber(g.num));
    if (!value) return;
    const start = m.index ?? 0;
    const end = start + m[0].length;
    const sentStart = sentenceStart(text, start);
    const subj = timeSubject(text, sentStart, start);
    const op: Op = opWord === "lt" ? "<" : "<=";
    let phraseStart = subj.phraseStart;
    if (value.kind !== "time") {
      const prefix = text.slice(sentStart, start);
      const from = clauseOffset(prefix);
      const noun = /\b(?:model|gpu|vram|memory|size|network)\b/i.exec(prefix.slice(from));
      phraseStart = noun ? sentStart + from + (noun.index ?? 0) : start;
    }
    const phrase = text.slice(Math.min(phraseStart, start), end).trim();
    if (value.kind === "params") {
      if (opWord === "in") return;
      out.push({ start, constraint: { name: "n_params", op, target: value.count, phrase } });
      return;
    }
    if (value.kind === "size") {
      if (opWord === "in") return;
      const sentence = text.slice(sentStart, end);
      const gpu = /\b(?:gpu|vram|graphics\s+memory|cuda\s+memory)\b/i.test(sentence);
      if (!gpu && /\b(?:ram|memory)\b/i.test(sentence) && !/\bmodel\b/i.test(sentence)) return;
      out.push({ start, constraint: { name: gpu ? "gpu_memory_mb" : "model_size_mb", op, target: value.mb, phrase } });
      return;
    }
    let kind = perRow ? "latency" : subj.kind;
    if (kind === "predict") {
      kind = /\btest(?:ing)?\s+(?:set|split|data)\b/i.test(text.slice(sentStart, end)) ? "test" : value.seconds < 1 ? "latency" : "test";
    }
    // A bare duration with no subject ("within 7 days") is as likely a horizon as a limit.
    if (!kind) {
      if (value.seconds >= 1 || opWord === "in") return;
      kind = "latency";
    }
    if (kind === "latency") out.push({ start, constraint: { name: "latency_ms_per_row", op, target: value.seconds * 1000, phrase } });
    else if (kind === "test") out.push({ start, constraint: { name: "test_predict_s", op, target: value.seconds, phrase } });
    else out.push({ start, constraint: { name: "train_time_s", op, target: value.seconds, phrase } });
  };
  const covered: Span[] = [];
  for (const m of allMatches(text, QTY_RE)) {
    const g = m.groups ?? {};
    covered.push({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length });
    handle(m, g.in ? "in" : g.op ? opFromWords(g.op) : null, Boolean(g.per));
  }
  for (const m of allMatches(text, QTY_TRAILING_RE)) {
    const start = m.index ?? 0;
    // "under 10 minutes or less" was already read with its leading comparison.
    if (covered.some((c) => start >= c.start && start < c.end)) continue;
    handle(m, opFromWords(m.groups?.trail ?? ""), false);
  }
  return out;
}

function dedupeConstraints(list: Constraint[]): Constraint[] {
  const seen = new Set<string>();
  return list.filter((c) => {
    const key = `${c.name}|${c.op}|${c.target}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Pick the headline metric: one with a threshold, then one named as "the metric", then one fitting the task. */
function chooseMetric(text: string, mentions: MetricMention[], constraints: Constraint[], task: TaskKind | null): MetricName | null {
  const withThreshold = constraints.find((c) => METRIC_SYNONYMS.some((m) => m.metric === c.name));
  if (withThreshold) return withThreshold.name as MetricName;
  if (mentions.length === 0) return null;
  const explicit = mentions.find((m) => {
    const before = text.slice(Math.max(0, m.start - 40), m.start);
    const after = text.slice(m.end, m.end + 12);
    return (
      /\bmetrics?\s*(?:is|will\s+be|should\s+be|=|:)\s*(?:the\s+)?$/i.test(before) ||
      /\b(?:optimi[sz]e|maximi[sz]e|minimi[sz]e)\s+(?:for\s+)?(?:the\s+)?$/i.test(before) ||
      /\b(?:measured|evaluated|judged|scored)\s+(?:by|with|using|on)\s+(?:the\s+)?$/i.test(before) ||
      /\bin\s+terms\s+of\s+$/i.test(before) ||
      /^\s*(?:metric|score)\b/i.test(after)
    );
  });
  if (explicit) return explicit.metric;
  const family = task ? METRIC_FAMILY[task] : undefined;
  if (family) {
    const fit = mentions.find((m) => family.includes(m.metric));
    if (fit) return fit.metric;
  }
  // "evaluate its accuracy with RMSLE": a loose "accuracy" yields to a regression or clustering metric.
  const scoreLike = mentions.find((m) => !METRIC_FAMILY.classification.includes(m.metric));
  if (scoreLike && mentions.every((m) => m.metric === "accuracy" || !METRIC_FAMILY.classification.includes(m.metric))) return scoreLike.metric;
  return mentions[0].metric;
}

// ---------------------------------------------------------------------------------------------
// Task, intent, relevance
// ---------------------------------------------------------------------------------------------

const STRONG_CLASSIFY = /\bclassif(?:y|ies|ied|ying|ication|ier|iers)\b|\bcategori[sz](?:e|es|ed|ing|ation)\b/i;
const STRONG_REGRESS = /\bregress(?:ion|or|ors)\b/i;
const WEAK_CLASSIFY = [
  /\bbinary\b|\bmulti-?class\b|\bmulticlass\b/i,
  /\b(?:predict|determine|tell)\w*\s+(?:whether|if)\b/i,
  /\byes\s*(?:or|\/)\s*no\b|\btrue\s+or\s+false\b/i,
  /\bas\s+['"`]?[A-Za-z]+['"`]?\s+or\s+['"`]?[A-Za-z]+['"`]?(?:\b|$)/i,
];
const WEAK_REGRESS = [
  /\b(?:predict|estimat)\w*\s+(?:the\s+|a\s+|an\s+|their\s+|its\s+|future\s+)?(?:[a-z']+\s+){0,2}?(?:prices?|costs?|amounts?|revenues?|sales|ages?|temperatures?|salar(?:y|ies)|incomes?|quantit(?:y|ies)|demand|durations?|yields?)\b(?!\s+(?:groups?|categor(?:y|ies)|class(?:es)?|ranges?|brackets?|bands?|levels?|tiers?))/i,
  /\b(?:predict|estimat)\w*\s+how\s+(?:much|many|long)\b/i,
];

function detectTask(text: string): TaskKind | null {
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
function taskFromMetrics(mentions: MetricMention[]): TaskKind | null {
  const kinds = new Set(
    mentions.map((m) =>
      (["classification", "regression", "clustering"] as const).find((k) => METRIC_FAMILY[k].includes(m.metric)),
    ),
  );
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
const RELEVANT_RE = new RegExp(`\\b(?:${RELEVANT_WORDS.join("|")})\\b`, "i");

function isRelevant(text: string, hasOtherSignals: boolean): boolean {
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

function detectIntent(text: string): Intent {
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

// ---------------------------------------------------------------------------------------------
// Fields read from the text
// ---------------------------------------------------------------------------------------------

function findModels(text: string): string[] {
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

const PATH_EXT_RE = /[\w-]\.(?:csv|tsv|zip|json|jsonl|parquet|txt)(?:\.(?:gz|zip|bz2))?$/i;
/** A folder written with a trailing slash ("photos/", "./data/pets/"). */
const FOLDER_RE = /^(?:~|\.{1,2})?\/?(?:[\w.-]+\/)+$/;

function isDataPath(token: string): boolean {
  return PATH_EXT_RE.test(token) || (FOLDER_RE.test(token) && !token.includes("//") && /[A-Za-z]/.test(token));
}

/** File-name tokens: quoted strings (may hold spaces) and bare words ending in a data extension. */
function findPathSpans(text: string): (Span & { path: string })[] {
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

function findDataPaths(text: string): string[] {
  return [...new Set(findPathSpans(text).map((h) => h.path))];
}

function findTarget(text: string, columns: string[] | undefined, task: TaskKind | null): string | null {
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

function findLabelsColumn(text: string, columns: string[] | undefined): string | null {
  const anchors = [
    /\b(?:test|tested|check|checked|compare|compared|evaluate|evaluated|validate|validated|score|scored|measure|measured|assess|assessed|benchmark|benchmarked)\s+(?:it\s+|them\s+)?against\s+(?:the\s+)?(?:(?:known|true|ground[\s-]truth|actual)\s+)?(?:(?:target|label|class)\s+(?:variable|column|labels?)\s+)?(?:column\s+)?/gi,
    /\b(?:evaluate|evaluated|compare|compared|check|checked|score|scored)\s+(?:it\s+|them\s+)?(?:with|using|to)\s+(?:the\s+)?(?:(?:known|true)\s+)?(?:(?:labels?|target|class)\s+)?column\s+/gi,
    /\b(?:known|true|ground[\s-]truth)\s+(?:labels?|groups|classes)\s+(?:are\s+|is\s+)?(?:in\s+)?(?:the\s+)?(?:column\s+)?/gi,
    /\btarget\s+(?:column|variable|feature|field|attribute|label)\s*(?:is|=|:|named|called)?\s*/gi,
    /\blabels?\s+(?:column|variable|field)\s*(?:is|=|:|named|called)?\s*/gi,
  ];
  return firstNameAfter(text, anchors, columns);
}

function findPositiveClass(text: string): string | null {
  const strip = (s: string) => s.replace(/^['"`]|['"`]$/g, "").trim();
  const tok = "(['\"`][^'\"`\\n]{1,40}['\"`]|[\\w-]+)";
  const rules = [
    new RegExp(`\\bpositive\\s+(?:class|label)\\s*(?:is|=|:|should\\s+be|will\\s+be|of)?\\s*${tok}`, "i"),
    new RegExp(`\\btreat(?:ing)?\\s+${tok}\\s+as\\s+(?:the\\s+)?positive\\b`, "i"),
    new RegExp(`(?<![\\w'"\`-])${tok}\\s+(?:is|as)\\s+(?:the\\s+)?positive\\s+(?:class|label)\\b`, "i"),
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

function findClusterCount(text: string, task: TaskKind | null): number | null {
  const count = `(\\d+|${NUMBER_WORD_SRC})`;
  const rules: { re: RegExp; needsClustering: boolean }[] = [
    { re: new RegExp(`\\b${count}[\\s-]+(?:distinct\\s+|separate\\s+|different\\s+)?clusters?\\b`, "i"), needsClustering: false },
    { re: new RegExp(`\\bnumber\\s+of\\s+clusters\\s*(?:is|=|:|should\\s+be|of|to)?\\s*${count}\\b`, "i"), needsClustering: false },
    { re: new RegExp(`\\bn_?clusters\\s*[=:]\\s*${count}\\b`, "i"), needsClustering: false },
    { re: new RegExp(`\\b${count}[\\s-]+(?:distinct\\s+|separate\\s+|different\\s+)?(?:groups|segments|communities)\\b`, "i"), needsClustering: true },
    { re: /\bk\s*=\s*(\d+)\b/i, needsClustering: true },
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

function findDropColumns(text: string, columns: string[] | undefined): string[] {
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

function findDomain(text: string): string {
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

// ---------------------------------------------------------------------------------------------
// Forecasting: horizon, time column, series
// ---------------------------------------------------------------------------------------------

const HORIZON_UNIT_SRC =
  "time[\\s-]?steps?|steps?|periods?|points?|values?|observations?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|quarters?|years?";
const COUNT_SRC = `\\d{1,5}|${NUMBER_WORD_SRC}`;

/** Words that ask for a forecast even without "forecast": "14 days ahead", "predict the next 7 days". */
const HORIZON_TASK = new RegExp(
  `\\b(?:${COUNT_SRC})[\\s-]*(?:${HORIZON_UNIT_SRC})[\\s-]+ahead\\b|\\bpred_seq_len\\b|\\b(?:forecast|forecasting)\\s+horizon\\b|` +
    `\\b(?:predict|estimate|project)\\w*\\b[^.?!\\n]{0,60}\\b(?:next|coming|following|upcoming)\\s+(?:${COUNT_SRC})\\s+(?:${HORIZON_UNIT_SRC})\\b`,
  "i",
);

function horizonUnit(word: string | undefined): HorizonUnit {
  const w = (word ?? "").toLowerCase().replace(/[\s-]/g, "");
  if (!w || /^(?:timesteps?|steps?|periods?|points?|values?|observations?)$/.test(w)) return "step";
  if (/^(?:seconds?|secs?)$/.test(w)) return "second";
  if (/^(?:minutes?|mins?)$/.test(w)) return "minute";
  if (/^(?:hours?|hrs?)$/.test(w)) return "hour";
  if (/^days?$/.test(w)) return "day";
  if (/^weeks?$/.test(w)) return "week";
  if (/^months?$/.test(w)) return "month";
  if (/^quarters?$/.test(w)) return "quarter";
  return "year";
}

function count(raw: string): number | null {
  const n = /^\d+$/.test(raw) ? Number(raw) : NUMBER_WORDS[raw.toLowerCase()];
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 10_000 ? n : null;
}

/** How far ahead to forecast: "14 days ahead", "the next 48 hours", "a horizon of 24", "PRED_SEQ_LEN=96", "next month". */
function findHorizon(text: string): ParsedRequest["horizon"] {
  const unit = `(${HORIZON_UNIT_SRC})`;
  const n = `(${COUNT_SRC})`;
  const rules: Array<{ re: RegExp; value: (m: RegExpExecArray) => number | null; unit: (m: RegExpExecArray) => HorizonUnit }> = [
    { re: /\bpred(?:iction)?_seq_len\s*[=:]\s*(\d{1,5})/i, value: (m) => count(m[1]), unit: () => "step" },
    { re: new RegExp(`\\bhorizon\\s*(?:of|is|=|:|should\\s+be)?\\s*(?:the\\s+next\\s+)?${n}(?:\\s*${unit}\\b)?`, "i"), value: (m) => count(m[1]), unit: (m) => horizonUnit(m[2]) },
    { re: new RegExp(`\\b${n}[\\s-]*${unit}[\\s-]+(?:ahead|into\\s+the\\s+future|in\\s+advance)\\b`, "i"), value: (m) => count(m[1]), unit: (m) => horizonUnit(m[2]) },
    { re: new RegExp(`\\b(?:next|coming|following|upcoming|future)\\s+${n}\\s+${unit}\\b`, "i"), value: (m) => count(m[1]), unit: (m) => horizonUnit(m[2]) },
    { re: /\b(?:next|coming|following)\s+(day|week|month|quarter|year|hour)(?!s)\b/i, value: () => 1, unit: (m) => horizonUnit(m[1]) },
  ];
  for (const rule of rules) {
    const m = rule.re.exec(text);
    if (!m) continue;
    const value = rule.value(m);
    if (value !== null) return { value, unit: rule.unit(m), phrase: m[0].trim() };
  }
  return null;
}

/** The time column named in the text: "the date column", "time column is ts", "indexed by timestamp", "use ds as the time". */
function findTimeColumn(text: string, columns: string[] | undefined): string | null {
  const quoted = /(['"`])([^'"`\n]{1,60})\1\s+(?:column\s+)?(?:is|as)\s+(?:the\s+)?(?:time|date|timestamp)\b/i.exec(text);
  if (quoted) {
    const r = resolveColumn(quoted[2], columns);
    if (r) return r;
  }
  const named = firstNameAfter(
    text,
    [
      /\b(?:time|date|timestamp|datetime)\s+(?:column|index|field|variable)\s*(?:is|=|:|named|called)?\s*/gi,
      /\b(?:indexed|ordered|sorted)\s+by\s+(?:the\s+)?/gi,
      /\b(?:use|using|treat)\s+(?:the\s+)?(?=\S+\s+(?:column\s+)?as\s+(?:the\s+)?(?:time|date|timestamp)\b)/gi,
    ],
    columns,
  );
  if (named) return named;
  const word = /\b(?:the\s+)?([A-Za-z_][\w-]*)\s+(?:column\s+)?(?:is|as)\s+(?:the|my|our)\s+(?:time|date|timestamp)(?:\s+(?:column|index))?\b/i.exec(text);
  if (word && !NAME_STOP.has(word[1].toLowerCase())) return resolveColumn(word[1], columns);
  // "the date column": a name right before "column" that is a column of the file
  if (columns) {
    for (const m of allMatches(text, /\b(?:the\s+)?([A-Za-z_][\w-]*)\s+column\b/gi)) {
      const r = resolveColumn(m[1], columns);
      if (r && /^(?:date|time|timestamp|datetime|ds|dt|day|period|month|week|year|hour)s?$/i.test(m[1])) return r;
    }
  }
  return null;
}

/** The column that separates series: "one series per store_id", "series id column is region", "for each sensor". */
function findSeriesColumn(text: string, columns: string[]): string | null {
  return firstNameAfter(
    text,
    [
      /\b(?:series|group)\s+(?:id\s+)?(?:column|key|identifier|id)\s*(?:is|=|:|named|called)?\s*/gi,
      /\b(?:one\s+series|a\s+(?:separate\s+)?(?:series|forecast))\s+(?:per|for\s+each|for\s+every)\s+(?:the\s+)?/gi,
      /\b(?:per|for\s+each|for\s+every|grouped\s+by|split\s+by|separately\s+for\s+each)\s+(?:the\s+)?/gi,
    ],
    columns,
  );
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

function emptyResult(): ParsedRequest {
  return {
    relevant: false,
    intent: "unclear",
    task: null,
    target: null,
    metric: null,
    positiveClass: null,
    nClusters: null,
    labelsColumn: null,
    dropColumns: [],
    constraints: [],
    requestedModels: [],
    dataPaths: [],
    domain: "",
    horizon: null,
    timeColumn: null,
    seriesColumn: null,
  };
}

/** Read a chat request into the fields the offline engine needs. Never throws. */
export function parseRequest(text: string, columns?: string[]): ParsedRequest {
  const result = emptyResult();
  if (typeof text !== "string" || text.trim() === "") return result;
  const cols = Array.isArray(columns) ? columns.filter((c): c is string => typeof c === "string" && c.trim() !== "") : undefined;
  const colsOrUndef = cols && cols.length > 0 ? cols : undefined;
  try {
    const norm = normalizeText(text);
    const dataPaths = findDataPaths(norm);
    // File names are blanked so "banana_quality.csv" is not read as words or numbers by the other rules.
    const noPaths = mask(norm, findPathSpans(norm));

    const mentions = findMetricMentions(noPaths);
    const metricMasked = mask(noPaths, mentions, "§");
    const located: { c: Constraint; start: number }[] = [];
    for (const m of mentions) {
      const c = metricConstraint(noPaths, metricMasked, m);
      if (c) located.push({ c, start: m.start });
    }
    for (const x of complexityConstraints(noPaths)) located.push({ c: x.constraint, start: x.start });
    const constraints = dedupeConstraints(located.sort((a, b) => a.start - b.start).map((x) => x.c));
    const requestedModels = findModels(noPaths);

    result.dataPaths = dataPaths;
    result.requestedModels = requestedModels;
    result.relevant = isRelevant(noPaths, dataPaths.length > 0 || mentions.length > 0 || requestedModels.length > 0);
    if (!result.relevant) return result;
    result.constraints = constraints;

    const task = detectTask(noPaths) ?? taskFromMetrics(mentions);
    result.task = task;
    result.intent = detectIntent(noPaths);
    result.metric = chooseMetric(noPaths, mentions, constraints, task);
    if (task === "clustering") {
      result.labelsColumn = findLabelsColumn(noPaths, colsOrUndef);
      result.target = null;
    } else {
      result.target = findTarget(noPaths, colsOrUndef, task);
    }
    result.positiveClass = findPositiveClass(noPaths);
    result.nClusters = findClusterCount(noPaths, task);
    result.dropColumns = findDropColumns(noPaths, colsOrUndef).filter((c) => c !== result.target);
    result.domain = findDomain(norm.replace(/[_.]/g, " "));
    result.horizon = findHorizon(noPaths);
    result.timeColumn = findTimeColumn(noPaths, colsOrUndef);
    result.seriesColumn = colsOrUndef ? findSeriesColumn(noPaths, colsOrUndef) : null;
    return result;
  } catch {
    // A malformed message must not stop the conversation; fall back to what is certain.
    const fallback = emptyResult();
    fallback.relevant = RELEVANT_RE.test(text);
    return fallback;
  }
}
