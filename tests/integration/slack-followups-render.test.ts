import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { strToU8, unzipSync, zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlackAdapter } from "../../adapters/slack/index.js";
import type { Inbound, ThreadRef } from "../../adapters/types.js";
import type { Report } from "../../graphs/automl/state.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { APP_TOKEN, BOT_TOKEN, FakeSlack, blockText, elements, type FakeMessage } from "../helpers/fake-slack.js";
import { tempDir } from "../helpers/tmp.js";

// The Slack adapter's follow-up shapes against real Bolt (Socket Mode) and a fake Slack, driven directly:
// a file posted into a thread, a report with follow-up buttons and a bundle, and clicks on those buttons.

const CH = "CFOLLOW001";
const ALICE = "UALICE0001";
const tmp = tempDir("threadml-slack-followups-");
const out = join(tmp.dir, "out");
mkdirSync(out, { recursive: true });

let fake: FakeSlack;
let adapter: SlackAdapter;
const events: Inbound[] = [];

beforeAll(async () => {
  fake = await FakeSlack.start("socket");
  const config = loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), slack: { botToken: BOT_TOKEN, appToken: APP_TOKEN, apiUrl: fake.apiUrl } });
  adapter = new SlackAdapter({ config, logger: createLogger("silent"), uploadsDir: join(tmp.dir, "uploads") }, { retryConfig: { retries: 2, minTimeout: 10, maxTimeout: 50 } });
  await adapter.start(async (e) => {
    events.push(e);
  });
  await fake.socketReady();
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.close();
});

const newThread = (): ThreadRef => ({ platform: "slack", channel: CH, thread: fake.ts() });

/** Polls until `probe` finds something; fails with `what` if it never does. */
async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const uploadsIn = (thread: ThreadRef) => [...fake.uploads.values()].filter((u) => u.completed?.thread_ts === thread.thread && u.completed.channel_id === CH);

const report = (bundle: string | null): Report => ({
  status: "deployed",
  title: "Model deployed",
  summary: ["Gradient boosting predicts Loan_Status."],
  metrics: { accuracy: 0.935 },
  constraints: [{ name: "accuracy", op: ">=", target: 0.9, actual: 0.935, met: true }],
  endpoint: { url: "http://127.0.0.1:4100", check: { ok: true, prediction: ["Y"] }, serving: true },
  curl: null,
  artifacts: { model: null, code: null, report: null, plots: [], bundle },
  comparison: { header: ["model", "accuracy", "status"], rows: [["loans-2 (this one)", "0.935", "serving"], ["loans-1 <!channel>", "0.910", "stopped"]] },
  notices: [],
  llm: null,
});

describe("Slack follow-ups", () => {
  it("posts a file into the thread: its lines first, then the file's bytes under a safe name", async () => {
    const thread = newThread();
    const predictions = ["Loan_ID,Loan_Status,prob_Y", ...Array.from({ length: 200 }, (_, i) => `LP${1000 + i},${i % 3 ? "Y" : "N"},${((i * 37) % 100) / 100}`)].join("\n");
    const path = join(out, "scored.csv");
    writeFileSync(path, predictions);
    const before = fake.calls.length;
    const ref = await adapter.post(thread, { kind: "file", path, name: "../new loans <@U1>-predictions.csv", lines: ["Scored 200 rows of new_loans.csv with loans-1.", "Predicted Loan_Status: Y 133, N 67."] });

    const message = fake.messages.get(ref.id)!;
    expect(message.thread_ts).toBe(thread.thread);
    expect(blockText(message.blocks)).toMatch(/^\*Scored 200 rows of new_loans\.csv with loans-1\.\*\nPredicted Loan_Status: Y 133, N 67\./);
    const [upload] = uploadsIn(thread);
    expect(upload.bytes!.equals(readFileSync(path))).toBe(true);
    expect(upload.filename).toBe("new_loans_U1_-predictions.csv");
    // The lines come before the file in the thread.
    const order = fake.calls.slice(before).map((c) => c.method);
    expect(order.indexOf("chat.postMessage")).toBeLessThan(order.indexOf("files.getUploadURLExternal"));
    expect(order).toContain("files.completeUploadExternal");
  });

  it("says so in the thread when the file is gone", async () => {
    const thread = newThread();
    await adapter.post(thread, { kind: "file", path: join(out, "never-written.csv"), name: "gone.csv", lines: ["Scored 3 rows."] });
    expect(uploadsIn(thread)).toEqual([]);
    expect(fake.thread(CH, thread.thread).map((m) => m.text)).toEqual(["Scored 3 rows.", "I couldn't attach gone.csv (gone.csv is missing)"]);
  });

  it("posts a table as one code block", async () => {
    const thread = newThread();
    const ref = await adapter.post(thread, { kind: "table", title: "This thread's models", header: ["name", "status"], rows: [["loans-1", "stopped"], ["loans-2", "serving"]] });
    expect(blockText(fake.messages.get(ref.id)!.blocks)).toBe("*This thread's models*\n```name     status\nloans-1  stopped\nloans-2  serving```");
  });

  it("renders the report's follow-up buttons, uploads its bundle, and forwards clicks as follow-ups", async () => {
    const thread = newThread();
    const bundle = join(out, "loan_status-model.zip");
    writeFileSync(bundle, zipSync({ "loan_status-model/model.joblib": strToU8("model bytes"), "loan_status-model/Dockerfile": strToU8("FROM python:3.11-slim\n") }));
    const ref = await adapter.post(thread, { kind: "report", report: report(bundle), model: "loans-2", followUps: ["explain", "compare", "undeploy"] });

    const message: FakeMessage = fake.messages.get(ref.id)!;
    expect(elements(message.blocks).map((e) => [e.action_id, e.value])).toEqual([
      ["threadml.followup.explain", "explain"],
      ["threadml.followup.compare", "compare"],
      ["threadml.followup.undeploy", "undeploy"],
    ]);
    const text = blockText(message.blocks);
    expect(text).toContain("*Registered as* `loans-2`");
    expect(text).toMatch(/loans-1 &lt;!channel&gt; +0\.910 +stopped/);
    expect(JSON.stringify(message)).not.toContain("<!channel>");

    const [upload] = uploadsIn(thread);
    expect(upload.filename).toBe("loan_status-model.zip");
    expect(upload.bytes!.equals(readFileSync(bundle))).toBe(true);
    expect(Object.keys(unzipSync(new Uint8Array(upload.bytes!))).sort()).toEqual(["loan_status-model/Dockerfile", "loan_status-model/model.joblib"]);

    await fake.deliver("interactive", fake.click(message, ALICE, "threadml.followup.explain"));
    const explain = await until(() => events.find((e) => e.kind === "action" && e.action === "followup"), "the explain click");
    expect(explain).toMatchObject({ kind: "action", action: "followup", value: "explain", user: ALICE, thread, message: { thread, id: ref.id } });

    // A payload whose value is not the button's follow-up is dropped; the next real click still counts.
    const forged = fake.click(message, ALICE, "threadml.followup.undeploy");
    (forged.actions as Array<{ value: string }>)[0].value = "explain; rm -rf /";
    await fake.deliver("interactive", forged);
    await fake.deliver("interactive", fake.click(message, ALICE, "threadml.followup.compare"));
    await until(() => events.find((e) => e.kind === "action" && e.value === "compare"), "the compare click");
    expect(events.filter((e) => e.kind === "action").map((e) => (e.kind === "action" ? e.value : ""))).toEqual(["explain", "compare"]);
  });
});
