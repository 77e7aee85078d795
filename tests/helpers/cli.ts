import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CliResult, type CliResultT } from "../../src/schema/cli-result.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = fileURLToPath(new URL("../../bin/threadml.mjs", import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  result: CliResultT;
}

/** Runs `threadml run ... --json` as a user would, in `cwd`, and parses stdout's last line. */
export async function runCli(args: string[], options: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliRun> {
  const child = spawn(process.execPath, [BIN, "run", "--json", ...args], {
    cwd: options.cwd,
    env: { ...process.env, LOG_LEVEL: "warn", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 110_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  const last = stdout.trim().split("\n").pop() ?? "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    throw new Error(`CLI printed no JSON (exit ${code}).\nstdout: ${stdout}\nstderr: ${stderr}`);
  }
  return { code, stdout, stderr, result: CliResult.parse(parsed) };
}

/** Fails with a message naming what is missing, rather than skipping. */
export function requirePython(): void {
  const python = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
  if (!existsSync(python))
    throw new Error(`${python} is missing: install python3-sklearn python3-pandas python3-matplotlib (bash bin/setup.sh)`);
}
