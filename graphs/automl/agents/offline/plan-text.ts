import type { Requirements } from "../../../../src/schema/requirements.js";
import type { Family } from "../../knowledge/index.js";
import type { DataProfile } from "../types.js";

// The plan card's wording for the harness variants (forecasting, graphs, images): what happens to the
// data, how the search evaluates and what the endpoint takes.

export interface PlanText {
  steps: string[];
  training: string;
  inference: string;
  /** Ends the summary: "…, tuned for rmse" plus what the variant adds. */
  goal: string;
}

const quoteAll = (names: readonly string[]) => names.map((c) => `"${c}"`).join(", ");

function forecastText(req: Requirements, profile: DataProfile, first: Family): PlanText {
  const f = req.forecast!;
  const t = profile.time?.column === f.time_column ? profile.time : null;
  const strategy =
    first.strategy === "recursive"
      ? `recursive: a one-step model fed its own forecasts, ${f.horizon} times`
      : `direct: one model with the step ahead (1 to ${f.horizon}) as a feature`;
  return {
    steps: [
      `series${f.id_column ? ` per "${f.id_column}"` : ""} ordered by "${f.time_column}" on a regular ${t?.label ?? ""} grid (missing steps interpolated)`.replace("  ", " "),
      `features at each forecast origin: lags, rolling means and spread, the value one season earlier and the seasonal mean, calendar terms of the forecast time${f.exogenous.length ? `, ${quoteAll(f.exogenous)} at the origin` : ""}; all relative to the last value and the recent scale`,
      `${strategy}`,
      `time-ordered split: the last horizon-sized blocks of every series are the test split, the block before them validation; never shuffled`,
      first.preprocess.scale ? "standardise the features" : null,
    ].filter((s): s is string => s !== null),
    training: "random search over each model's hyperparameters, scored by backtests from rolling forecast origins inside the training part, then a refit of the best configuration",
    inference: `served over HTTP: a recent history of each series in, the next ${f.horizon} values out`,
    goal: ` ${f.horizon} step${f.horizon === 1 ? "" : "s"} ahead${f.horizon_phrase && !/^\d+ steps?$/.test(f.horizon_phrase) ? ` (${f.horizon_phrase})` : ""}, tuned for ${req.metric.name}, with a seasonal-naive forecast reported beside it`,
  };
}

function graphText(req: Requirements, profile: DataProfile, first: Family): PlanText {
  const g = profile.graph!;
  const target = profile.columns.find((c) => c.name === req.target);
  return {
    steps: [
      `join ${g.nodes} nodes on "${g.nodeIdColumn}" with ${g.edges} edges ("${g.sourceColumn}" → "${g.targetColumn}", taken as undirected)`,
      "standardise numeric node features and one-hot encode categories (a truncated SVD beyond 512 of them)",
      "propagate them over the normalised adjacency with self-loops: X, ÂX and Â²X side by side (SGC), plus each node's degree",
      target?.missing ? `${target.missing} unlabelled nodes take part in propagation only` : null,
      "stratified split of the labelled nodes (70 / 15 / 15); their labels never become features",
      first.preprocess.scale ? "standardise the propagated features" : null,
    ].filter((s): s is string => s !== null),
    training: "random search over each model's hyperparameters with 3-fold cross-validation on the training nodes, then a refit of the best configuration",
    inference: "served over HTTP: node ids in (or a new node's features and neighbours), labels out",
    goal: `, tuned for ${req.metric.name}`,
  };
}

function imageText(req: Requirements, profile: DataProfile, first: Family): PlanText {
  const im = profile.images!;
  const raw = first.preprocess.raw === true;
  return {
    steps: [
      `read ${im.images} images from ${profile.name} (labels from ${im.layout === "folders" ? "the class folders" : `"${im.filenameColumn}" and "${req.target}" of the labels CSV`})`,
      "decode with PIL, crop to a centred square and resize to 32 x 32 RGB",
      raw
        ? "the network sees the pixels (normalised per channel), with random flips and small shifts while training"
        : "image features: block-averaged colour and grey pixels, colour and hue histograms, histograms of oriented gradients (292 numbers)",
      !raw && first.preprocess.scale ? "standardise the features" : null,
      "stratified train / validation / test split (70 / 15 / 15)",
    ].filter((s): s is string => s !== null),
    training: raw
      ? "a short search over learning rate and width with 3-fold cross-validation on the training images, then training on the whole training split"
      : "random search over each model's hyperparameters with 3-fold cross-validation on the training images, then a refit of the best configuration",
    inference: "served over HTTP: base64-encoded images in, labels out",
    goal: `, tuned for ${req.metric.name}`,
  };
}

/** The plan card text for a variant task, or null for tables. */
export function variantPlanText(req: Requirements, profile: DataProfile, first: Family): PlanText | null {
  if (req.task === "time_series_forecasting" && req.forecast) return forecastText(req, profile, first);
  if (req.task === "node_classification" && profile.graph) return graphText(req, profile, first);
  if (req.task === "image_classification" && profile.images) return imageText(req, profile, first);
  return null;
}
