import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HarnessResult, HarnessSpec, type HarnessSpecInput } from "../../runners/contract.js";

// The harness and model server run directly (no runner, no sandbox), for tests of the Python side.

export const PYTHON = process.env.THREADML_PYTHON || "/usr/bin/python3";
const PY_DIR = fileURLToPath(new URL("../../runners/python/", import.meta.url));

/** A workspace in `dir`: the harness's Python files, the data (files or folders, by destination) and a solution. */
export function harnessWorkspace(dir: string, solution: string, data: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(PY_DIR)) if (f.endsWith(".py")) copyFileSync(join(PY_DIR, f), join(dir, f));
  for (const [dest, source] of Object.entries(data)) cpSync(source, join(dir, dest), { recursive: true });
  writeFileSync(join(dir, "solution.py"), solution);
  return dir;
}

export interface HarnessRun {
  code: number | null;
  stderr: string;
  result: HarnessResult;
}

/** Runs harness.py on `spec`; `prelude` is Python run first in the same interpreter (e.g. to hide a module). */
export function runHarness(dir: string, spec: HarnessSpecInput, prelude?: string): Promise<HarnessRun> {
  writeFileSync(join(dir, "spec.json"), JSON.stringify(HarnessSpec.parse(spec)));
  const args = prelude ? ["-c", `${prelude}; import runpy; sys.argv = ['harness.py']; runpy.run_path('harness.py', run_name='__main__')`] : ["harness.py"];
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { cwd: dir, env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr, result: HarnessResult.parse(JSON.parse(readFileSync(join(dir, "out", "result.json"), "utf8"))) }));
  });
}

/** Starts serve.py on a trained workspace (added to `servers` for clean-up); resolves with its base URL. */
export function startServe(dir: string, servers: ChildProcess[]): Promise<string> {
  const child = spawn(PYTHON, ["serve.py", "--port", "0"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      if (buf.includes("\n")) {
        const ev = JSON.parse(buf.split("\n")[0]) as { host: string; port: number };
        resolve(`http://${ev.host}:${ev.port}`);
      }
    });
    child.on("exit", (code) => reject(new Error(`serve.py exited (${code})`)));
  });
}

/** POST /predict with a JSON body. */
export async function postPredict<P = unknown>(url: string, body: unknown): Promise<{ status: number; body: { predictions?: P[]; error?: string } }> {
  const res = await fetch(`${url}/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { predictions?: P[]; error?: string } };
}
