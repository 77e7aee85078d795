import { createServer, type Server } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyOutcome } from "../../graphs/automl/failures.js";
import { LocalRunner } from "../../runners/local/index.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// Generated code is untrusted: through the real harness, under bubblewrap, it cannot reach the
// network, read files outside its workspace or see the host's secrets, and it dies at the wall-time limit.

const work = tempDir("threadml-sandbox-");
const outside = tempDir("threadml-secret-");
const secretFile = outside.write("secret.txt", "the-launch-codes");
const data = join(work.dir, "data.csv");
let server: Server;
let port = 0;
let connections = 0;
const runner = new LocalRunner({ dataDir: join(work.dir, "runs"), sandbox: "bubblewrap" });

const spec = { mode: "train" as const, task: "classification" as const, data: "data/data.csv", target: "Quality", metric: "accuracy", plots: false };
const limits = { wallTimeS: 120, cpuS: 300, memoryMb: 4096 };

function hostileSolution(): string {
  return `import json, os, socket
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def probe():
    found = {}
    try:
        socket.create_connection(("127.0.0.1", ${port}), timeout=2).close()
        found["network"] = "connected"
    except OSError as exc:
        found["network"] = "blocked: %s" % exc
    try:
        found["secret"] = open(${JSON.stringify(secretFile)}).read()
    except OSError as exc:
        found["secret"] = "unreadable: %s" % exc
    found["env"] = os.environ.get("THREADML_TEST_SECRET")
    found["home"] = os.path.exists("/root") or os.path.exists("/home")
    with open("probe.json", "w") as fh:
        json.dump(found, fh)


def build(ctx):
    probe()
    return Pipeline([("pre", ctx.preprocessor(scale=True)), ("model", LogisticRegression(max_iter=500))])
`;
}

beforeAll(async () => {
  requirePython();
  writeClassificationCsv(data, { rows: 200, seed: 5 });
  process.env.THREADML_TEST_SECRET = "host-secret-value";
  server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
  const check = await runner.check();
  if (check.sandbox !== "bubblewrap") throw new Error(`bubblewrap is required for these tests: ${check.message}`);
});

afterAll(async () => {
  delete process.env.THREADML_TEST_SECRET;
  await runner.close();
  await new Promise((resolve) => server.close(resolve));
});

describe("sandboxed generated code", () => {
  it("cannot open a network connection, read a secret outside its workspace, or see host variables", async () => {
    const ws = await runner.prepare({ runId: "hostile", files: [{ source: data, dest: "data/data.csv" }], texts: { "solution.py": hostileSolution() } });
    const outcome = await runner.run(ws, { spec, limits });
    expect(outcome.result?.status, outcome.stderrTail).toBe("ok");
    const found = JSON.parse(readFileSync(join(ws.localDir, "probe.json"), "utf8"));
    expect(found.network).toMatch(/^blocked/);
    expect(connections).toBe(0);
    expect(found.secret).toMatch(/^unreadable/);
    expect(found.env).toBeNull();
    expect(found.home).toBe(false);
  });

  it("is killed at the wall-time limit and classified solution_stuck", async () => {
    const code = `import time\n\ndef build(ctx):\n    time.sleep(600)\n`;
    const ws = await runner.prepare({ runId: "stuck", files: [{ source: data, dest: "data/data.csv" }], texts: { "solution.py": code } });
    const started = Date.now();
    const outcome = await runner.run(ws, { spec, limits: { ...limits, wallTimeS: 3 } });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(outcome.timedOut).toBe(true);
    expect(classifyOutcome(outcome, 3)).toEqual({ failure: "solution_stuck", message: "the run was stopped at the 3 s wall-time limit" });
  });

  it("reports a crash with its class and message", async () => {
    const code = `def build(ctx):\n    raise RuntimeError("the model exploded")\n`;
    const ws = await runner.prepare({ runId: "crash", files: [{ source: data, dest: "data/data.csv" }], texts: { "solution.py": code } });
    const outcome = await runner.run(ws, { spec, limits });
    expect(classifyOutcome(outcome, 120)).toMatchObject({ failure: "runtime_error", message: expect.stringMatching(/the model exploded/) });
  });
});
