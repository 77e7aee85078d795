#!/usr/bin/env node
// Compiles ThreadML to dist/ (plain JavaScript starts in a fraction of tsx's time) and copies the
// non-TypeScript files the code reads next to itself. Runs on `npm install` through `prepare`.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
mkdirSync(join(dist, "graphs/automl/knowledge"), { recursive: true });
cpSync(join(root, "graphs/automl/knowledge/recipes.yaml"), join(dist, "graphs/automl/knowledge/recipes.yaml"));
cpSync(join(root, "runners/python"), join(dist, "runners/python"), { recursive: true });
writeFileSync(join(dist, ".stamp"), new Date().toISOString());
