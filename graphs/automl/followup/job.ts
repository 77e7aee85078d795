import { lstat, readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Config } from "../../../config/schema.js";
import type { HarnessResult, HarnessSpecInput } from "../../../runners/contract.js";
import type { HostArtifacts } from "../../../runners/intake.js";
import type { Runner } from "../../../runners/types.js";
import type { Logger } from "../../../src/logger.js";
import { DataProfile } from "../agents/types.js";
import { Requirements } from "../../../src/schema/requirements.js";
import { classifyOutcome } from "../failures.js";

// What the follow-ups of a finished conversation (scoring a file, explaining the model) share: the
// registered model's files put into a fresh workspace on the model's runner, one harness run, and
// its outcome as either a result or one plain sentence (docs/architecture.md §9).

/** Where a follow-up runs and what it may use. */
export interface FollowUpDeps {
  runner: Runner;
  config: Config;
  logger: Logger;
  /** Resolves the data folder. */
  cwd: string;
  signal?: AbortSignal;
}

/** The registered model a follow-up works on (the registry's entry, src/store/types.ts ModelEntry). */
export interface FollowUpModel {
  name: string;
  runId: string;
  description: string;
  artifactsDir: string | null;
  target: string | null;
  context: { requirements: unknown; profile: unknown; seed?: unknown };
}

/** A follow-up's answer: lines for the thread and, when it made one, a file to post. */
export type FollowUpAnswer = { ok: true; lines: string[]; file?: { path: string; name: string } } | { ok: false; lines: string[] };

export const failed = (...lines: string[]): FollowUpAnswer => ({ ok: false, lines });

/** What the model server reads beside the model, in the workspace's layout (the intake's copies keep it; a follow-up's model_dir holds it). */
export const MODEL_FILES = ["out/model.pkl", "out/model_meta.json", "solution.py"];

export const ModelMeta = z
  .object({
    task: z.string(),
    target: z.string().nullable().optional(),
    features: z.array(z.string()),
    variant: z.string().optional(),
  })
  .loose();
export type ModelMeta = z.infer<typeof ModelMeta>;

/** The model's files from the host-owned copies, checked to be regular files (they came out of a sandbox). */
export async function modelFiles(model: FollowUpModel): Promise<{ files: Array<{ source: string; dest: string }>; meta: ModelMeta } | string> {
  if (!model.artifactsDir) return `The files of ${model.name} were not kept, so it cannot be loaded again.`;
  const files: Array<{ source: string; dest: string }> = [];
  for (const rel of MODEL_FILES) {
    const source = path.join(model.artifactsDir, ...rel.split("/"));
    const st = await lstat(source).catch(() => null);
    if (!st?.isFile()) {
      if (rel === "solution.py") continue;
      return `The saved files of ${model.name} are gone (${rel} is missing from ${model.artifactsDir}); retrain it to use it again.`;
    }
    files.push({ source, dest: `model/${rel}` });
  }
  let meta: ModelMeta;
  try {
    meta = ModelMeta.parse(JSON.parse(await readFile(path.join(model.artifactsDir, "out", "model_meta.json"), "utf8")));
  } catch {
    return `The description of ${model.name}'s inputs (model_meta.json) is unreadable; retrain it to use it again.`;
  }
  return { files, meta };
}

/** The requirements and data profile the model was trained under, as the registry kept them. */
export function trainedUnder(model: FollowUpModel): { requirements: Requirements; profile: DataProfile } | null {
  const req = Requirements.safeParse(model.context.requirements);
  const profile = DataProfile.safeParse(model.context.profile);
  return req.success && profile.success ? { requirements: req.data, profile: profile.data } : null;
}

/** A run id for a follow-up job: the model's run, the kind and a time stamp (safe as a folder name). */
export const followUpRunId = (model: FollowUpModel, kind: string) => `${model.runId.slice(-60)}-${kind}-${Date.now().toString(36)}`;

/** Prepares the workspace, runs the harness once and returns its result, or a sentence saying why there is none. */
export async function runFollowUp(
  deps: FollowUpDeps,
  o: { runId: string; files: Array<{ source: string; dest: string }>; spec: HarnessSpecInput },
): Promise<{ result: HarnessResult; artifacts: HostArtifacts | null } | string> {
  const limits = { wallTimeS: deps.config.limits.wallTimeS, cpuS: deps.config.limits.cpuS, memoryMb: deps.config.limits.memoryMb, pids: deps.config.limits.pids, diskMb: deps.config.limits.diskMb };
  try {
    const ws = await deps.runner.prepare({ runId: o.runId, files: o.files, texts: {} });
    const outcome = await deps.runner.run(ws, { spec: o.spec, limits, ...(deps.signal ? { signal: deps.signal } : {}) });
    const classified = classifyOutcome(outcome, limits.wallTimeS);
    deps.logger.info({ run: o.runId, mode: o.spec.mode, failure: classified.failure, seconds: outcome.durationS }, "follow-up run finished");
    if (classified.failure === "cancelled") return "Cancelled.";
    if (classified.failure !== "success" || !outcome.result) return classified.message;
    return { result: outcome.result, artifacts: outcome.artifacts ?? null };
  } catch (err) {
    deps.logger.warn({ err, run: o.runId }, "follow-up run could not start");
    return `the ${deps.runner.name} runner could not run it: ${(err as Error).message}`;
  }
}
