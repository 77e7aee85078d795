import { ChannelType, type Interaction, type Message, type ModalSubmitInteraction } from "discord.js";
import { z } from "zod";
import { Attachment } from "./attachments.js";
import { LIMITS, clip } from "./limits.js";

// The fields of Discord messages and interactions the adapter reads, validated before use. discord.js
// objects are projected onto these shapes, so what the adapter relies on is written down in one place.

const Snowflake = z.string().regex(/^\d{1,25}$/, "a Discord id");

export const MessageFields = z.object({
  id: Snowflake,
  channelId: Snowflake,
  guildId: Snowflake.nullable(),
  author: z.object({ id: Snowflake, bot: z.boolean() }),
  /** System notices ("started a thread", pins...) and webhook posts are not people talking. */
  system: z.boolean(),
  webhookId: Snowflake.nullable(),
  content: z.string().max(4000),
  mentionsBot: z.boolean(),
  attachments: z.array(Attachment).max(10),
  /** Where the message was posted: a thread (with its parent channel) or a plain text channel. */
  place: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("thread"), thread: Snowflake, parent: Snowflake.nullable(), owner: Snowflake.nullable() }),
    z.object({ kind: z.literal("channel"), channel: Snowflake }),
    z.object({ kind: z.literal("other") }),
  ]),
});
export type MessageFields = z.infer<typeof MessageFields>;

const THREAD_TYPES = new Set<ChannelType>([ChannelType.PublicThread, ChannelType.PrivateThread, ChannelType.AnnouncementThread]);
const TEXT_CHANNELS = new Set<ChannelType>([ChannelType.GuildText, ChannelType.GuildAnnouncement]);

export function messageFields(message: Message, botId: string): MessageFields {
  const channel = message.channel;
  const place = THREAD_TYPES.has(channel.type)
    ? {
        kind: "thread" as const,
        thread: channel.id,
        parent: "parentId" in channel ? (channel.parentId ?? null) : null,
        owner: "ownerId" in channel ? (channel.ownerId ?? null) : null,
      }
    : TEXT_CHANNELS.has(channel.type)
      ? { kind: "channel" as const, channel: channel.id }
      : { kind: "other" as const };
  return MessageFields.parse({
    id: message.id,
    channelId: message.channelId,
    guildId: message.guildId,
    author: { id: message.author.id, bot: message.author.bot },
    system: message.system,
    webhookId: message.webhookId,
    content: message.content,
    // A direct mention of the bot user; @everyone and role pings do not start conversations.
    mentionsBot: message.mentions.users.has(botId),
    attachments: [...message.attachments.values()].map((a) => ({ id: a.id, name: a.name, size: a.size, url: a.url, contentType: a.contentType })),
    place,
  });
}

export type MessageRoute =
  | { kind: "ignore" }
  /** A mention in a channel: the conversation gets a new thread started from the message. */
  | { kind: "start-thread"; channel: string }
  /** A message in a thread: a mention, or a reply the conversation service may take as an answer. */
  | { kind: "in-thread"; thread: string; parent: string | null; owner: string | null; mention: boolean };

export function routeMessage(m: MessageFields): MessageRoute {
  if (m.author.bot || m.system || m.webhookId) return { kind: "ignore" };
  if (m.place.kind === "thread") return { kind: "in-thread", thread: m.place.thread, parent: m.place.parent, owner: m.place.owner, mention: m.mentionsBot };
  if (m.place.kind === "channel" && m.mentionsBot) return { kind: "start-thread", channel: m.place.channel };
  return { kind: "ignore" };
}

/** The request text without the bot's mention tokens. */
export function stripMention(content: string, botId: string): string {
  return content
    .replace(new RegExp(`<@!?${botId}>`, "g"), " ")
    .replace(/[ \t]+/g, " ")
    .replace(/ *\n */g, "\n")
    .trim();
}

/** A thread name from the request: its first line, else the first file's name. */
export function threadName(text: string, fileNames: string[]): string {
  const first = text.split("\n")[0].trim();
  return clip(first || (fileNames[0] ? `Model for ${fileNames[0]}` : "ThreadML request"), LIMITS.threadName);
}

export const InteractionFields = z.object({
  id: Snowflake,
  user: Snowflake,
  channelId: Snowflake,
  customId: z.string().max(LIMITS.customId),
  messageId: Snowflake.nullable(),
  /** Select-menu values. */
  values: z.array(z.string().max(100)).max(25).default([]),
  /** The modal's text input. */
  text: z.string().max(LIMITS.textInputValue).nullable().default(null),
});
export type InteractionFields = z.infer<typeof InteractionFields>;

/** The fields of a button click, select or modal submit; null for kinds the adapter does not handle. */
export function interactionFields(interaction: Interaction, textInputId: string): InteractionFields | null {
  if (!interaction.isButton() && !interaction.isStringSelectMenu() && !interaction.isModalSubmit()) return null;
  const parsed = InteractionFields.safeParse({
    id: interaction.id,
    user: interaction.user.id,
    channelId: interaction.channelId,
    customId: interaction.customId,
    messageId: interaction.message?.id ?? null,
    values: interaction.isStringSelectMenu() ? interaction.values : [],
    text: interaction.isModalSubmit() ? modalText(interaction, textInputId) : null,
  });
  return parsed.success ? parsed.data : null;
}

function modalText(interaction: ModalSubmitInteraction, id: string): string | null {
  try {
    return interaction.fields.getTextInputValue(id);
  } catch {
    return null;
  }
}
