import { join } from "node:path";
import { Events, MessageFlags, ThreadAutoArchiveDuration, type Client, type Interaction, type Message, type SendableChannels } from "discord.js";
import type { AdapterContext } from "../index.js";
import type { ChatAdapter, Inbound, MessageRef, Outbound, ThreadRef } from "../types.js";
import { STALE, toAction } from "./actions.js";
import { checkAttachment, download, type Attachment } from "./attachments.js";
import { Cards } from "./cards.js";
import { connect, inviteUrl } from "./client.js";
import { Delivery } from "./delivery.js";
import { ids, parseCustomId } from "./ids.js";
import { interactionFields, messageFields, routeMessage, stripMention, threadName } from "./inbound.js";
import type { Replyable } from "./interactions.js";
import { BoundedMap } from "../bounded.js";
import { render, renderModal } from "./render.js";

// Discord as a chat platform: a mention in a channel starts a thread, the conversation lives in it, questions
// and plans are cards with buttons, progress is one message edited in place, the report is an embed with files.

export interface DiscordAdapterOptions {
  /** Clock for interaction-token expiry (tests). */
  now?: () => number;
}

const NO_REPLIES_HINT =
  "I can't read replies here unless they mention me (this bot runs without Discord's Message Content intent). " +
  "Use the buttons, or mention me in your reply — attachments included.";

export class DiscordAdapter implements ChatAdapter {
  readonly platform = "discord";
  private client: Client | null = null;
  private handler: ((event: Inbound) => Promise<void>) | null = null;
  private readsReplies = true;
  private readonly delivery: Delivery;
  private readonly cards = new Cards();
  private readonly seen = new BoundedMap<string, true>(10_000);
  /** Thread id → parent channel id, so every event of a thread maps to the same ThreadRef. */
  private readonly parents = new BoundedMap<string, string>(10_000);
  /** Threads with a ThreadML conversation that the bot did not create (it knows its own by their owner). */
  private readonly known = new BoundedMap<string, true>(10_000);
  private readonly hinted = new BoundedMap<string, true>(10_000);
  /** Posts in flight per thread: a click can arrive before Discord's answer to the post of its card. */
  private readonly posting = new Map<string, Set<Promise<MessageRef>>>();
  /** Inbound events of one thread reach the handler in arrival order, downloads included. */
  private readonly inbound = new Map<string, Promise<void>>();

  constructor(
    readonly ctx: AdapterContext,
    options: DiscordAdapterOptions = {},
  ) {
    this.delivery = new Delivery((id) => this.channel(id), options.now);
  }

  /** Whether the Message Content intent was granted (known after start). */
  get readsThreadReplies(): boolean {
    return this.readsReplies;
  }

  async start(handler: (event: Inbound) => Promise<void>): Promise<void> {
    const token = this.ctx.config.discord.token;
    if (!token) throw new Error("DISCORD_TOKEN is not set.");
    this.handler = handler;
    const log = (what: string) => (err: unknown) => this.ctx.logger.error({ err }, what);
    const { client, readsReplies } = await connect({
      token,
      api: this.ctx.config.discord.apiUrl,
      logger: this.ctx.logger,
      setup: (c) => {
        c.on(Events.MessageCreate, (m) => void this.onMessage(c, m).catch(log("could not handle a Discord message")));
        c.on(Events.InteractionCreate, (i) => void this.onInteraction(i).catch(log("could not handle a Discord interaction")));
        c.on(Events.Error, log("Discord client error"));
        c.on(Events.ShardError, (err) => this.ctx.logger.warn({ err }, "Discord gateway error"));
      },
    });
    this.client = client;
    this.readsReplies = readsReplies;
    const invite = client.application ? inviteUrl(client.application.id) : undefined;
    this.ctx.logger.info({ user: client.user?.tag, readsReplies, invite }, "connected to Discord");
  }

  async stop(): Promise<void> {
    await this.delivery.idle();
    await this.client?.destroy();
    this.client = null;
  }

  // ---- outbound ----

  async post(thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    const posting = this.postNow(thread, message);
    const inFlight = this.posting.get(thread.thread) ?? new Set();
    inFlight.add(posting);
    this.posting.set(thread.thread, inFlight);
    try {
      return await posting;
    } finally {
      inFlight.delete(posting);
      if (!inFlight.size && this.posting.get(thread.thread) === inFlight) this.posting.delete(thread.thread);
    }
  }

  private async postNow(thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    // A new post means the thread's card was answered: its buttons go, so nobody clicks a stale choice.
    const answered = this.cards.retire(thread.thread);
    if (answered)
      void this.delivery.edit({ thread, id: answered.id }, { components: [] }).catch((err) => this.ctx.logger.warn({ err }, "could not retire a Discord card"));
    const ref = await this.sendAll(thread, message);
    if (message.kind === "question" || message.kind === "plans") this.cards.set(thread.thread, { id: ref.id, message });
    return ref;
  }

  async update(ref: MessageRef, message: Outbound): Promise<void> {
    const card = this.cards.get(ref.thread.thread);
    if (message.kind === "plans" && message.decided) this.cards.decided(ref.thread.thread, ref.id);
    else if (card?.id === ref.id && (message.kind === "question" || message.kind === "plans")) card.message = message;
    const [payload] = render(message, { readsReplies: this.readsReplies });
    await this.delivery.edit(ref, payload);
  }

  async notify(thread: ThreadRef, user: string, text: string): Promise<void> {
    if (await this.delivery.ephemeral(thread.thread, user, text)) return;
    const channel = await this.channel(thread.thread);
    await channel.send({ content: `<@${user}> ${text}`, allowedMentions: { users: [user] } });
  }

  /** The adapter's own notes (refused files, how to reply): they leave the thread's card as it is. */
  private async note(thread: ThreadRef, text: string): Promise<void> {
    await this.sendAll(thread, { kind: "text", text });
  }

  private async sendAll(thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    let sent: Message | null = null;
    for (const payload of render(message, { readsReplies: this.readsReplies })) sent = await this.delivery.send(thread.thread, payload);
    if (!sent) throw new Error("nothing to post");
    return { thread, id: sent.id };
  }

  private async channel(id: string): Promise<SendableChannels> {
    if (!this.client) throw new Error("the Discord adapter is not started");
    const channel = this.client.channels.cache.get(id) ?? (await this.client.channels.fetch(id));
    if (!channel?.isSendable()) throw new Error(`Discord channel ${id} is not one I can post in`);
    return channel;
  }

  private ref(thread: string, parent?: string | null): ThreadRef {
    const known = this.parents.get(thread);
    const channel = known ?? parent ?? thread;
    if (!known) this.parents.set(thread, channel);
    return { platform: this.platform, channel, thread };
  }

  /** Runs `fn` after the thread's earlier inbound work, so events keep their order. */
  private serial(thread: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.inbound.get(thread) ?? Promise.resolve()).then(fn);
    const settled = next.catch(() => {});
    this.inbound.set(thread, settled);
    void settled.then(() => this.inbound.get(thread) === settled && this.inbound.delete(thread));
    return next;
  }

  // ---- inbound: messages ----

  private async onMessage(client: Client, message: Message): Promise<void> {
    const botId = client.user?.id;
    if (!botId || message.author.bot) return;
    const m = messageFields(message, botId);
    const route = routeMessage(m);
    if (route.kind === "ignore" || this.seen.seen(`m:${m.id}`, true)) return;
    if (route.kind === "in-thread" && !route.mention && route.owner !== botId && !this.known.has(route.thread)) return;
    const text = stripMention(m.content, botId);
    if (route.kind === "in-thread" && !route.mention && !text && !m.attachments.length) {
      // Without the Message Content intent a plain reply arrives empty: say once how to reach the bot.
      if (!this.readsReplies && !this.hinted.seen(route.thread, true)) await this.note(this.ref(route.thread, route.parent), NO_REPLIES_HINT);
      return;
    }
    let ref: ThreadRef;
    if (route.kind === "start-thread") {
      const thread = await this.startThread(message, text, m.attachments);
      if (!thread) return;
      ref = this.ref(thread, route.channel);
    } else ref = this.ref(route.thread, route.parent);
    this.known.set(ref.thread, true);
    await this.serial(ref.thread, async () => {
      const files = await this.receiveFiles(ref, m.id, m.attachments);
      const mention = route.kind === "start-thread" || route.mention;
      await this.handler?.({ kind: "message", eventId: `discord:message:${m.id}`, thread: ref, user: m.author.id, text, files, mention });
    });
  }

  /** The conversation's thread, started from the mention; null (after telling the user why) when that fails. */
  private async startThread(message: Message, text: string, attachments: Attachment[]): Promise<string | null> {
    try {
      const thread = await message.startThread({ name: threadName(text, attachments.map((a) => a.name)), autoArchiveDuration: ThreadAutoArchiveDuration.OneDay });
      return thread.id;
    } catch (err) {
      // A thread started from a message has the message's id; a redelivered mention finds it there.
      if ((err as { code?: number }).code === 160004) return message.id;
      this.ctx.logger.warn({ err }, "could not start a Discord thread");
      await message
        .reply({
          content: `I could not start a thread for this request (${(err as Error).message}). I need the Create Public Threads and Send Messages in Threads permissions in this channel.`,
          allowedMentions: { parse: [] },
        })
        .catch((e) => this.ctx.logger.warn({ err: e }, "could not reply in the channel"));
      return null;
    }
  }

  /** Downloads the data files of a message; what is refused or fails is named in the thread, the rest goes on. */
  private async receiveFiles(ref: ThreadRef, messageId: string, attachments: Attachment[]): Promise<string[]> {
    const maxBytes = this.ctx.config.limits.maxUploadMb * 1048576;
    const files: string[] = [];
    const problems: string[] = [];
    for (const a of attachments) {
      const verdict = checkAttachment(a, maxBytes);
      if (!verdict.ok) {
        problems.push(verdict.reason);
        continue;
      }
      try {
        // One folder per message keeps the user's file name, which is how the conversation refers to it.
        files.push(await download(a, join(this.ctx.uploadsDir, ref.thread, messageId), maxBytes));
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (problems.length) await this.note(ref, `I left out ${problems.length === 1 ? "a file" : "some files"}: ${problems.join("; ")}.`);
    return files;
  }

  // ---- inbound: interactions ----

  private async onInteraction(interaction: Interaction): Promise<void> {
    const f = interactionFields(interaction, ids.text);
    if (!f || this.seen.seen(`i:${f.id}`, true)) return;
    const i = interaction as Replyable;
    const control = parseCustomId(f.customId);
    if (!control) return void (await i.reply({ content: "I don't know this control.", flags: MessageFlags.Ephemeral }));
    const thread = f.channelId;

    // A modal must be the first response to the click, so it opens before anything else is awaited; the card
    // is checked again when the modal comes back.
    if (control.kind === "free" || control.kind === "revise") {
      if (!i.isMessageComponent()) return;
      if (this.cards.stale(thread, f.messageId) && !this.posting.has(thread)) return void (await i.reply({ content: STALE, flags: MessageFlags.Ephemeral }));
      const question = control.kind === "free" ? i.message.content.split("\n")[0] : undefined;
      return void (await i.showModal(renderModal(control.kind === "free" ? "answer" : "revise", question)));
    }

    // Acknowledge within Discord's 3 seconds, before any work: the conversation step may take much longer.
    await i.deferUpdate();
    const tracked = this.delivery.remember(i, thread);
    await Promise.allSettled(this.posting.get(thread) ?? []);
    const card = this.cards.get(thread);
    // Stopping a job and a report's follow-ups do not answer a card: they count whichever card is current.
    const cardless = control.kind === "stop" || control.kind === "followup";
    const action = !cardless && this.cards.stale(thread, f.messageId) ? STALE : toAction(control, f, card?.id === f.messageId ? card.message : undefined);
    if (typeof action === "string") {
      this.delivery.tokens.forget(tracked);
      await i.followUp({ content: action, flags: MessageFlags.Ephemeral });
      return;
    }
    // A card this process did not post (it restarted since) becomes the thread's current one.
    if (!card && f.messageId && !cardless) this.cards.set(thread, { id: f.messageId });
    const ref = this.ref(thread, i.channel && "parentId" in i.channel ? i.channel.parentId : null);
    await this.serial(ref.thread, async () => {
      await this.handler?.({
        kind: "action",
        eventId: `discord:interaction:${f.id}`,
        thread: ref,
        user: f.user,
        ...action,
        ...(f.messageId ? { message: { thread: ref, id: f.messageId } } : {}),
      });
    });
  }
}
