import { App, LogLevel, webApi, type Logger as BoltLogger } from "@slack/bolt";
import type { z } from "zod";
import type { Config } from "../../config/schema.js";
import { ConfigError } from "../../src/config.js";
import type { Logger } from "../../src/logger.js";
import { FrontReceiver } from "./front.js";
import { AuthTest } from "./payloads.js";

// Bolt set up for one of Slack's two transports: Socket Mode (an app-level token; no public URL) or HTTP
// (signed requests to /slack/events on PORT). The transport itself runs in a worker thread (front.ts).

export type SlackMode = "socket" | "http";

export interface SlackConnection {
  app: App;
  receiver: FrontReceiver;
  mode: SlackMode;
  /** Who the bot is, from auth.test. */
  botUserId: string;
  botId: string | undefined;
  team: string | undefined;
}

export interface SlackAppOptions {
  /** Port of HTTP mode; 0 picks a free one. */
  port: number;
  /** How Web API calls are retried after a network error or a 429 (whose Retry-After is waited out first). */
  retryConfig?: webApi.RetryOptions;
}

/** Retries after Slack asked us to wait (429) or the network failed: short backoff, since Retry-After is already honoured. */
export const DEFAULT_RETRY: webApi.RetryOptions = { retries: 8, factor: 2, minTimeout: 250, maxTimeout: 30_000, randomize: true };

export function slackMode(slack: Config["slack"]): SlackMode {
  if (!slack.botToken) throw new ConfigError("Slack needs SLACK_BOT_TOKEN (the app's xoxb- bot token).");
  if (slack.appToken) return "socket";
  if (slack.signingSecret) return "http";
  throw new ConfigError(
    "Slack is configured with SLACK_BOT_TOKEN but no way to receive events: set SLACK_APP_TOKEN (an xapp- token, Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode, events at /slack/events on PORT). See docs/slack.md.",
  );
}

/** The Web API base with the trailing slash the client expects. */
export const apiBase = (apiUrl: string | undefined) => (apiUrl ? (apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`) : "https://slack.com/api/");

const PINO_TO_BOLT: Record<string, LogLevel> = { trace: LogLevel.DEBUG, debug: LogLevel.DEBUG, info: LogLevel.INFO, warn: LogLevel.WARN };

/** Bolt and its clients log through ThreadML's logger (stderr); the Web API client redacts tokens itself. */
export function boltLogger(logger: Logger): BoltLogger {
  const one = (m: unknown) => {
    if (typeof m === "string") return m;
    if (m instanceof Error) return m.message;
    try {
      return JSON.stringify(m);
    } catch {
      return String(m);
    }
  };
  const text = (msg: unknown[]) => msg.map(one).join(" ");
  return {
    debug: (...msg) => logger.debug(text(msg)),
    info: (...msg) => logger.info(text(msg)),
    warn: (...msg) => logger.warn(text(msg)),
    error: (...msg) => logger.error(text(msg)),
    setLevel: () => {},
    getLevel: () => PINO_TO_BOLT[logger.level] ?? LogLevel.ERROR,
    setName: () => {},
  };
}

/** Checks the bot token with auth.test, then builds the Bolt app for the configured transport. */
export async function connectSlack(slack: Config["slack"], logger: Logger, options: SlackAppOptions): Promise<SlackConnection> {
  const mode = slackMode(slack);
  const blog = boltLogger(logger);
  const clientOptions: webApi.WebClientOptions = { slackApiUrl: apiBase(slack.apiUrl), logger: blog, retryConfig: options.retryConfig ?? DEFAULT_RETRY };
  let who: z.infer<typeof AuthTest>;
  try {
    // A few quick retries: at start-up a wrong URL or token should be reported, not retried for minutes.
    who = AuthTest.parse(await new webApi.WebClient(slack.botToken, { ...clientOptions, retryConfig: { retries: 2, minTimeout: 250 } }).auth.test());
  } catch (err) {
    const code = (err as { data?: { error?: string } }).data?.error;
    throw new ConfigError(
      code ? `Slack rejected SLACK_BOT_TOKEN (${code}).` : `Slack's Web API at ${clientOptions.slackApiUrl} could not be reached: ${(err as Error).message}`,
    );
  }
  const receiver = new FrontReceiver(
    {
      mode,
      botToken: slack.botToken!,
      appToken: slack.appToken,
      signingSecret: slack.signingSecret,
      port: options.port,
      slackApiUrl: clientOptions.slackApiUrl!,
      botUserId: who.user_id,
      botId: who.bot_id,
      level: blog.getLevel(),
    },
    logger,
  );
  // With the bot's ids given, Bolt needs no auth.test of its own and can drop the bot's own events (ignoreSelf).
  const app = new App({ token: slack.botToken, botUserId: who.user_id, botId: who.bot_id, receiver, logger: blog, clientOptions, ignoreSelf: true, convoStore: false });
  return { app, receiver, mode, botUserId: who.user_id, botId: who.bot_id, team: who.team };
}

/** Start-up failures of the transport, in words that name the setting to fix. */
export function startError(mode: SlackMode, port: number, err: unknown): Error {
  const code = (err as { data?: { error?: string }; code?: string }).data?.error ?? (err as { code?: string }).code;
  if (mode === "socket" && code && /auth|token|revoked|inactive/.test(code)) return new ConfigError(`Slack rejected SLACK_APP_TOKEN (${code}); Socket Mode needs an xapp- token with connections:write.`);
  if (mode === "http" && code === "EADDRINUSE") return new ConfigError(`PORT ${port} is in use; Slack's HTTP mode needs a free port for /slack/events.`);
  return new ConfigError(`Slack could not start in ${mode === "socket" ? "Socket Mode" : "HTTP mode"}: ${(err as Error).message}`);
}
