import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { boltLogger, slackMode } from "../../adapters/slack/app.js";
import { BoundedMap, RecentKeys } from "../../adapters/bounded.js";
import { EditQueue } from "../../adapters/slack/edits.js";
import { refusal, safeFileName, trustedOrigins } from "../../adapters/slack/files.js";
import { BOT_SCOPES, EVENT_SUBSCRIPTIONS } from "../../adapters/slack/ids.js";
import { clickIntent, clickPlace, isUserPost, mentionsBot, plainText } from "../../adapters/slack/inbound.js";
import { BlockActions, MessageEvent, SlackFile } from "../../adapters/slack/payloads.js";
import { ConfigError } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";

const BOT = "UBOT000001";
const event = (over: Record<string, unknown>) => MessageEvent.parse({ type: "message", channel: "C1", user: "U1", text: "hi", ts: "1.1", ...over });
const file = (over: Record<string, unknown> = {}) => SlackFile.parse({ id: "F1", name: "data.csv", size: 1000, url_private_download: "https://files.slack.com/x", ...over });

function deferred() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("reading Slack messages", () => {
  it("turns mrkdwn into plain text without the bot's mention", () => {
    expect(plainText(`<@${BOT}> predict <#C9|prices> in <https://x.io/a.csv|a.csv> for <@U2>`, BOT)).toBe("predict #prices in https://x.io/a.csv for @U2");
    expect(plainText("a &lt;b&gt; &amp;lt; c", BOT)).toBe("a <b> &lt; c");
    expect(plainText(`line one\n  <@${BOT}>  line two`, BOT)).toBe("line one\nline two");
    expect(plainText("<!here> look", null)).toBe("@here look");
  });

  it("knows a person's post from bot posts, edits and other noise", () => {
    expect(isUserPost(event({}))).toBe(true);
    expect(isUserPost(event({ subtype: "file_share" }))).toBe(true);
    expect(isUserPost(event({ bot_id: "B1" }))).toBe(false);
    expect(isUserPost(event({ subtype: "message_changed" }))).toBe(false);
    expect(isUserPost(event({ subtype: "channel_join" }))).toBe(false);
    expect(isUserPost(event({ user: undefined }))).toBe(false);
    expect(mentionsBot(`hey <@${BOT}>`, BOT)).toBe(true);
    expect(mentionsBot("hey <@U2>", BOT)).toBe(false);
    expect(mentionsBot("hey", null)).toBe(false);
    expect(MessageEvent.safeParse({ type: "message", channel: "C1" }).success).toBe(false);
  });

  it("maps our buttons and menus to actions", () => {
    const a = (action_id: string, extra: Record<string, unknown> = {}) => ({ action_id, ...extra });
    expect(clickIntent(a("threadml.answer.2", { value: "price" }))).toEqual({ kind: "forward", action: "answer", value: "price" });
    expect(clickIntent(a("threadml.answer", { selected_option: { value: "age" } }))).toEqual({ kind: "forward", action: "answer", value: "age" });
    expect(clickIntent(a("threadml.approve.best", { value: "best" }))).toEqual({ kind: "forward", action: "approve", value: "best" });
    expect(clickIntent(a("threadml.approve.plan.2", { value: "plan-2" }))).toEqual({ kind: "forward", action: "approve", value: "plan-2" });
    expect(clickIntent(a("threadml.cancel", { value: "cancel" }))).toEqual({ kind: "forward", action: "cancel", value: "" });
    expect(clickIntent(a("threadml.revise"))).toEqual({ kind: "revise" });
    expect(clickIntent(a("threadml.other"))).toEqual({ kind: "unknown" });
  });

  it("maps a report's follow-up buttons to follow-ups, and only values that are follow-ups on their own button", () => {
    const a = (action_id: string, value?: string) => ({ action_id, value });
    for (const f of ["explain", "compare", "undeploy"]) expect(clickIntent(a(`threadml.followup.${f}`, f))).toEqual({ kind: "forward", action: "followup", value: f });
    // A forged or mismatched payload is not forwarded.
    expect(clickIntent(a("threadml.followup.explain", "rm -rf /"))).toEqual({ kind: "unknown" });
    expect(clickIntent(a("threadml.followup.explain", "undeploy"))).toEqual({ kind: "unknown" });
    expect(clickIntent(a("threadml.followup.explain"))).toEqual({ kind: "unknown" });
    expect(clickIntent(a("threadml.followup.constructor", "constructor"))).toEqual({ kind: "unknown" });
  });

  it("finds the clicked message and its thread", () => {
    const body = (over: Record<string, unknown>) => BlockActions.parse({ type: "block_actions", user: { id: "U1" }, actions: [{ action_id: "threadml.cancel" }], ...over });
    expect(clickPlace(body({ container: { channel_id: "C1", message_ts: "5.5" }, message: { ts: "5.5", thread_ts: "1.1" } }))).toEqual({
      thread: { platform: "slack", channel: "C1", thread: "1.1" },
      messageTs: "5.5",
    });
    expect(clickPlace(body({ channel: { id: "C2" }, message: { ts: "7.7" } }))?.thread.thread).toBe("7.7");
    expect(clickPlace(body({}))).toBeNull();
    expect(BlockActions.safeParse({ type: "block_actions", user: { id: "U1" }, actions: [] }).success).toBe(false);
  });
});

describe("attached files", () => {
  it("makes names safe: no folders, no leading dots, plain characters, bounded length", () => {
    expect(safeFileName("../../etc/passwd")).toBe("passwd");
    expect(safeFileName("..\\..\\win.csv")).toBe("win.csv");
    expect(safeFileName(".hidden.csv")).toBe("hidden.csv");
    expect(safeFileName("données été (1).CSV")).toBe("donnees_ete_1.csv");
    expect(safeFileName("")).toBe("file");
    expect(safeFileName(`${"a".repeat(300)}.csv`)).toHaveLength(100);
    expect(safeFileName(`${"a".repeat(300)}.csv`).endsWith(".csv")).toBe(true);
  });

  it("refuses deleted, unsupported, oversized and link-less files before downloading", () => {
    const max = 1024 * 1024;
    expect(refusal(file(), max)).toBeNull();
    expect(refusal(file({ name: "images.zip" }), max)).toBeNull();
    expect(refusal(file({ name: "notes.pdf" }), max)).toMatch(/CSV .*Excel/);
    for (const name of ["book.xlsx", "rows.jsonl", "table.parquet", "old.xls", "data.json"]) expect(refusal(file({ name }), max)).toBeNull();
    expect(refusal(file({ size: 3 * max }), max)).toBe("it is 3.0 MB and the limit is 1.0 MB");
    expect(refusal(file({ mode: "tombstone" }), max)).toMatch(/deleted/);
    expect(refusal(file({ url_private_download: null }), max)).toMatch(/no download link/);
  });

  it("sends the bot token only to Slack or to the configured Web API origin", () => {
    const trusted = trustedOrigins("http://127.0.0.1:9999/api/");
    expect(trusted(new URL("https://files.slack.com/files-pri/T-F/x.csv"))).toBe(true);
    expect(trusted(new URL("http://127.0.0.1:9999/files-pri/x"))).toBe(true);
    expect(trusted(new URL("http://files.slack.com/x"))).toBe(false);
    expect(trusted(new URL("https://slack.com.evil.example/x"))).toBe(false);
    expect(trusted(new URL("http://127.0.0.1:9998/x"))).toBe(false);
    expect(trustedOrigins(undefined)(new URL("http://127.0.0.1:9999/x"))).toBe(false);
  });
});

describe("message edits", () => {
  it("sends one edit at a time per message and only the newest waiting content", async () => {
    const sent: string[] = [];
    const gates: Array<ReturnType<typeof deferred>> = [];
    const queue = new EditQueue<string>(async (key, content) => {
      sent.push(`${key}=${content}`);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
    });
    const first = queue.edit("m1", "v1");
    const second = queue.edit("m1", "v2");
    const third = queue.edit("m1", "v3");
    const other = queue.edit("m2", "w1");
    expect(sent).toEqual(["m1=v1", "m2=w1"]);
    gates[0].resolve();
    await first;
    await Promise.resolve();
    expect(sent).toEqual(["m1=v1", "m2=w1", "m1=v3"]);
    gates[2].resolve();
    gates[1].resolve();
    await Promise.all([second, third, other]);
    expect(queue.pending).toBe(0);
  });

  it("rejects the callers of an edit that failed and carries on with later ones", async () => {
    let fail = true;
    const queue = new EditQueue<string>(async () => {
      if (fail) throw new Error("message_not_found");
    });
    await expect(queue.edit("m", "a")).rejects.toThrow("message_not_found");
    fail = false;
    await expect(queue.edit("m", "b")).resolves.toBeUndefined();
  });
});

describe("adapter plumbing", () => {
  it("remembers recent keys and forgets the oldest beyond its limit", () => {
    const keys = new RecentKeys(3);
    expect(keys.firstTime("a", "event:1")).toBe(true);
    expect(keys.firstTime("a")).toBe(false);
    expect(keys.firstTime("b", "event:1")).toBe(false);
    expect(keys.firstTime("c")).toBe(true);
    expect(keys.firstTime("d")).toBe(true);
    expect(keys.has("a")).toBe(false);
    const map = new BoundedMap<string, number>(2);
    map.set("x", 1).set("y", 2).set("x", 3).set("z", 4);
    expect([...map.entries()]).toEqual([
      ["x", 3],
      ["z", 4],
    ]);
  });

  it("picks the transport from the configured tokens, or says what is missing", () => {
    expect(slackMode({ botToken: "xoxb", appToken: "xapp", signingSecret: "s" })).toBe("socket");
    expect(slackMode({ botToken: "xoxb", signingSecret: "s" })).toBe("http");
    expect(() => slackMode({ botToken: "xoxb" })).toThrow(ConfigError);
    expect(() => slackMode({ appToken: "xapp" })).toThrow(/SLACK_BOT_TOKEN/);
  });

  it("gives Bolt a logger at ThreadML's level", () => {
    expect(boltLogger(createLogger("debug")).getLevel()).toBe("debug");
    expect(boltLogger(createLogger("warn")).getLevel()).toBe("warn");
    expect(boltLogger(createLogger("silent")).getLevel()).toBe("error");
  });

  it("ships a manifest that requests exactly the scopes, events and interactivity the adapter uses", () => {
    const Manifest = z.object({
      oauth_config: z.object({ scopes: z.object({ bot: z.array(z.string()) }) }),
      settings: z.object({
        event_subscriptions: z.object({ bot_events: z.array(z.string()) }),
        interactivity: z.object({ is_enabled: z.literal(true) }),
        socket_mode_enabled: z.boolean(),
      }),
    });
    const manifest = Manifest.parse(parseYaml(readFileSync(new URL("../../config/slack-manifest.yaml", import.meta.url), "utf8")));
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual([...BOT_SCOPES].sort());
    expect([...manifest.settings.event_subscriptions.bot_events].sort()).toEqual(Object.values(EVENT_SUBSCRIPTIONS).flat().sort());
  });
});
