import { randomUUID } from "node:crypto";
import type { ChatAdapter, Inbound, MessageRef, Outbound, ThreadRef } from "../types.js";

// The headless CLI as a chat platform (`threadml run --thread NAME`): a named thread whose messages
// come from the command line and whose answers are collected for the JSON result, so the CLI goes
// through the same conversation service (follow-ups, registry, permissions) as Slack and Discord.

export interface Posted {
  ref: MessageRef;
  message: Outbound;
}

export class CliAdapter implements ChatAdapter {
  readonly platform = "cli";
  readonly posted: Posted[] = [];
  private handler: ((event: Inbound) => Promise<void>) | null = null;

  /** The thread a name stands for; the channel is this machine's. */
  static thread(name: string): ThreadRef {
    return { platform: "cli", channel: "local", thread: name };
  }

  async start(handler: (event: Inbound) => Promise<void>): Promise<void> {
    this.handler = handler;
  }

  async stop(): Promise<void> {
    this.handler = null;
  }

  async post(thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    const ref = { thread, id: randomUUID() };
    this.posted.push({ ref, message });
    return ref;
  }

  async update(ref: MessageRef, message: Outbound): Promise<void> {
    const at = this.posted.find((p) => p.ref.id === ref.id);
    if (at) at.message = message;
  }

  /** Delivers one event as a chat platform would; the service queues the work and returns. */
  async send(event: Inbound): Promise<void> {
    if (!this.handler) throw new Error("the CLI adapter is not started");
    await this.handler(event);
  }
}
