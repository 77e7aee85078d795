import { describe, expect, it } from "vitest";
import { unexpectedFailure } from "../../graphs/automl/deps.js";

describe("the sentence for a step that threw unexpectedly", () => {
  it("keeps a short message meant for people", () => {
    expect(unexpectedFailure("implement", new Error("a forecast needs its time column and horizon."))).toBe(
      "ThreadML stopped this request: the implement step failed: a forecast needs its time column and horizon. The data and any earlier model are kept; send the request again, or change it.",
    );
  });

  it("hides programming errors, validation dumps, host paths and addresses", () => {
    const hidden = [
      new TypeError("Cannot read properties of null (reading 'candidateId')"),
      Object.assign(new Error('[{"code":"too_small","path":["search","candidates"]}]'), { name: "ZodError" }),
      new Error("cannot open /srv/threadml/.threadml/runs/x/model.pkl"),
      new Error("connect ECONNREFUSED 10.0.0.7:6379"),
      new Error("request to https://internal.example/v1 failed"),
    ];
    for (const err of hidden) expect(unexpectedFailure("smoke", err)).toMatch(/the smoke step failed on an internal error \(the details are in ThreadML's log\)\./);
  });

  it("never shows a configured key", () => {
    const text = unexpectedFailure("plan", new Error("the provider rejected key sk-secret-123456"), ["sk-secret-123456"]);
    expect(text).not.toContain("sk-secret-123456");
  });
});
