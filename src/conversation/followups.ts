import { parseRequest } from "../../graphs/automl/request/parse.js";

// What a message in a thread that already has a model asks for (docs/architecture.md §9). The same
// words in both engines: a follow-up is routed before any engine reads it; a change to retrain with is
// then read by the engine like any revision.

export type FollowUp =
  /** The model registry (every thread's models). */
  | { kind: "models" }
  /** Predictions for attached files, or files typed as paths where the platform allows it. */
  | { kind: "score"; files: string[]; paths: string[] }
  | { kind: "explain" }
  | { kind: "compare" }
  /** `name`: one model of the thread named in the message; else every model of the thread that serves. */
  | { kind: "undeploy"; name: string | null }
  /** A change to the earlier request; `moreTime` scales the search budget. */
  | { kind: "retrain"; change: string; moreTime: boolean }
  /** A request of its own: a new conversation that starts from nothing. */
  | { kind: "new"; text: string }
  /** Nothing to act on: the answer lists what can be asked. */
  | { kind: "help" };

const MODELS = /^\s*\/?(models|list (the |all )?models|which models are (running|serving|deployed)|registry)\s*[?.!]*\s*$/i;
export const UNDEPLOY = /^\s*(undeploy|stop serving|stop the (model )?server|take (it|the model|the endpoint) (down|offline)|shut (it|the model|the endpoint) down)\b/i;
const COMPARE = /\b(compare|comparison|side by side|which (model|one) (is|was|did) (better|best)|how do (they|the models) compare)\b/i;
const EXPLAIN = /\b(explain|explanation|what matters|what mattered|(feature|column|variable) importances?|most important|which (features|columns|variables) (matter|count|drive|influence)|what drives|why (does|did) (it|the model) predict)\b/i;
const SCORE = /\b(score|scoring|predictions?|classify|label|run (it|the model) on|apply (it|the model)|use (it|the model) on|what would (it|the model) say)\b/i;
/** "predict <what>": the model's target or a pronoun scores the file; another column is a request of its own. */
const PREDICT_WHAT = /\bpredict\s+(?:the\s+)?([\p{L}\p{N}_-]+)/iu;
const PREDICT_THESE = ["these", "this", "them", "it", "for", "on", "with", "what", "rows", "customers", "values"];
const TRAIN = /\b(train|retrain|re-train|build|fit|new model)\b/i;
const NEW = /^\s*(new( request)?|start over|from scratch)\s*[:,-]?\s*/i;
const MORE_TIME = /\b(more time|longer|take your time|(search|try) (harder|more)|bigger (search|budget)|more (trials|search))\b/i;
const CHANGE =
  /\b(again|retry|retrain|re-train|try|without|instead|drop|exclude|leave out|ignore|remove|only use|keep|add|at least|at most|above|below|better|higher|lower|faster|smaller|with an?|using an?|use an?|switch to|optimi[sz]e|target|metric|more time|longer)\b/i;

/**
 * Reads a message sent after a model was trained in the thread. `columns` are the data's columns and
 * `names` the thread's registered model names; `localPaths` says whether typed paths may be read (the
 * terminal and CLI, never chat users).
 */
export function readFollowUp(text: string, files: string[], o: { columns: string[]; names: string[]; localPaths: boolean; target?: string | null }): FollowUp {
  const t = text.trim();
  if (MODELS.test(t)) return { kind: "models" };
  if (UNDEPLOY.test(t)) {
    // whole names only ("churn-2" is not "churn"); names are [a-z0-9-] (MODEL_NAME)
    const words = t.toLowerCase().split(/[^a-z0-9-]+/);
    return { kind: "undeploy", name: o.names.find((n) => words.includes(n)) ?? null };
  }
  if (NEW.test(t) && t.replace(NEW, "").length > 0) return { kind: "new", text: t.replace(NEW, "") };
  const parsed = parseRequest(t, o.columns);
  const paths = o.localPaths ? parsed.dataPaths.filter((p) => !p.endsWith("/")) : [];
  // A file with a request to train on it, or to predict another column, is new data for a new model; a
  // file alone, or asked to be scored (or to predict the model's own target), is to be scored.
  if (files.length || paths.length) {
    if (SCORE.test(t)) return { kind: "score", files, paths };
    const what = t.match(PREDICT_WHAT)?.[1]?.toLowerCase();
    const another = what !== undefined && what !== o.target?.toLowerCase() && !PREDICT_THESE.includes(what);
    return TRAIN.test(t) || another ? { kind: "new", text: t } : { kind: "score", files, paths };
  }
  if (EXPLAIN.test(t)) return { kind: "explain" };
  if (COMPARE.test(t)) return { kind: "compare" };
  const moreTime = MORE_TIME.test(t);
  const changes = parsed.columnMentions.length > 0 || parsed.metric !== null || parsed.constraints.length > 0 || parsed.requestedModels.length > 0 || parsed.target !== null;
  if (moreTime || changes || CHANGE.test(t)) return { kind: "retrain", change: t, moreTime };
  return { kind: "help" };
}

/** What the thread can be asked once a model is trained (the answer to anything else). */
export function followUpHelp(model: string, localPaths: boolean): string {
  return [
    `${model} is trained. In this thread you can:`,
    `• ${localPaths ? "attach a file or type its path" : "attach a file"} to get predictions for it`,
    "• ask `what matters?` for the features that drive it",
    "• ask for a change and retrain — `try again without <column>`, `use a random forest`, `F1 at least 0.8`, `more time`",
    "• `compare` the thread's models, `undeploy` to stop serving, `models` for every registered model",
    "• start with `new:` for a request of its own",
  ].join("\n");
}
