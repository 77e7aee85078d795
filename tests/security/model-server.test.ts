import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRunner } from "../../runners/local/index.js";
import type { ModelServer } from "../../runners/types.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { harnessWorkspace, runHarness } from "../helpers/harness.js";

// The model server imports generated code and unpickles what it wrote, so it is treated as hostile:
// started through the real LocalRunner in real bubblewrap, it must have no network (it answers on the
// socket the launcher hands it), a read-only workspace, robust request parsing and an optional token.

// Hostile only when imported by serve.py: training stays normal. Every attempt is noted, and the notes
// come back as the predictions, so the test sees that each attempt was made and how it failed.
const HOSTILE = String.raw`
import os, socket, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

SERVING = os.path.basename(sys.argv[0]) == "serve.py"
NOTES = []


def attempt(where):
    try:
        host, port = open("target.txt").read().split(":")
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(b"hello from " + where.encode())
        NOTES.append(where + ":connected")
    except OSError as e:
        NOTES.append(where + ":connect-failed")
    for name in ("pwned-" + where + ".txt", "out/model.pkl"):
        try:
            with open(name, "ab") as f:
                f.write(b"x")
            NOTES.append(where + ":wrote " + name)
        except OSError:
            NOTES.append(where + ":write-failed")
    try:
        with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "scratch-" + where), "w") as f:
            f.write("x")
        NOTES.append(where + ":scratch-ok")
    except OSError:
        NOTES.append(where + ":scratch-failed")


if SERVING:
    attempt("import")


class Hostile:
    def __init__(self, inner):
        self.inner = inner

    def __setstate__(self, state):
        self.__dict__.update(state)
        if SERVING:
            attempt("unpickle")

    def fit(self, X, y):
        self.inner.fit(X, y)
        self.classes_ = self.inner.classes_
        return self

    def predict(self, X):
        return self.inner.predict(X)

    def predict_proba(self, X):
        return self.inner.predict_proba(X)


def build(ctx):
    return Hostile(Pipeline([("pre", ctx.preprocessor(scale=True)), ("model", LogisticRegression(max_iter=200))]))


def predict(model, X):
    if SERVING:
        attempt("request")
        return np.array([" ".join(NOTES)] * len(X), dtype=object)
    return model.predict(X)
`;

const root = mkdtempSync(path.join(os.tmpdir(), "threadml-security-"));
const ws = path.join(root, "ws");
let sampleRow: Record<string, unknown>;
const connections: string[] = [];
let listener: net.Server;
let runner: LocalRunner;
let server: ModelServer;

beforeAll(async () => {
  // The port a hostile server tries to reach; nothing may ever connect to it.
  listener = net.createServer((sock) => {
    connections.push(`from ${sock.remoteAddress}:${sock.remotePort}`);
    sock.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as net.AddressInfo).port;

  const data = writeClassificationCsv(path.join(root, "data.csv"), { rows: 300 });
  harnessWorkspace(ws, HOSTILE, { "data.csv": data.file });
  writeFileSync(path.join(ws, "target.txt"), `127.0.0.1:${port}`);
  const run = await runHarness(ws, { mode: "train", task: "classification", data: "data.csv", target: data.target, metric: "accuracy" });
  expect(run.code, run.stderr).toBe(0);
  sampleRow = run.result.sample!.rows[0] as Record<string, unknown>;

  runner = new LocalRunner({ dataDir: path.join(root, "data"), sandbox: "bubblewrap" });
  const check = await runner.check();
  expect(check.ok, `bubblewrap is required for this test: ${check.message}`).toBe(true);
  expect(check.sandbox).toBe("bubblewrap");
  server = await runner.serve({ runId: "hostile", dir: ws, localDir: ws });
}, 120_000);

afterAll(async () => {
  await runner?.close();
  await new Promise<void>((resolve) => (listener ? listener.close(() => resolve()) : resolve()));
  rmSync(root, { recursive: true, force: true });
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A keep-alive HTTP/1.1 connection that sends raw requests and reads one response at a time. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  closed = false;
  private constructor(private readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    sock.on("close", () => {
      this.closed = true;
      this.waiting?.();
    });
    sock.on("error", () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, "127.0.0.1", () => resolve(new RawClient(sock)));
      sock.once("error", reject);
    });
  }

  async request(method: string, target: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    if (body !== undefined) lines.push("Content-Type: application/json", `Content-Length: ${payload.length}`);
    this.sock.write(Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), payload]));
    for (;;) {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = this.buf.subarray(0, end).toString("latin1").split("\r\n");
        const hdrs: Record<string, string> = {};
        for (const h of head.slice(1)) {
          const i = h.indexOf(":");
          hdrs[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
        }
        const length = Number(hdrs["content-length"] ?? 0);
        if (this.buf.length >= end + 4 + length) {
          const res = { status: Number(head[0].split(" ")[1]), headers: hdrs, body: this.buf.subarray(end + 4, end + 4 + length).toString("utf8") };
          this.buf = this.buf.subarray(end + 4 + length);
          return res;
        }
      }
      if (this.closed) throw new Error(`connection closed before a full response (${this.buf.length} bytes read)`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = null;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

describe("model server sandbox", () => {
  it("cannot connect anywhere at import, unpickle or request time, and still answers", async () => {
    const res = await fetch(`${server.url}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ rows: [sampleRow] }) });
    expect(res.status).toBe(200);
    const notes = ((await res.json()) as { predictions: string[] }).predictions[0];
    // every attempt was made, and each connection failed
    for (const where of ["import", "unpickle", "request"]) {
      expect(notes).toContain(`${where}:connect-failed`);
      expect(notes).toContain(`${where}:scratch-ok`);
    }
    expect(notes).not.toContain("connected");
    expect(connections).toEqual([]);
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
  });

  it("the workspace is read-only for the server", async () => {
    const before = statSync(path.join(ws, "out", "model.pkl"));
    const res = await fetch(`${server.url}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ row: sampleRow }) });
    const notes = ((await res.json()) as { predictions: string[] }).predictions[0];
    expect(notes).toContain("request:write-failed");
    expect(notes).not.toContain("wrote");
    for (const where of ["import", "unpickle", "request"]) expect(existsSync(path.join(ws, `pwned-${where}.txt`))).toBe(false);
    const after = statSync(path.join(ws, "out", "model.pkl"));
    expect(after.size).toBe(before.size);
    expect(readFileSync(path.join(ws, "target.txt"), "utf8")).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("the host takes the address from the launcher, not from the server", () => {
    expect(server.host).toBe("127.0.0.1");
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    // loopback and serveToken "auto": no token
    expect(server.token).toBeUndefined();
  });
});

describe("model server request handling", () => {
  const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
  const cases: Array<[string, string, RegExp]> = [
    ["deeply nested JSON (100,000 levels)", deep(100_000), /nested more than 64 levels/],
    ["JSON nested 65 levels", JSON.stringify({ rows: [{ x: JSON.parse(deep(63)) }] }), /nested more than 64 levels/],
    ["NaN", `{"rows": [{"Size": NaN}]}`, /NaN is not allowed; numbers must be finite/],
    ["Infinity", `{"rows": [{"Size": Infinity}]}`, /Infinity is not allowed/],
    ["-Infinity", `{"rows": [{"Size": -Infinity}]}`, /-Infinity is not allowed/],
    ["1e400", `{"rows": [{"Size": 1e400}]}`, /1e400 is out of range; numbers must be finite/],
    ["an integer past the float range", `{"rows": [{"Size": 1${"0".repeat(400)}}]}`, /out of range/],
    ["invalid JSON", `{"rows": [`, /invalid JSON/],
  ];

  it.each(cases)("answers %s with 400 and a JSON error, and keeps the connection", async (_name, body, message) => {
    const client = await RawClient.connect(server.port);
    try {
      const res = await client.request("POST", "/predict", body);
      expect(res.status).toBe(400);
      expect(res.headers["content-type"]).toBe("application/json");
      expect((JSON.parse(res.body) as { error: string }).error).toMatch(message);
      // the same connection still works
      const health = await client.request("GET", "/health");
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ status: "ok" });
    } finally {
      client.close();
    }
  });

  it("answers every error with a JSON body and the right status", async () => {
    const client = await RawClient.connect(server.port);
    try {
      const notFound = await client.request("GET", "/nope");
      expect(notFound.status).toBe(404);
      expect(JSON.parse(notFound.body).error).toMatch(/no such path/);
      const method = await client.request("DELETE", "/predict");
      expect(method.status).toBe(405);
      expect(JSON.parse(method.body).error).toMatch(/POST \/predict/);
      const bad = await client.request("POST", "/predict", JSON.stringify({ rows: [1] }));
      expect(bad.status).toBe(400);
      const ok = await client.request("POST", "/predict", JSON.stringify({ rows: [sampleRow] }));
      expect(ok.status).toBe(200);
    } finally {
      client.close();
    }
    const noLength = await RawClient.connect(server.port);
    try {
      const res = await noLength.request("POST", "/predict", undefined, { "Transfer-Encoding": "chunked" });
      expect(res.status).toBe(411);
      expect(JSON.parse(res.body).error).toMatch(/Content-Length/);
    } finally {
      noLength.close();
    }
  });
});

describe("model server token", () => {
  let tokenRunner: LocalRunner;
  let secured: ModelServer;

  beforeAll(async () => {
    tokenRunner = new LocalRunner({ dataDir: path.join(root, "data-token"), sandbox: "bubblewrap", serveToken: "always" });
    secured = await tokenRunner.serve({ runId: "secured", dir: ws, localDir: ws });
  }, 60_000);

  afterAll(async () => {
    await tokenRunner?.close();
  });

  it("requires the bearer token when enabled: 401 without, 200 with", async () => {
    expect(secured.token).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    const body = JSON.stringify({ rows: [sampleRow] });
    const none = await fetch(`${secured.url}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect(((await none.json()) as { error: string }).error).toMatch(/bearer token/);
    const wrong = await fetch(`${secured.url}/health`, { headers: { authorization: "Bearer not-the-token" } });
    expect(wrong.status).toBe(401);
    expect((await fetch(`${secured.url}/health`)).status).toBe(401);

    const auth = { authorization: `Bearer ${secured.token}` };
    const health = await fetch(`${secured.url}/health`, { headers: auth });
    expect(health.status).toBe(200);
    const ok = await fetch(`${secured.url}/predict`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body });
    expect(ok.status).toBe(200);
  });

  it("keeps the token off every command line", async () => {
    const { readdir, readFile } = await import("node:fs/promises");
    const seen: string[] = [];
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
      if (cmdline.includes(secured.token!)) seen.push(cmdline.replace(/\0/g, " "));
    }
    expect(seen).toEqual([]);
  });
});
