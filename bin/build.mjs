#!/usr/bin/env node
// Bundles ThreadML into dist/threadml.mjs (plus lazily loaded chunks): loading a few files instead of hundreds of
// modules starts the CLI in a fraction of the time. Type checking is separate (`npm run typecheck`).
// Runs on `npm install` through `prepare`.
import { build } from "esbuild";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(root, "src/cli.ts")],
  outdir: dist,
  entryNames: "threadml",
  outExtension: { ".js": ".mjs" },
  // The LLM engine is a separate chunk, loaded only when it is configured.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  // Some dependencies are CommonJS and call require(); give the bundle one.
  banner: { js: "import { createRequire as __threadmlRequire } from 'node:module'; const require = __threadmlRequire(import.meta.url);" },
  // Platform clients load only when configured; ssh2 has optional native parts a bundle cannot carry.
  external: ["@slack/bolt", "discord.js", "ioredis", "ssh2"],
  logLevel: "warning",
});
writeFileSync(join(dist, ".stamp"), new Date().toISOString());
