import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { Config, type ConfigInput } from "../config/schema.js";

export { Config };

/** Thrown for configuration that cannot be used; the message says which setting and why. */
export class ConfigError extends Error {}

// Environment variables and the config field each one sets (names fixed in docs/architecture.md §5).
const ENV_MAP: Array<[string, string[]]> = [
  ["THREADML_ENGINE", ["engine"]],
  ["THREADML_RUNNER", ["defaultRunner"]],
  ["THREADML_DATA_DIR", ["dataDir"]],
  ["THREADML_PYTHON", ["python"]],
  ["THREADML_SANDBOX", ["sandbox"]],
  ["THREADML_PLANS", ["planning", "plans"]],
  ["THREADML_WALL_TIME_S", ["limits", "wallTimeS"]],
  ["THREADML_MEMORY_MB", ["limits", "memoryMb"]],
  ["THREADML_MAX_UPLOAD_MB", ["limits", "maxUploadMb"]],
  ["THREADML_PIDS", ["limits", "pids"]],
  ["THREADML_DISK_MB", ["limits", "diskMb"]],
  ["THREADML_RETENTION_DAYS", ["retention", "runsDays"]],
  ["THREADML_SERVE_TOKEN", ["serveToken"]],
  ["THREADML_SEARCH_BUDGET_S", ["search", "budgetS"]],
  ["THREADML_SERVE_HOST", ["serveHost"]],
  ["THREADML_APPROVERS", ["approvers"]],
  ["THREADML_WORK_NICE", ["workNice"]],
  ["LOG_LEVEL", ["logLevel"]],
  ["REDIS_URL", ["redis", "url"]],
  ["SLACK_BOT_TOKEN", ["slack", "botToken"]],
  ["SLACK_SIGNING_SECRET", ["slack", "signingSecret"]],
  ["SLACK_APP_TOKEN", ["slack", "appToken"]],
  ["SLACK_API_URL", ["slack", "apiUrl"]],
  ["PORT", ["slack", "port"]],
  ["DISCORD_TOKEN", ["discord", "token"]],
  ["DISCORD_API_URL", ["discord", "apiUrl"]],
  ["OPENAI_BASE_URL", ["llm", "baseUrl"]],
  ["OPENAI_API_KEY", ["llm", "apiKey"]],
  ["THREADML_LLM_MODEL", ["llm", "model"]],
  ["THREADML_LLM_TIMEOUT_S", ["llm", "timeoutS"]],
  ["THREADML_LLM_MAX_RETRIES", ["llm", "maxRetries"]],
  ["THREADML_LLM_MAX_CALLS", ["llm", "maxCalls"]],
  ["THREADML_LLM_STRUCTURED", ["llm", "structuredOutput"]],
  ["ANTHROPIC_API_KEY", ["llm", "providers", "anthropic", "apiKey"]],
  ["ANTHROPIC_BASE_URL", ["llm", "providers", "anthropic", "baseUrl"]],
  ["GOOGLE_API_KEY", ["llm", "providers", "google-genai", "apiKey"]],
  ["GOOGLE_GENAI_BASE_URL", ["llm", "providers", "google-genai", "baseUrl"]],
  ["OLLAMA_BASE_URL", ["llm", "providers", "ollama", "baseUrl"]],
];

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`THREADML_CONFIG points to ${file}, which cannot be read: ${(err as Error).message}`);
  }
  try {
    const data = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
    if (data === null || data === undefined) return {};
    if (typeof data !== "object" || Array.isArray(data)) throw new Error("the top level must be a mapping");
    return data as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`Config file ${file} is not valid ${/\.json$/i.test(file) ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
}

/** Builds the configuration from defaults, THREADML_CONFIG and the environment, then validates it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigInput = {}): Config {
  const raw: Record<string, unknown> = env.THREADML_CONFIG ? readConfigFile(env.THREADML_CONFIG) : {};
  for (const [name, path] of ENV_MAP) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    setPath(raw, path, name === "THREADML_APPROVERS" ? value.split(",").map((s) => s.trim()).filter(Boolean) : value);
  }
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) raw[key] = value;
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ConfigError(`Invalid configuration: ${issues}`);
  }
  return parsed.data;
}
