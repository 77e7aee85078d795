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
  | { kind: "report"; report: Report };

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
      action: "answer" | "approve" | "revise" | "cancel";
      /** The chosen value, plan id or revision feedback. */
      value: string;
      message?: MessageRef;
    };

export interface ChatAdapter {
  readonly platform: string;
  start(handler: (event: Inbound) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
  post(thread: ThreadRef, message: Outbound): Promise<MessageRef>;
  update(ref: MessageRef, message: Outbound): Promise<void>;
  /** A message only `user` sees (Slack ephemeral, Discord ephemeral); falls back to a thread post. */
  notify?(thread: ThreadRef, user: string, text: string): Promise<void>;
}

export const threadKey = (t: ThreadRef) => `${t.platform}:${t.channel}:${t.thread}`;
