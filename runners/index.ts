import path from "node:path";
import type { Config } from "../config/schema.js";
import { ConfigError } from "../src/config.js";
import type { Logger } from "../src/logger.js";
import { LocalRunner } from "./local/index.js";
import type { Runner } from "./types.js";

/** The local runner as the config describes it (one place, so every entry point gets the same settings). */
export function localRunnerFor(config: Config, logger: Logger, dataDir: string): LocalRunner {
  return new LocalRunner({
    dataDir,
    python: config.python,
    sandbox: config.sandbox,
    serveHost: config.serveHost,
    serveToken: config.serveToken,
    retention: config.retention,
    logger,
  });
}

/** The built-in local runner plus every runner named in the config; SSH and Slurm support load only when configured. */
export async function createRunners(config: Config, logger: Logger, cwd: string): Promise<Record<string, Runner>> {
  const dataDir = path.resolve(cwd, config.dataDir);
  const runners: Record<string, Runner> = {
    local: localRunnerFor(config, logger, dataDir),
  };
  for (const [name, rc] of Object.entries(config.runners)) {
    if (rc.kind === "local") {
      if (name !== "local") runners[name] = runners.local;
      continue;
    }
    if (rc.kind === "slurm") {
      const { SlurmRunner } = await import("./slurm/index.js");
      runners[name] = new SlurmRunner({ name, config: rc, dataDir, logger: logger.child({ runner: name }) });
      continue;
    }
    const { SshRunner } = await import("./ssh/index.js");
    runners[name] = new SshRunner({ name, config: rc, dataDir, logger: logger.child({ runner: name }) });
  }
  if (!runners[config.defaultRunner])
    throw new ConfigError(`defaultRunner is "${config.defaultRunner}", which is not a configured runner (configured: ${Object.keys(runners).join(", ")}).`);
  return runners;
}
