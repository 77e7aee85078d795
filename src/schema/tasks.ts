import type { HarnessTask, HarnessVariant } from "../../runners/contract.js";
import type { Area, MetricName } from "./requirements.js";

// Every fact about a task kind, in one place: the requirements schema, the harness spec, the offline
// parser and the prompts read them from here. Only types are imported, so this module has no runtime
// dependencies and both requirements.ts and runners/contract.ts can build on it.

/**
 * Words that name a task in a request: RegExp sources, matched case-insensitively. Data only; the
 * request parser (graphs/automl/request) decides the order in which the kinds are tried.
 */
export interface TaskWords {
  /** Enough on their own. */
  names?: string;
  /**
   * Enough when every one of `all` appears beside a word that asks for classes: CLASSIFY_WORDS, or
   * with `loose` also LOOSE_CLASSIFY_WORDS ("recognise", "sentiment").
   */
  withClassify?: { all: readonly string[]; loose: boolean };
  /** Weak hints, counted only when no stronger word decided. */
  hints?: readonly string[];
  /** Phrases that hold the words but name something else, blanked before matching. */
  except?: string;
}

interface TaskEntry {
  kind: string;
  /** Human words, as the plans and the report write them. */
  label: string;
  /** How the harness reads the data (runners/python/variant_<name>.py beyond plain tables). */
  harnessVariant: HarnessVariant;
  /** What the harness fits: text, image and node classification are classification, forecasting regression. */
  harnessTask: HarnessTask;
  /** Metrics that fit the task, the default first. */
  metrics: readonly MetricName[];
  /** The default when there are no known labels to judge by (clustering without a labels column). */
  labelFreeMetric?: MetricName;
  /** The requirements schema's `problem.area`. */
  area: Area;
  /** The requirements schema's `problem.downstream_task`. */
  downstreamTask: string;
  /** The requirements schema's `dataset[].modality`. */
  modality: readonly string[];
  /** The requirements schema's `data_card.data_type`. */
  dataType: string;
  /** The question asking for the data, worded for what the task reads. */
  dataQuestion: string;
  words: TaskWords;
  /** The kind named in free wording, such as an LLM's "image classification" (RegExp source, on snake_case). */
  synonyms: string;
}

const CLASS_METRICS = ["accuracy", "f1", "precision", "recall", "roc_auc"] as const;
/** The question for a plain table; also asked while the task is still unknown. */
export const TABLE_DATA_QUESTION = "Which dataset should I use? Attach a CSV file (in the terminal, send its path).";

/** Words that ask to sort things into classes. */
export const CLASSIFY_WORDS = "\\bclassif(?:y|ies|ied|ying|ication|ier|iers)\\b|\\bcategori[sz](?:e|es|ed|ing|ation)\\b";
/** Looser words for classes, enough beside words for images or text. */
export const LOOSE_CLASSIFY_WORDS = "\\brecogni[sz]\\w*|\\bidentif\\w*|\\bspecies\\b|\\bsentiment\\b|\\bentailment\\b|\\bspam\\b";

const TASKS = [
  {
    kind: "classification",
    label: "classification",
    harnessVariant: "tabular",
    harnessTask: "classification",
    metrics: CLASS_METRICS,
    area: "tabular data analysis",
    downstreamTask: "tabular classification",
    modality: ["tabular"],
    dataType: "tabular",
    dataQuestion: TABLE_DATA_QUESTION,
    words: {
      names: CLASSIFY_WORDS,
      hints: [
        "\\bbinary\\b|\\bmulti-?class\\b|\\bmulticlass\\b",
        "\\b(?:predict|determine|tell)\\w*\\s+(?:whether|if)\\b",
        "\\byes\\s*(?:or|\\/)\\s*no\\b|\\btrue\\s+or\\s+false\\b",
        "\\bas\\s+['\"`]?[A-Za-z]+['\"`]?\\s+or\\s+['\"`]?[A-Za-z]+['\"`]?(?:\\b|$)",
      ],
    },
    synonyms: "classif",
  },
  {
    kind: "regression",
    label: "regression",
    harnessVariant: "tabular",
    harnessTask: "regression",
    metrics: ["rmse", "rmsle", "mae", "r2", "mape", "smape"],
    area: "tabular data analysis",
    downstreamTask: "tabular regression",
    modality: ["tabular"],
    dataType: "tabular",
    dataQuestion: TABLE_DATA_QUESTION,
    words: {
      names: "\\bregress(?:ion|or|ors)\\b",
      hints: [
        "\\b(?:predict|estimat)\\w*\\s+(?:the\\s+|a\\s+|an\\s+|their\\s+|its\\s+|future\\s+)?(?:[a-z']+\\s+){0,2}?(?:prices?|costs?|amounts?|revenues?|sales|ages?|temperatures?|salar(?:y|ies)|incomes?|quantit(?:y|ies)|demand|durations?|yields?)\\b(?!\\s+(?:groups?|categor(?:y|ies)|class(?:es)?|ranges?|brackets?|bands?|levels?|tiers?))",
        "\\b(?:predict|estimat)\\w*\\s+how\\s+(?:much|many|long)\\b",
      ],
      // a classifier, not a regression request
      except: "logistic[\\s-]+regression",
    },
    synonyms: "regress",
  },
  {
    kind: "clustering",
    label: "clustering",
    harnessVariant: "tabular",
    harnessTask: "clustering",
    metrics: ["rand_index", "adjusted_rand_index", "nmi", "silhouette"],
    labelFreeMetric: "silhouette",
    area: "tabular data analysis",
    downstreamTask: "tabular clustering",
    modality: ["tabular"],
    dataType: "tabular",
    dataQuestion: TABLE_DATA_QUESTION,
    words: {
      names:
        "\\bclust(?:er|ers|ering|ered)\\b|\\bunsupervised\\b|\\bk[\\s-]?means\\b|\\bsegmentation\\b|\\bsegment\\s+(?:[a-z]+\\s+){0,3}?into\\b|\\bgroup\\s+(?:[a-z]+\\s+){0,4}?into\\s+\\S+\\s+(?:groups|clusters|segments)\\b" +
        "|\\bsegment\\s+(?:the\\s+|our\\s+|my\\s+|these\\s+)?[a-z]+\\s+by\\b|\\bnatural\\s+(?:groups|groupings|segments|clusters)\\b",
    },
    synonyms: "cluster|segment",
  },
  {
    kind: "image_classification",
    label: "image classification",
    harnessVariant: "images",
    harnessTask: "classification",
    metrics: CLASS_METRICS,
    area: "computer vision",
    downstreamTask: "image classification",
    modality: ["image"],
    dataType: "images",
    dataQuestion:
      "Which images should I use? Attach a zip archive of images, with a CSV of file names and labels or one folder per class (in the terminal, send its path or a folder's).",
    words: {
      withClassify: { all: ["\\b(?:images?|photos?|pictures?|pixels?|cnns?|resnet[\\w-]*|convolutional|computer\\s+vision)\\b"], loose: true },
    },
    synonyms: "image|vision|photo",
  },
  {
    kind: "text_classification",
    label: "text classification",
    harnessVariant: "tabular",
    harnessTask: "classification",
    metrics: CLASS_METRICS,
    area: "natural language processing",
    downstreamTask: "text classification",
    modality: ["tabular", "text"],
    dataType: "tabular with text",
    dataQuestion: TABLE_DATA_QUESTION,
    words: {
      withClassify: {
        all: [
          "\\b(?:texts?|textual|sentences?|reviews?|tweets?|nlp|natural\\s+language|language\\s+models?|bert|transformers?|sentiment|entailment|headlines?|spam)\\b",
        ],
        loose: true,
      },
    },
    synonyms: "text|nlp|sentiment|language",
  },
  {
    kind: "time_series_forecasting",
    label: "time-series forecasting",
    harnessVariant: "timeseries",
    harnessTask: "regression",
    metrics: ["rmse", "mae", "mape", "smape", "rmsle", "r2"],
    area: "time-series analysis",
    downstreamTask: "time-series forecasting",
    modality: ["time series"],
    dataType: "time series",
    dataQuestion: "Which dataset should I use? Attach a CSV file with a time column (in the terminal, send its path).",
    // "14 days ahead" also asks for a forecast; that rule is built from the parser's time units
    words: { names: "\\bforecast(?:s|ing|er|ers)?\\b|\\btime[\\s-]?series\\b|\\bfuture\\s+sequences?\\b" },
    synonyms: "time_?series|forecast",
  },
  {
    kind: "node_classification",
    label: "node classification",
    harnessVariant: "graph",
    harnessTask: "classification",
    metrics: CLASS_METRICS,
    area: "graph machine learning",
    downstreamTask: "node classification",
    modality: ["graph", "tabular"],
    dataType: "graph (node table and edge list)",
    dataQuestion:
      "Which graph should I use? Attach the node table and the edge list (two CSV files, or a zip archive holding both; in the terminal, send their paths).",
    words: {
      names:
        "\\bnode[\\s-]+classification\\b|\\bgcn\\b|\\bgnn\\b|\\bgraph[\\s-]+(?:neural|convolutional|attention)\\b|\\bcora\\b|\\bciteseer\\b|\\bpubmed\\b|\\bplanetoid\\b|torch_geometric",
      withClassify: { all: ["\\bgraph\\b", "\\bnodes?\\b"], loose: false },
    },
    synonyms: "node|graph",
  },
] as const satisfies readonly TaskEntry[];

export type TaskKind = (typeof TASKS)[number]["kind"];
export type TaskSpec = TaskEntry & { kind: TaskKind };

/** The registry, in the order the schema and the prompts list the kinds. */
export const TASK_SPECS: readonly TaskSpec[] = TASKS;
export const TASK_KINDS = TASKS.map((t) => t.kind) as unknown as readonly [TaskKind, ...TaskKind[]];

const BY_KIND = new Map<string, TaskSpec>(TASK_SPECS.map((t) => [t.kind, t]));

export function taskSpec(kind: TaskKind): TaskSpec {
  return BY_KIND.get(kind)!;
}

/** The kind of a string that may not be one (an answer, an LLM's output), or null. */
export function asTaskKind(value: string): TaskKind | null {
  return BY_KIND.get(value)?.kind ?? null;
}

/** Kinds that are their own harness task on a plain table: classification, regression, clustering. */
export function isPlainTask(kind: TaskKind): boolean {
  const t = taskSpec(kind);
  return t.harnessVariant === "tabular" && t.harnessTask === kind;
}

/** The harness task each non-tabular variant runs as (one per variant). */
export function variantTask(variant: HarnessVariant): HarnessTask | undefined {
  if (variant === "tabular") return undefined;
  return TASK_SPECS.find((t) => t.harnessVariant === variant)?.harnessTask;
}
