import type { FollowUpAction } from "../types.js";

// Identifiers shared by what we render (blocks.ts) and what we read back (inbound.ts).

export const ACTION = {
  /** Prefix of answer buttons (`threadml.answer.0`, …) and the id of the answer menu. */
  answer: "threadml.answer",
  /** Prefix of approve buttons: `threadml.approve.best`, `threadml.approve.plan.1`, … */
  approve: "threadml.approve",
  revise: "threadml.revise",
  cancel: "threadml.cancel",
  /** Prefix of the report's follow-up buttons: `threadml.followup.explain`, … (the value is the FollowUpAction). */
  followup: "threadml.followup",
} as const;

/** The action id of a report's follow-up button. */
export const followUpActionId = (action: FollowUpAction) => `${ACTION.followup}.${action}`;

/** Every action id we render starts with this, so one Bolt route receives them all. */
export const ACTION_PATTERN = /^threadml\./;

export const REVISE_VIEW = "threadml.revise";
export const REVISE_BLOCK = "feedback";
export const REVISE_INPUT = "feedback";

/** Reactions that cancel the conversation when put on one of its messages (❌ and 🛑). */
export const CANCEL_REACTIONS = new Set(["x", "octagonal_sign"]);

/** The bot scopes the adapter needs; config/slack-manifest.yaml requests exactly these. */
export const BOT_SCOPES = ["app_mentions:read", "channels:history", "groups:history", "chat:write", "files:read", "files:write", "reactions:read"];

/** The events the adapter listens to, each with the manifest subscriptions that deliver it. */
export const EVENT_SUBSCRIPTIONS = { app_mention: ["app_mention"], message: ["message.channels", "message.groups"], reaction_added: ["reaction_added"] } as const;
