#!/usr/bin/env node
// ThreadML's command line. Uses the compiled build in dist/ when it is newer than every source file,
// and otherwise runs the TypeScript sources through tsx, so edits never run stale code.
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCES = ["src", "graphs", "adapters", "runners", "config"];

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|ya?ml|py)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function buildIsFresh() {
  try {
    const built = statSync(join(root, "dist/.stamp")).mtimeMs;
    return SOURCES.every((s) => newestSource(join(root, s)) <= built);
  } catch {
    return false;
  }
}

let cli;
if (buildIsFresh()) cli = await import(pathToFileURL(join(root, "dist/threadml.mjs")).href);
else {
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import(pathToFileURL(join(root, "src/cli.ts")).href);
}
await cli.main();
