import { randomUUID } from "node:crypto";
import { CliAdapter, type Posted } from "../../adapters/cli/index.js";
import type { Inbound, Outbound, ThreadRef } from "../../adapters/types.js";
import { loadConfig } from "../../src/config.js";
import type { ConfigInput } from "../../config/schema.js";
import { ConversationService } from "../../src/conversation/service.js";
import { createEngine, type Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { createLocalStore, type FileStore } from "../../src/store/index.js";

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

/** A ConversationService over the file store in `cwd`, with the CLI adapter as its chat. */
export interface Stack {
  store: FileStore;
  engine: Engine;
  adapter: CliAdapter;
  service: ConversationService;
}

export async function openStack(settings: ConfigInput, cwd: string): Promise<Stack> {
  const logger = createLogger("silent");
  const config = loadConfig({}, settings);
  const store = createLocalStore(config, logger, cwd);
  const engine = await createEngine({ config, logger, cwd, checkpointer: store.checkpointer });
  const adapter = new CliAdapter();
  const service = new ConversationService(engine, [adapter], { approvers: [], logger, store });
  await service.start();
  return { store, engine, adapter, service };
}

/** Stops everything: jobs and model servers end with it. */
export async function closeStack(stack: Stack): Promise<void> {
  await stack.service.stop().catch(() => {});
  await stack.engine.close().catch(() => {});
  await stack.store.close().catch(() => {});
}

/** Stops as a restart does: running jobs stay up for the next process, model servers stop. */
export async function detachStack(stack: Stack): Promise<void> {
  await stack.service.stop({ drain: false });
  await stack.engine.detach();
  await stack.store.close();
}
