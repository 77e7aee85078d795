import { existsSync, lstatSync, readlinkSync } from "node:fs";
import path from "node:path";

// Builds the command line that runs untrusted code: resource limits (prlimit), an optional
// bubblewrap sandbox, and a clean environment that carries nothing from the host.

export interface SandboxLimits {
  /** RLIMIT_CPU in seconds; omitted for long-lived servers. */
  cpuS?: number;
  /** RLIMIT_AS in MiB. */
  memoryMb: number;
  /** RLIMIT_FSIZE in MiB: the largest file the run may write (limits.diskMb); also the sandbox's /tmp size. */
  fileMb?: number;
}

export interface Tools {
  bwrap: string | null;
  prlimit: string | null;
  setpriv: string | null;
  /** Runs the wrapper that records a training job's exit status. */
  sh: string | null;
}

/** The only environment a run gets. */
export function cleanEnv(workspace: string): Record<string, string> {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: workspace,
    TMPDIR: path.join(workspace, "tmp"),
    MPLCONFIGDIR: path.join(workspace, ".mpl"),
    MPLBACKEND: "Agg",
    LANG: "C.UTF-8",
    PYTHONDONTWRITEBYTECODE: "1",
    PYTHONUNBUFFERED: "1",
    PYTHONNOUSERSITE: "1",
    // One OpenMP thread: as fast as two for the data sizes here, and spinning OpenMP threads collapse
    // throughput when several runs (or anything else) share the cores. Forests still use n_jobs.
    OMP_NUM_THREADS: "1",
    OPENBLAS_NUM_THREADS: "2",
    MKL_NUM_THREADS: "2",
  };
}

// Top-level directories that merged-/usr systems turn into symlinks.
const USR_LINKS = ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];
// Files outside /usr that shared libraries need (BLAS alternatives, the loader cache).
// matplotlibrc and fonts: Debian's matplotlib reads its defaults from /etc.
const ETC_PATHS = ["/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/matplotlibrc", "/etc/fonts"];

export interface BwrapOptions {
  workspace: string;
  env: Record<string, string>;
  /** Share the host network (model server); training runs get none. */
  network: boolean;
  /** Bind the workspace read-only (the model server); writable scratch is the /tmp tmpfs. */
  readOnlyWorkspace?: boolean;
  /** Interpreter prefixes; those outside /usr are bound read-only. */
  pythonPrefixes?: string[];
  /** Size of the sandbox's /tmp tmpfs in MiB (RAM the run could otherwise fill without bound). */
  tmpMb?: number;
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/** bubblewrap arguments up to (not including) the command. */
export function bwrapArgs(opts: BwrapOptions): string[] {
  const ws = path.resolve(opts.workspace);
  const args = ["--unshare-all"];
  if (opts.network) args.push("--share-net");
  // Root keeps every capability inside the sandbox unless told otherwise.
  args.push("--die-with-parent", "--new-session", "--cap-drop", "ALL");
  args.push("--ro-bind", "/usr", "/usr");
  for (const p of USR_LINKS) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push("--symlink", readlinkSync(p), p);
    else if (st.isDirectory()) args.push("--ro-bind", p, p);
  }
  for (const p of ETC_PATHS) if (existsSync(p)) args.push("--ro-bind", p, p);
  const bound = new Set<string>();
  for (const raw of opts.pythonPrefixes ?? []) {
    const p = path.resolve(raw);
    // A prefix that is the root or holds the workspace would expose far more than the interpreter.
    if (p === "/" || isInside(p, "/usr") || isInside(ws, p) || !existsSync(p) || bound.has(p)) continue;
    bound.add(p);
    args.push("--ro-bind", p, p);
  }
  args.push("--proc", "/proc", "--dev", "/dev");
  if (opts.tmpMb !== undefined) args.push("--size", String(Math.max(1, Math.floor(opts.tmpMb)) * 1024 * 1024));
  args.push("--tmpfs", "/tmp");
  // After /tmp's tmpfs, so a workspace under /tmp stays visible.
  args.push(opts.readOnlyWorkspace ? "--ro-bind" : "--bind", ws, ws, "--chdir", ws, "--clearenv");
  for (const [k, v] of Object.entries(opts.env)) args.push("--setenv", k, v);
  return args;
}

export interface CommandOptions {
  tools: Tools;
  sandbox: boolean;
  limits: SandboxLimits;
  workspace: string;
  env: Record<string, string>;
  network: boolean;
  readOnlyWorkspace?: boolean;
  pythonPrefixes?: string[];
  /** The program and its arguments, e.g. [python, "harness.py"]. */
  argv: string[];
}

/** The full command: [prlimit …] [setpriv …] [bwrap …] argv. Limits are inherited by everything inside. */
export function buildCommand(opts: CommandOptions): { file: string; args: string[] } {
  let argv = [...opts.argv];
  if (opts.sandbox) {
    if (!opts.tools.bwrap) throw new Error("bubblewrap (bwrap) is not available");
    argv = [opts.tools.bwrap, ...bwrapArgs({ ...opts, tmpMb: opts.limits.fileMb }), "--", ...argv];
  } else if (opts.tools.setpriv) {
    // Without bubblewrap nothing else ties the job to this process's life.
    argv = [opts.tools.setpriv, "--pdeathsig", "KILL", "--", ...argv];
  }
  const as = Math.max(1, Math.floor(opts.limits.memoryMb)) * 1024 * 1024;
  const cpu = opts.limits.cpuS !== undefined ? Math.max(1, Math.ceil(opts.limits.cpuS)) : undefined;
  const fsize = opts.limits.fileMb !== undefined ? Math.max(1, Math.floor(opts.limits.fileMb)) * 1024 * 1024 : undefined;
  if (opts.tools.prlimit) {
    const lim = [`--as=${as}`];
    if (fsize !== undefined) lim.push(`--fsize=${fsize}`);
    if (cpu !== undefined) lim.unshift(`--cpu=${cpu}`);
    argv = [opts.tools.prlimit, ...lim, "--", ...argv];
  } else {
    // No prlimit: let the interpreter set the limits on itself and exec the real command.
    const python = opts.argv[0];
    const script =
      "import os, resource, sys\n" +
      `resource.setrlimit(resource.RLIMIT_AS, (${as}, ${as}))\n` +
      (cpu !== undefined ? `resource.setrlimit(resource.RLIMIT_CPU, (${cpu}, ${cpu}))\n` : "") +
      (fsize !== undefined ? `resource.setrlimit(resource.RLIMIT_FSIZE, (${fsize}, ${fsize}))\n` : "") +
      "os.execv(sys.argv[1], sys.argv[1:])\n";
    argv = [python, "-c", script, ...argv];
  }
  return { file: argv[0], args: argv.slice(1) };
}
