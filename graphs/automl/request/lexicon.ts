// Words and patterns of request reading: metric, model and unit names, comparison phrases, number words.
// Data only; the readers in this folder decide what the words mean in context.

import { type MetricName } from "../../../src/schema/requirements.js";

/** Metric synonyms in matching priority: longer names first so "RMSLE" is not read as "RMSE". */
export const METRIC_SYNONYMS: { metric: MetricName; re: RegExp }[] = [
  { metric: "rmsle", re: /\brmsle\b|\broot[\s-]+mean[\s-]+squared?[\s-]+log(?:arithmic)?[\s-]+error\b/gi },
  { metric: "rmse", re: /\brmse\b|\brmes\b|\brsme\b|\broot[\s-]+mean[\s-]+squared?[\s-]+error\b/gi },
  { metric: "smape", re: /\bs[\s-]?mape\b|\bsymmetric\s+mean[\s-]+absolute[\s-]+percent(?:age)?[\s-]+error\b/gi },
  { metric: "mape", re: /\bmape\b|\bmean[\s-]+absolute[\s-]+percent(?:age)?[\s-]+error\b/gi },
  { metric: "mae", re: /\bmae\b|\bmean[\s-]+abs(?:olute|\.)?[\s-]+err(?:or|\.)?\b/gi },
  { metric: "r2", re: /\br2\b|\br\s?\^\s?2\b|\br²|\br[\s-]squared?\b|\bcoefficient\s+of\s+determination\b|\bexplain(?:s|ed)?(?=\s+(?:at\s+least\s+|over\s+|more\s+than\s+|above\s+)?\d[\d.]*\s*(?:%|percent)\s+of\s+(?:the\s+)?variance)/gi },
  { metric: "adjusted_rand_index", re: /\badjusted[\s-]+rand(?:[\s-]+(?:index|score))?\b|\bari\b/gi },
  { metric: "rand_index", re: /\brand[\s-]+(?:index|score|idx)\b/gi },
  { metric: "nmi", re: /\bnmi\b|\bnormali[sz]ed\s+mutual\s+information\b/gi },
  { metric: "silhouette", re: /\bsilhouette(?:[\s-]+(?:score|coefficient))?\b/gi },
  { metric: "roc_auc", re: /\broc[\s-]*auc\b|\bauc(?:[\s-]*roc)?\b|\barea\s+under\s+(?:the\s+)?(?:roc\s+)?curve\b|\barea\s+under\s+(?:the\s+)?roc\b/gi },
  { metric: "f1", re: /\bf[\s-]?1(?:[\s-]*score)?\b|\bf[\s-]measure\b|\bf[\s-]score\b/gi },
  { metric: "precision", re: /\bprecision\b/gi },
  { metric: "recall", re: /\brecall\b/gi },
  { metric: "accuracy", re: /\baccuracy\b|\bacc\b|\b(?:right|correct)(?=\s+(?:at\s+least\s+|more\s+than\s+|over\s+|above\s+|in\s+|for\s+)?\d[\d.]*\s*(?:%|percent))/gi },
];

/** Metrics that live in [0, 1]: "95%" or a bare "95" means 0.95 for these. */
export const UNIT_INTERVAL_METRICS = new Set<MetricName>([
  "accuracy", "f1", "precision", "recall", "roc_auc", "r2", "rand_index", "adjusted_rand_index", "nmi", "silhouette", "mape", "smape",
]);

/**
 * Model synonyms in matching priority; each match is blanked before the next entry runs, so
 * "graph convolutional network" is not also an MLP and "LightGBM" is not also a GBM.
 */
export const MODEL_SYNONYMS: { key: string; re: RegExp }[] = [
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

export type OpWord = "ge" | "gt" | "le" | "lt" | "better";

/** Comparison phrases. Entries sharing a starting word list the longer phrase first. */
export const OP_PHRASES: { src: string; op: OpWord; word: boolean }[] = [
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
    src: "(?:can'?t|cannot|can\\s+not|mustn'?t|must\\s+not|shouldn'?t|should\\s+not|won'?t|will\\s+not|may\\s+not)\\s+(?:be\\s+|go\\s+|get\\s+|take\\s+)?(?:bigger|larger|more|greater|higher|longer|above|over)(?:\\s+than)?",
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
    src: "at\\s+or\\s+above|at\\s+least|no\\s+less\\s+than|not\\s+less\\s+than|no\\s+lower\\s+than|not\\s+lower\\s+than|no\\s+worse\\s+than|not\\s+below|a\\s+minimum\\s+of|minimum\\s+of|minimum|min",
    op: "ge",
    word: true,
  },
  {
    src:
      "at\\s+or\\s+below|at\\s+or\\s+under|at\\s+most|no\\s+more\\s+than|not\\s+more\\s+than|no\\s+greater\\s+than|no\\s+higher\\s+than|no\\s+longer\\s+than|no\\s+bigger\\s+than|no\\s+larger\\s+than|not\\s+bigger\\s+than|not\\s+larger\\s+than|not\\s+above|not\\s+over" +
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
export const TRAILING_OPS: { re: RegExp; op: OpWord }[] = [
  { re: /^or\s+(?:higher|more|above|better|greater|over)$|^at\s+least$/i, op: "ge" },
  { re: /^or\s+(?:lower|less|below|fewer|under|smaller|shorter)$|^at\s+(?:the\s+)?most$|^max(?:imum)?$|^tops$/i, op: "le" },
];
export const TRAILING_SRC = "or\\s+(?:higher|more|above|better|greater|over|lower|less|below|fewer|under|smaller|shorter)|at\\s+least|at\\s+(?:the\\s+)?most|max(?:imum)?|tops";

export const NUM_SRC = "\\d{1,3}(?:,\\d{3})+(?:\\.\\d+)?|\\d*\\.\\d+|\\d+";
export const PCT_SRC = "%|percent\\b|per\\s*cent\\b";

/** Time units in seconds. */
export const TIME_UNITS: { re: RegExp; seconds: number }[] = [
  { re: /^(?:microseconds?|µs|us)$/i, seconds: 1e-6 },
  { re: /^(?:milliseconds?|millisecs?|msecs?|ms)$/i, seconds: 0.001 },
  { re: /^(?:seconds?|secs?|s)$/i, seconds: 1 },
  { re: /^(?:minutes?|mins?)$/i, seconds: 60 },
  { re: /^(?:hours?|hrs?|h)$/i, seconds: 3600 },
  { re: /^days?$/i, seconds: 86400 },
];
/** Size units in MB (binary: 1 GB = 1024 MB). */
export const SIZE_UNITS: { re: RegExp; mb: number }[] = [
  { re: /^(?:kilobytes?|kib|kb)$/i, mb: 1 / 1024 },
  { re: /^(?:megabytes?|mib|mb)$/i, mb: 1 },
  { re: /^(?:gigabytes?|gib|gb)$/i, mb: 1024 },
  { re: /^(?:terabytes?|tib|tb)$/i, mb: 1024 * 1024 },
];
export const PARAM_SCALE: { re: RegExp; factor: number }[] = [
  { re: /^(?:thousand|k)$/i, factor: 1e3 },
  { re: /^(?:million|mln|m)$/i, factor: 1e6 },
  { re: /^(?:billion|bn|b)$/i, factor: 1e9 },
];
export const UNIT_SRC =
  "(?:thousand|million|billion|mln|bn|[kmb])?\\s*(?:trainable\\s+)?param(?:eter)?s" +
  "|microseconds?|µs|us|milliseconds?|millisecs?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?" +
  "|kilobytes?|kib|kb|megabytes?|mib|mb|gigabytes?|gib|gb|terabytes?|tib|tb";

/**
 * What a time limit is about, judged from the words before it. The last keyword before the
 * number wins, so "training ... and the prediction time for each instance is under 5 ms" is latency.
 */
export const TIME_SUBJECTS: { re: RegExp; kind: "latency" | "test" | "predict" | "train" }[] = [
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

export const NUMBER_WORDS: Record<string, number> = {
  one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, eleven: 11, twelve: 12,
};
export const NUMBER_WORD_SRC = Object.keys(NUMBER_WORDS).join("|");

export const DOMAIN_KEYWORDS: { domain: string; re: RegExp }[] = [
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
export const NAME_STOP = new Set(
  (
    "a an the and or but from based using use in into for with given on of by at within to that which as so where when if whether " +
    "while because it its this these those is are was were will would can could should must be been being has have had do does " +
    "than then also only per each every via after before during since accurately correctly well better good using from my our your " +
    "their his her them they we you i me us file files dataset data csv set what who how why here there " +
    "binary numeric numerical categorical continuous imbalanced balanced missing high low good"
  ).split(/\s+/),
);
/** Generic nouns people put after a column name: "the age item", "the id column". */
export const GENERIC_NAME_TAIL = /^(?:item|items|column|columns|field|fields|variable|variables|attribute|attributes|feature|features|label|labels|values?|target|col)$/i;
/** Things that follow "drop"/"exclude"/"don't use" but are not columns. */
export const NOT_A_COLUMN =
  /^(?:data|dataset|model|models|gpu|gpus|cpu|test|train|training|validation|valid|set|test set|outliers?|missing|missing values|nulls?|nans?|duplicates?|duplicate rows|rows?|it|them|anything|any|deep learning|neural nets?|warnings?|library|libraries|pytorch|tensorflow|sklearn|scikit-learn)$/i;

export const HORIZON_UNIT_SRC =
  "time[\\s-]?steps?|steps?|periods?|points?|values?|observations?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|quarters?|years?";
export const COUNT_SRC = `\\d{1,5}|${NUMBER_WORD_SRC}`;

/** Words that ask for a forecast even without "forecast": "14 days ahead", "predict the next 7 days". */
export const HORIZON_TASK = new RegExp(
  `\\b(?:${COUNT_SRC})[\\s-]*(?:${HORIZON_UNIT_SRC})[\\s-]+ahead\\b|\\bpred_seq_len\\b|\\b(?:forecast|forecasting)\\s+horizon\\b|` +
    `\\b(?:predict|estimate|project)\\w*\\b[^.?!\\n]{0,60}\\b(?:next|coming|following|upcoming)\\s+(?:${COUNT_SRC})\\s+(?:${HORIZON_UNIT_SRC})\\b`,
  "i",
);
