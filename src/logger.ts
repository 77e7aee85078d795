import pino, { type Logger } from "pino";

export type { Logger };

// Logs go to stderr so that stdout stays clean for the CLI's JSON and the shell's conversation.
// Secrets are redacted by key wherever they appear in logged objects.
export function createLogger(level: string = "info"): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ["*.token", "*.botToken", "*.appToken", "*.signingSecret", "*.apiKey", "*.password", "token", "apiKey"],
        censor: "[redacted]",
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
