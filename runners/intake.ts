import { constants } from "node:fs";
import { lstat, mkdir, open, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { HarnessResult } from "./contract.js";

// The one intake for everything a run leaves in its workspace. Generated code could write anything
// there (links to host files, FIFOs, huge files, forged paths in result.json), so the host reads the
// workspace only through here: result.json is validated, every artifact path must name a regular file
// inside the run's output folder, reached through real folders, opened without following links, and
// within a size cap. What passes is copied into a host-owned folder the sandbox never sees; reports,
// uploads and the CLI use only those copies. Local and SSH runners both call it (docs/security.md).

export interface HostArtifacts {
  /** The host-owned folder holding the copies (report.md is written here too). */
  dir: string;
  model: string | null;
  code: string | null;
  plots: string[];
  /** A train run's predictions for the held-out rows (out/predictions.json), for the scorer. */
  predictions?: string | null;
  /** A predict run's scored file (out/predictions.csv): the user's rows with the model's predictions. */
  scored?: string | null;
}

export interface IntakeLimits {
  resultBytes: number;
  modelBytes: number;
  plotBytes: number;
  codeBytes: number;
  predictionsBytes: number;
  maxPlots: number;
}

export const INTAKE_LIMITS: IntakeLimits = {
  resultBytes: 8 * 1024 * 1024,
  modelBytes: 1024 * 1024 * 1024,
  plotBytes: 10 * 1024 * 1024,
  codeBytes: 2 * 1024 * 1024,
  predictionsBytes: 256 * 1024 * 1024,
  maxPlots: 12,
};

// One path component of an artifact: no separators, no dot-files, nothing a shell or a chat would misread.
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;
const PLOT_EXT = /\.(png|svg)$/i;
/** The file a predict run writes in its output folder. */
const SCORED_FILE = "predictions.csv";

export class IntakeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IntakeError";
  }
}

/** Splits a workspace-relative path into safe components, or says why it is refused. */
export function safeParts(rel: unknown, maxDepth = 4): string[] {
  if (typeof rel !== "string" || !rel || rel.length > 400) throw new IntakeError("not a usable relative path");
  const parts = rel.split("/");
  if (parts.length > maxDepth) throw new IntakeError("too deep");
  for (const p of parts) if (!SAFE_NAME.test(p) || p === "." || p === "..") throw new IntakeError("a path component is not a plain file name");
  return parts;
}

/** Each folder from the root down to the file's parent must be a real folder, never a link. */
async function checkFolders(root: string, parts: string[]): Promise<void> {
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    cur = path.join(cur, p);
    const st = await lstat(cur).catch(() => null);
    if (!st) throw new IntakeError("missing");
    if (!st.isDirectory() || st.isSymbolicLink()) throw new IntakeError("a folder on its path is a link or not a folder");
  }
}

/** Opens a regular file without following a link at its last component; refuses FIFOs, devices and oversize files. */
async function openRegular(file: string, maxBytes: number): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    // O_NONBLOCK: opening a planted FIFO must not hang the host.
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new IntakeError("missing");
    if (code === "ELOOP" || code === "EMLINK") throw new IntakeError("is a symbolic link");
    throw new IntakeError(`cannot be opened (${code ?? "error"})`);
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new IntakeError("is not a regular file");
  }
  if (st.size > maxBytes) {
    await fh.close();
    throw new IntakeError(`is larger than ${Math.round(maxBytes / 1048576)} MiB`);
  }
  return { fh, size: st.size };
}

/** Opens a workspace file through the checks: safe names, real folders, a regular file within the cap. */
async function openChecked(root: string, rel: string, maxBytes: number): Promise<{ fh: FileHandle; size: number }> {
  const parts = safeParts(rel);
  await checkFolders(root, parts);
  return openRegular(path.join(root, ...parts), maxBytes);
}

/** Reads a workspace file through the same checks, as bytes. */
export async function readWorkspaceFile(root: string, rel: string, maxBytes: number): Promise<Buffer> {
  const { fh } = await openChecked(root, rel, maxBytes);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * Copies one workspace file to the same relative path in the host folder, so the copies keep the
 * workspace's layout (serve.py can load a model from them). Streamed from the checked descriptor (a
 * model may be large); exclusive create, so never through a name.
 */
async function copyIn(root: string, rel: string, destDir: string, maxBytes: number): Promise<string> {
  const { fh, size } = await openChecked(root, rel, maxBytes);
  const dest = path.join(destDir, ...rel.split("/"));
  try {
    await mkdir(path.dirname(dest), { recursive: true });
    await rm(dest, { force: true });
    const out = await open(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    // No more than the size checked at open, whatever the file does meanwhile.
    if (size === 0) await out.close();
    else await pipeline(fh.createReadStream({ start: 0, end: size - 1, autoClose: false }), out.createWriteStream());
  } finally {
    await fh.close();
  }
  return dest;
}

/** result.json of a run, read and validated as hostile input; its text never reaches a message. */
export async function readResult(workspace: string, outDir: string, limits: IntakeLimits = INTAKE_LIMITS): Promise<{ result: HarnessResult | null; note: string | null }> {
  let rel: string;
  try {
    rel = [...safeParts(outDir, 3), "result.json"].join("/");
  } catch {
    return { result: null, note: `[runner] out_dir ${JSON.stringify(String(outDir).slice(0, 80))} is not a plain folder inside the workspace; result ignored` };
  }
  let raw: string;
  try {
    raw = (await readWorkspaceFile(workspace, rel, limits.resultBytes)).toString("utf8");
  } catch (err) {
    const why = err instanceof IntakeError ? err.message : "cannot be read";
    if (why === "missing") return { result: null, note: `[runner] no result.json was written (${rel})` };
    return { result: null, note: `[runner] result.json was refused: it ${why}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    // The parser's message quotes the text; say only that it is not JSON.
    return { result: null, note: "[runner] result.json is not valid JSON" };
  }
  const parsed = HarnessResult.safeParse(json);
  if (parsed.success) return { result: parsed.data, note: null };
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".").slice(0, 80) || "(root)"}: ${i.code}`)
    .join("; ");
  return { result: null, note: `[runner] result.json does not match the contract: ${issues}` };
}

/** True when `rel` lies under the run's output folder (both already split into safe parts). */
function under(outParts: string[], parts: string[]): boolean {
  return parts.length > outParts.length && outParts.every((p, i) => parts[i] === p);
}

/**
 * Copies the artifacts a validated result names (model, plots) and the solution module into `dest`,
 * a host-owned folder, and returns the result with refused paths removed plus notes for the thread.
 */
export async function takeArtifacts(opts: {
  workspace: string;
  outDir: string;
  result: HarnessResult;
  dest: string;
  solution?: string;
  limits?: IntakeLimits;
}): Promise<{ result: HarnessResult; artifacts: HostArtifacts; notes: string[] }> {
  const limits = opts.limits ?? INTAKE_LIMITS;
  const notes: string[] = [];
  const ws = path.resolve(opts.workspace);
  await rm(opts.dest, { recursive: true, force: true });
  await mkdir(opts.dest, { recursive: true, mode: 0o755 });
  const outParts = safeParts(opts.outDir, 3);
  const artifacts: HostArtifacts = { dir: opts.dest, model: null, code: null, plots: [], predictions: null, scored: null };
  const result: HarnessResult = { ...opts.result, plots: [] };
  const refuse = (what: string, rel: unknown, why: string) =>
    notes.push(`[runner] ${what} ${JSON.stringify(String(rel).slice(0, 80))} was not taken from the workspace: it ${why}.`);

  if (opts.result.model_path !== null) {
    try {
      const parts = safeParts(opts.result.model_path);
      if (!under(outParts, parts)) throw new IntakeError("is outside the run's output folder");
      artifacts.model = await copyIn(ws, parts.join("/"), opts.dest, limits.modelBytes);
      // what the model server reads beside the model
      await copyIn(ws, [...parts.slice(0, -1), "model_meta.json"].join("/"), opts.dest, limits.codeBytes).catch((err: unknown) => {
        if (!(err instanceof IntakeError)) throw err;
      });
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err;
      refuse("the model", opts.result.model_path, err.message);
      result.model_path = null;
    }
  }
  const used = new Set<string>();
  for (const [i, listed] of opts.result.plots.entries()) {
    if (i >= limits.maxPlots) {
      notes.push(`[runner] only the first ${limits.maxPlots} plots were taken.`);
      break;
    }
    try {
      const parts = safeParts(listed);
      if (!under(outParts, parts)) throw new IntakeError("is outside the run's output folder");
      if (!PLOT_EXT.test(listed)) throw new IntakeError("is not a PNG or SVG image");
      const rel = parts.join("/");
      if (used.has(rel)) throw new IntakeError("is listed twice");
      used.add(rel);
      artifacts.plots.push(await copyIn(ws, rel, opts.dest, limits.plotBytes));
      result.plots.push(rel);
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err;
      refuse("the plot", listed, err.message);
    }
  }
  if (opts.result.mode === "train") {
    const rel = [...outParts, "predictions.json"].join("/");
    try {
      artifacts.predictions = await copyIn(ws, rel, opts.dest, limits.predictionsBytes);
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err;
      if (err.message !== "missing") refuse("the predictions", rel, err.message);
    }
  }
  if (opts.result.mode === "predict" && opts.result.predicted) {
    // only the one file predict mode writes, directly in the output folder
    const listed = opts.result.predicted.file;
    try {
      const parts = safeParts(listed);
      if (!under(outParts, parts) || parts.length !== outParts.length + 1 || parts.at(-1) !== SCORED_FILE)
        throw new IntakeError(`is not ${[...outParts, SCORED_FILE].join("/")}`);
      artifacts.scored = await copyIn(ws, parts.join("/"), opts.dest, limits.predictionsBytes);
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err;
      refuse("the scored file", listed, err.message);
    }
  }
  if (opts.solution) {
    try {
      artifacts.code = await copyIn(ws, opts.solution, opts.dest, limits.codeBytes);
    } catch (err) {
      if (!(err instanceof IntakeError)) throw err;
      if (err.message !== "missing") refuse("the code", opts.solution, err.message);
    }
  }
  return { result, artifacts, notes };
}

/**
 * Reads and takes in one go: what a runner does when a job has ended. A result that names artifacts the
 * intake refuses keeps its metrics; only the refused paths are dropped.
 */
export async function intakeRun(opts: { workspace: string; outDir: string; dest: string; solution?: string; limits?: IntakeLimits }): Promise<{
  result: HarnessResult | null;
  artifacts: HostArtifacts | null;
  notes: string[];
}> {
  const { result, note } = await readResult(opts.workspace, opts.outDir, opts.limits);
  if (!result) return { result: null, artifacts: null, notes: note ? [note] : [] };
  const taken = await takeArtifacts({ ...opts, result });
  return taken;
}
