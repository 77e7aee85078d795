import { SnowflakeUtil } from "discord.js";
import { describe, expect, it } from "vitest";
import { STALE, toAction } from "../../adapters/discord/actions.js";
import { checkAttachment, safeFileName, type Attachment } from "../../adapters/discord/attachments.js";
import { Cards } from "../../adapters/discord/cards.js";
import { inviteUrl } from "../../adapters/discord/client.js";
import { EditQueue } from "../../adapters/discord/edits.js";
import { choiceIds, parseCustomId, parsePicked } from "../../adapters/discord/ids.js";
import { MessageFields, routeMessage, stripMention, threadName } from "../../adapters/discord/inbound.js";
import { InteractionTokens, isTokenError, type Replyable } from "../../adapters/discord/interactions.js";

// The Discord adapter's small parts: custom ids, inbound routing, attachment checks, the edit queue and
// the interaction-token window.

describe("custom ids", () => {
  it("carries values where they fit and indices where they do not, unique within a message", () => {
    expect(choiceIds("answer", ["Quality", "a:b c", "Quality", "x".repeat(95)])).toEqual(["tml:answer=Quality", "tml:answer=a:b c", "tml:answer#2", "tml:answer#3"]);
    expect(choiceIds("", ["x".repeat(99), "x".repeat(100)])).toEqual([`=${"x".repeat(99)}`, "#1"]);
  });

  it("parses the adapter's own controls and nothing else", () => {
    expect(parseCustomId("tml:answer=a:b c")).toEqual({ kind: "answer", ref: { value: "a:b c" } });
    expect(parseCustomId("tml:answer#24")).toEqual({ kind: "answer", ref: { index: 24 } });
    expect(parseCustomId("tml:approve=best")).toEqual({ kind: "approve", ref: { value: "best" } });
    expect(parseCustomId("tml:modal:revise")).toEqual({ kind: "modal", purpose: "revise" });
    expect(parseCustomId("tml:stop")).toEqual({ kind: "stop" });
    for (const bad of ["tml:answer#25", "tml:answer#1e1", "tml:answer=", "tml:answer", "tml:cancel:1", "tml:modal:other", "other:answer=1", `tml:answer=${"1".repeat(100)}`, 42, null])
      expect(parseCustomId(bad)).toBeNull();
    expect(parsePicked(["=Quality"])).toEqual({ value: "Quality" });
    expect(parsePicked(["#3"])).toEqual({ index: 3 });
    expect(parsePicked(["3"])).toBeNull();
    expect(parsePicked(["=a", "=b"])).toBeNull();
  });

  it("names the report's follow-up buttons and reads back only the follow-ups there are", () => {
    expect(["explain", "compare", "undeploy"].map((f) => parseCustomId(`tml:followup:${f}`))).toEqual([
      { kind: "followup", action: "explain" },
      { kind: "followup", action: "compare" },
      { kind: "followup", action: "undeploy" },
    ]);
    for (const bad of ["tml:followup:", "tml:followup", "tml:followup:explain ", "tml:followup:EXPLAIN", "tml:followup:constructor", "tml:followup:__proto__", "tml:followup:explain:1"])
      expect(parseCustomId(bad)).toBeNull();
  });
});

describe("actions", () => {
  const none = { values: [], text: null };
  const questionCard = { kind: "question" as const, question: { slot: "target" as const, text: "Which?", choices: [{ label: "Q", value: "Quality" }], allowFreeText: true } };
  const plan = { id: "plan-2", title: "t", approach: "a", summary: "s", preprocessing: [], models: [{ family: "f", label: "l", estimator: "e" }], training: "t", inference: "i", rationale: "r", notices: [] };
  const plansCard = { kind: "plans" as const, plans: [plan], recommended: "best", notices: [] };

  it("maps controls to answers, approvals, revisions and cancels", () => {
    expect(toAction({ kind: "answer", ref: { value: "Quality" } }, none, undefined)).toEqual({ action: "answer", value: "Quality" });
    expect(toAction({ kind: "answer", ref: { index: 0 } }, none, questionCard)).toEqual({ action: "answer", value: "Quality" });
    expect(toAction({ kind: "pick" }, { values: ["#0"], text: null }, questionCard)).toEqual({ action: "answer", value: "Quality" });
    expect(toAction({ kind: "approve", ref: { value: "best" } }, none, undefined)).toEqual({ action: "approve", value: "best" });
    expect(toAction({ kind: "approve", ref: { index: 1 } }, none, plansCard)).toEqual({ action: "approve", value: "plan-2" });
    expect(toAction({ kind: "modal", purpose: "revise" }, { values: [], text: " more trees " }, undefined)).toEqual({ action: "revise", value: "more trees" });
    expect(toAction({ kind: "stop" }, none, undefined)).toEqual({ action: "cancel", value: "" });
    // A follow-up needs no card: the report's buttons work whatever the thread's card is.
    expect(toAction({ kind: "followup", action: "compare" }, none, undefined)).toEqual({ action: "followup", value: "compare" });
    expect(toAction({ kind: "followup", action: "explain" }, none, questionCard)).toEqual({ action: "followup", value: "explain" });
  });

  it("explains what it cannot map", () => {
    expect(toAction({ kind: "answer", ref: { index: 0 } }, none, undefined)).toMatch(/can't read this choice/);
    expect(toAction({ kind: "approve", ref: { index: 4 } }, none, plansCard)).toMatch(/can't read this choice/);
    expect(toAction({ kind: "modal", purpose: "answer" }, { values: [], text: "   " }, undefined)).toBe("There was nothing to send.");
    expect(toAction({ kind: "free" }, none, questionCard)).toBe(STALE);
  });
});

describe("cards", () => {
  it("counts clicks on the thread's current card only", () => {
    const cards = new Cards();
    expect(cards.stale("t", "m1")).toBe(false); // unknown thread: after a restart, trust the click
    cards.set("t", { id: "m1" });
    expect(cards.stale("t", "m1")).toBe(false);
    expect(cards.retire("t")).toEqual({ id: "m1" });
    expect(cards.stale("t", "m1")).toBe(true);
    cards.set("t", { id: "m2" });
    expect(cards.stale("t", "m3")).toBe(true);
    cards.decided("t", "m2");
    expect(cards.get("t")).toBeUndefined();
    expect(cards.stale("t", "m2")).toBe(true);
  });
});

describe("inbound messages", () => {
  const base: MessageFields = {
    id: "10",
    channelId: "20",
    guildId: "30",
    author: { id: "40", bot: false },
    system: false,
    webhookId: null,
    content: "<@99> build a model",
    mentionsBot: true,
    attachments: [],
    place: { kind: "channel", channel: "20" },
  };

  it("starts a thread for a mention in a channel, takes everything in a thread, and ignores the rest", () => {
    expect(routeMessage(base)).toEqual({ kind: "start-thread", channel: "20" });
    expect(routeMessage({ ...base, mentionsBot: false })).toEqual({ kind: "ignore" });
    expect(routeMessage({ ...base, place: { kind: "thread", thread: "21", parent: "20", owner: "99" }, mentionsBot: false })).toEqual({
      kind: "in-thread",
      thread: "21",
      parent: "20",
      owner: "99",
      mention: false,
    });
    expect(routeMessage({ ...base, author: { id: "99", bot: true } })).toEqual({ kind: "ignore" });
    expect(routeMessage({ ...base, system: true })).toEqual({ kind: "ignore" });
    expect(routeMessage({ ...base, webhookId: "77" })).toEqual({ kind: "ignore" });
    expect(routeMessage({ ...base, place: { kind: "other" } })).toEqual({ kind: "ignore" });
  });

  it("rejects payloads that are not what Discord sends", () => {
    expect(MessageFields.safeParse({ ...base, id: "abc" }).success).toBe(false);
    expect(MessageFields.safeParse({ ...base, attachments: [{ id: "1", name: "a.csv", size: -1, url: "http://x/a.csv" }] }).success).toBe(false);
    expect(MessageFields.safeParse({ ...base, attachments: [{ id: "1", name: "a.csv", size: 3, url: "file:///etc/passwd" }] }).success).toBe(false);
  });

  it("strips the bot's mention tokens and names threads after the request", () => {
    expect(stripMention("<@99> Build a model\n <@!99>  for  me <@12>", "99")).toBe("Build a model\nfor me <@12>");
    expect(threadName("Predict price in houses.csv\nmore", [])).toBe("Predict price in houses.csv");
    expect(threadName("", ["houses.csv"])).toBe("Model for houses.csv");
    expect(threadName("x".repeat(300), []).length).toBe(100);
  });
});

describe("attachments", () => {
  const a = (over: Partial<Attachment>): Attachment => ({ id: "1", name: "data.csv", size: 1000, url: "https://cdn.example/data.csv?ex=1&hm=2", contentType: "text/csv; charset=utf-8", ...over });

  it("accepts data files by extension and type within the size limit", () => {
    expect(checkAttachment(a({}), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ name: "d.TSV", contentType: "text/tab-separated-values" }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ contentType: "application/vnd.ms-excel" }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ contentType: null }), 2000)).toEqual({ ok: true });
    const xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    expect(checkAttachment(a({ name: "d.xlsx", contentType: xlsx }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ name: "rows.jsonl", contentType: "application/x-ndjson" }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ name: "t.parquet", contentType: "application/octet-stream" }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ name: "d.json", contentType: "application/json" }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ name: "deck.pptx" }), 2000)).toMatchObject({ ok: false, reason: expect.stringMatching(/not a data file/) });
    expect(checkAttachment(a({ contentType: "image/png" }), 2000)).toMatchObject({ ok: false, reason: "data.csv is image/png, not a data file I can read" });
    expect(checkAttachment(a({ name: "shapes.zip", contentType: "application/zip" }), 2000)).toEqual({ ok: true });
    expect(checkAttachment(a({ size: 3 * 1048576 }), 2 * 1048576)).toMatchObject({ ok: false, reason: "data.csv is 3 MB, over the 2 MB limit" });
    expect(checkAttachment(a({ size: 0 }), 2000)).toMatchObject({ ok: false, reason: "data.csv is empty" });
  });

  it("stores files under safe names", () => {
    expect(safeFileName("../../etc/passwd.csv")).toBe("etc_passwd.csv");
    expect(safeFileName("my data (1).CSV")).toBe("my_data_1.csv");
    expect(safeFileName("???.csv")).toBe("data.csv");
    expect(safeFileName("ünïcode–name.tsv")).toBe("unicode_name.tsv");
  });
});

describe("invite link", () => {
  it("asks for the bot scope and the permissions docs/discord.md lists", () => {
    expect(inviteUrl("123")).toBe("https://discord.com/oauth2/authorize?client_id=123&scope=bot&permissions=309237763072");
  });
});

describe("edit queue", () => {
  const deferred = () => {
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    return { promise, resolve, reject };
  };

  it("runs one edit per message at a time and replaces waiting edits with the newest", async () => {
    const q = new EditQueue();
    const ran: string[] = [];
    const first = deferred();
    const job = (name: string, wait?: Promise<void>) => async () => {
      ran.push(name);
      await wait;
    };
    const p1 = q.edit("m", job("1", first.promise));
    const p2 = q.edit("m", job("2"));
    const p3 = q.edit("m", job("3"));
    const other = q.edit("n", job("n"));
    await other;
    expect(ran).toEqual(["1", "n"]);
    first.resolve();
    await Promise.all([p1, p2, p3]);
    expect(ran).toEqual(["1", "n", "3"]);
    await q.idle();
  });

  it("reports a failed edit to its callers and goes on with the next", async () => {
    const q = new EditQueue();
    const first = deferred();
    const p1 = q.edit("m", () => first.promise);
    const p2 = q.edit("m", async () => {
      throw new Error("edit refused");
    });
    const p3 = q.edit("m", async () => {});
    first.reject(new Error("first failed"));
    await expect(p1).rejects.toThrow("first failed");
    // p2 was replaced by p3 before it ran; both callers learn the outcome of p3.
    await expect(p2).resolves.toBeUndefined();
    await expect(p3).resolves.toBeUndefined();
    const p4 = q.edit("m", async () => {
      throw new Error("edit refused");
    });
    await expect(p4).rejects.toThrow("edit refused");
  });
});

describe("interaction tokens", () => {
  const MIN = 60_000;
  const interaction = (createdAt: number, user = "u1", message = "m1"): Replyable =>
    ({ id: SnowflakeUtil.generate({ timestamp: createdAt }).toString(), user: { id: user }, message: { id: message } }) as unknown as Replyable;

  it("uses a token for 14 of its 15 minutes, counted from the earlier of Discord's clock and ours", () => {
    let now = 1_800_000_000_000;
    const tokens = new InteractionTokens(() => now);
    const a = tokens.remember(interaction(now), "t1");
    expect(tokens.latest("t1")).toBe(a);
    now += 14 * MIN - 1;
    expect(tokens.latest("t1")).toBe(a);
    now += 1;
    expect(tokens.latest("t1")).toBeNull();

    // Discord's clock ahead of ours: our receipt time bounds the expiry.
    const b = tokens.remember(interaction(now + 10 * MIN), "t1");
    expect(b.expiresAt).toBe(now + 14 * MIN);
    // Our clock ahead: Discord's creation time does.
    const c = tokens.remember(interaction(now - 5 * MIN), "t1");
    expect(c.expiresAt).toBe(now + 9 * MIN);
  });

  it("finds the newest live interaction of a user and of a message, and forgets on request", () => {
    const now = 1_800_000_000_000;
    const tokens = new InteractionTokens(() => now);
    const a = tokens.remember(interaction(now, "alice", "card1"), "t");
    const b = tokens.remember(interaction(now, "bob", "card1"), "t");
    expect(tokens.latest("t")).toBe(b);
    expect(tokens.ofUser("t", "alice")).toBe(a);
    expect(tokens.onMessage("t", "card1")).toBe(b);
    tokens.forget(b);
    expect(tokens.latest("t")).toBe(a);
    expect(tokens.ofUser("t", "bob")).toBeNull();
    expect(tokens.latest("other")).toBeNull();
  });

  it("knows Discord's answers for dead tokens", () => {
    expect(isTokenError({ code: 50027 })).toBe(true);
    expect(isTokenError({ code: 10015 })).toBe(true);
    expect(isTokenError({ code: 10008 })).toBe(false);
    expect(isTokenError(new Error("x"))).toBe(false);
  });
});
