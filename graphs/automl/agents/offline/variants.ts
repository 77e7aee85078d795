import { basename } from "node:path";
import type { Forecast, GraphLayout, ImagesLayout, TaskKind } from "../../../../src/schema/requirements.js";
import type { Conversation, DataProfile, Question } from "../types.js";
import type { ParsedRequest } from "../../request/parse.js";
import { horizonSteps } from "../../data/profile-time.js";

// What the image, graph and forecasting tasks need from the data beyond a target, read from the
// profile, the request and the answers; and the questions to ask when something is missing.

const MAX_CHOICES = 25;

/** The task the data itself points to, when the words left it open or said plain classification. */
export function taskFromData(task: TaskKind | null, profile: DataProfile | null, parsed: ParsedRequest): { task: TaskKind | null; reason: string } {
  if (!profile) return { task, reason: "" };
  if (profile.images && (task === null || task === "classification"))
    return { task: "image_classification", reason: `${profile.name} holds images` };
  if (profile.graph && (task === null || task === "classification"))
    return { task: "node_classification", reason: `${basename(profile.graph.edgesFile)} lists edges between the rows of ${profile.name}` };
  if (profile.time && parsed.horizon && (task === null || task === "regression"))
    return { task: "time_series_forecasting", reason: `you asked for ${parsed.horizon.phrase} and ${profile.name} has a time column` };
  return { task, reason: "" };
}

/** The image task's labels: a labels table's other column, or the class folders. */
export function imageTarget(profile: DataProfile): string | null {
  const im = profile.images;
  if (!im || im.layout === "none") return null;
  if (im.layout === "folders") return "label";
  const others = profile.columns.filter((c) => c.name !== im.filenameColumn && c.kind !== "empty");
  return others.length === 1 ? others[0].name : null;
}

export interface ForecastReading {
  time: string | null;
  series: string | null;
  /** Steps ahead, and the user's words for it. */
  horizon: { steps: number; phrase: string | null } | null;
  /** A horizon given in a unit these timestamps cannot express ("3 days" of numbered steps). */
  unconvertible: string | null;
}

function column(profile: DataProfile, value: string | undefined | null): string | null {
  if (!value) return null;
  const norm = (s: string) => s.toLowerCase().replace(/[\s_\-`'"]/g, "");
  return profile.columns.find((c) => c.name === value)?.name ?? profile.columns.find((c) => norm(c.name) === norm(value))?.name ?? null;
}

/** The time column, the series column and the horizon, from answers first, then the words, then the data. */
export function readForecast(conversation: Conversation, profile: DataProfile, parsed: ParsedRequest): ForecastReading {
  const t = profile.time ?? null;
  const time = column(profile, conversation.answers.time) ?? parsed.timeColumn ?? t?.column ?? null;
  const said = conversation.answers.series;
  const series = said && /^(?:none|no|-)$/i.test(said.trim()) ? null : (column(profile, said) ?? parsed.seriesColumn ?? (t?.column === time ? t?.idColumn : null) ?? null);
  let horizon: ForecastReading["horizon"] = null;
  let unconvertible: string | null = null;
  const answered = conversation.answers.horizon;
  if (answered && /^\s*\d+\s*$/.test(answered)) horizon = { steps: Number(answered), phrase: `${answered.trim()} steps` };
  else if (answered || parsed.horizon) {
    const written = answered ? null : parsed.horizon;
    const reading = written ?? readHorizonAnswer(answered!);
    if (reading) {
      const steps = horizonSteps(reading.value, reading.unit, t && t.column === time ? t : null);
      if (steps !== null && steps >= 1) horizon = { steps, phrase: reading.phrase };
      else unconvertible = reading.phrase;
    }
  }
  return { time, series, horizon: horizon && horizon.steps <= 10_000 ? horizon : null, unconvertible };
}

function readHorizonAnswer(text: string): { value: number; unit: string; phrase: string } | null {
  const m = /(\d+)\s*([a-z]+)?/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? "step").toLowerCase().replace(/s$/, "");
  const known = ["step", "second", "minute", "hour", "day", "week", "month", "quarter", "year"];
  return { value: Number(m[1]), unit: known.includes(unit) ? unit : "step", phrase: text.trim() };
}

/** The forecast part of the requirements, or null when something is still missing. */
export function forecastOf(reading: ForecastReading, profile: DataProfile, target: string | null, drop: readonly string[]): Forecast | null {
  if (!reading.time || !reading.horizon || !target) return null;
  const exclude = new Set([reading.time, reading.series, target, ...drop]);
  const exogenous = profile.columns.filter((c) => c.kind === "numeric" && c.suspect === null && !exclude.has(c.name)).map((c) => c.name);
  const t = profile.time?.column === reading.time ? profile.time : null;
  return {
    time_column: reading.time,
    id_column: reading.series,
    horizon: reading.horizon.steps,
    horizon_phrase: reading.horizon.phrase,
    frequency: t?.frequency ?? null,
    exogenous,
  };
}

export function graphOf(profile: DataProfile): GraphLayout | null {
  const g = profile.graph;
  if (!g) return null;
  return {
    edges: g.edgesMember ? `${basename(g.edgesFile)}: ${g.edgesMember}` : basename(g.edgesFile),
    node_id_column: g.nodeIdColumn,
    source_column: g.sourceColumn,
    target_column: g.targetColumn,
  };
}

export function imagesOf(profile: DataProfile): ImagesLayout | null {
  const im = profile.images;
  if (!im || im.layout === "none") return null;
  return {
    layout: im.layout,
    labels: im.labels.map((l) => l.member ?? basename(l.file ?? "")),
    filename_column: im.layout === "labels_csv" ? im.filenameColumn : null,
  };
}

/** Horizon choices that suit the data's frequency. */
function horizonChoices(label: string | undefined): string[] {
  if (label === "hourly") return ["24", "48", "168"];
  if (label === "daily") return ["7", "14", "28"];
  if (label === "weekly") return ["4", "8", "13"];
  if (label === "monthly") return ["3", "6", "12"];
  if (label === "quarterly") return ["2", "4", "8"];
  return ["1", "5", "10"];
}

/**
 * Questions a task of this kind still needs answered, most blocking first: the data it cannot do
 * without (images, labels, the edge list), then for forecasts the time column, the series and the horizon.
 */
export function variantQuestions(task: TaskKind, profile: DataProfile, conversation: Conversation, parsed: ParsedRequest, target: string | null): Question[] {
  const columns = profile.columns.map((c) => c.name);
  if (task === "image_classification") {
    if (!profile.images)
      return [{ slot: "dataset", text: `${profile.name} is a table. Where are the images? Send the zip archive or the folder they are in.`, choices: [], allowFreeText: true }];
    if (profile.images.layout === "none")
      return [
        {
          slot: "dataset",
          text: `I found ${profile.images.images} images in ${profile.name} but no labels. Send a CSV with each image's file name and label, or put each class in its own folder.`,
          choices: [],
          allowFreeText: true,
        },
      ];
    return [];
  }
  if (task === "node_classification") {
    if (!profile.graph)
      return [
        {
          slot: "dataset",
          text: `Where is the edge list that joins the nodes of ${profile.name}? Send a CSV with one edge per row (the ids of its two nodes).`,
          choices: [],
          allowFreeText: true,
        },
      ];
    return [];
  }
  if (task !== "time_series_forecasting") return [];
  const reading = readForecast(conversation, profile, parsed);
  if (!reading.time) {
    const ordered = [...(profile.time?.candidates ?? []), ...columns.filter((c) => !(profile.time?.candidates ?? []).includes(c))];
    return [
      {
        slot: "time",
        text: conversation.answers.time
          ? `"${conversation.answers.time}" is not a column of ${profile.name}. Which column holds the time (dates, or step numbers)?`
          : `Which column of ${profile.name} holds the time (dates, or step numbers)?`,
        choices: ordered.slice(0, MAX_CHOICES).map((c) => ({ label: c, value: c })),
        allowFreeText: true,
      },
    ];
  }
  const t = profile.time?.column === reading.time ? profile.time : null;
  const questions: Question[] = [];
  if (t?.repeated && !reading.series && !conversation.answers.series) {
    const options = profile.columns.filter((c) => c.name !== reading.time && c.name !== target && c.kind !== "text" && c.kind !== "empty" && c.unique >= 2 && c.unique <= profile.rows / 2);
    questions.push({
      slot: "series",
      text: `Timestamps repeat in "${reading.time}", so ${profile.name} may hold several series. Which column tells them apart? Answer "none" to average the rows that share a time.`,
      choices: [...options.slice(0, MAX_CHOICES - 1).map((c) => ({ label: c.name, value: c.name })), { label: "none", value: "none" }],
      allowFreeText: true,
    });
  }
  if (!reading.horizon) {
    const what = t ? `The data is ${t.label}` : "";
    questions.push({
      slot: "horizon",
      text: reading.unconvertible
        ? `I can't turn "${reading.unconvertible}" into steps of "${reading.time}"${t ? ` (${t.label})` : ""}. How many steps ahead should I forecast?`
        : `How many steps ahead should I forecast?${what ? ` ${what}.` : ""}`,
      choices: horizonChoices(t?.label).map((v) => ({ label: `${v} steps`, value: v })),
      allowFreeText: true,
    });
  }
  return questions;
}
