import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SnowflakeUtil } from "discord.js";
import { WebSocketServer, type WebSocket } from "ws";

// A small Discord on loopback for tests: the REST routes the adapter uses under `<base>/api/v10`, the
// gateway (HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats) behind GET /gateway/bot, signed attachment
// URLs, interaction callbacks with Discord's rules (one acknowledgement, within the deadline; tokens for
// 15 minutes), and 429 answers on demand. Every REST call is recorded in order.

export interface User {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: null;
  bot?: boolean;
}

export interface FakeMessage {
  id: string;
  channel_id: string;
  guild_id: string;
  author: User;
  content: string;
  embeds: Array<Record<string, unknown>>;
  components: Array<Record<string, unknown>>;
  attachments: Array<{ id: string; filename: string; size: number; url: string; proxy_url: string; content_type?: string }>;
  mentions: User[];
  flags: number;
  webhook_id?: string;
  /** Not part of Discord's shape: the edits this message received, oldest first. */
  edits: number;
  ephemeral: boolean;
}

export interface Call {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown> | null;
  files: Array<{ field: string; name: string; size: number; type: string; bytes: Buffer }>;
  status: number;
  /** For interaction callbacks and webhook calls: the interaction whose token was used. */
  interaction?: string;
}

interface FakeInteraction {
  id: string;
  token: string;
  channelId: string;
  messageId: string | null;
  dispatchedAt: number;
  createdAt: number;
  acknowledged: number | null;
  originalId: string | null;
}

export interface AttachmentSpec {
  name: string;
  data: string | Buffer;
  contentType?: string;
  /** The size Discord reports; defaults to the real one. */
  declaredSize?: number;
  /** Serve it without a Content-Length, so only the bytes themselves tell its size. */
  chunked?: boolean;
}

export interface FakeDiscordOptions {
  token?: string;
  /** Whether the application was granted the privileged Message Content intent. */
  grantMessageContent?: boolean;
  heartbeatIntervalMs?: number;
  /** How long after dispatch an interaction may be acknowledged (Discord: 3 s). */
  ackDeadlineMs?: number;
}

const MESSAGE_CONTENT = 1 << 15;
const EPHEMERAL = 1 << 6;
const TOKEN_LIFETIME_MS = 15 * 60_000;
const API = "/api/v10";

const user = (id: string, username: string, bot = false): User => ({ id, username, global_name: username, discriminator: "0", avatar: null, ...(bot ? { bot } : {}) });

export class FakeDiscord {
  readonly token: string;
  readonly bot: User;
  readonly applicationId: string;
  readonly guildId: string;
  readonly channelId: string;
  readonly users: { alice: User; bob: User; carol: User };
  readonly calls: Call[] = [];
  readonly messages = new Map<string, FakeMessage>();
  readonly threads = new Map<string, Record<string, unknown>>();
  readonly identifies: Array<{ intents: number }> = [];
  readonly closeCodes: number[] = [];
  heartbeats = 0;
  /** Interaction callbacks in order: which interaction, which response type, and its data. */
  readonly callbacks: Array<{ seq: number; interaction: string; type: number; data: Record<string, unknown> | null; status: number }> = [];
  grantMessageContent: boolean;
  private readonly options: Required<FakeDiscordOptions>;
  private readonly interactions = new Map<string, FakeInteraction>();
  private readonly blobs = new Map<string, { bytes: Buffer; type: string; signature: string; chunked: boolean }>();
  private readonly limits: Array<{ match: (method: string, path: string) => boolean; left: number; retryAfterS: number }> = [];
  private readonly sockets = new Set<WebSocket>();
  private seq = 0;
  private callSeq = 0;
  private server!: Server;
  private wss!: WebSocketServer;
  base = "";

  private constructor(options: FakeDiscordOptions) {
    this.options = { token: "fake-bot-token", grantMessageContent: true, heartbeatIntervalMs: 1_000, ackDeadlineMs: 3_000, ...options };
    this.token = this.options.token;
    this.grantMessageContent = this.options.grantMessageContent;
    this.bot = user(this.snowflake(), "ThreadML", true);
    this.applicationId = this.bot.id;
    this.guildId = this.snowflake();
    this.channelId = this.snowflake();
    this.users = { alice: user(this.snowflake(), "alice"), bob: user(this.snowflake(), "bob"), carol: user(this.snowflake(), "carol") };
  }

  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(options);
    await fake.listen();
    return fake;
  }

  /** REST base for discord.js `rest.api` (it appends /v10). */
  get api(): string {
    return `${this.base}/api`;
  }

  snowflake(timestamp = Date.now()): string {
    return SnowflakeUtil.generate({ timestamp }).toString();
  }

  private async listen(): Promise<void> {
    this.server = createServer((req, res) => void this.route(req, res).catch((err) => this.reply(res, 500, { message: String(err) })));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on("upgrade", (req, socket, head) => {
      if (!req.url?.startsWith("/gateway")) return socket.destroy();
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- gateway ----

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on("close", () => this.sockets.delete(ws));
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: this.options.heartbeatIntervalMs }, s: null, t: null }));
    ws.on("message", (raw) => {
      const packet = JSON.parse(String(raw)) as { op: number; d: Record<string, unknown> | number | null };
      if (packet.op === 1) {
        this.heartbeats++;
        ws.send(JSON.stringify({ op: 11, d: null, s: null, t: null }));
      } else if (packet.op === 2) this.identify(ws, packet.d as { token: string; intents: number });
      else if (packet.op === 6) ws.send(JSON.stringify({ op: 9, d: false, s: null, t: null }));
    });
  }

  private identify(ws: WebSocket, d: { token: string; intents: number }): void {
    this.identifies.push({ intents: d.intents });
    if (d.token !== this.token) return this.closeSocket(ws, 4004, "Authentication failed.");
    if (d.intents & MESSAGE_CONTENT && !this.grantMessageContent) return this.closeSocket(ws, 4014, "Disallowed intent(s).");
    this.send(ws, "READY", {
      v: 10,
      user: { ...this.bot, verified: true, mfa_enabled: false, flags: 0 },
      guilds: [{ id: this.guildId, unavailable: true }],
      session_id: randomBytes(8).toString("hex"),
      resume_gateway_url: `${this.base.replace("http", "ws")}/gateway`,
      shard: [0, 1],
      application: { id: this.applicationId, flags: 0 },
      private_channels: [],
      relationships: [],
      user_settings: {},
      presences: [],
      guild_join_requests: [],
      geo_ordered_rtc_regions: [],
    });
    this.send(ws, "GUILD_CREATE", this.guild());
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    this.closeCodes.push(code);
    ws.close(code, reason);
  }

  private send(ws: WebSocket, t: string, d: unknown): void {
    ws.send(JSON.stringify({ op: 0, t, s: ++this.seq, d }));
  }

  /** Sends a dispatch event to every connected client. */
  dispatch(t: string, d: unknown): void {
    for (const ws of this.sockets) if (ws.readyState === ws.OPEN) this.send(ws, t, d);
  }

  private textChannel() {
    return { id: this.channelId, type: 0, guild_id: this.guildId, name: "ml-requests", position: 0, permission_overwrites: [], nsfw: false, parent_id: null, topic: null, last_message_id: null, rate_limit_per_user: 0 };
  }

  private guild() {
    const now = new Date().toISOString();
    return {
      id: this.guildId,
      name: "ThreadML test server",
      icon: null,
      owner_id: this.users.alice.id,
      unavailable: false,
      joined_at: now,
      large: false,
      member_count: 4,
      features: [],
      premium_tier: 0,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      system_channel_id: null,
      system_channel_flags: 0,
      preferred_locale: "en-US",
      nsfw_level: 0,
      roles: [{ id: this.guildId, name: "@everyone", permissions: "2248473465835073", position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
      channels: [this.textChannel()],
      threads: [...this.threads.values()],
      members: [{ user: this.bot, roles: [], joined_at: now, deaf: false, mute: false, flags: 0 }],
      emojis: [],
      stickers: [],
      voice_states: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  // ---- driving the bot as users would ----

  /** A user posts in a channel or thread; returns the stored message. Gated like Discord without the intent. */
  userMessage(author: User, content: string, options: { channelId?: string; attachments?: AttachmentSpec[]; id?: string } = {}): FakeMessage {
    const channelId = options.channelId ?? this.channelId;
    const id = options.id ?? this.snowflake();
    const message = this.store({
      id,
      channel_id: channelId,
      author,
      content,
      attachments: (options.attachments ?? []).map((a) => this.blob(channelId, a)),
    });
    this.dispatchMessage(message);
    return message;
  }

  /** Sends a stored message's MESSAGE_CREATE again (a duplicate delivery). */
  redeliver(message: FakeMessage): void {
    this.dispatchMessage(message);
  }

  private dispatchMessage(m: FakeMessage): void {
    const mentioned = m.mentions.some((u) => u.id === this.bot.id);
    // Without the intent Discord blanks content, embeds and attachments, except in messages that mention the bot.
    const gated = !this.grantMessageContent && !mentioned && m.author.id !== this.bot.id;
    const { edits: _e, ephemeral: _p, ...wire } = m;
    this.dispatch("MESSAGE_CREATE", {
      ...wire,
      ...(gated ? { content: "", embeds: [], attachments: [], components: [] } : {}),
      type: 0,
      tts: false,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      mention_everyone: false,
      mention_roles: [],
      pinned: false,
      member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 },
    });
  }

  private store(m: Partial<FakeMessage> & Pick<FakeMessage, "id" | "channel_id" | "author" | "content">): FakeMessage {
    const all = [this.bot, ...Object.values(this.users)];
    const mentions = [...m.content.matchAll(/<@!?(\d+)>/g)].map((x) => all.find((u) => u.id === x[1])).filter((u): u is User => !!u);
    const message: FakeMessage = { guild_id: this.guildId, embeds: [], components: [], attachments: [], mentions, flags: 0, edits: 0, ephemeral: false, ...m };
    this.messages.set(message.id, message);
    return message;
  }

  private blob(channelId: string, a: AttachmentSpec) {
    const id = this.snowflake();
    const bytes = Buffer.isBuffer(a.data) ? a.data : Buffer.from(a.data);
    const signature = randomBytes(6).toString("hex");
    this.blobs.set(id, { bytes, type: a.contentType ?? "application/octet-stream", signature, chunked: a.chunked ?? false });
    const url = `${this.base}/attachments/${channelId}/${id}/${encodeURIComponent(a.name)}?ex=${Date.now().toString(16)}&is=0&hm=${signature}`;
    return { id, filename: a.name, size: a.declaredSize ?? bytes.length, url, proxy_url: url, ...(a.contentType ? { content_type: a.contentType } : {}) };
  }

  /** Clicks a component on a message (button, or a select with `values`). */
  click(author: User, message: FakeMessage, customId: string, options: { values?: string[]; createdAt?: number; id?: string } = {}): string {
    const componentType = options.values ? 3 : 2;
    return this.interact(author, message.channel_id, message, 3, { custom_id: customId, component_type: componentType, ...(options.values ? { values: options.values } : {}) }, options);
  }

  /** Submits a modal that was opened from a component on `message`. */
  submitModal(author: User, message: FakeMessage, customId: string, text: string, options: { createdAt?: number; inputId?: string } = {}): string {
    const components = [{ type: 18, id: 1, component: { type: 4, id: 2, custom_id: options.inputId ?? "text", value: text } }];
    return this.interact(author, message.channel_id, message, 5, { custom_id: customId, components }, options);
  }

  private interact(author: User, channelId: string, message: FakeMessage, type: number, data: Record<string, unknown>, options: { createdAt?: number; id?: string }): string {
    const createdAt = options.createdAt ?? Date.now();
    const id = options.id ?? this.snowflake(createdAt);
    const token = `itk-${randomBytes(12).toString("hex")}`;
    const existing = this.interactions.get(id);
    this.interactions.set(id, existing ?? { id, token, channelId, messageId: message.id, dispatchedAt: Date.now(), createdAt, acknowledged: null, originalId: null });
    const channel = this.threads.get(channelId) ?? this.textChannel();
    const { edits: _e, ephemeral: _p, ...wireMessage } = message;
    this.dispatch("INTERACTION_CREATE", {
      id,
      application_id: this.applicationId,
      type,
      token: (existing ?? this.interactions.get(id)!).token,
      version: 1,
      guild_id: this.guildId,
      channel_id: channelId,
      channel,
      member: { user: author, roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0, permissions: "2248473465835073" },
      data,
      message: { ...wireMessage, type: 0, tts: false, timestamp: new Date().toISOString(), edited_timestamp: null, mention_everyone: false, mention_roles: [], pinned: false },
      app_permissions: "2248473465835073",
      locale: "en-US",
      guild_locale: "en-US",
      entitlements: [],
      authorizing_integration_owners: { "0": this.guildId },
      context: 0,
      attachment_size_limit: 10485760,
    });
    return id;
  }

  /** Dispatches an interaction's INTERACTION_CREATE again, same id and token (a duplicate delivery). */
  redeliverInteraction(author: User, message: FakeMessage, customId: string, id: string): void {
    this.interact(author, message.channel_id, message, 3, { custom_id: customId, component_type: 2 }, { id });
  }

  /** Makes an interaction's token expire now, as if its 15 minutes had passed. */
  expire(interactionId: string): void {
    const i = this.interactions.get(interactionId);
    if (i) i.createdAt = 0;
  }

  /** The next `times` requests matching get 429 with `retry_after`. */
  rateLimit(match: (method: string, path: string) => boolean, times: number, retryAfterS = 0.2): void {
    this.limits.push({ match, left: times, retryAfterS });
  }

  // ---- queries ----

  /** Messages in a channel or thread that everyone sees, oldest first. */
  channelMessages(channelId: string): FakeMessage[] {
    return [...this.messages.values()].filter((m) => m.channel_id === channelId && !m.ephemeral);
  }

  /** Polls until `probe` returns a value (not undefined/null/false), then returns it. */
  async waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined && value !== null && value !== false) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${this.transcript()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** REST calls and messages so far, for failure messages. */
  transcript(): string {
    const calls = this.calls.map((c) => `${c.status} ${c.method} ${c.path}`).join("\n");
    const messages = [...this.messages.values()].map((m) => `[${m.channel_id}${m.ephemeral ? " ephemeral" : ""}] ${m.author.username}: ${m.content.slice(0, 160)}${m.embeds.length ? ` (+${m.embeds.length} embeds)` : ""}`);
    return `REST calls:\n${calls}\nMessages:\n${messages.join("\n")}`;
  }

  // ---- REST ----

  private reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (status === 204) {
      res.writeHead(204, headers).end();
      return;
    }
    res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body));
  }

  private async readBody(req: IncomingMessage): Promise<{ body: Record<string, unknown> | null; files: Call["files"] }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const type = req.headers["content-type"] ?? "";
    if (!raw.length) return { body: null, files: [] };
    if (type.startsWith("multipart/form-data")) {
      const form = await new Request("http://fake/", { method: "POST", headers: { "content-type": type }, body: raw }).formData();
      const files: Call["files"] = [];
      let body: Record<string, unknown> | null = null;
      for (const [field, value] of form.entries()) {
        if (typeof value === "string") {
          if (field === "payload_json") body = JSON.parse(value) as Record<string, unknown>;
        } else files.push({ field, name: value.name, size: value.size, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
      }
      return { body, files };
    }
    return { body: JSON.parse(raw.toString("utf8")) as Record<string, unknown>, files: [] };
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.base);
    const method = req.method ?? "GET";
    const path = url.pathname;
    if (method === "GET" && path.startsWith("/attachments/")) return this.serveAttachment(url, res);
    const { body, files } = await this.readBody(req);
    const call: Call = { seq: ++this.callSeq, method, path: decodeURIComponent(path.replace(API, "")), query: Object.fromEntries(url.searchParams), body, files, status: 0 };
    this.calls.push(call);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      this.reply(res, status, payload, headers);
    };
    const p = call.path.split("/").filter(Boolean);
    if (p[0] === "interactions") call.interaction = p[1];
    if (p[0] === "webhooks") call.interaction = [...this.interactions.values()].find((x) => x.token === p[2])?.id;
    const limit = this.limits.find((l) => l.left > 0 && l.match(method, call.path));
    if (limit) {
      limit.left--;
      return send(
        429,
        { message: "You are being rate limited.", retry_after: limit.retryAfterS, global: false },
        { "Retry-After": String(limit.retryAfterS), "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": String(limit.retryAfterS), "X-RateLimit-Scope": "user" },
      );
    }
    if (!path.startsWith(API)) return send(404, { message: "404: Not Found", code: 0 });
    const auth = req.headers.authorization;

    if (method === "GET" && call.path === "/gateway/bot") {
      if (auth !== `Bot ${this.token}`) return send(401, { message: "401: Unauthorized", code: 0 });
      return send(200, { url: `${this.base.replace("http", "ws")}/gateway`, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 } });
    }
    if (p[0] === "interactions" && p[3] === "callback" && method === "POST") return this.callback(p[1], p[2], body, send);
    if (p[0] === "webhooks") return this.webhook(method, p, body, files, send);
    if (auth !== `Bot ${this.token}`) return send(401, { message: "401: Unauthorized", code: 0 });
    if (p[0] === "channels") {
      const channelId = p[1];
      if (!this.channelExists(channelId)) return send(404, { message: "Unknown Channel", code: 10003 });
      if (p.length === 2 && method === "GET") return send(200, this.threads.get(channelId) ?? this.textChannel());
      if (p[2] === "messages" && p.length === 3 && method === "POST") return send(200, this.wire(this.create(channelId, this.bot, body, files)));
      if (p[2] === "messages" && p.length === 4 && method === "PATCH") {
        const m = this.messages.get(p[3]);
        if (!m || m.channel_id !== channelId || m.author.id !== this.bot.id) return send(404, { message: "Unknown Message", code: 10008 });
        return send(200, this.wire(this.edit(m, body, files)));
      }
      if (p[2] === "messages" && p[4] === "threads" && method === "POST") return this.startThread(channelId, p[3], body, send);
    }
    return send(404, { message: "404: Not Found", code: 0 });
  }

  private channelExists(id: string): boolean {
    return id === this.channelId || this.threads.has(id);
  }

  private wire(m: FakeMessage) {
    const { edits: _e, ephemeral: _p, ...rest } = m;
    return { ...rest, type: 0, tts: false, timestamp: new Date().toISOString(), edited_timestamp: m.edits ? new Date().toISOString() : null, mention_everyone: false, mention_roles: [], pinned: false };
  }

  private create(channelId: string, author: User, body: Record<string, unknown> | null, files: Call["files"], extra: Partial<FakeMessage> = {}): FakeMessage {
    const message = this.store({
      id: this.snowflake(),
      channel_id: channelId,
      author,
      content: String(body?.content ?? ""),
      embeds: (body?.embeds as FakeMessage["embeds"]) ?? [],
      components: (body?.components as FakeMessage["components"]) ?? [],
      attachments: files.map((f) => this.blob(channelId, { name: f.name, data: f.bytes, contentType: f.type || undefined })),
      flags: Number(body?.flags ?? 0),
      ...extra,
    });
    if (!message.ephemeral) this.dispatchMessage(message);
    return message;
  }

  private edit(m: FakeMessage, body: Record<string, unknown> | null, files: Call["files"]): FakeMessage {
    if (body && "content" in body) m.content = String(body.content ?? "");
    if (body && "embeds" in body) m.embeds = (body.embeds as FakeMessage["embeds"]) ?? [];
    if (body && "components" in body) m.components = (body.components as FakeMessage["components"]) ?? [];
    if (files.length) m.attachments = files.map((f) => this.blob(m.channel_id, { name: f.name, data: f.bytes, contentType: f.type || undefined }));
    m.edits++;
    this.dispatch("MESSAGE_UPDATE", this.wire(m));
    return m;
  }

  /** A thread someone started in the text channel (not from a bot message); returns its id. */
  userThread(owner: User, name = "discussion"): string {
    const id = this.snowflake();
    const thread = this.threadObject(id, this.channelId, owner.id, name, 1440);
    this.threads.set(id, thread);
    this.dispatch("THREAD_CREATE", { ...thread, newly_created: true });
    return id;
  }

  private threadObject(id: string, parentId: string, ownerId: string, name: string, autoArchive: number) {
    return {
      id,
      type: 11,
      guild_id: this.guildId,
      parent_id: parentId,
      owner_id: ownerId,
      name,
      last_message_id: null,
      rate_limit_per_user: 0,
      message_count: 0,
      member_count: 1,
      total_message_sent: 0,
      thread_metadata: { archived: false, auto_archive_duration: autoArchive, archive_timestamp: new Date().toISOString(), locked: false, create_timestamp: new Date().toISOString() },
      flags: 0,
    };
  }

  private startThread(channelId: string, messageId: string, body: Record<string, unknown> | null, send: (s: number, b: unknown) => void): void {
    if (!this.messages.has(messageId)) return send(404, { message: "Unknown Message", code: 10008 });
    if (this.threads.has(messageId)) return send(400, { message: "A thread has already been created for this message", code: 160004 });
    const thread = this.threadObject(messageId, channelId, this.bot.id, String(body?.name ?? "thread"), Number(body?.auto_archive_duration ?? 1440));
    this.threads.set(thread.id, thread);
    send(201, thread);
    this.dispatch("THREAD_CREATE", { ...thread, newly_created: true });
  }

  private callback(id: string, token: string, body: Record<string, unknown> | null, send: (s: number, b: unknown) => void): void {
    const i = this.interactions.get(id);
    const type = Number(body?.type);
    const record = (status: number) => this.callbacks.push({ seq: this.callSeq, interaction: id, type, data: (body?.data as Record<string, unknown>) ?? null, status });
    if (!i || i.token !== token || Date.now() - i.dispatchedAt > this.options.ackDeadlineMs) {
      record(404);
      return send(404, { message: "Unknown interaction", code: 10062 });
    }
    if (i.acknowledged !== null) {
      record(400);
      return send(400, { message: "Interaction has already been acknowledged.", code: 40060 });
    }
    i.acknowledged = type;
    record(204);
    if (type === 6 || type === 7) i.originalId = i.messageId;
    if (type === 4) {
      const data = (body?.data as Record<string, unknown>) ?? {};
      i.originalId = this.create(i.channelId, this.bot, data, [], { webhook_id: this.applicationId, ephemeral: (Number(data.flags ?? 0) & EPHEMERAL) !== 0 }).id;
    }
    send(204, null);
  }

  private webhook(method: string, p: string[], body: Record<string, unknown> | null, files: Call["files"], send: (s: number, b: unknown) => void): void {
    const [, appId, token, messages, target] = p;
    const i = [...this.interactions.values()].find((x) => x.token === token);
    if (appId !== this.applicationId || !i) return send(404, { message: "Unknown Webhook", code: 10015 });
    if (Date.now() - i.createdAt > TOKEN_LIFETIME_MS) return send(401, { message: "Invalid Webhook Token", code: 50027 });
    if (i.acknowledged === null) return send(404, { message: "Unknown Webhook", code: 10015 });
    if (method === "POST" && !messages) {
      const ephemeral = (Number(body?.flags ?? 0) & EPHEMERAL) !== 0;
      return send(200, this.wire(this.create(i.channelId, this.bot, body, files, { webhook_id: this.applicationId, ephemeral })));
    }
    if (method === "PATCH" && messages === "messages") {
      const id = target === "@original" ? i.originalId : target;
      const m = id ? this.messages.get(id) : undefined;
      if (!m || m.channel_id !== i.channelId) return send(404, { message: "Unknown Message", code: 10008 });
      return send(200, this.wire(this.edit(m, body, files)));
    }
    send(404, { message: "404: Not Found", code: 0 });
  }

  private serveAttachment(url: URL, res: ServerResponse): void {
    const [, , , id] = url.pathname.split("/");
    const blob = this.blobs.get(id);
    // Discord's CDN refuses attachment URLs whose signature was dropped.
    if (!blob || url.searchParams.get("hm") !== blob.signature) return void res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": blob.type, ...(blob.chunked ? {} : { "Content-Length": String(blob.bytes.length) }) });
    // In pieces, as a stream would come.
    for (let i = 0; i < blob.bytes.length; i += 4096) res.write(blob.bytes.subarray(i, i + 4096));
    res.end();
  }
}
