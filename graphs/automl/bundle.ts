import { randomBytes } from "node:crypto";
import { constants, createWriteStream, type WriteStream } from "node:fs";
import { lstat, open, readdir, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import path from "node:path";
import { Zip, ZipDeflate, ZipPassThrough, strToU8, type ZipInputFile } from "fflate";
import { z } from "zod";
import { IntakeError, readWorkspaceFile } from "../../runners/intake.js";
import { fromRoot } from "../../src/paths.js";
import { sampleRequest } from "./endpoint-check.js";
import { slug } from "./format.js";
import { modelCard } from "./model-card.js";
import type { Report, State } from "./state.js";

// The portable bundle attached to every report with a model (docs/architecture.md §10): one zip with
// the model, the serving code, pinned requirements, a Dockerfile and a model card, so the model runs
// anywhere without ThreadML. Its inputs are the intake's host-owned copies, which still came out of a
// sandbox: they are read as regular files only (no links, real folders, size caps), never parsed as
// anything but JSON, and their names never choose a path on this host.

export const BUNDLE_LIMITS = {
  /** The intake's own model cap: the zip has no ZIP64 entries, so a model stays well under 4 GiB. */
  modelBytes: 1024 * 1024 * 1024,
  /** model_meta.json, solution.py and a variant's extra files. */
  fileBytes: 64 * 1024 * 1024,
};

/** Python when the harness recorded none: a current release the pinned libraries have wheels for. */
export const DEFAULT_PYTHON = "3.11";
export const SERVE_PORT = 8080;

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BundleError";
  }
}

/** "<target>-model" in lower case letters, digits and dashes (the zip's name and its top folder). */
export function bundleName(target: string | null | undefined): string {
  const name = slug(target ?? "");
  return name ? `${name}-model` : "threadml-model";
}

/** serve.py's own flags (runners/python/serve.py argparse): the container listens on every address. */
export function serveArgs(outDir: string, host = "0.0.0.0", port: number = SERVE_PORT): string[] {
  return ["serve.py", "--host", host, "--port", String(port), "--workspace", ".", "--out-dir", outDir];
}

// ---------------------------------------------------------------------------------------------- requirements

/** Top-level Python modules a model or solution may import, and the distribution pip installs them from. */
const DISTRIBUTIONS: Record<string, string> = {
  numpy: "numpy",
  pandas: "pandas",
  scipy: "scipy",
  sklearn: "scikit-learn",
  joblib: "joblib",
  threadpoolctl: "threadpoolctl",
  xgboost: "xgboost",
  // the harness's XGBoost wrapper (estimators.py) imports xgboost when loaded
  estimators: "xgboost",
  lightgbm: "lightgbm",
  catboost: "catboost",
  torch: "torch",
  torchvision: "torchvision",
  PIL: "pillow",
  statsmodels: "statsmodels",
};
/** What serve.py and the harness modules it loads always import. */
const BASE = ["numpy", "pandas", "scipy", "scikit-learn"];
/** Installed with scikit-learn; pinned too when the harness recorded them. */
const COMPANIONS = ["joblib", "threadpoolctl"];
/** Libraries whose wheels need the OpenMP runtime, which python:*-slim images lack. */
const NEEDS_OPENMP = new Set(["xgboost", "lightgbm"]);

const DIST_NAME = /^[a-z0-9][a-z0-9._-]{0,60}$/;
const VERSION = /^[0-9][0-9A-Za-z.!_-]{0,40}(\+[0-9A-Za-z.]{1,20})?$/;

/** A distribution name as pip spells it, from the harness's key ("sklearn", "scikit_learn", "PIL"). */
function distOf(key: string): string {
  return DISTRIBUTIONS[key] ?? DISTRIBUTIONS[key.toLowerCase()] ?? key.toLowerCase().replace(/_/g, "-");
}

/** The modules a pickle loads: STACK_GLOBAL's module string, memoised, then the name string (protocol 4+). */
const PICKLE_GLOBAL = /\x8c([\s\S])([A-Za-z_][\w.]*)\x94\x8c[\s\S][A-Za-z_][\w.]*\x94\x93/g;

/** Top-level modules named by pickle globals in one chunk of a pickle (read as latin1). */
export function pickleModules(chunk: string, into: Set<string>): void {
  for (const m of chunk.matchAll(PICKLE_GLOBAL)) if (m[1].charCodeAt(0) === m[2].length) into.add(m[2].split(".")[0]);
}

/** Top-level modules a Python source imports at any indentation. */
export function sourceModules(source: string, into: Set<string>): void {
  for (const m of source.matchAll(/^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import|import[ \t]+([A-Za-z_][\w.]*))/gm)) into.add((m[1] ?? m[2]).split(".")[0]);
}

export const PythonEnv = z.object({ python: z.string(), packages: z.record(z.string(), z.string()) });
export type PythonEnv = z.infer<typeof PythonEnv>;

export interface Requirements {
  text: string;
  /** The distributions listed, pinned or not, in file order. */
  lines: string[];
  pinned: boolean;
  openmp: boolean;
}

/**
 * requirements.txt: every distribution the model needs, pinned to the version it was trained with when
 * the harness recorded one. Names and versions come from the sandbox, so only well-formed ones pass.
 */
export function requirementsFor(modules: Set<string>, env: PythonEnv | null, extra: string[] = []): Requirements {
  const recorded = new Map<string, string>();
  for (const [key, version] of Object.entries(env?.packages ?? {})) {
    const dist = distOf(key);
    if (DIST_NAME.test(dist) && VERSION.test(version)) recorded.set(dist, version);
  }
  const wanted = new Set([...BASE, ...COMPANIONS.filter((d) => recorded.has(d))]);
  for (const m of modules) if (DISTRIBUTIONS[m]) wanted.add(DISTRIBUTIONS[m]);
  for (const d of extra) wanted.add(d);

  const header = ["# The libraries this model was trained with (ThreadML model bundle)."];
  const lines: string[] = [];
  const indexes = new Set<string>();
  const series: string[] = [];
  for (const dist of wanted) {
    const version = recorded.get(dist);
    if (!version) {
      lines.push(dist);
      continue;
    }
    const [release, local] = version.split("+");
    // PyTorch's CPU and CUDA builds carry a local version ("+cpu") served from PyTorch's own index;
    // any other local version names a build no index has, so the release is pinned
    const torchBuild = !!local && (dist === "torch" || dist === "torchvision") && /^(cpu|cu\d+)$/.test(local);
    if (torchBuild) indexes.add(`https://download.pytorch.org/whl/${local}`);
    // a distribution's own pre-release build (Debian's torch 1.13.0a0) is on no index: its release series is
    const pre = /^(\d+\.\d+)(?:\.\d+)*(?:a|b|rc|\.dev)\d*$/.exec(release);
    if (pre && !torchBuild) series.push(`${dist} ${release}`);
    lines.push(`${dist}==${torchBuild ? version : pre ? `${pre[1]}.*` : release}`);
  }
  const pinned = lines.every((l) => l.includes("=="));
  if (!env) header.push("# The versions were not recorded when this model was trained: pin the ones it was trained with before relying on it.");
  else if (!pinned) header.push("# Unpinned lines: the training run recorded no version for them.");
  if (series.length) header.push(`# Trained with pre-release builds (${series.join(", ")}): their release series is pinned.`);
  for (const url of indexes) header.push(`--extra-index-url ${url}`);
  return { text: `${[...header, ...lines].join("\n")}\n`, lines, pinned: !!env && pinned, openmp: [...wanted].some((d) => NEEDS_OPENMP.has(d)) };
}

/** "3.10" from "3.10.12"; the default when the harness recorded no interpreter. */
export function pythonMinor(env: PythonEnv | null): string {
  const m = /^(\d)\.(\d{1,2})(?:\.|$)/.exec(env?.python ?? "");
  return m ? `${m[1]}.${m[2]}` : DEFAULT_PYTHON;
}

export function dockerfile(python: string, outDir: string, openmp: boolean): string {
  const lines = [
    "# ThreadML model server: docker build -t my-model . && docker run -p 8080:8080 my-model",
    `FROM python:${python}-slim`,
    "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
  ];
  if (openmp) lines.push("# XGBoost and LightGBM wheels load the OpenMP runtime", "RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*");
  lines.push(
    "WORKDIR /app",
    "# the libraries first, so a changed model does not reinstall them",
    "COPY requirements.txt .",
    "RUN pip install --no-cache-dir -r requirements.txt",
    "COPY . .",
    "RUN useradd --system --uid 10001 --no-create-home threadml",
    "USER threadml",
    `EXPOSE ${SERVE_PORT}`,
    "# set THREADML_SERVE_TOKEN (docker run -e) to require `Authorization: Bearer <token>` on every request",
    `CMD ${JSON.stringify(["python", ...serveArgs(outDir)])}`,
  );
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------- reading the artifacts

/** A model_meta.json as far as the bundle reads it; everything else in it is carried over untouched. */
const ModelMeta = z
  .object({
    features: z.array(z.string()).catch([]),
    classes: z.array(z.unknown()).nullable().catch(null),
    positive_class: z.unknown().optional(),
    variant: z.string().optional().catch(undefined),
    solution: z.string().optional().catch(undefined),
    graph_file: z.string().optional().catch(undefined),
  })
  .passthrough();
export type ModelMeta = z.infer<typeof ModelMeta>;

/** One plain file name or relative path of them, as the intake allows (no dot-files, no "..", no separators of other kinds). */
const SAFE_REL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,119}){0,3}$/;

/** A path of the artifacts folder as a safe relative path, or null. */
function relIn(dir: string, file: string | null | undefined): string | null {
  if (!file) return null;
  const rel = path.relative(dir, file).split(path.sep).join("/");
  return SAFE_REL.test(rel) && !rel.split("/").includes("..") ? rel : null;
}

async function readArtifact(dir: string, rel: string, what: string, maxBytes = BUNDLE_LIMITS.fileBytes): Promise<Buffer> {
  try {
    return await readWorkspaceFile(dir, rel, maxBytes);
  } catch (err) {
    if (err instanceof IntakeError) throw new BundleError(`${what} (${rel}) in the model's artifacts folder ${err.message === "missing" ? "is missing" : err.message}`);
    throw err;
  }
}

/** The model opened as the intake opens workspace files: real folders on its path, no link, a regular file. */
async function openModel(dir: string, rel: string): Promise<{ fh: FileHandle; size: number }> {
  let cur = dir;
  for (const part of rel.split("/").slice(0, -1)) {
    cur = path.join(cur, part);
    const st = await lstat(cur).catch(() => null);
    if (!st?.isDirectory()) throw new BundleError(`the folder of the model (${rel}) is missing or a link`);
  }
  let fh: FileHandle;
  try {
    fh = await open(path.join(dir, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new BundleError(`the model (${rel}) cannot be opened (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const st = await fh.stat();
  if (!st.isFile() || st.size > BUNDLE_LIMITS.modelBytes) {
    await fh.close();
    throw new BundleError(st.isFile() ? `the model is larger than ${BUNDLE_LIMITS.modelBytes / 1048576} MiB, too large to bundle` : "the model is not a regular file");
  }
  return { fh, size: st.size };
}

/** ThreadML's own serving code: serve.py and every harness module a model may import (not the sandbox launcher). */
async function servingFiles(): Promise<Array<{ name: string; data: Buffer }>> {
  const dir = fromRoot("runners", "python");
  const names = (await readdir(dir)).filter((f) => f.endsWith(".py") && f !== "serve_launch.py").sort();
  return Promise.all(names.map(async (name) => ({ name, data: await readFile(path.join(dir, name)) })));
}

/** Extra files a variant's `save` writes beside the model (harness variants), by model_meta.json. */
function variantFiles(meta: ModelMeta): string[] {
  if (meta.variant === "graph") return [meta.graph_file && /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/.test(meta.graph_file) ? meta.graph_file : "graph.pkl"];
  return [];
}

// ---------------------------------------------------------------------------------------------- the zip

const FILE_ATTRS = { os: 3, attrs: 0o100644 << 16 };

/** Streams entries into `dest` (a temp name, renamed at the end): each entry completes before the next starts. */
class ZipWriter {
  private readonly out: WriteStream;
  private readonly zip: Zip;
  private failure: Error | null = null;

  constructor(readonly tmp: string) {
    this.out = createWriteStream(tmp, { flags: "wx", mode: 0o644 });
    this.out.on("error", (err) => (this.failure ??= err));
    this.zip = new Zip((err, chunk) => {
      if (err) this.failure ??= err;
      else this.out.write(chunk);
    });
  }

  private entry(file: ZipInputFile): void {
    Object.assign(file, FILE_ATTRS);
    this.zip.add(file);
  }

  private async settle(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.out.writableNeedDrain) await once(this.out, "drain");
  }

  async text(name: string, data: Uint8Array): Promise<void> {
    const file = new ZipDeflate(name, { level: 6 });
    this.entry(file);
    file.push(data, true);
    await this.settle();
  }

  /**
   * A model file, streamed: deflated at a low level up to DEFLATE_MAX_BYTES (a forest's pickle shrinks to
   * about a fifth, which matters under chat upload limits), stored beyond it so a huge model stays cheap.
   */
  async stored(name: string, fh: FileHandle, size: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    const file = size <= DEFLATE_MAX_BYTES ? new ZipDeflate(name, { level: 1 }) : new ZipPassThrough(name);
    this.entry(file);
    if (size > 0)
      for await (const chunk of fh.createReadStream({ start: 0, end: size - 1, autoClose: false, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        onChunk(chunk);
        file.push(chunk);
        await this.settle();
      }
    file.push(new Uint8Array(0), true);
    await this.settle();
  }

  async finish(dest: string): Promise<void> {
    this.zip.end();
    this.out.end();
    await finished(this.out);
    if (this.failure) throw this.failure;
    await rename(this.tmp, dest);
  }

  async abandon(): Promise<void> {
    this.zip.terminate();
    this.out.destroy();
    await rm(this.tmp, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------- building it

const DEFLATE_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Writes `<name>.zip` next to report.md in the model's host-owned artifacts folder and returns its path.
 * Throws BundleError (a sentence for the report) when something the bundle needs is missing or refused.
 */
export async function writeBundle(state: State, report: Report, now = new Date()): Promise<string> {
  const best = state.best;
  const artifacts = best?.artifacts;
  if (!best || !artifacts?.model) throw new BundleError("there is no trained model to bundle");
  const dir = artifacts.dir;
  const modelRel = relIn(dir, artifacts.model);
  if (!modelRel) throw new BundleError("the model is not inside its artifacts folder");
  const outDir = path.posix.dirname(modelRel);
  if (outDir === ".") throw new BundleError("the model is not in an output folder of its own");

  const metaRaw = await readArtifact(dir, `${outDir}/model_meta.json`, "model_meta.json");
  let meta: ModelMeta;
  try {
    meta = ModelMeta.parse(JSON.parse(metaRaw.toString("utf8")));
  } catch {
    throw new BundleError("model_meta.json in the model's artifacts folder is not a JSON object the model server can read");
  }
  const codeRel = relIn(dir, artifacts.code);
  const code = codeRel ? await readArtifact(dir, codeRel, "the solution") : null;
  const missing: string[] = [];
  if (!code) missing.push("the solution module (solution.py): the server falls back to the model's own predict");
  else if (meta.solution && meta.solution !== codeRel) missing.push(`the solution at ${meta.solution} (model_meta.json's path; the bundle has ${codeRel})`);
  const extras: Array<{ name: string; data: Buffer }> = [];
  for (const name of variantFiles(meta)) {
    const rel = `${outDir}/${name}`;
    const data = await readArtifact(dir, rel, `the ${meta.variant} model's ${name}`).catch(() => null);
    if (data) extras.push({ name: rel, data });
    else missing.push(`${rel}, which the ${meta.variant} variant saves beside the model: copy it from the training workspace's ${outDir} folder`);
  }

  const name = bundleName(state.requirements?.target ?? state.requirements?.task);
  const dest = path.join(dir, `${name}.zip`);
  const at = (rel: string) => `${name}/${rel}`;
  const modules = new Set<string>();
  if (code) sourceModules(code.toString("utf8"), modules);
  const writer = new ZipWriter(path.join(dir, `.${name}.${randomBytes(6).toString("hex")}.tmp`));
  try {
    const { fh, size } = await openModel(dir, modelRel);
    try {
      // the modules the pickle loads decide the requirements; a global may straddle two chunks
      let tail = "";
      await writer.stored(at(modelRel), fh, size, (chunk) => {
        const text = tail + chunk.toString("latin1");
        pickleModules(text, modules);
        tail = text.slice(-512);
      });
    } finally {
      await fh.close();
    }
    const env = best.result.env ? PythonEnv.safeParse(best.result.env) : null;
    const pyEnv = env?.success ? env.data : null;
    const reqs = requirementsFor(modules, pyEnv, meta.variant === "images" ? ["pillow"] : []);
    const python = pythonMinor(pyEnv);
    const files: Array<{ name: string; data: Uint8Array }> = [
      { name: `${outDir}/model_meta.json`, data: metaRaw },
      // the validated train result: the server warms up on its sample, and the metrics travel with the model
      { name: `${outDir}/result.json`, data: strToU8(`${JSON.stringify(best.result, null, 2)}\n`) },
      ...(code && codeRel ? [{ name: codeRel, data: code }] : []),
      ...extras,
      ...(await servingFiles()),
      ...(best.result.sample ? [{ name: "example.json", data: strToU8(`${JSON.stringify(sampleRequest(best.result.sample))}\n`) }] : []),
      { name: "requirements.txt", data: strToU8(reqs.text) },
      { name: "Dockerfile", data: strToU8(dockerfile(python, outDir, reqs.openmp)) },
    ];
    const card = modelCard({
      state,
      report,
      meta,
      name,
      outDir,
      python,
      requirements: reqs,
      missing,
      files: [modelRel, ...files.map((f) => f.name), "MODEL_CARD.md"],
      when: now,
    });
    files.push({ name: "MODEL_CARD.md", data: strToU8(card) });
    for (const f of files) await writer.text(at(f.name), f.data);
    await writer.finish(dest);
  } catch (err) {
    await writer.abandon();
    throw err;
  }
  return dest;
}

/** The report's sentence for a bundle that could not be built (never a host path or a stack). */
export function bundleNotice(err: unknown): string {
  const why =
    err instanceof BundleError ? err.message : `an unexpected error${(err as NodeJS.ErrnoException)?.code ? ` (${(err as NodeJS.ErrnoException).code})` : ""}`;
  return `The portable bundle (model, serving script, requirements, Dockerfile, model card) could not be built: ${why}. The model and this report are not affected.`;
}
