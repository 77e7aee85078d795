import { MessageFlags, type APIActionRowComponent, type APIComponentInMessageActionRow, type APIEmbed, type Message, type MessageCreateOptions, type SendableChannels } from "discord.js";
import type { MessageRef } from "../types.js";
import { EditQueue } from "./edits.js";
import { InteractionTokens, isTokenError, type Replyable, type Tracked } from "./interactions.js";
import { BoundedMap } from "../bounded.js";
import type { DiscordMessage } from "./render.js";

// Where a post or an edit goes: through the thread's latest interaction while its token lives (follow-ups,
// edits of the clicked card), else through the channel. A token Discord refuses early falls back the same way.

export type Edit = { content?: string; embeds?: APIEmbed[]; components: Array<APIActionRowComponent<APIComponentInMessageActionRow>> };

export class Delivery {
  readonly tokens: InteractionTokens;
  private readonly edits = new EditQueue();
  /** Messages sent as an interaction's follow-up: that interaction can edit them while its token lives. */
  private readonly origins = new BoundedMap<string, Tracked>(2_000);

  constructor(
    private readonly channel: (id: string) => Promise<SendableChannels>,
    now?: () => number,
  ) {
    this.tokens = new InteractionTokens(now);
  }

  /** Remembers an acknowledged click or form: the thread's replies go through it for a while. */
  remember(interaction: Replyable, thread: string): Tracked {
    return this.tokens.remember(interaction, thread);
  }

  async send(thread: string, payload: DiscordMessage): Promise<Message> {
    const options = { ...payload, allowedMentions: { parse: [] } };
    const live = this.tokens.latest(thread);
    if (live) {
      try {
        const sent = await live.interaction.followUp(options);
        this.origins.set(sent.id, live);
        return sent;
      } catch (err) {
        if (!isTokenError(err)) throw err;
        this.tokens.forget(live);
      }
    }
    return (await this.channel(thread)).send(options as MessageCreateOptions);
  }

  /** Queues an edit of one message: one request at a time, only the newest waiting edit kept. */
  edit(ref: MessageRef, edit: Edit): Promise<void> {
    return this.edits.edit(ref.id, () => this.editNow(ref, edit));
  }

  private async editNow(ref: MessageRef, edit: Edit): Promise<void> {
    const options = { ...edit, allowedMentions: { parse: [] } };
    const thread = ref.thread.thread;
    const clicked = this.tokens.onMessage(thread, ref.id);
    const origin = this.origins.get(ref.id);
    try {
      if (clicked) return void (await clicked.interaction.editReply(options));
      if (this.tokens.live(origin)) return void (await origin.interaction.webhook.editMessage(ref.id, options));
    } catch (err) {
      if (!isTokenError(err)) throw err;
    }
    await (await this.channel(thread)).messages.edit(ref.id, options);
  }

  /** A note only `user` sees, through their latest click; false when they have no live one. */
  async ephemeral(thread: string, user: string, text: string): Promise<boolean> {
    const tracked = this.tokens.ofUser(thread, user);
    if (!tracked) return false;
    // Their click must not become the thread's reply path: later posts belong to the conversation.
    this.tokens.forget(tracked);
    try {
      await tracked.interaction.followUp({ content: text, flags: MessageFlags.Ephemeral });
      return true;
    } catch (err) {
      if (!isTokenError(err)) throw err;
      return false;
    }
  }

  async idle(): Promise<void> {
    await this.edits.idle();
  }
}
