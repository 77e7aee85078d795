import { createHmac, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

// A stand-in for Slack on 127.0.0.1: the Web API methods ThreadML calls, file downloads and the
// files.uploadV2 upload URLs, a Socket Mode websocket (apps.connections.open), and signed HTTP events
// for Bolt's HTTPReceiver. It records every call and can answer 429 with Retry-After on demand, so real
// Bolt and the real Web API client run against it unchanged.

export const BOT_TOKEN = "xoxb-test-bot-token";
export const APP_TOKEN = "xapp-test-app-token";
export const SIGNING_SECRET = "test-signing-secret";
export const BOT_USER = "UBOT000001";
export const BOT_ID = "BBOT000001";
export const TEAM = "TTEAM00001";
export const APP_ID = "AAPP000001";

export interface ApiCall {
  method: string;
  /** Form fields as sent; JSON-valued fields (blocks, view, files) are strings, see `json()`. */
  args: Record<string, string>;
  auth: string | null;
  status: number;
  /** Milliseconds since the fake started. */
  at: number;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  text: string;
  blocks: Block[];
  /** How many times chat.update changed it. */
  edits: number;
}

export type Block = Record<string, unknown> & { type: string; block_id?: string };
type Element = Record<string, unknown> & { type: string; action_id?: string; value?: string; text?: { text: string } };

export interface ServedFile {
  id: string;
  name: string;
  title: string;
  filetype: string;
  mimetype: string;
  size: number;
  mode: string;
  url_private: string;
  url_private_download: string;
}

export interface Upload {
  fileId: string;
  filename: string;
  length: number;
  bytes: Buffer | null;
  completed: { channel_id?: string; thread_ts?: string; title?: string } | null;
}

export interface Ack {
  /** Milliseconds from sending the event to its acknowledgement (Socket Mode ack, or the HTTP response). */
  ms: number;
  /** HTTP status (200 in Socket Mode). */
  status: number;
  /** The ack's payload (Socket Mode) or response body (HTTP). */
  payload: unknown;
}

export interface DeliverOptions {
  /** Marks the delivery as Slack's retry number N (X-Slack-Retry-Num / retry_attempt). */
  retryNum?: number;
  /** HTTP mode: sign with the wrong secret. */
  badSignature?: boolean;
  /** HTTP mode: the request timestamp (Unix seconds) to sign with. */
  timestamp?: number;
}

export type Mode = "socket" | "http";

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
};

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parses a JSON-valued form field (Slack's clients send blocks, views and file lists as JSON strings). */
export function parseJson<T = unknown>(value: string | undefined): T {
  return (value ? JSON.parse(value) : undefined) as T;
}

/** Every interactive element in some blocks: buttons and menus in actions blocks and section accessories. */
export function elements(blocks: Block[]): Array<Element & { block_id: string }> {
  const out: Array<Element & { block_id: string }> = [];
  for (const b of blocks) {
    const id = b.block_id ?? "";
    if (b.type === "actions") for (const e of b.elements as Element[]) out.push({ ...e, block_id: id });
    if (b.type === "section" && b.accessory) out.push({ ...(b.accessory as Element), block_id: id });
  }
  return out;
}

/** All visible text of some blocks, for assertions. */
export function blockText(blocks: Block[]): string {
  const parts: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      const o = node as Record<string, unknown>;
      if (typeof o.text === "string") parts.push(o.text);
      for (const [k, v] of Object.entries(o)) if (k !== "text" || typeof v !== "string") walk(v);
    }
  };
  walk(blocks);
  return parts.join("\n");
}

export class FakeSlack {
  readonly calls: ApiCall[] = [];
  readonly messages = new Map<string, FakeMessage>();
  readonly ephemerals: Array<{ channel: string; user: string; text: string; thread_ts?: string }> = [];
  readonly views = new Map<string, Record<string, unknown>>();
  readonly uploads = new Map<string, Upload>();
  readonly downloads: Array<{ fileId: string; auth: string | null; status: number }> = [];
  /** Socket Mode connections opened, in order. */
  readonly connections: WebSocket[] = [];
  /** Where HTTP-mode events go, e.g. http://127.0.0.1:PORT/slack/events. */
  eventsUrl: string | null = null;
  /** Send `message` events for the bot's own posts, as Slack does for channels the bot is in. */
  echoBotPosts = true;
  readonly mode: Mode;

  private readonly events = new EventEmitter();
  private readonly files = new Map<string, { file: ServedFile; content: Buffer }>();
  private readonly byThread = new Map<string, FakeMessage[]>();
  private readonly limits = new Map<string, { times: number; retryAfterS: number }>();
  private readonly acks = new Map<string, { sent: number; resolve: (ack: Ack) => void }>();
  private readonly sockets = new Set<Socket>();
  private readonly started = performance.now();
  // Idle connections are dropped before Node's default server keep-alive (5 s) would close them under us.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 512, timeout: 4_000 });
  private wss: WebSocketServer | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private seq = 0;
  private clock = 1_760_000_000;
  private baseUrl = "";

  private constructor(
    private readonly server: Server,
    mode: Mode,
  ) {
    this.mode = mode;
    this.events.setMaxListeners(0);
  }

  static async start(mode: Mode): Promise<FakeSlack> {
    const server = createServer();
    const fake = new FakeSlack(server, mode);
    server.on("request", (req, res) => void fake.route(req, res).catch((err) => json(res, 500, { ok: false, error: String(err) })));
    server.on("connection", (s) => {
      fake.sockets.add(s);
      s.on("close", () => fake.sockets.delete(s));
    });
    fake.wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req, socket, head) => {
      if (!req.url?.startsWith("/link")) return socket.destroy();
      fake.wss!.handleUpgrade(req, socket, head, (ws) => fake.onSocket(ws));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Slack pings Socket Mode clients; the client reconnects when pings stop for 30 s.
    fake.pinger = setInterval(() => fake.connections.forEach((ws) => ws.readyState === ws.OPEN && ws.ping()), 5_000);
    fake.pinger.unref();
    return fake;
  }

  /** The Web API base URL for SLACK_API_URL / clientOptions.slackApiUrl. */
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  async close(): Promise<void> {
    if (this.pinger) clearInterval(this.pinger);
    for (const ws of this.connections) ws.terminate();
    this.wss?.close();
    this.agent.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- ids and time ---------------------------------------------------------------------------------

  private next(prefix: string): string {
    return `${prefix}${(++this.seq).toString().padStart(8, "0")}`;
  }

  /** A fresh, increasing message timestamp. */
  ts(): string {
    this.clock += 1;
    return `${this.clock}.${(++this.seq % 1_000_000).toString().padStart(6, "0")}`;
  }

  // ---- scripting ------------------------------------------------------------------------------------

  /** The next `times` calls of `method` answer 429 with Retry-After. */
  rateLimit(method: string, times = 1, retryAfterS = 1): void {
    this.limits.set(method, { times, retryAfterS });
  }

  /** Serves a file as Slack does (url_private_download needs the bot token) and returns its file object. */
  addFile(name: string, content: string | Buffer, over: Partial<ServedFile> = {}): ServedFile {
    const id = this.next("F");
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const ext = name.split(".").pop() ?? "";
    const file: ServedFile = {
      id,
      name,
      title: name,
      filetype: ext,
      mimetype: ext === "csv" ? "text/csv" : "application/octet-stream",
      size: body.length,
      mode: "hosted",
      url_private: `${this.baseUrl}/files-pri/${TEAM}-${id}/${encodeURIComponent(name)}`,
      url_private_download: `${this.baseUrl}/files-pri/${TEAM}-${id}/download/${encodeURIComponent(name)}`,
      ...over,
    };
    this.files.set(id, { file, content: body });
    return file;
  }

  /** Calls recorded so far, optionally of one method. */
  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** The bot's messages in a thread (as they look now, edits applied), oldest first. */
  thread(channel: string, threadTs: string): FakeMessage[] {
    return this.byThread.get(`${channel}:${threadTs}`) ?? [];
  }

  private index(m: FakeMessage): void {
    const key = `${m.channel}:${m.thread_ts ?? m.ts}`;
    const list = this.byThread.get(key) ?? [];
    if (!list.includes(m)) list.push(m);
    this.byThread.set(key, list);
    this.events.emit(`thread:${key}`);
  }

  /** Resolves with the first recorded call (from index `from`) that matches; fails after `timeoutMs` listing recent calls. */
  waitForCall(match: (call: ApiCall) => boolean, what: string, options: { from?: number; timeoutMs?: number } = {}): Promise<ApiCall> {
    const found = this.calls.slice(options.from ?? 0).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onCall = (call: ApiCall) => {
        if (!match(call)) return;
        clearTimeout(timer);
        this.events.off("call", onCall);
        resolve(call);
      };
      const timer = setTimeout(() => {
        this.events.off("call", onCall);
        const recent = this.calls.slice(-15).map((c) => `${c.method} ${c.status} ${JSON.stringify(c.args).slice(0, 300)}`);
        reject(new Error(`Timed out waiting for ${what}. Recent Web API calls:\n${recent.join("\n")}`));
      }, options.timeoutMs ?? 60_000);
      this.events.on("call", onCall);
    });
  }

  /** Resolves with the first bot message in the thread whose current state matches (checked on each change in that thread only). */
  waitForMessage(channel: string, threadTs: string, match: (m: FakeMessage) => boolean, what: string, timeoutMs = 60_000): Promise<FakeMessage> {
    const look = () => this.thread(channel, threadTs).find(match);
    const found = look();
    if (found) return Promise.resolve(found);
    const topic = `thread:${channel}:${threadTs}`;
    return new Promise((resolve, reject) => {
      const onChange = () => {
        const m = look();
        if (!m) return;
        clearTimeout(timer);
        this.events.off(topic, onChange);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.events.off(topic, onChange);
        const seen = this.thread(channel, threadTs).map((m) => `${m.ts} (${m.edits} edits): ${m.text.slice(0, 200)}`);
        reject(new Error(`Timed out waiting for ${what} in thread ${threadTs}. Its bot messages:\n${seen.join("\n") || "(none)"}`));
      }, timeoutMs);
      this.events.on(topic, onChange);
    });
  }

  // ---- the Web API ----------------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.baseUrl);
    if (url.pathname.startsWith("/api/") && req.method === "POST") return this.api(url.pathname.slice(5), req, res);
    if (url.pathname.startsWith("/files-pri/") && req.method === "GET") return this.serveFile(url.pathname, req, res);
    if (url.pathname.startsWith("/upload/v1/") && req.method === "POST") return this.receiveUpload(url.pathname.slice(11), req, res);
    if (url.pathname.startsWith("/response/")) return json(res, 200, { ok: true });
    res.writeHead(404).end();
  }

  private async api(method: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString("utf8");
    const type = req.headers["content-type"] ?? "";
    const args: Record<string, string> = {};
    if (type.startsWith("application/json")) for (const [k, v] of Object.entries(JSON.parse(raw || "{}"))) args[k] = typeof v === "string" ? v : JSON.stringify(v);
    else for (const [k, v] of new URLSearchParams(raw)) args[k] = v;
    const auth = req.headers.authorization ?? null;
    const call: ApiCall = { method, args, auth, status: 200, at: performance.now() - this.started };
    const limit = this.limits.get(method);
    if (limit && limit.times > 0) {
      limit.times -= 1;
      call.status = 429;
      this.record(call);
      return json(res, 429, { ok: false, error: "ratelimited" }, { "Retry-After": String(limit.retryAfterS) });
    }
    const wanted = method === "apps.connections.open" ? APP_TOKEN : BOT_TOKEN;
    if (auth !== `Bearer ${wanted}`) {
      this.record(call);
      return json(res, 200, { ok: false, error: "invalid_auth" });
    }
    const answer = this.answer(method, args);
    this.record(call);
    json(res, 200, answer);
    if (method === "chat.postMessage" && answer.ok && this.echoBotPosts) void this.echo(answer.message as FakeMessage);
  }

  private record(call: ApiCall): void {
    this.calls.push(call);
    this.events.emit("call", call);
  }

  private answer(method: string, a: Record<string, string>): Record<string, unknown> {
    switch (method) {
      case "auth.test":
        return { ok: true, url: "https://threadml-test.slack.com/", team: "ThreadML Test", user: "threadml", team_id: TEAM, user_id: BOT_USER, bot_id: BOT_ID };
      case "apps.connections.open":
        return { ok: true, url: `${this.baseUrl.replace("http", "ws")}/link/?ticket=${this.next("t")}` };
      case "chat.postMessage": {
        if (!a.channel) return { ok: false, error: "channel_not_found" };
        const blocks = this.withBlockIds(parseJson<Block[]>(a.blocks) ?? []);
        const m: FakeMessage = { channel: a.channel, ts: this.ts(), thread_ts: a.thread_ts || undefined, text: a.text ?? "", blocks, edits: 0 };
        this.messages.set(m.ts, m);
        this.index(m);
        return { ok: true, channel: m.channel, ts: m.ts, message: { ...m, user: BOT_USER, bot_id: BOT_ID } };
      }
      case "chat.update": {
        const m = this.messages.get(a.ts);
        if (!m || m.channel !== a.channel) return { ok: false, error: "message_not_found" };
        m.text = a.text ?? m.text;
        if (a.blocks) m.blocks = this.withBlockIds(parseJson<Block[]>(a.blocks));
        m.edits += 1;
        this.index(m);
        return { ok: true, channel: m.channel, ts: m.ts, text: m.text };
      }
      case "chat.postEphemeral":
        this.ephemerals.push({ channel: a.channel, user: a.user, text: a.text ?? "", thread_ts: a.thread_ts || undefined });
        return { ok: true, message_ts: this.ts() };
      case "views.open": {
        const view = { ...parseJson<Record<string, unknown>>(a.view), id: this.next("V"), hash: this.next("h") };
        this.views.set(view.id as string, view);
        return { ok: true, view };
      }
      case "files.getUploadURLExternal": {
        const fileId = this.next("F");
        this.uploads.set(fileId, { fileId, filename: a.filename, length: Number(a.length), bytes: null, completed: null });
        return { ok: true, upload_url: `${this.baseUrl}/upload/v1/${fileId}`, file_id: fileId };
      }
      case "files.completeUploadExternal": {
        const files = parseJson<Array<{ id: string; title?: string }>>(a.files) ?? [];
        const done = [];
        for (const f of files) {
          const upload = this.uploads.get(f.id);
          if (!upload?.bytes) return { ok: false, error: "file_not_found" };
          upload.completed = { channel_id: a.channel_id, thread_ts: a.thread_ts, title: f.title };
          done.push({ id: f.id, name: upload.filename, title: f.title ?? upload.filename });
        }
        return { ok: true, files: done };
      }
      default:
        return { ok: false, error: "unknown_method" };
    }
  }

  /** Slack gives every block an id when the sender did not. */
  private withBlockIds(blocks: Block[]): Block[] {
    return blocks.map((b, i) => ({ ...b, block_id: b.block_id ?? `b${i}` }));
  }

  private serveFile(path: string, req: IncomingMessage, res: ServerResponse): void {
    const id = path.split("/")[2]?.split("-").pop() ?? "";
    const served = this.files.get(id);
    const auth = req.headers.authorization ?? null;
    const status = served ? 200 : 404;
    this.downloads.push({ fileId: id, auth, status });
    if (!served) return void res.writeHead(404).end();
    // Like Slack: without the bot token the "file" is the sign-in page.
    if (auth !== `Bearer ${BOT_TOKEN}`) return void res.writeHead(200, { "Content-Type": "text/html" }).end("<html><body>Sign in to Slack</body></html>");
    res.writeHead(200, { "Content-Type": served.file.mimetype, "Content-Length": String(served.content.length) });
    res.end(served.content);
  }

  private async receiveUpload(fileId: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const upload = this.uploads.get(fileId);
    const body = await readBody(req);
    if (!upload) return void res.writeHead(404).end();
    // files.uploadV2 posts multipart/form-data; the Fetch API parses it.
    const form = await new Response(new Uint8Array(body), { headers: { "content-type": req.headers["content-type"] ?? "" } }).formData();
    const part = [...form.values()].find((v) => typeof v !== "string") as Blob | undefined;
    upload.bytes = part ? Buffer.from(await part.arrayBuffer()) : body;
    res.writeHead(200, { "Content-Type": "text/plain" }).end(`OK - ${upload.bytes.length}`);
  }

  // ---- Socket Mode ----------------------------------------------------------------------------------

  private onSocket(ws: WebSocket): void {
    this.connections.push(ws);
    ws.on("message", (data) => {
      const received = performance.now();
      let msg: { envelope_id?: string; payload?: unknown };
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return;
      }
      const pending = msg.envelope_id ? this.acks.get(msg.envelope_id) : undefined;
      if (!pending) return;
      this.acks.delete(msg.envelope_id!);
      pending.resolve({ ms: received - pending.sent, status: 200, payload: msg.payload ?? null });
    });
    ws.send(JSON.stringify({ type: "hello", num_connections: 1, debug_info: { host: "fake-slack", approximate_connection_time: 18060 }, connection_info: { app_id: APP_ID } }));
    this.events.emit("socket", ws);
  }

  /** Asks the connected client to reconnect, as Slack does before recycling a connection; resolves on the new connection. */
  requestReconnect(): Promise<void> {
    const open = this.connections.filter((ws) => ws.readyState === ws.OPEN);
    const next = this.nextConnection();
    for (const ws of open) ws.send(JSON.stringify({ type: "disconnect", reason: "refresh_requested", debug_info: { host: "fake-slack" } }));
    return next;
  }

  /** Resolves when the next Socket Mode connection opens. */
  nextConnection(): Promise<void> {
    return new Promise<void>((resolve) => this.events.once("socket", () => resolve()));
  }

  /** Resolves once a Socket Mode client is connected. */
  socketReady(): Promise<void> {
    if (this.connections.some((ws) => ws.readyState === ws.OPEN)) return Promise.resolve();
    return new Promise((resolve) => this.events.once("socket", () => resolve()));
  }

  private sendEnvelope(type: "events_api" | "interactive", payload: unknown, options: DeliverOptions): Promise<Ack> {
    const ws = [...this.connections].reverse().find((c) => c.readyState === c.OPEN);
    if (!ws) return Promise.reject(new Error("no Socket Mode client is connected"));
    const envelopeId = randomBytes(16).toString("hex");
    const envelope: Record<string, unknown> = { envelope_id: envelopeId, payload, type, accepts_response_payload: type === "interactive" };
    if (type === "events_api") Object.assign(envelope, { retry_attempt: options.retryNum ?? 0, retry_reason: options.retryNum ? "timeout" : "" });
    return new Promise((resolve) => {
      this.acks.set(envelopeId, { sent: performance.now(), resolve });
      ws.send(JSON.stringify(envelope));
    });
  }

  // ---- HTTP events ----------------------------------------------------------------------------------

  /** Signs a body the way Slack does (v0 HMAC-SHA256 of "v0:timestamp:body"). */
  static sign(body: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
    const signature = `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
    return { "X-Slack-Request-Timestamp": String(timestamp), "X-Slack-Signature": signature };
  }

  private postSigned(type: "events_api" | "interactive", payload: unknown, options: DeliverOptions): Promise<Ack> {
    if (!this.eventsUrl) return Promise.reject(new Error("eventsUrl is not set"));
    const body = type === "events_api" ? JSON.stringify(payload) : `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const headers: Record<string, string> = {
      "Content-Type": type === "events_api" ? "application/json" : "application/x-www-form-urlencoded",
      "Content-Length": String(Buffer.byteLength(body)),
      ...FakeSlack.sign(body, options.badSignature ? "not-the-secret" : SIGNING_SECRET, options.timestamp),
    };
    if (options.retryNum) Object.assign(headers, { "X-Slack-Retry-Num": String(options.retryNum), "X-Slack-Retry-Reason": "http_timeout" });
    const url = new URL(this.eventsUrl);
    const attempt = (): Promise<Ack> =>
      new Promise((resolve, reject) => {
        const sent = performance.now();
        const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers, agent: this.agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              // plain text bodies stay text
            }
            resolve({ ms: performance.now() - sent, status: res.statusCode ?? 0, payload: parsed });
          });
        });
        // A kept-alive connection the server closed meanwhile fails on reuse; Node's advice is to retry once.
        req.on("error", (err: NodeJS.ErrnoException) => (req.reusedSocket && err.code === "ECONNRESET" ? attempt().then(resolve, reject) : reject(err)));
        req.end(body);
      });
    return attempt();
  }

  // ---- events and interactions ----------------------------------------------------------------------

  /** Delivers an Events API event or an interaction over the fake's transport and resolves with its ack. */
  deliver(type: "events_api" | "interactive", payload: unknown, options: DeliverOptions = {}): Promise<Ack> {
    return this.mode === "socket" ? this.sendEnvelope(type, payload, options) : this.postSigned(type, payload, options);
  }

  /** The Events API body around one event. */
  callback(event: Record<string, unknown>, eventId = this.next("Ev")): Record<string, unknown> {
    return {
      token: "legacy-verification-token",
      team_id: TEAM,
      api_app_id: APP_ID,
      event,
      type: "event_callback",
      event_id: eventId,
      event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ enterprise_id: null, team_id: TEAM, user_id: BOT_USER, is_bot: true, is_enterprise_install: false }],
      is_ext_shared_channel: false,
      event_context: `4-${eventId}`,
    };
  }

  /** A person's post: the `message` event and, when it mentions the bot, the `app_mention` event Slack sends too. */
  post(p: { user: string; text: string; channel: string; ts?: string; thread_ts?: string; files?: ServedFile[] }): {
    ts: string;
    message: Record<string, unknown>;
    mention: Record<string, unknown> | null;
  } {
    const ts = p.ts ?? this.ts();
    const common = { user: p.user, text: p.text, ts, channel: p.channel, event_ts: ts, team: TEAM, client_msg_id: randomBytes(8).toString("hex"), ...(p.thread_ts ? { thread_ts: p.thread_ts } : {}), ...(p.files ? { files: p.files } : {}) };
    const message = this.callback({ type: "message", ...(p.files?.length ? { subtype: "file_share" } : {}), channel_type: "channel", ...common });
    const mention = p.text.includes(`<@${BOT_USER}>`) ? this.callback({ type: "app_mention", ...common }) : null;
    return { ts, message, mention };
  }

  /** Echoes the bot's own post back as a `message` event, as Slack does. */
  private async echo(m: FakeMessage): Promise<void> {
    const event = { type: "message", user: BOT_USER, bot_id: BOT_ID, app_id: APP_ID, text: m.text, ts: m.ts, channel: m.channel, event_ts: m.ts, channel_type: "channel", ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}) };
    await this.deliver("events_api", this.callback(event)).catch(() => {});
  }

  /** A `reaction_added` event on a message. */
  reaction(user: string, reaction: string, channel: string, ts: string): Record<string, unknown> {
    const now = this.ts();
    return this.callback({ type: "reaction_added", user, reaction, item: { type: "message", channel, ts }, item_user: BOT_USER, event_ts: now });
  }

  /** The block_actions payload of `user` clicking the element of `message` whose action id (or label) matches. */
  click(message: FakeMessage, user: string, match: string | RegExp, choose?: string): Record<string, unknown> {
    const test = (s: string | undefined) => (s === undefined ? false : typeof match === "string" ? s === match : match.test(s));
    const element = elements(message.blocks).find((e) => test(e.action_id) || test(e.text?.text));
    if (!element) throw new Error(`No element ${match} in message ${message.ts}: ${JSON.stringify(elements(message.blocks).map((e) => e.action_id))}`);
    const actionTs = `${Math.floor(Date.now() / 1000)}.${(++this.seq).toString().padStart(6, "0")}`;
    const action: Record<string, unknown> = { action_id: element.action_id, block_id: element.block_id, type: element.type, action_ts: actionTs };
    if (element.type === "static_select") {
      const option = (element.options as Array<{ text: { text: string }; value: string }>).find((o) => o.value === choose || o.text.text === choose);
      if (!option) throw new Error(`No option ${choose} in ${element.action_id}`);
      action.selected_option = option;
    } else Object.assign(action, { text: element.text, value: element.value });
    return {
      type: "block_actions",
      user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: TEAM },
      api_app_id: APP_ID,
      token: "legacy-verification-token",
      container: { type: "message", message_ts: message.ts, channel_id: message.channel, is_ephemeral: false, ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}) },
      trigger_id: `${this.seq}.${randomBytes(6).toString("hex")}`,
      team: { id: TEAM, domain: "threadml-test" },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: message.channel, name: "ml" },
      message: { type: "message", user: BOT_USER, bot_id: BOT_ID, ts: message.ts, thread_ts: message.thread_ts, text: message.text, blocks: message.blocks },
      state: { values: {} },
      response_url: `${this.baseUrl}/response/${this.seq}`,
      actions: [action],
    };
  }

  /** The view_submission payload of `user` submitting an opened modal with text in its inputs (block id → text). */
  submit(viewId: string, user: string, inputs: Record<string, string>): Record<string, unknown> {
    const view = this.views.get(viewId);
    if (!view) throw new Error(`No open view ${viewId}`);
    const values: Record<string, Record<string, unknown>> = {};
    for (const block of view.blocks as Array<{ block_id: string; element: { action_id: string } }>)
      if (block.block_id in inputs) values[block.block_id] = { [block.element.action_id]: { type: "plain_text_input", value: inputs[block.block_id] } };
    return {
      type: "view_submission",
      team: { id: TEAM, domain: "threadml-test" },
      user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: TEAM },
      api_app_id: APP_ID,
      token: "legacy-verification-token",
      trigger_id: `${this.seq}.${randomBytes(6).toString("hex")}`,
      view: { ...view, team_id: TEAM, state: { values }, app_id: APP_ID, bot_id: BOT_ID },
      response_urls: [],
      is_enterprise_install: false,
      enterprise: null,
    };
  }
}
