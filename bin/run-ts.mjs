#!/usr/bin/env node
// Runs a TypeScript file with tsx's loader (used by npm scripts such as `npm run bench`).
import { register } from "tsx/esm/api";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

register();
const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: run-ts.mjs FILE.ts [args...]\n");
  process.exit(2);
}
process.argv.splice(1, 1);
await import(pathToFileURL(resolve(file)).href);
