import { z } from "zod";
import { OPTIONAL_MODULES, REQUIRED_MODULES } from "../local/python.js";
import type { RunnerCheck } from "../types.js";
import type { ExecResult } from "./connection.js";
import { NVIDIA_SMI_QUERY, parseNvidiaSmi, type GpuInfo } from "./gpu.js";
import { bwrapProbeScript } from "./job.js";
import { q, setupLines } from "./shell.js";

// What the host offers: the interpreter (after the setup lines) and its modules, and its GPUs.

const PROBE = `
import importlib.util, json, sys
mods = {}
for name in sys.argv[1:]:
    try:
        mods[name] = importlib.util.find_spec(name) is not None
    except Exception:
        mods[name] = False
print("probe=" + json.dumps({"executable": sys.executable, "version": sys.version.split()[0], "modules": mods}))
`;

const ProbeOutput = z.object({ executable: z.string(), version: z.string(), modules: z.record(z.string(), z.boolean()) });

/** Runs the setup lines, finds the interpreter and asks it which modules it has. */
export function probeScript(setup: string[], python: string, modules: readonly string[]): string[] {
  return [
    ...setupLines(setup, (line) => `echo "setupfail=$_rc"; echo "line="${q(line)}; exit 0`),
    `command -v ${python} >/dev/null 2>&1 || { echo nopython=1; echo "path=$PATH"; exit 0; }`,
    `${python} -c ${q(PROBE)} ${modules.map(q).join(" ")} || echo "probefail=$?"`,
    ...bwrapProbeScript(),
  ];
}

export interface ProbeInput {
  runner: string;
  /** "user@host:port" */
  target: string;
  python: string;
}

const INSTALL_HINT =
  "Install Python 3 with numpy, pandas and scikit-learn (and matplotlib for plots) on the host, for example " +
  "`python3 -m venv ~/threadml-venv && ~/threadml-venv/bin/pip install numpy pandas scikit-learn matplotlib`";

function pick(stdout: string, key: string): string | null {
  const line = stdout.split("\n").find((l) => l.startsWith(`${key}=`));
  return line === undefined ? null : line.slice(key.length + 1).trim();
}

/** Turns the probe's output into the runner check, with a message that names the host, the interpreter and the fix. */
export function interpretProbe(input: ProbeInput, out: ExecResult): RunnerCheck & { modules: Record<string, boolean> } {
  const base = { python: input.python, sandbox: "limits-only" as const, modules: {} as Record<string, boolean> };
  const at = `On ${input.runner} (${input.target})`;
  const docs = "See docs/gpu-hosts.md.";
  const failedSetup = pick(out.stdout, "setupfail");
  if (failedSetup !== null) {
    const line = pick(out.stdout, "line") ?? "";
    const why = out.stderr.trim().split("\n").slice(-3).join(" ");
    return {
      ...base,
      ok: false,
      missing: [...REQUIRED_MODULES],
      message: `${at} the setup line \`${line}\` failed with exit code ${failedSetup}${why ? ` (${why})` : ""}. Fix runners.${input.runner}.setup. ${docs}`,
    };
  }
  if (pick(out.stdout, "nopython") !== null) {
    return {
      ...base,
      ok: false,
      missing: [...REQUIRED_MODULES],
      message:
        `${at} the Python interpreter "${input.python}" was not found after the setup lines (PATH=${pick(out.stdout, "path") ?? "?"}). ` +
        `${INSTALL_HINT}, then set runners.${input.runner}.python to that interpreter, or add a setup line that activates its environment. ${docs}`,
    };
  }
  const raw = pick(out.stdout, "probe");
  const parsed = raw === null ? null : ProbeOutput.safeParse(safeJson(raw));
  if (!parsed?.success) {
    const why = (out.stderr.trim() || out.stdout.trim()).split("\n").slice(-3).join(" ");
    return { ...base, ok: false, missing: [...REQUIRED_MODULES], message: `${at} "${input.python}" could not be probed: ${why || `exit code ${out.code}`}. ${INSTALL_HINT}. ${docs}` };
  }
  const info = parsed.data;
  const missing = REQUIRED_MODULES.filter((m) => !info.modules[m]);
  const who = `${info.executable} (Python ${info.version})`;
  if (missing.length) {
    return {
      ...base,
      python: info.executable,
      modules: info.modules,
      ok: false,
      missing,
      message:
        `${at} the interpreter ${who} lacks ${missing.join(", ")}. Install them into that environment ` +
        `(\`pip install numpy pandas scikit-learn matplotlib\`, or apt-get install python3-sklearn python3-pandas python3-matplotlib), ` +
        `or set runners.${input.runner}.python to an interpreter that has them. ${docs}`,
    };
  }
  const lacks = OPTIONAL_MODULES.filter((m) => !info.modules[m]);
  const bwrap = pick(out.stdout, "bwrap");
  const sandbox = bwrap === "ok" ? ("bubblewrap" as const) : ("limits-only" as const);
  const notes = [
    `${input.runner}: Python ${who} on ${input.target}.`,
    sandbox === "bubblewrap"
      ? "Sandbox: bubblewrap on the host (no network; only the run's workspace writable), plus ulimit limits."
      : `Sandbox: none, because bubblewrap ${bwrap === "broken" ? "does not work" : "is not installed"} on the host; jobs run as the SSH user under ulimit limits only. Install bubblewrap there (apt-get install bubblewrap) to isolate them.`,
  ];
  if (lacks.length) notes.push(`Optional modules missing: ${lacks.join(", ")} (no plots without matplotlib).`);
  return { ...base, sandbox, python: info.executable, modules: info.modules, ok: true, missing: [], message: notes.join("\n") };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Lists the GPUs with nvidia-smi (after the setup lines); null when it is missing or fails. */
export function gpuScript(setup: string[]): string[] {
  return [
    ...setupLines(setup, () => "echo setupfail=1; exit 0"),
    `command -v nvidia-smi >/dev/null 2>&1 || exit 0`,
    `echo smi=1`,
    `${NVIDIA_SMI_QUERY} 2>/dev/null; echo "smirc=$?"`,
  ];
}

export function parseGpuProbe(out: ExecResult): GpuInfo[] | null {
  if (pick(out.stdout, "smi") === null) return null;
  const rows = parseNvidiaSmi(out.stdout);
  return rows.length === 0 && pick(out.stdout, "smirc") !== "0" ? null : rows;
}
