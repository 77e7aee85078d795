import { basename } from "node:path";
import type { ForecastStrategy, HarnessSpecInput } from "../../runners/contract.js";
import { harnessTaskOf, harnessVariantOf, type Requirements } from "../../src/schema/requirements.js";
import { textFeatureColumns } from "./data/profile.js";
import type { DataProfile } from "./agents/types.js";

// What a run needs from the conversation's data: the files copied into the workspace (all under data/)
// and the spec fields that say how the harness reads them (a table, series, a graph, images).

export interface HarnessInputs {
  files: Array<{ source: string; dest: string }>;
  spec: Omit<HarnessSpecInput, "mode">;
}

export function harnessInputs(profile: DataProfile, req: Requirements, seed: number, strategy?: ForecastStrategy): HarnessInputs {
  const inputs = profile.inputs?.length ? profile.inputs : [profile.file];
  const names = new Map<string, string>();
  for (const [i, f] of inputs.entries()) {
    const name = basename(f);
    // two inputs of one name (a/labels.csv, b/labels.csv) must not overwrite each other
    names.set(f, [...names.values()].includes(`data/${name}`) ? `data/${i}-${name}` : `data/${name}`);
  }
  const dest = (f: string) => names.get(f) ?? `data/${basename(f)}`;
  const variant = harnessVariantOf(req.task);
  const spec: HarnessInputs["spec"] = {
    variant,
    task: harnessTaskOf(req.task),
    data: dest(profile.file),
    delimiter: profile.delimiter,
    target: req.target,
    metric: req.metric.name,
    metric_goal: metricGoal(req),
    labels_column: req.labels_column,
    drop_columns: variant === "images" || variant === "timeseries" ? [] : req.drop_columns,
    // text classification is the harness's classification over TF-IDF features of the text columns
    text_columns: variant === "tabular" ? textFeatureColumns(profile, req) : [],
    positive_class: req.positive_class,
    n_clusters: req.n_clusters,
    seed,
  };
  if (variant === "timeseries") {
    const f = req.forecast;
    if (!f) throw new Error("a forecast needs its time column and horizon");
    spec.timeseries = { time_column: f.time_column, id_column: f.id_column, horizon: f.horizon, strategy: strategy ?? "direct", exogenous: f.exogenous };
  } else if (variant === "graph") {
    const g = profile.graph;
    if (!g) throw new Error("node classification needs an edge list");
    spec.graph = {
      edges: dest(g.edgesFile),
      edges_member: g.edgesMember,
      edges_delimiter: g.edgesDelimiter,
      nodes_member: g.nodesMember,
      node_id_column: g.nodeIdColumn,
      source_column: g.sourceColumn,
      target_column: g.targetColumn,
    };
  } else if (variant === "images") {
    const im = profile.images;
    if (!im || im.layout === "none") throw new Error("image classification needs labelled images");
    spec.data = dest(im.source);
    spec.images = {
      labels: im.labels.map((l) => (l.file ? { file: dest(l.file), delimiter: l.delimiter } : { member: l.member!, delimiter: l.delimiter })),
      filename_column: im.layout === "labels_csv" ? im.filenameColumn : null,
    };
  }
  return { files: inputs.map((f) => ({ source: f, dest: dest(f) })), spec };
}

/** The value the user asked of the primary metric ("F1 at least 0.6" → 0.6); a cap on it ("F1 at most 0.9") is no goal. */
export function metricGoal(req: Pick<Requirements, "metric" | "constraints">): number | null {
  const goal = req.constraints.find(
    (c) => c.name === req.metric.name && (req.metric.direction === "max" ? c.op === ">=" || c.op === ">" : c.op === "<=" || c.op === "<"),
  );
  return goal?.target ?? null;
}
