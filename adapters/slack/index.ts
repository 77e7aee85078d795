import { statSync } from "node:fs";
import { basename } from "node:path";
import type { App, webApi } from "@slack/bolt";
import PQueue from "p-queue";
import { z } from "zod";
import type { Question } from "../../graphs/automl/agents/types.js";
import type { StatusView } from "../../src/conversation/status.js";
import type { AdapterContext } from "../index.js";
import { threadKey, type AdapterHooks, type ChatAdapter, type Inbound, type MessageRef, type Outbound, type ThreadRef } from "../types.js";
import { connectSlack, startError, type SlackConnection, type SlackMode } from "./app.js";
import { BoundedMap, RecentKeys } from "../bounded.js";
import { render, renderQuestion, renderStatus, renderText, reviseModal, type Rendered } from "./blocks.js";
import { EditQueue } from "./edits.js";
import { downloadFile, safeFileName, threadFolder, trustedOrigins } from "./files.js";
import { ACTION_PATTERN, CANCEL_REACTIONS, EVENT_SUBSCRIPTIONS, REVISE_BLOCK, REVISE_INPUT, REVISE_VIEW } from "./ids.js";
import { clickIntent, clickPlace, isUserPost, mentionsBot, plainText, postKey, threadOfPost, threadRef } from "./inbound.js";
import { BlockActions, EventEnvelope, MessageEvent, ReactionAddedEvent, ReviseMetadata, ViewSubmission } from "./payloads.js";

export interface SlackAdapterOptions {
  /** Port of HTTP mode, overriding PORT; 0 picks a free one (tests). */
  port?: number;
  /** Web API retry policy (tests shorten it). */
  retryConfig?: webApi.RetryOptions;
}

const Posted = z.looseObject({ ts: z.string() });

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};
const MEMORY = 5_000;

type Handler = (event: Inbound) => Promise<void>;
type Edit = { ref: MessageRef; content: Rendered };

/**
 * ThreadML in Slack: an @mention starts a conversation in a thread, replies and clicks in that thread
 * continue it, and each outbound kind is a Block Kit message (the status one edited in place).
 * Every event is acknowledged in the connection thread (front.ts) before any of this runs.
 */
export class SlackAdapter implements ChatAdapter {
  readonly platform = "slack";
  private app: App | null = null;
  private receiver: SlackConnection["receiver"] | null = null;
  private handler: Handler | null = null;
  private hooks: AdapterHooks = {};
  private botUserId: string | null = null;
  private connectedMode: SlackMode | null = null;
  private httpPort: number | null = null;
  /** Event ids and `channel:ts` of posts already taken in: retries and double deliveries stop here. */
  private readonly seen = new RecentKeys();
  /** Threads known to hold a conversation (mentioned in, or posted to): attachments there are fetched. */
  private readonly threads = new BoundedMap<string, true>(MEMORY);
  /** Our own messages (`channel:ts`) and their threads, for reactions. */
  private readonly posted = new BoundedMap<string, ThreadRef>(MEMORY * 4);
  /** Per thread: the question message still waiting for an answer. */
  private readonly openQuestion = new BoundedMap<string, { ref: MessageRef; question: Question }>(MEMORY);
  /** Per thread: the status message and what it shows. */
  private readonly status = new BoundedMap<string, { ref: MessageRef; view: StatusView }>(MEMORY);
  /** Messages whose buttons no longer count (answered questions, decided plan cards). */
  private readonly closed = new RecentKeys(MEMORY * 4);
  private readonly chains = new Map<string, Promise<void>>();
  private readonly downloads = new PQueue({ concurrency: 4 });
  private readonly edits = new EditQueue<Edit>((_key, edit) => this.sendEdit(edit));

  constructor(
    readonly ctx: AdapterContext,
    private readonly options: SlackAdapterOptions = {},
  ) {}

  /** Which transport is connected (after start). */
  get mode(): SlackMode | null {
    return this.connectedMode;
  }

  /** The HTTP port events are received on (HTTP mode, after start). */
  get port(): number | null {
    return this.httpPort;
  }

  async start(handler: Handler, hooks: AdapterHooks = {}): Promise<void> {
    this.hooks = hooks;
    const slack = this.ctx.config.slack;
    const port = this.options.port ?? slack.port ?? 3000;
    const conn = await connectSlack(slack, this.ctx.logger, { port, retryConfig: this.options.retryConfig });
    this.handler = handler;
    this.botUserId = conn.botUserId;
    this.app = conn.app;
    this.receiver = conn.receiver;
    this.listen(conn.app);
    try {
      // The app's receiver is the FrontReceiver, whose start() reports the HTTP port.
      ({ port: this.httpPort } = (await conn.app.start()) as unknown as Awaited<ReturnType<SlackConnection["receiver"]["start"]>>);
    } catch (err) {
      this.handler = null;
      throw startError(conn.mode, port, err);
    }
    this.connectedMode = conn.mode;
    this.ctx.logger.info({ mode: conn.mode, team: conn.team, bot: conn.botUserId, port: this.httpPort ?? undefined }, "connected to Slack");
  }

  /** Stops receiving events; posting still works, so conversation steps in flight can finish. */
  async stop(): Promise<void> {
    const receiver = this.receiver;
    this.receiver = null;
    this.handler = null;
    try {
      await receiver?.stop();
    } catch (err) {
      this.ctx.logger.warn({ err }, "stopping the Slack receiver failed");
    }
    await Promise.all([...this.chains.values()]);
    await this.downloads.onIdle();
  }

  private get client(): webApi.WebClient {
    if (!this.app) throw new Error("The Slack adapter is not started.");
    return this.app.client;
  }

  // ---- inbound --------------------------------------------------------------------------------------

  private listen(app: App): void {
    const events: Record<keyof typeof EVENT_SUBSCRIPTIONS, (event: unknown, body: unknown, retryNum?: number) => void> = {
      app_mention: (event, body, retryNum) => this.onPost(event, body, retryNum),
      message: (event, body, retryNum) => this.onPost(event, body, retryNum),
      reaction_added: (event, body) => this.onReaction(event, body),
    };
    for (const [name, on] of Object.entries(events)) app.event(name, async ({ event, body, context }) => on(event, body, context.retryNum));
    app.action(ACTION_PATTERN, async ({ ack, body }) => {
      await ack();
      this.onClick(body);
    });
    app.view(REVISE_VIEW, async ({ ack, body }) => {
      await ack();
      this.onRevise(body);
    });
    app.error(async (err) => this.ctx.logger.error({ err }, "Slack event handling failed"));
  }

  /** Hands an event to the conversation service (which queues the work and returns). */
  private async deliver(event: Inbound): Promise<void> {
    try {
      await this.handler?.(event);
    } catch (err) {
      this.ctx.logger.error({ err, eventId: event.eventId }, "handling a Slack event failed");
    }
  }

  /** Runs one thread's inbound work in arrival order (a reply with a file must not be overtaken by the next one). */
  private serial(key: string, task: () => Promise<void>): void {
    const next = (this.chains.get(key) ?? Promise.resolve())
      .then(task)
      .catch((err) => this.ctx.logger.error({ err }, "Slack inbound step failed"))
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    this.chains.set(key, next);
  }

  private onPost(raw: unknown, body: unknown, retryNum: number | undefined): void {
    const parsed = MessageEvent.safeParse(raw);
    if (!parsed.success || !isUserPost(parsed.data)) return;
    const event = parsed.data;
    const envelope = EventEnvelope.safeParse(body);
    const eventId = envelope.success ? envelope.data.event_id : undefined;
    const key = postKey(event.channel, event.ts);
    // One post arrives as `app_mention` and as `message`, and Slack retries carry the first event id.
    if (!this.seen.firstTime(key, ...(eventId ? [`event:${eventId}`] : []))) {
      this.ctx.logger.debug({ key, eventId, retryNum }, "duplicate Slack delivery dropped");
      return;
    }
    const text = event.text ?? "";
    const mention = event.type === "app_mention" || mentionsBot(text, this.botUserId);
    // Channel chatter outside threads is never ours; thread replies may be (the service knows which).
    if (!mention && !event.thread_ts) return;
    const thread = threadOfPost(event);
    const tkey = threadKey(thread);
    if (mention) this.threads.set(tkey, true);
    // Attachments are fetched only in threads known to hold a conversation, not for every reply in the
    // channel; after a restart the service knows the threads this process has not seen yet.
    const known = this.threads.has(tkey);
    const user = event.user;
    this.serial(tkey, async () => {
      const ours = known || (!!event.files?.length && (await this.hooks.knows?.(thread).catch(() => false)) === true);
      if (ours) this.threads.set(tkey, true);
      const files = ours ? await this.download(thread, event.files ?? []) : [];
      await this.deliver({ kind: "message", eventId: key, thread, user, text: plainText(text, this.botUserId), files, mention });
    });
  }

  private onReaction(raw: unknown, body: unknown): void {
    const parsed = ReactionAddedEvent.safeParse(raw);
    if (!parsed.success || !CANCEL_REACTIONS.has(parsed.data.reaction)) return;
    const { item, user } = parsed.data;
    if (item.type !== "message" || !item.channel || !item.ts) return;
    const thread = this.posted.get(postKey(item.channel, item.ts));
    if (!thread) return;
    const envelope = EventEnvelope.safeParse(body);
    const eventId = `reaction:${envelope.success && envelope.data.event_id ? envelope.data.event_id : `${item.channel}:${item.ts}:${user}:${parsed.data.event_ts}`}`;
    if (!this.seen.firstTime(eventId)) return;
    void this.deliver({ kind: "action", eventId, thread, user, action: "cancel", value: "", message: { thread, id: item.ts } });
  }

  private onClick(raw: unknown): void {
    const parsed = BlockActions.safeParse(raw);
    if (!parsed.success) return this.ctx.logger.warn({ issues: parsed.error.issues }, "unreadable Slack button click");
    const body = parsed.data;
    const place = clickPlace(body);
    const action = body.actions[0];
    if (!place) return;
    const { thread, messageTs } = place;
    const user = body.user.id;
    const eventId = `action:${postKey(thread.channel, messageTs)}:${action.action_id}:${action.action_ts ?? body.trigger_id ?? ""}`;
    if (!this.seen.firstTime(eventId)) return;
    if (this.closed.has(postKey(thread.channel, messageTs))) {
      void this.notify(thread, user, "This has already been answered or decided; the conversation continues in the thread.");
      return;
    }
    this.threads.set(threadKey(thread), true);
    const intent = clickIntent(action);
    if (intent.kind === "unknown") return;
    if (intent.kind === "revise") {
      // A trigger_id is good for one modal within 3 s: open it before anything slow.
      if (!body.trigger_id) return;
      const view = reviseModal({ channel: thread.channel, thread: thread.thread, message: messageTs });
      void this.client.views.open({ trigger_id: body.trigger_id, view }).catch((err) => this.ctx.logger.warn({ err }, "could not open the revise dialog"));
      return;
    }
    void this.deliver({ kind: "action", eventId, thread, user, action: intent.action, value: intent.value, message: { thread, id: messageTs } });
  }

  private onRevise(raw: unknown): void {
    const parsed = ViewSubmission.safeParse(raw);
    if (!parsed.success) return this.ctx.logger.warn({ issues: parsed.error.issues }, "unreadable Slack dialog submission");
    const { view, user } = parsed.data;
    let meta: ReviseMetadata;
    try {
      meta = ReviseMetadata.parse(JSON.parse(view.private_metadata));
    } catch (err) {
      return this.ctx.logger.warn({ err }, "revise dialog without its thread");
    }
    const feedback = view.state.values[REVISE_BLOCK]?.[REVISE_INPUT]?.value?.trim() ?? "";
    const eventId = `view:${view.id}`;
    if (!feedback || !this.seen.firstTime(eventId)) return;
    const thread = threadRef(meta.channel, meta.thread);
    void this.deliver({ kind: "action", eventId, thread, user: user.id, action: "revise", value: feedback, message: { thread, id: meta.message } });
  }

  /** Downloads a post's attachments; the ones that cannot be used are explained in the thread. */
  private async download(thread: ThreadRef, files: MessageEvent["files"] & {}): Promise<string[]> {
    if (!files.length) return [];
    const options = {
      token: this.ctx.config.slack.botToken!,
      dir: threadFolder(this.ctx.uploadsDir, thread),
      maxBytes: this.ctx.config.limits.maxUploadMb * 1048576,
      trusted: trustedOrigins(this.ctx.config.slack.apiUrl),
    };
    const outcomes = await Promise.all(files.map((f) => this.downloads.add(() => downloadFile(f, options))));
    const refused = outcomes.filter((o) => !o.ok);
    if (refused.length) {
      const lines = refused.map((o) => `• I can't use “${o.name}”: ${o.ok ? "" : o.reason}.`);
      await this.postRendered(thread, renderText(lines.join("\n"))).catch((err) => this.ctx.logger.warn({ err }, "could not explain a refused file"));
    }
    return outcomes.flatMap((o) => (o.ok ? [o.path] : []));
  }

  // ---- outbound -------------------------------------------------------------------------------------

  private async postRendered(thread: ThreadRef, content: Rendered): Promise<string> {
    const res = await this.client.chat.postMessage({ channel: thread.channel, thread_ts: thread.thread, text: content.text, blocks: content.blocks, unfurl_links: false, unfurl_media: false });
    return Posted.parse(res).ts;
  }

  async post(thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    const tkey = threadKey(thread);
    this.threads.set(tkey, true);
    // The conversation moved on: the question before this message is answered.
    const open = this.openQuestion.get(tkey);
    if (open) {
      this.openQuestion.delete(tkey);
      this.closed.firstTime(postKey(open.ref.thread.channel, open.ref.id));
      void this.edit(open.ref, renderQuestion(open.question, true)).catch((err) => this.ctx.logger.warn({ err }, "could not close the answered question"));
    }
    const ts = await this.postRendered(thread, render(message));
    const ref: MessageRef = { thread, id: ts };
    this.posted.set(postKey(thread.channel, ts), thread);
    if (message.kind === "question") this.openQuestion.set(tkey, { ref, question: message.question });
    if (message.kind === "status") this.status.set(tkey, { ref, view: message.status });
    if (message.kind === "report") {
      const status = this.status.get(tkey);
      if (status) await this.edit(status.ref, renderStatus(status.view, true)).catch((err) => this.ctx.logger.warn({ err }, "could not close the status message"));
      const { plots, bundle } = message.report.artifacts;
      // Plots that are gone are left out quietly (the report says how many); the bundle is the thing to keep.
      await this.upload(thread, plots.filter(isFile).map((p) => ({ path: p, name: basename(p) })), "the plots");
      if (bundle) await this.upload(thread, [{ path: bundle, name: basename(bundle) }], "the bundle");
    }
    if (message.kind === "file") await this.upload(thread, [{ path: message.path, name: message.name }], message.name);
    return ref;
  }

  async update(ref: MessageRef, message: Outbound): Promise<void> {
    if (message.kind === "status") this.status.set(threadKey(ref.thread), { ref, view: message.status });
    if (message.kind === "plans" && message.decided) this.closed.firstTime(postKey(ref.thread.channel, ref.id));
    await this.edit(ref, render(message));
  }

  /** Edits of one message are serialized and coalesced (see EditQueue). */
  private edit(ref: MessageRef, content: Rendered): Promise<void> {
    return this.edits.edit(postKey(ref.thread.channel, ref.id), { ref, content });
  }

  private async sendEdit({ ref, content }: Edit): Promise<void> {
    await this.client.chat.update({ channel: ref.thread.channel, ts: ref.id, text: content.text, blocks: content.blocks });
  }

  async notify(thread: ThreadRef, user: string, text: string): Promise<void> {
    await this.client.chat.postEphemeral({ channel: thread.channel, user, thread_ts: thread.thread, text, blocks: renderText(text).blocks });
  }

  /**
   * Files go to the thread the way files.uploadV2 does it (upload URL, upload, complete); `what` names them
   * when they cannot be attached.
   */
  private async upload(thread: ThreadRef, files: Array<{ path: string; name: string }>, what: string): Promise<void> {
    if (!files.length) return;
    const missing = files.filter((f) => !isFile(f.path));
    const present = files.filter((f) => isFile(f.path));
    try {
      if (missing.length) throw new Error(`${missing.map((f) => f.name).join(", ")} ${missing.length === 1 ? "is" : "are"} missing`);
      await this.client.filesUploadV2({
        channel_id: thread.channel,
        thread_ts: thread.thread,
        // The name shown is made safe: it can come from a user's file.
        file_uploads: present.map((f) => ({ file: f.path, filename: safeFileName(f.name), title: safeFileName(f.name) })),
      });
    } catch (err) {
      this.ctx.logger.warn({ err, what }, "could not upload files to Slack");
      const where = present.length ? `; ${present.length === 1 ? "it is" : "they are"} on the ThreadML host: ${present.map((f) => f.path).join(", ")}` : "";
      await this.postRendered(thread, renderText(`I couldn't attach ${what} (${(err as Error).message})${where}`)).catch(() => {});
    }
  }
}
