import type { Agents } from "../types.js";
import { OfflineDataAgent } from "./data.js";
import { OfflineManagerAgent } from "./manager.js";
import { OfflineModelAgent } from "./model.js";
import { OfflineOperationAgent } from "./operation.js";
import { OfflinePromptAgent } from "./prompt.js";

/** The offline engine: rules, the recipe knowledge base and real evaluations on the user's data. */
export function createOfflineAgents(): Agents {
  return {
    engine: "offline",
    manager: new OfflineManagerAgent(),
    prompt: new OfflinePromptAgent(),
    data: new OfflineDataAgent(),
    model: new OfflineModelAgent(),
    operation: new OfflineOperationAgent(),
  };
}
