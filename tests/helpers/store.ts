import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import type { ConversationStore, ModelEntryInput, ThreadMetaInput } from "../../src/store/types.js";

// Conversation store fixtures, and the model registry's behaviour as cases every ConversationStore
// must pass. `connect` opens another handle on the same shared state (another replica, or another
// process on the same folder).

export const threadMeta = (key: string, over: Partial<ThreadMetaInput> = {}): ThreadMetaInput => ({
  key,
  platform: "slack",
  channel: "C0123",
  thread: "1700000000.000100",
  graphThreadId: key,
  generation: 0,
  requester: "U42",
  status: "running",
  ...over,
});

export type Connect = () => Promise<ConversationStore>;

// ModelEntryInput is loose (unknown fields are kept), which leaves its known fields typed `unknown`.
type Entry = ModelEntryInput & { name: string; thread: string };

/** A unique name and chat thread per call, so cases can share one store. */
export function modelEntry(over: Partial<Entry> = {}): Entry {
  const id = randomUUID().slice(0, 8);
  return {
    name: `rf-${id}`,
    thread: `slack:T1:C1:${id}`,
    platform: "slack",
    channel: "C1",
    threadId: "1700000000.000100",
    graphThreadId: `g-${id}`,
    generation: 0,
    runner: "local",
    status: "serving",
    url: "http://127.0.0.1:8123",
    token: "t0k3n",
    port: 8123,
    pid: 4242,
    runId: `run-${id}`,
    runnerDir: `runs/run-${id}`,
    workspace: `workspaces/${id}`,
    artifactsDir: null,
    description: "Random forest (n_estimators=300)",
    task: "classification",
    target: "quality",
    metric: { name: "f1_macro", direction: "max" },
    metrics: { f1_macro: 0.81, accuracy: 0.9 },
    createdAt: 1_700_000_000_000,
    createdBy: "U42",
    context: { messages: ["predict quality"], files: ["wine.csv"], answers: {}, requirements: { target: "quality" }, profile: { rows: 1599 } },
    ...over,
  };
}

export const registryCases: Array<[string, (connect: Connect) => Promise<void>]> = [
  [
    "round-trips an entry, stamping updatedAt and keeping unknown fields",
    async (connect) => {
      const [a, b] = [await connect(), await connect()];
      const input = { ...modelEntry(), futureField: { nested: [1, "two"] } };
      const stored = await a.putModel(input);
      expect(stored?.updatedAt).toBeTypeOf("number");
      expect(stored).toMatchObject({ bundle: null, constraints: [], context: { feedback: [], localPaths: false } });
      expect(await b.getModel(input.name)).toEqual(stored);
      expect(await b.getModel(input.name)).toMatchObject({ futureField: { nested: [1, "two"] }, metrics: { f1_macro: 0.81 } });
      expect(await b.getModel(`${input.name}-unknown`)).toBeNull();
      expect(await b.getModel("../../etc/passwd")).toBeNull();
    },
  ],
  [
    "rejects an entry that does not validate, naming the problem, and stores nothing",
    async (connect) => {
      const a = await connect();
      const bad = modelEntry({ name: "Has Spaces" });
      await expect(a.putModel(bad)).rejects.toThrow(/name/);
      const input = modelEntry();
      await expect(a.putModel({ ...input, status: "paused" } as unknown as ModelEntryInput)).rejects.toThrow(/status/);
      expect(await a.getModel(input.name)).toBeNull();
    },
  ],
  [
    "overwrites an entry unless only a new one is asked for",
    async (connect) => {
      const [a, b] = [await connect(), await connect()];
      const input = modelEntry();
      expect(await a.putModel(input, { onlyNew: true })).not.toBeNull();
      expect(await b.putModel({ ...input, createdBy: "U7" }, { onlyNew: true })).toBeNull();
      expect(await a.getModel(input.name)).toMatchObject({ createdBy: "U42", status: "serving" });
      const stopped = await b.putModel({ ...input, status: "stopped", url: null, port: null, stoppedAt: 1_700_000_100_000 });
      expect(stopped).toMatchObject({ status: "stopped", port: null });
      expect(await a.getModel(input.name)).toEqual(stopped);
    },
  ],
  [
    "lets exactly one of many concurrent only-new writes of a name win",
    async (connect) => {
      const [a, b] = [await connect(), await connect()];
      const input = modelEntry();
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).putModel({ ...input, createdBy: `U${i}` }, { onlyNew: true })));
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect(await a.getModel(input.name)).toEqual(winners[0]);
    },
  ],
  [
    "lists entries oldest first (ties by name), all or one thread's",
    async (connect) => {
      const [a, b] = [await connect(), await connect()];
      const first = modelEntry({ createdAt: 1_000 });
      const thread = first.thread;
      const later = modelEntry({ thread, createdAt: 3_000 });
      const tieB = modelEntry({ thread, createdAt: 2_000, name: `${first.name}-b` });
      const tieA = modelEntry({ thread, createdAt: 2_000, name: `${first.name}-a` });
      const elsewhere = modelEntry({ createdAt: 500 });
      for (const entry of [later, tieB, elsewhere, first, tieA]) await a.putModel(entry);
      const names = (list: Array<{ name: string }>) => list.map((e) => e.name);
      expect(names(await b.listModels({ thread }))).toEqual([first.name, tieA.name, tieB.name, later.name]);
      const all = names(await b.listModels());
      const mine = all.filter((n) => [first, later, tieA, tieB, elsewhere].some((e) => e.name === n));
      expect(mine).toEqual([elsewhere.name, first.name, tieA.name, tieB.name, later.name]);
      expect(await b.listModels({ thread: `${thread}-none` })).toEqual([]);
    },
  ],
  [
    "deletes an entry from storage and listings",
    async (connect) => {
      const [a, b] = [await connect(), await connect()];
      const input = modelEntry();
      await a.putModel(input);
      await b.deleteModel(input.name);
      expect(await a.getModel(input.name)).toBeNull();
      expect(await a.listModels({ thread: input.thread })).toEqual([]);
      await b.deleteModel(input.name);
      await b.deleteModel("../not-a-name");
      expect(await a.putModel(input, { onlyNew: true })).not.toBeNull();
    },
  ],
];
