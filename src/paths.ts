import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Files shipped beside the code (recipes, the Python harness, prompts) are found from the package
// root, so the same lookups work from the TypeScript sources, a compiled copy and the bundle in dist/.

let root: string | null = null;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "threadml") return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find ThreadML's package root (package.json named threadml)");
    dir = parent;
  }
}

export const fromRoot = (...parts: string[]) => join(packageRoot(), ...parts);
