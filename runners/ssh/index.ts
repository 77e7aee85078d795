import type { SshRunnerConfig } from "../../config/schema.js";
import type { Logger } from "../../src/logger.js";
import type { ModelServer, RunOptions, RunOutcome, Runner, RunnerCheck, Workspace, WorkspaceInput } from "../types.js";

export interface SshRunnerOptions {
  /** The runner's name in the config (shown in the thread). */
  name: string;
  config: SshRunnerConfig;
  /** Local folder for fetched artifacts: `<dataDir>/runs/<runId>`. */
  dataDir: string;
  logger: Logger;
}

// Placeholder until the SSH runner lands.
export class SshRunner implements Runner {
  readonly name: string;
  constructor(readonly options: SshRunnerOptions) {
    this.name = options.name;
  }
  async check(): Promise<RunnerCheck> {
    return { ok: false, python: this.options.config.python, missing: [], sandbox: "limits-only", message: "The SSH runner is not available in this build." };
  }
  prepare(_input: WorkspaceInput): Promise<Workspace> {
    throw new Error("The SSH runner is not available in this build.");
  }
  run(_ws: Workspace, _options: RunOptions): Promise<RunOutcome> {
    throw new Error("The SSH runner is not available in this build.");
  }
  serve(_ws: Workspace): Promise<ModelServer> {
    throw new Error("The SSH runner is not available in this build.");
  }
  async close(): Promise<void> {}
}
