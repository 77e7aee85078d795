import type { LlmClient } from "../../../../src/llm/client.js";
import type { Agents } from "../types.js";
import { LlmDataAgent } from "./data.js";
import { LlmManagerAgent } from "./manager.js";
import { LlmModelAgent } from "./model.js";
import { LlmOperationAgent } from "./operation.js";
import { LlmPromptAgent } from "./prompt.js";

export interface LlmAgentOptions {
  /** Upper bound on the plans written in parallel (P); the graph's configured count applies when lower. */
  plans?: number;
  /** Generated drafts and failed runs per candidate before the offline template takes over. */
  codeAttempts: number;
}

/**
 * The LLM engine: the five roles with prompts from prompts/*.md. Each grounds its output on the real
 * profile, the recipe knowledge base and real cross-validation results, and falls back to the offline
 * agent's answer where the model's output stays unusable. A full successful conversation with P = 3
 * makes at most 12 calls (see prompts/README.md).
 */
export function createLlmAgents(client: LlmClient, options: LlmAgentOptions): Agents {
  return {
    engine: "llm",
    manager: new LlmManagerAgent(client, { plans: options.plans }),
    prompt: new LlmPromptAgent(client),
    data: new LlmDataAgent(client),
    model: new LlmModelAgent(client),
    operation: new LlmOperationAgent(client, { codeAttempts: options.codeAttempts }),
  };
}

export { LlmDataAgent, LlmManagerAgent, LlmModelAgent, LlmOperationAgent, LlmPromptAgent };
