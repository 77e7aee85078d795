import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { ROOT } from "../helpers/cli.js";

// What the benchmarks share: run counts, medians, start-up costs and the line that says where they ran.

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `--runs N` or BENCH_RUNS (default 3). */
export function runsFromArgs(): number {
  const i = process.argv.indexOf("--runs");
  const raw = i >= 0 ? process.argv[i + 1] : process.env.BENCH_RUNS;
  const n = raw === undefined ? 3 : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--runs / BENCH_RUNS must be a positive integer, not ${raw}`);
  return n;
}

/** Median seconds of a command, to say what part of a measurement is start-up. */
export function commandSeconds(file: string, args: string[], times = 5): number {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    execFileSync(file, args, { stdio: "ignore" });
    samples.push((performance.now() - started) / 1000);
  }
  return median(samples);
}

/** Same test as bin/threadml.mjs: the CLI runs compiled JavaScript only while dist/ is newer than every source. */
export function cliCodePath(): string {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return Math.max(m, newest(p));
      return /\.(ts|ya?ml|py)$/.test(e.name) ? Math.max(m, statSync(p).mtimeMs) : m;
    }, 0);
  try {
    const built = statSync(join(ROOT, "dist/.stamp")).mtimeMs;
    const fresh = ["src", "graphs", "adapters", "runners", "config"].every((d) => newest(join(ROOT, d)) <= built);
    return fresh ? "compiled dist/" : "TypeScript through tsx (dist/ older than the sources)";
  } catch {
    return "TypeScript through tsx (no dist/)";
  }
}

/** Machine, versions, the code path the CLI ran and the load: the line every result starts with. */
export function machineLine(loadStart: number[], codePath: string): string {
  const python = (args: string[]) => {
    try {
      return execFileSync("/usr/bin/python3", args, { encoding: "utf8" }).trim();
    } catch {
      return "unavailable";
    }
  };
  const cpus = os.cpus();
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  return (
    [
      `Machine: ${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory`,
      `Node ${process.version}, ${python(["--version"])}, scikit-learn ${python(["-c", "import sklearn; print(sklearn.__version__)"])}`,
      `CLI ran ${codePath}`,
      `load average ${load(loadStart)} at the start, ${load(os.loadavg())} at the end`,
      new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    ].join("; ") + "."
  );
}
