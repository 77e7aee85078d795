import { SnowflakeUtil, type MessageComponentInteraction, type ModalSubmitInteraction } from "discord.js";

// An interaction's token lets the bot answer through the interaction (follow-ups, edits of the clicked card,
// ephemeral notes) for 15 minutes. After that only channel messages work, so each token is tracked with a
// conservative expiry: from the earlier of Discord's creation time and our receipt (clock skew cannot make it
// look younger), minus a safety margin.

export type Replyable = MessageComponentInteraction | ModalSubmitInteraction;

export const TOKEN_LIFETIME_MS = 15 * 60_000;
const SAFETY_MARGIN_MS = 60_000;

export interface Tracked {
  interaction: Replyable;
  thread: string;
  user: string;
  /** The message the clicked component sits on (the interaction's @original). */
  messageId: string | null;
  expiresAt: number;
}

export class InteractionTokens {
  private readonly byThread = new Map<string, Tracked[]>();

  constructor(private readonly now: () => number = Date.now) {}

  remember(interaction: Replyable, thread: string, receivedAt = this.now()): Tracked {
    const created = Math.min(Number(SnowflakeUtil.timestampFrom(interaction.id)), receivedAt);
    const tracked: Tracked = {
      interaction,
      thread,
      user: interaction.user.id,
      messageId: interaction.message?.id ?? null,
      expiresAt: created + TOKEN_LIFETIME_MS - SAFETY_MARGIN_MS,
    };
    const list = this.prune(thread);
    list.push(tracked);
    this.byThread.set(thread, list);
    return tracked;
  }

  live(t: Tracked | null | undefined): t is Tracked {
    return !!t && this.now() < t.expiresAt;
  }

  /** The newest live interaction in the thread: posts go out as its follow-ups. */
  latest(thread: string): Tracked | null {
    return this.prune(thread).at(-1) ?? null;
  }

  /** The newest live interaction of `user` in the thread: where an ephemeral note to them goes. */
  ofUser(thread: string, user: string): Tracked | null {
    return this.prune(thread).findLast((t) => t.user === user) ?? null;
  }

  /** The newest live interaction whose component sits on `messageId`: it can edit that message as @original. */
  onMessage(thread: string, messageId: string): Tracked | null {
    return this.prune(thread).findLast((t) => t.messageId === messageId) ?? null;
  }

  /** Stops using an interaction for the thread's posts (e.g. it came from someone who may not decide). */
  forget(t: Tracked): void {
    const list = this.byThread.get(t.thread);
    if (list) this.byThread.set(t.thread, list.filter((x) => x !== t));
  }

  private prune(thread: string): Tracked[] {
    const list = (this.byThread.get(thread) ?? []).filter((t) => this.live(t));
    if (list.length) this.byThread.set(thread, list);
    else this.byThread.delete(thread);
    return list;
  }
}

/** Discord's answers when an interaction token is expired or unknown: fall back to channel messages. */
export const isTokenError = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 50027 || code === 10015 || code === 10062;
};
