import type { AdapterContext } from "../index.js";
import type { ChatAdapter, Inbound, MessageRef, Outbound, ThreadRef } from "../types.js";

// Placeholder until the Slack adapter lands.
export class SlackAdapter implements ChatAdapter {
  readonly platform = "slack";
  constructor(readonly ctx: AdapterContext) {}
  async start(_handler: (event: Inbound) => Promise<void>): Promise<void> {
    throw new Error("Slack is not supported by this build yet.");
  }
  async stop(): Promise<void> {}
  async post(_thread: ThreadRef, _message: Outbound): Promise<MessageRef> {
    throw new Error("Slack is not supported by this build yet.");
  }
  async update(_ref: MessageRef, _message: Outbound): Promise<void> {}
}
