import { FOLLOW_UP_ACTIONS, type Inbound, type ThreadRef } from "../types.js";
import { ACTION, followUpActionId } from "./ids.js";
import type { BlockActions, MessageEvent } from "./payloads.js";

// Pure mapping from Slack payloads to ThreadML's Inbound shape; the I/O lives in index.ts.

export const PLATFORM = "slack";

/** Message subtypes that are a person's post; edits, deletions, joins and bot posts are not. */
const USER_SUBTYPES = new Set(["file_share", "thread_broadcast"]);

/** The id one post has whether it arrives as `app_mention` or as `message`. */
export const postKey = (channel: string, ts: string) => `${channel}:${ts}`;

export const threadRef = (channel: string, thread: string): ThreadRef => ({ platform: PLATFORM, channel, thread });

/** A user's post worth reading, or null for bot posts, edits, deletions and other noise. */
export function isUserPost(event: MessageEvent): event is MessageEvent & { user: string } {
  if (!event.user || event.bot_id) return false;
  return !event.subtype || USER_SUBTYPES.has(event.subtype);
}

export function mentionsBot(text: string, botUserId: string | null | undefined): boolean {
  return !!botUserId && text.includes(`<@${botUserId}>`);
}

/**
 * Slack's mrkdwn source as plain text: the bot's own mention removed, links and other mentions
 * written out, and the three escaped characters restored (in that order, so "&amp;lt;" stays "&lt;").
 */
export function plainText(text: string, botUserId: string | null | undefined): string {
  let out = botUserId ? text.split(`<@${botUserId}>`).join(" ") : text;
  out = out.replace(/<([^<>]+)>/g, (_m, inner: string) => {
    const [target, label] = inner.split("|", 2);
    if (target.startsWith("@") || target.startsWith("#")) return label ? `${target[0]}${label}` : target;
    if (target.startsWith("!")) return label ?? `@${target.slice(1)}`;
    if (target.startsWith("mailto:")) return label ?? target.slice(7);
    return target;
  });
  out = out.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  return out.replace(/[ \t]+/g, " ").replace(/ *\n */g, "\n").trim();
}

/** The thread a post belongs to: its thread root, or the post itself when it starts one. */
export const threadOfPost = (event: MessageEvent): ThreadRef => threadRef(event.channel, event.thread_ts ?? event.ts);

export type ClickIntent =
  | { kind: "forward"; action: Extract<Inbound, { kind: "action" }>["action"]; value: string }
  | { kind: "revise" }
  | { kind: "unknown" };

/** What one of our buttons or menus means. */
export function clickIntent(action: BlockActions["actions"][number]): ClickIntent {
  const id = action.action_id;
  const value = action.selected_option?.value ?? action.value ?? "";
  if (id === ACTION.answer || id.startsWith(`${ACTION.answer}.`)) return { kind: "forward", action: "answer", value };
  if (id.startsWith(`${ACTION.approve}.`)) return { kind: "forward", action: "approve", value: value || "best" };
  if (id === ACTION.cancel) return { kind: "forward", action: "cancel", value: "" };
  if (id === ACTION.revise) return { kind: "revise" };
  // The value is whatever the click payload says: only our own follow-ups, on the button that names them, count.
  if (id.startsWith(`${ACTION.followup}.`)) {
    const followUp = FOLLOW_UP_ACTIONS.find((a) => a === value);
    return followUp && id === followUpActionId(followUp) ? { kind: "forward", action: "followup", value: followUp } : { kind: "unknown" };
  }
  return { kind: "unknown" };
}

/** Where a click happened: the message clicked and the thread it sits in. */
export function clickPlace(body: BlockActions): { thread: ThreadRef; messageTs: string } | null {
  const channel = body.container?.channel_id ?? body.channel?.id;
  const messageTs = body.container?.message_ts ?? body.message?.ts;
  if (!channel || !messageTs) return null;
  const thread = body.message?.thread_ts ?? body.container?.thread_ts ?? messageTs;
  return { thread: threadRef(channel, thread), messageTs };
}
