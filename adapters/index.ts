import path from "node:path";
import type { Config } from "../config/schema.js";
import type { Logger } from "../src/logger.js";
import type { ChatAdapter } from "./types.js";

export interface AdapterContext {
  config: Config;
  logger: Logger;
  /** Files users attach are stored under `<uploadsDir>/<thread>/`. */
  uploadsDir: string;
}

/** The chat platforms the config enables (Slack and Discord can run in one process); each loads only when configured. */
export async function createChatAdapters(config: Config, logger: Logger, cwd = process.cwd()): Promise<ChatAdapter[]> {
  const ctx = (platform: string): AdapterContext => ({ config, logger: logger.child({ platform }), uploadsDir: path.resolve(cwd, config.dataDir, "uploads", platform) });
  const adapters: ChatAdapter[] = [];
  if (config.slack.botToken) {
    const { SlackAdapter } = await import("./slack/index.js");
    adapters.push(new SlackAdapter(ctx("slack")));
  }
  if (config.discord.token) {
    const { DiscordAdapter } = await import("./discord/index.js");
    adapters.push(new DiscordAdapter(ctx("discord")));
  }
  return adapters;
}
