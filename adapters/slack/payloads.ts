import { z } from "zod";

// The parts of Slack's payloads the adapter reads, validated before use. Objects are loose: Slack adds
// fields freely, and only the ones named here matter.

export const SlackFile = z.looseObject({
  id: z.string(),
  name: z.string().nullish(),
  title: z.string().nullish(),
  filetype: z.string().nullish(),
  mimetype: z.string().nullish(),
  size: z.number().nullish(),
  /** "tombstone" (deleted) and "hidden_by_limit" (free plans) carry no content. */
  mode: z.string().nullish(),
  url_private_download: z.string().nullish(),
  url_private: z.string().nullish(),
});
export type SlackFile = z.infer<typeof SlackFile>;

/** `message` and `app_mention` events: a user's post in a channel or thread. */
export const MessageEvent = z.looseObject({
  type: z.enum(["message", "app_mention"]),
  subtype: z.string().nullish(),
  channel: z.string(),
  user: z.string().nullish(),
  bot_id: z.string().nullish(),
  text: z.string().nullish(),
  ts: z.string(),
  thread_ts: z.string().nullish(),
  files: z.array(SlackFile).nullish(),
});
export type MessageEvent = z.infer<typeof MessageEvent>;

export const ReactionAddedEvent = z.looseObject({
  type: z.literal("reaction_added"),
  user: z.string(),
  reaction: z.string(),
  item: z.looseObject({ type: z.string(), channel: z.string().optional(), ts: z.string().optional() }),
  event_ts: z.string().optional(),
});
export type ReactionAddedEvent = z.infer<typeof ReactionAddedEvent>;

/** The Events API envelope around an event (HTTP body, or a Socket Mode envelope's payload). */
export const EventEnvelope = z.looseObject({
  event_id: z.string().optional(),
  team_id: z.string().optional(),
});

/** A click on one of our buttons or a pick in one of our menus. */
export const BlockActions = z.looseObject({
  type: z.literal("block_actions"),
  user: z.looseObject({ id: z.string() }),
  trigger_id: z.string().optional(),
  container: z.looseObject({ channel_id: z.string().optional(), message_ts: z.string().optional(), thread_ts: z.string().nullish() }).optional(),
  channel: z.looseObject({ id: z.string() }).optional(),
  message: z.looseObject({ ts: z.string(), thread_ts: z.string().nullish() }).optional(),
  actions: z
    .array(
      z.looseObject({
        action_id: z.string(),
        action_ts: z.string().optional(),
        value: z.string().nullish(),
        selected_option: z.looseObject({ value: z.string() }).nullish(),
      }),
    )
    .min(1),
});
export type BlockActions = z.infer<typeof BlockActions>;

/** What the revise modal carries from the click to its submission. */
export const ReviseMetadata = z.object({ channel: z.string(), thread: z.string(), message: z.string() });
export type ReviseMetadata = z.infer<typeof ReviseMetadata>;

export const ViewSubmission = z.looseObject({
  type: z.literal("view_submission"),
  user: z.looseObject({ id: z.string() }),
  view: z.looseObject({
    id: z.string(),
    callback_id: z.string(),
    private_metadata: z.string(),
    state: z.looseObject({ values: z.record(z.string(), z.record(z.string(), z.looseObject({ value: z.string().nullish() }))) }),
  }),
});
export type ViewSubmission = z.infer<typeof ViewSubmission>;

/** auth.test's answer: who the bot is. */
export const AuthTest = z.looseObject({ user_id: z.string(), bot_id: z.string().optional(), team: z.string().optional(), team_id: z.string().optional() });
