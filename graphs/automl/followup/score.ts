import path from "node:path";
import { HarnessTask, type Predicted } from "../../../runners/contract.js";
import { profileCsv } from "../data/profile.js";
import { DataError } from "../data/read/errors.js";
import { fmt, oneLine } from "../format.js";
import { failed, followUpRunId, modelFiles, runFollowUp, trainedUnder, type FollowUpAnswer, type FollowUpDeps, type FollowUpModel } from "./job.js";

const INPUT = "data/input.csv";
const LISTED = 8;

const quoted = (names: string[]) => names.slice(0, LISTED).map((n) => `"${oneLine(n, 60)}"`).join(", ") + (names.length > LISTED ? ` and ${names.length - LISTED} more` : "");
const squash = (name: string) => name.toLowerCase().replace(/[\s_\-.]+/g, "");

/**
 * Scores a file the user sent with a registered model: the file is read like any upload (any format,
 * encoding or separator), its columns are checked against the model's inputs before anything runs,
 * and the harness writes the predictions in the model's own workspace layout, loading the model the way
 * its server does (so the file says what the endpoint would).
 */
export async function scoreFile(deps: FollowUpDeps, model: FollowUpModel, file: string): Promise<FollowUpAnswer> {
  const loaded = await modelFiles(model);
  if (typeof loaded === "string") return failed(loaded);
  const { files, meta } = loaded;
  if (meta.variant)
    return failed(`Scoring a file works for models trained on a table; ${model.name} is a ${meta.variant} model, which takes its own request at its endpoint.`);
  const task = HarnessTask.safeParse(meta.task);
  if (!task.success) return failed(`${model.name}'s saved description names an unknown task.`);

  let table;
  try {
    table = await profileCsv(file, { maxBytes: deps.config.limits.maxUploadMb * 1048576, convertedDir: path.resolve(deps.cwd, deps.config.dataDir, "converted") });
  } catch (err) {
    if (err instanceof DataError) return failed(err.message);
    throw err;
  }
  const name = path.basename(table.source?.original ?? table.name);
  const have = table.columns.map((c) => c.name);
  const missing = meta.features.filter((f) => !have.includes(f));
  if (missing.length) {
    const near = missing.flatMap((m) => {
      const match = have.find((h) => squash(h) === squash(m));
      return match ? [`"${oneLine(match, 60)}" for "${oneLine(m, 60)}"`] : [];
    });
    return failed(
      `${oneLine(name, 80)} lacks ${missing.length === 1 ? "a column" : `${missing.length} columns`} ${model.name} needs: ${quoted(missing)}.`,
      `The model takes ${quoted(meta.features)}; ${oneLine(name, 80)} has ${quoted(have)}.` + (near.length ? ` Did you mean ${near.join(", ")}? Rename them and send the file again.` : " Add them and send the file again."),
    );
  }
  const under = trainedUnder(model);
  const run = await runFollowUp(deps, {
    runId: followUpRunId(model, "score"),
    files: [...files, { source: table.file, dest: INPUT }],
    spec: {
      mode: "predict",
      task: task.data,
      data: INPUT,
      target: model.target,
      metric: under?.requirements.metric.name ?? "",
      predict: { input: INPUT, model_dir: "model" },
      plots: false,
    },
  });
  if (typeof run === "string") return failed(`Scoring ${oneLine(name, 80)} failed: ${run}`);
  const predicted = run.result.predicted;
  const scored = run.artifacts?.scored;
  if (!predicted || !scored) return failed(`Scoring ${oneLine(name, 80)} failed: the run wrote no predictions file.`);
  const stem = path.basename(name).replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 60) || "data";
  return { ok: true, lines: summary(model, name, predicted), file: { path: scored, name: `${stem}-predictions.csv` } };
}

/** Rows, what was predicted (class counts or the range), the metrics where the file had the answers, and what was ignored. */
function summary(model: FollowUpModel, name: string, p: Predicted): string[] {
  const lines = [`Scored ${p.rows.toLocaleString("en-US")} row${p.rows === 1 ? "" : "s"} of ${oneLine(name, 80)} with ${model.name} (${oneLine(model.description, 80)}).`];
  if (p.counts) {
    const total = Object.values(p.counts).reduce((a, b) => a + b, 0) || 1;
    const parts = Object.entries(p.counts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([value, n]) => `${oneLine(value, 40)}: ${n.toLocaleString("en-US")} (${((100 * n) / total).toFixed(1)}%)`);
    lines.push(`Predicted${model.target ? ` ${oneLine(model.target, 60)}` : ""}: ${parts.join(", ")}.`);
  }
  if (p.range) lines.push(`Predicted${model.target ? ` ${oneLine(model.target, 60)}` : ""} from ${fmt(p.range.min)} to ${fmt(p.range.max)} (mean ${fmt(p.range.mean)}).`);
  if (p.metrics && Object.keys(p.metrics).length) {
    const shown = Object.entries(p.metrics)
      .slice(0, 4)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(", ");
    lines.push(`The file has the answers${model.target ? ` in "${oneLine(model.target, 60)}"` : ""}; on these rows: ${shown}.`);
  }
  const ignored = p.ignored_columns.filter((c) => c !== model.target);
  if (ignored.length) lines.push(`Columns the model does not use were kept in the file and ignored: ${quoted(ignored)}.`);
  return lines;
}
