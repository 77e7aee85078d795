import { randomUUID } from "node:crypto";
import type { CliAdapter, Posted } from "../../adapters/cli/index.js";
import type { Inbound, Outbound, ThreadRef } from "../../adapters/types.js";
import type { ConversationService } from "../../src/conversation/service.js";

// Driving one thread of a ConversationService through the CLI adapter, as a chat platform would.

/** An inbound event without the parts every event of this thread shares (Omit over each member of the union). */
type Shared<T> = T extends unknown ? Omit<T, "eventId" | "thread" | "user"> : never;
export type ThreadEvent = Shared<Inbound>;

/** The posted messages of one kind, for assertions that say what was posted instead. */
export function ofKind<K extends Outbound["kind"]>(posted: Posted[], kind: K): Array<Extract<Outbound, { kind: K }>> {
  return posted.map((p) => p.message).filter((m): m is Extract<Outbound, { kind: K }> => m.kind === kind);
}

export const shown = (posted: Posted[]) => JSON.stringify(posted.map((p) => p.message)).slice(0, 3000);

/** send() delivers one event and waits until the service has done its work; say() is a mention with files. */
export function threadDriver(current: () => { adapter: CliAdapter; service: ConversationService }, thread: ThreadRef, user = "u1") {
  const send = async (event: ThreadEvent): Promise<Posted[]> => {
    const { adapter, service } = current();
    const before = adapter.posted.length;
    await adapter.send({ ...event, eventId: randomUUID(), thread, user } as Inbound);
    await service.idle();
    return adapter.posted.slice(before);
  };
  const say = (text: string, files: string[] = []) => send({ kind: "message", text, files, mention: true });
  return { send, say };
}
