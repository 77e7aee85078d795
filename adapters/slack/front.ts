import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { App, Receiver } from "@slack/bolt";
import type { Logger } from "../../src/logger.js";

// Slack wants every event acknowledged within 3 s, and the acknowledgement should not wait behind
// conversation work (graph steps, CSV profiling) on the main thread. So the Slack connection lives in a
// worker thread: there a plain Bolt app with Bolt's own receiver (Socket Mode, or HTTP with signature
// checks) acknowledges each event and interaction at once and passes its payload here, where the main
// Bolt app routes it to the adapter's listeners.

export interface FrontSettings {
  mode: "socket" | "http";
  botToken: string;
  appToken?: string;
  signingSecret?: string;
  port: number;
  slackApiUrl: string;
  botUserId: string;
  botId?: string;
  /** Bolt log level for the worker's messages ("debug" | "info" | "warn" | "error"). */
  level: string;
}

type FromFront =
  | { kind: "ready"; port: number | null }
  | { kind: "failed"; message: string; code?: string }
  | { kind: "event"; body: Record<string, unknown>; retryNum?: number; retryReason?: string }
  | { kind: "log"; level: "debug" | "info" | "warn" | "error"; msg: string }
  | { kind: "stopped" };

/**
 * The worker's program, as source text: it runs as eval'd CommonJS, untouched by any TypeScript or bundler
 * transform, and closes over nothing. Bolt is loaded from the path in workerData, and so are the
 * settings (FrontSettings); it talks to FrontReceiver with FromFront messages.
 */
const FRONT_PROGRAM = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const { App, HTTPReceiver, SocketModeReceiver } = require(workerData.bolt);
const s = workerData.settings;
const send = (message) => parentPort.postMessage(message);
const levels = ["debug", "info", "warn", "error"];
const log = (level) => (...msg) => {
  if (levels.indexOf(level) >= levels.indexOf(s.level))
    send({ kind: "log", level, msg: msg.map((m) => (m instanceof Error ? m.message : String(m))).join(" ") });
};
const logger = { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error"), setLevel() {}, getLevel: () => s.level, setName() {} };
const clientOptions = { slackApiUrl: s.slackApiUrl };
const health = { path: "/health", method: "GET", handler: (_req, res) => res.writeHead(200, { "Content-Type": "text/plain" }).end("ok\n") };
const receiver = s.mode === "socket"
  ? new SocketModeReceiver({ appToken: s.appToken, logger, installerOptions: { clientOptions } })
  : new HTTPReceiver({ signingSecret: s.signingSecret, endpoints: "/slack/events", port: s.port, logger, customRoutes: [health] });
const app = new App({ token: s.botToken, botUserId: s.botUserId, botId: s.botId, receiver, logger, clientOptions, ignoreSelf: false, convoStore: false });
// Bolt has acknowledged events before middleware runs; interactions are acknowledged here, empty.
app.use(async ({ body, ack, context }) => {
  if (ack) await ack();
  send({ kind: "event", body, retryNum: context.retryNum, retryReason: context.retryReason });
});
app.error(async (err) => logger.error(err));
parentPort.on("message", async (message) => {
  if (message !== "stop") return;
  try {
    // Bolt's stop() does not wait for the websocket's closing handshake; the client's disconnect() does.
    if (s.mode === "socket") await receiver.client.disconnect();
    else await receiver.stop();
  } catch (err) {
    logger.warn(err);
  }
  send({ kind: "stopped" });
  parentPort.close();
});
app.start().then(
  (started) => send({ kind: "ready", port: started && started.address ? started.address().port : null }),
  (err) => send({ kind: "failed", message: err.message, code: (err.data && err.data.error) || err.code }),
);
`;

const RESTART_MS = [1_000, 5_000, 30_000];
const STOP_TIMEOUT_MS = 5_000;

/** A Bolt receiver fed by the worker; Bolt's `ack` here is a no-op because the worker already acknowledged. */
export class FrontReceiver implements Receiver {
  private app: App | null = null;
  private worker: Worker | null = null;
  private stopping = false;
  private restarts = 0;

  constructor(
    private readonly settings: FrontSettings,
    private readonly logger: Logger,
  ) {}

  init(app: App): void {
    this.app = app;
  }

  /** Starts the worker; resolves with the HTTP port (HTTP mode) once Slack can deliver. */
  start(): Promise<{ port: number | null }> {
    this.stopping = false;
    return this.spawn();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.postMessage("stop");
    // A connection that cannot close cleanly must not hold up shutdown.
    const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  private spawn(): Promise<{ port: number | null }> {
    const bolt = createRequire(import.meta.url).resolve("@slack/bolt");
    const worker = new Worker(FRONT_PROGRAM, { eval: true, workerData: { bolt, settings: this.settings } });
    this.worker = worker;
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on("message", (m: FromFront) => {
        if (m.kind === "event") return this.dispatch(m);
        if (m.kind === "log") return this.logger[m.level]({ thread: "slack-front" }, m.msg);
        if (m.kind === "ready") {
          started = true;
          this.restarts = 0;
          resolve({ port: m.port });
        }
        if (m.kind === "failed") {
          // A worker that could not connect would otherwise keep the process alive doing nothing.
          void worker.terminate();
          reject(Object.assign(new Error(m.message), { code: m.code, data: { error: m.code } }));
        }
      });
      worker.on("error", (err) => (started ? this.logger.error({ err }, "the Slack connection thread failed") : reject(err)));
      worker.on("exit", (code) => {
        if (this.stopping || this.worker !== worker || !started) return;
        this.logger.error({ code }, "the Slack connection thread stopped; restarting it");
        this.restart();
      });
    });
  }

  /** Losing the connection thread would silently stop all events: start it again, backing off. */
  private restart(): void {
    const delay = RESTART_MS[Math.min(this.restarts++, RESTART_MS.length - 1)];
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn().catch((err) => {
        this.logger.error({ err, delay }, "restarting the Slack connection failed");
        this.restart();
      });
    }, delay);
  }

  private dispatch(m: Extract<FromFront, { kind: "event" }>): void {
    if (!this.app) return;
    this.app
      .processEvent({ body: m.body, retryNum: m.retryNum, retryReason: m.retryReason, ack: async () => {} })
      .catch((err: unknown) => this.logger.error({ err }, "Slack event processing failed"));
  }
}
