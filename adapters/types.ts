import type { Plan, Question } from "../graphs/automl/agents/types.js";
import type { Report } from "../graphs/automl/state.js";
import type { StatusView } from "../src/conversation/status.js";

// One interface for every chat platform (docs/architecture.md §1): adapters render a few outbound message kinds
// and deliver inbound events in one normalized shape.

export interface ThreadRef {
  platform: string;
  channel: string;
  /** The platform's thread id (Slack thread_ts, Discord thread id, the shell's session). */
  thread: string;
}

export interface MessageRef {
  thread: ThreadRef;
  id: string;
}

export type Decision = { by: string; text: string };

export type Outbound =
  | { kind: "text"; text: string }
  | { kind: "question"; question: Question }
  | {
      kind: "plans";
      plans: Plan[];
      recommended: string;
      notices: string[];
      decided?: Decision;
      /** "I read: …", the card's first line. */
      reading?: string;
      /** The data section ("Data: loans.csv · 614 rows × 13 columns …", "Columns: …"), after the reading. */
      data?: string[];
    }
  | { kind: "status"; status: StatusView }
  | {
      kind: "report";
      report: Report;
      /** The model's name in the deployment registry, when it was registered. */
      model?: string;
      /** Follow-up buttons under the report (platforms without buttons list the words instead). */
      followUps?: FollowUpAction[];
    }
  /** A file posted into the thread (predictions, an importance plot), with a few lines about it. */
  | { kind: "file"; path: string; name: string; lines: string[] }
  /** A small table (the thread's models, the registry), with lines before and after it. */
  | { kind: "table"; title: string; header: string[]; rows: string[][]; notes?: string[] };

/** What the report's follow-up buttons do (src/conversation/followups.ts reads the same words typed). */
export const FOLLOW_UP_ACTIONS = ["explain", "compare", "undeploy"] as const;
export type FollowUpAction = (typeof FOLLOW_UP_ACTIONS)[number];
export const FOLLOW_UP_LABELS: Record<FollowUpAction, string> = { explain: "What matters?", compare: "Compare models", undeploy: "Stop serving" };

export type Inbound =
  | {
      kind: "message";
      eventId: string;
      thread: ThreadRef;
      user: string;
      text: string;
      /** Local paths of files attached to the message (already downloaded by the adapter). */
      files: string[];
      /** True when the message addresses the bot (a mention, or any line typed in the shell). */
      mention: boolean;
    }
  | {
      kind: "action";
      eventId: string;
      thread: ThreadRef;
      user: string;
      action: "answer" | "approve" | "revise" | "cancel" | "followup";
      /** The chosen value, plan id, revision feedback or follow-up (FollowUpAction). */
      value: string;
      message?: MessageRef;
    };

/** What the conversation service tells an adapter about threads it cannot know by itself (after a restart). */
export interface AdapterHooks {
  /** True when the thread holds a conversation or a registered model (so its attachments are fetched). */
  knows?(thread: ThreadRef): Promise<boolean>;
}

export interface ChatAdapter {
  readonly platform: string;
  start(handler: (event: Inbound) => Promise<void>, hooks?: AdapterHooks): Promise<void>;
  stop(): Promise<void>;
  post(thread: ThreadRef, message: Outbound): Promise<MessageRef>;
  update(ref: MessageRef, message: Outbound): Promise<void>;
  /** A message only `user` sees (Slack ephemeral, Discord ephemeral); falls back to a thread post. */
  notify?(thread: ThreadRef, user: string, text: string): Promise<void>;
}

export const threadKey = (t: ThreadRef) => `${t.platform}:${t.channel}:${t.thread}`;
