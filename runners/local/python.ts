import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";

// Interpreter discovery: which Python runs the harness, and what it can import.

/** Modules the harness cannot work without. */
export const REQUIRED_MODULES = ["numpy", "pandas", "sklearn"] as const;
/** Modules the harness uses when present (plots). */
export const OPTIONAL_MODULES = ["matplotlib"] as const;

export interface PythonProbe {
  /** What was asked for: a path or a bare name looked up on PATH. */
  candidate: string;
  /** The real interpreter (sys.executable), or null when it could not be started. */
  executable: string | null;
  version: string | null;
  /** sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix (deduplicated). */
  prefixes: string[];
  modules: Record<string, boolean>;
  missing: string[];
  /** Why the interpreter could not be probed at all. */
  error: string | null;
}

// find_spec says whether a module is installed without importing it (importing scikit-learn costs
// over a second); a broken install is still caught by the harness itself as an environment_error.
const PROBE_SCRIPT = `
import importlib.util, json, sys
mods = {}
for name in ${JSON.stringify([...REQUIRED_MODULES, ...OPTIONAL_MODULES])}:
    try:
        mods[name] = importlib.util.find_spec(name) is not None
    except Exception:
        mods[name] = False
print(json.dumps({
    "executable": sys.executable,
    "version": sys.version.split()[0],
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "exec_prefix": sys.exec_prefix,
    "base_exec_prefix": sys.base_exec_prefix,
    "modules": mods,
}))
`;

/** Finds an executable by name on the host PATH; a name with a slash is taken as a path. */
export function resolveExecutable(name: string, searchPath = process.env.PATH ?? ""): string | null {
  if (name.includes("/")) return isExecutableFile(name) ? path.resolve(name) : null;
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const full = path.join(dir, name);
    if (isExecutableFile(full)) return full;
  }
  return null;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs the probe script with the candidate. Never throws. */
export async function probePython(candidate: string, timeoutMs = 60_000): Promise<PythonProbe> {
  const base: PythonProbe = { candidate, executable: null, version: null, prefixes: [], modules: {}, missing: [], error: null };
  const resolved = resolveExecutable(candidate);
  if (!resolved) {
    return { ...base, missing: [...REQUIRED_MODULES], error: candidate.includes("/") ? "not found or not executable" : "not found on PATH" };
  }
  // The host environment is kept so that shims (pyenv) can find their interpreter, but variables
  // that the sandboxed runs will not have are dropped so the probe sees what a run will see.
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONNOUSERSITE: "1" };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  delete env.PYTHONSTARTUP;

  const out = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }>((resolve) => {
    const child = spawn(resolved, ["-c", PROBE_SCRIPT], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr, error });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

  if (out.error) return { ...base, missing: [...REQUIRED_MODULES], error: `could not start: ${out.error.message}` };
  const line = out.stdout.trim().split("\n").pop() ?? "";
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(line) as Record<string, unknown>;
  } catch {
    const why = out.stderr.trim().split("\n").slice(-3).join(" ") || `exit code ${out.code}`;
    return { ...base, missing: [...REQUIRED_MODULES], error: `probe failed: ${why}` };
  }
  const modules = (info.modules ?? {}) as Record<string, boolean>;
  const prefixes = [info.prefix, info.base_prefix, info.exec_prefix, info.base_exec_prefix].filter(
    (p): p is string => typeof p === "string" && p.length > 0,
  );
  return {
    candidate,
    executable: typeof info.executable === "string" && info.executable ? info.executable : resolved,
    version: typeof info.version === "string" ? info.version : null,
    prefixes: [...new Set(prefixes)],
    modules,
    missing: REQUIRED_MODULES.filter((m) => !modules[m]),
    error: null,
  };
}

/** One line per probe for messages: what was tried and what it lacks. */
export function describeProbe(p: PythonProbe): string {
  if (p.error) return `${p.candidate}: ${p.error}`;
  const where = p.executable && p.executable !== p.candidate ? ` (${p.executable})` : "";
  const version = p.version ? ` Python ${p.version}` : "";
  if (p.missing.length) return `${p.candidate}${where}${version}: missing ${p.missing.join(", ")}`;
  return `${p.candidate}${where}${version}: ok`;
}

export const PYTHON_FIX_HINT =
  "Install the packages (Debian/Ubuntu: apt-get install python3-sklearn python3-pandas python3-matplotlib; " +
  "or pip install scikit-learn pandas matplotlib into a virtual environment), or set THREADML_PYTHON " +
  '(config "python") to an interpreter that has them.';
