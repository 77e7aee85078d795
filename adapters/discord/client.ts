import { Client, Events, GatewayIntentBits, OAuth2Scopes, PermissionFlagsBits, PermissionsBitField } from "discord.js";
import type { Logger } from "../../src/logger.js";

// The discord.js client. It asks for the privileged Message Content intent so that plain replies in a thread
// can be read; when the application has not been granted it, Discord closes the gateway (4014) and ThreadML
// connects again without it, working through mentions, buttons and modals instead.

export interface Connection {
  client: Client;
  /** Whether thread replies that do not mention the bot arrive with their text and files. */
  readsReplies: boolean;
}

export interface ConnectOptions {
  token: string;
  /** REST base (discord.js `rest.api`); the gateway URL then comes from its GET /gateway/bot. */
  api?: string;
  logger: Logger;
  /** Attaches event handlers before login, so no early event is missed. */
  setup(client: Client): void;
}

const BASE_INTENTS = [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages];

/** What the bot does in a channel: read it, start a thread from a mention, post cards and files there. */
export const PERMISSIONS = new PermissionsBitField([
  PermissionFlagsBits.ViewChannel,
  PermissionFlagsBits.SendMessages,
  PermissionFlagsBits.CreatePublicThreads,
  PermissionFlagsBits.SendMessagesInThreads,
  PermissionFlagsBits.EmbedLinks,
  PermissionFlagsBits.AttachFiles,
  PermissionFlagsBits.ReadMessageHistory,
]);

/** The link that adds the bot to a server with exactly those permissions. */
export const inviteUrl = (applicationId: string): string =>
  `https://discord.com/oauth2/authorize?client_id=${applicationId}&scope=${OAuth2Scopes.Bot}&permissions=${PERMISSIONS.bitfield}`;

export async function connect(options: ConnectOptions): Promise<Connection> {
  try {
    return { client: await login(options, [...BASE_INTENTS, GatewayIntentBits.MessageContent]), readsReplies: true };
  } catch (err) {
    if (!/disallowed intents/i.test((err as Error).message)) throw explain(err);
    options.logger.warn(
      "Discord refused the Message Content intent (enable it under Bot → Privileged Gateway Intents); " +
        "connecting without it: replies must mention the bot, buttons and modals work as usual",
    );
    return { client: await login(options, BASE_INTENTS).catch((e) => Promise.reject(explain(e))), readsReplies: false };
  }
}

async function login(options: ConnectOptions, intents: GatewayIntentBits[]): Promise<Client> {
  const client = new Client({
    intents,
    ...(options.api ? { rest: { api: options.api } } : {}),
    // Nothing the bot posts pings anyone unless a message asks for it explicitly.
    allowedMentions: { parse: [] },
  });
  options.setup(client);
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(options.token);
  await ready;
  return client;
}

function explain(err: unknown): Error {
  const e = err as Error & { code?: string };
  if (e.code === "TokenInvalid") return new Error("Discord rejected the bot token (DISCORD_TOKEN): check it in the Developer Portal under Bot → Token.");
  return new Error(`Could not connect to Discord: ${e.message}`, { cause: err });
}
