import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { HarnessEvent, HarnessSpecInput } from "../../runners/contract.js";
import { LocalRunner, type LocalRunnerOptions } from "../../runners/local/index.js";
import type { Limits } from "../../runners/types.js";

// These tests start real processes with fixture scripts (tests/fixtures/runner/<case>) in place of the
// harness. Sandbox tests demand bubblewrap and fail loudly where it is missing.

const FIXTURES = fileURLToPath(new URL("../fixtures/runner/", import.meta.url));
const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data.csv", target: "y", metric: "accuracy" };
const LIMITS: Limits = { wallTimeS: 60, cpuS: 60, memoryMb: 1024 };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Logged {
  level: string;
  obj: object;
  msg?: string;
}

async function makeRunner(fixture: string, options: Partial<LocalRunnerOptions> = {}) {
  const dataDir = await tempDir("threadml-runner-");
  const logs: Logged[] = [];
  const runner = new LocalRunner({
    dataDir,
    harnessDir: path.join(FIXTURES, fixture),
    logger: {
      warn: (obj, msg) => logs.push({ level: "warn", obj, msg }),
      info: (obj, msg) => logs.push({ level: "info", obj, msg }),
      debug: (obj, msg) => logs.push({ level: "debug", obj, msg }),
    },
    ...options,
  });
  cleanups.push(() => runner.close());
  return { runner, dataDir, logs };
}

/** Fails (never skips) when bubblewrap cannot be used. */
async function sandboxedRunner(fixture: string, options: Partial<LocalRunnerOptions> = {}) {
  const made = await makeRunner(fixture, { sandbox: "bubblewrap", ...options });
  const check = await made.runner.check();
  expect(check.ok, `bubblewrap is required for this test: ${check.message}`).toBe(true);
  expect(check.sandbox).toBe("bubblewrap");
  return made;
}

/** Host pids whose command line contains the marker (works across pid namespaces). */
async function pidsWithMarker(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(marker)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

async function waitUntil(predicate: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return predicate();
}

/** True while the process runs; a zombie (killed, not yet reaped by its new parent) counts as gone. */
async function pidAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

describe("LocalRunner.check", () => {
  it("finds an interpreter with scikit-learn when python is auto", async () => {
    const { runner } = await makeRunner("events", { python: "auto" });
    const check = await runner.check();
    expect(check.ok, check.message).toBe(true);
    expect(check.missing).toEqual([]);
    expect(path.isAbsolute(check.python)).toBe(true);
    const out = execFileSync(check.python, ["-c", "import sklearn, pandas, numpy; print('yes')"], { encoding: "utf8" });
    expect(out.trim()).toBe("yes");
    // Cached: a second call returns the same answer without probing again.
    expect(await runner.check()).toEqual(check);
  });

  it("reports a missing interpreter by name", async () => {
    const { runner } = await makeRunner("events", { python: "/nonexistent/python3" });
    const check = await runner.check();
    expect(check.ok).toBe(false);
    expect(check.message).toContain("/nonexistent/python3");
    expect(check.message).toMatch(/THREADML_PYTHON/);
    expect(check.missing).toEqual(expect.arrayContaining(["numpy", "pandas", "sklearn"]));
  });

  it("runs limits-only with a warning when the sandbox is off", async () => {
    const { runner, logs } = await makeRunner("events", { sandbox: "off" });
    const check = await runner.check();
    expect(check.ok, check.message).toBe(true);
    expect(check.sandbox).toBe("limits-only");
    expect(logs.some((l) => l.level === "warn" && /unsandboxed/.test(l.msg ?? ""))).toBe(true);
  });

  it("uses bubblewrap when it is demanded", async () => {
    const { runner } = await sandboxedRunner("events");
    expect((await runner.check()).message).toMatch(/bubblewrap/);
  });
});

describe("LocalRunner.prepare", () => {
  it("creates the workspace with harness files, copied files and texts", async () => {
    const { runner, dataDir } = await makeRunner("events");
    const src = path.join(await tempDir("threadml-src-"), "data.csv");
    await writeFile(src, "a,y\n1,0\n");
    const ws = await runner.prepare({
      runId: "run-1.a_b",
      files: [{ source: src, dest: "data/data.csv" }],
      texts: { "solution.py": "x = 1\n", "nested/note.txt": "hi" },
    });
    expect(ws.dir).toBe(path.join(path.resolve(dataDir), "runs", "run-1.a_b"));
    expect(ws.localDir).toBe(ws.dir);
    expect(existsSync(path.join(ws.dir, "harness.py"))).toBe(true);
    expect(await readFile(path.join(ws.dir, "data/data.csv"), "utf8")).toBe("a,y\n1,0\n");
    expect(await readFile(path.join(ws.dir, "solution.py"), "utf8")).toBe("x = 1\n");
    expect(await readFile(path.join(ws.dir, "nested/note.txt"), "utf8")).toBe("hi");
  });

  it("rejects bad run ids and destinations that escape the workspace", async () => {
    const { runner, dataDir } = await makeRunner("events");
    for (const runId of ["", "..", ".", "../x", "a/b", "a b", "x;rm"]) {
      await expect(runner.prepare({ runId, files: [], texts: {} }), runId).rejects.toThrow(/runId/);
    }
    for (const dest of ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt", ".."]) {
      await expect(runner.prepare({ runId: "ok", files: [], texts: { [dest]: "x" } }), dest).rejects.toThrow(/workspace path/);
      await expect(runner.prepare({ runId: "ok", files: [{ source: "/etc/hostname", dest }], texts: {} }), dest).rejects.toThrow(
        /workspace path/,
      );
    }
    expect(existsSync(path.join(dataDir, "escape.txt"))).toBe(false);
    expect(existsSync(path.join(dataDir, "runs", "escape.txt"))).toBe(false);
  });
});

describe("LocalRunner.run", () => {
  it("streams events in order, turns plain output into log events and parses the result", async () => {
    const { runner } = await makeRunner("events", { sandbox: "auto" });
    const ws = await runner.prepare({ runId: "events", files: [], texts: {} });
    const events: HarnessEvent[] = [];
    let calls = 0;
    const outcome = await runner.run(ws, {
      spec: SPEC,
      limits: LIMITS,
      onEvent: (e) => {
        calls++;
        events.push(e);
        // A listener that throws must not disturb the run.
        if (calls === 1) throw new Error("listener bug");
      },
    });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.timedOut).toBe(false);
    expect(outcome.cancelled).toBe(false);
    expect(events).toEqual([
      { event: "progress", stage: "load", done: 0, total: 2 },
      { event: "log", level: "info", message: "plain text from the solution" },
      { event: "metric", name: "accuracy", value: 0.9, split: "valid" },
      { event: "log", level: "info", message: '{"event": "unknown-kind"}' },
      { event: "done", status: "ok" },
    ]);
    expect(outcome.result?.status).toBe("ok");
    expect(outcome.result?.metrics).toEqual({ accuracy: 0.9 });
    expect(outcome.stderrTail).toContain("warning on stderr");
    expect(outcome.durationS).toBeGreaterThan(0);
    const spec = JSON.parse(await readFile(path.join(ws.dir, "spec.json"), "utf8"));
    expect(spec.out_dir).toBe("out");
    expect(spec.seed).toBe(42);
  });

  it("rejects an invalid spec before starting anything", async () => {
    const { runner } = await makeRunner("events");
    const ws = await runner.prepare({ runId: "bad-spec", files: [], texts: {} });
    await expect(runner.run(ws, { spec: { ...SPEC, mode: "nope" } as unknown as HarnessSpecInput, limits: LIMITS })).rejects.toThrow();
    expect(existsSync(path.join(ws.dir, "spec.json"))).toBe(false);
  });

  it("blocks the network inside the sandbox", async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;

    const { runner } = await sandboxedRunner("network");
    const ws = await runner.prepare({ runId: "net", files: [], texts: { "target.txt": `127.0.0.1:${port}` } });
    const outcome = await runner.run(ws, { spec: SPEC, limits: LIMITS });
    expect(outcome.result, outcome.stderrTail).not.toBeNull();
    expect(outcome.result!.warnings[0]).toMatch(/^failed/);
    expect(connections).toBe(0);

    // Control: the same script reaches the server when unsandboxed, so the check above is meaningful.
    const open = await makeRunner("network", { sandbox: "off" });
    const ws2 = await open.runner.prepare({ runId: "net-open", files: [], texts: { "target.txt": `127.0.0.1:${port}` } });
    const control = await open.runner.run(ws2, { spec: SPEC, limits: LIMITS });
    expect(control.result?.warnings[0]).toBe("connected");
    expect(await waitUntil(async () => connections === 1, 2000)).toBe(true);
  });

  it("hides host files and the host environment", async () => {
    const secretDir = await tempDir("threadml-secret-");
    const secretFile = path.join(secretDir, "secret.txt");
    await writeFile(secretFile, "s3cr3t-file");
    const previous = process.env.THREADML_TEST_SECRET;
    process.env.THREADML_TEST_SECRET = "s3cr3t-env";
    cleanups.push(async () => {
      if (previous === undefined) delete process.env.THREADML_TEST_SECRET;
      else process.env.THREADML_TEST_SECRET = previous;
    });

    const { runner } = await sandboxedRunner("secret");
    const ws = await runner.prepare({ runId: "secret", files: [], texts: { "target_path.txt": secretFile } });
    const outcome = await runner.run(ws, { spec: SPEC, limits: LIMITS });
    expect(outcome.result, outcome.stderrTail).not.toBeNull();
    const [file, env, visible, keys] = outcome.result!.warnings;
    expect(file).toMatch(/^blocked/);
    expect(env).toBe("env: <absent>");
    expect(visible).toBe("visible: ");
    expect(keys).not.toMatch(/SECRET/);
    expect(JSON.stringify(outcome.result)).not.toContain("s3cr3t");

    // Unsandboxed the file is readable (proving the path is right), but the environment stays clean.
    const open = await makeRunner("secret", { sandbox: "off" });
    const ws2 = await open.runner.prepare({ runId: "secret-open", files: [], texts: { "target_path.txt": secretFile } });
    const control = await open.runner.run(ws2, { spec: SPEC, limits: LIMITS });
    expect(control.result?.warnings[0]).toBe("read: s3cr3t-file");
    expect(control.result?.warnings[1]).toBe("env: <absent>");
  });

  for (const sandbox of ["bubblewrap", "off"] as const) {
    it(`kills the whole job at the wall-time limit (sandbox ${sandbox})`, async () => {
      const { runner } = sandbox === "bubblewrap" ? await sandboxedRunner("sleeper") : await makeRunner("sleeper", { sandbox });
      await runner.check(); // keep interpreter probing out of the timing below
      const marker = `threadml-marker-${process.pid}-${Date.now()}-${sandbox}`;
      const ws = await runner.prepare({ runId: "wall", files: [], texts: { "marker.txt": marker } });
      const events: HarnessEvent[] = [];
      const t0 = Date.now();
      const outcome = await runner.run(ws, { spec: SPEC, limits: { ...LIMITS, wallTimeS: 2 }, onEvent: (e) => events.push(e) });
      const elapsed = (Date.now() - t0) / 1000;
      expect(events).toContainEqual({ event: "progress", stage: "started" });
      expect(outcome.timedOut).toBe(true);
      expect(outcome.cancelled).toBe(false);
      expect(outcome.result).toBeNull();
      expect(outcome.stderrTail).toMatch(/wall-time/);
      expect(elapsed).toBeLessThan(8);
      expect(outcome.durationS).toBeGreaterThanOrEqual(1.9);
      // The grandchild is gone too.
      expect(await waitUntil(async () => (await pidsWithMarker(marker)).length === 0, 3000)).toBe(true);
      if (sandbox === "off") {
        const childPid = Number(await readFile(path.join(ws.dir, "child.pid"), "utf8"));
        expect(childPid).toBeGreaterThan(0);
        expect(await waitUntil(async () => !(await pidAlive(childPid)), 3000)).toBe(true);
      }
    });
  }

  it("cancels a running job through its AbortSignal", async () => {
    const { runner } = await sandboxedRunner("sleeper");
    const marker = `threadml-marker-${process.pid}-${Date.now()}-cancel`;
    const ws = await runner.prepare({ runId: "cancel", files: [], texts: { "marker.txt": marker } });
    const controller = new AbortController();
    const t0 = Date.now();
    const outcome = await runner.run(ws, {
      spec: SPEC,
      limits: LIMITS,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.event === "progress" && e.stage === "started") controller.abort();
      },
    });
    expect(outcome.cancelled).toBe(true);
    expect(outcome.timedOut).toBe(false);
    expect(outcome.result).toBeNull();
    expect((Date.now() - t0) / 1000).toBeLessThan(10);
    expect(await waitUntil(async () => (await pidsWithMarker(marker)).length === 0, 3000)).toBe(true);
  });

  it("does not start when the signal is already aborted", async () => {
    const { runner } = await makeRunner("sleeper");
    const marker = `threadml-marker-${process.pid}-${Date.now()}-pre`;
    const ws = await runner.prepare({ runId: "pre", files: [], texts: { "marker.txt": marker } });
    const outcome = await runner.run(ws, { spec: SPEC, limits: LIMITS, signal: AbortSignal.abort() });
    expect(outcome.cancelled).toBe(true);
    expect(outcome.exitCode).toBeNull();
    expect(outcome.result).toBeNull();
    expect(existsSync(path.join(ws.dir, "child.pid"))).toBe(false);
  });

  it("enforces the memory limit", async () => {
    const { runner } = await sandboxedRunner("memory");
    const ws = await runner.prepare({ runId: "mem", files: [], texts: {} });
    const t0 = Date.now();
    const outcome = await runner.run(ws, { spec: SPEC, limits: { ...LIMITS, memoryMb: 512 } });
    expect((Date.now() - t0) / 1000).toBeLessThan(30);
    expect(outcome.timedOut).toBe(false);
    expect(outcome.exitCode).not.toBe(0);
    expect(outcome.stderrTail).toContain("MemoryError");
    expect(outcome.result).toBeNull();
  });

  it("enforces the CPU-time limit", async () => {
    const { runner } = await sandboxedRunner("spin");
    const ws = await runner.prepare({ runId: "cpu", files: [], texts: {} });
    const outcome = await runner.run(ws, { spec: SPEC, limits: { ...LIMITS, cpuS: 1 } });
    expect(outcome.timedOut).toBe(false);
    // bubblewrap's 128+N exit status is reported as the signal, as it is without the sandbox.
    expect(outcome.exitCode).toBeNull();
    expect(outcome.signal).toMatch(/^SIG(KILL|XCPU)$/);
    expect(outcome.durationS).toBeLessThan(15);
    expect(outcome.result).toBeNull();
  });

  it("returns no result, with a note, when result.json breaks the contract", async () => {
    const { runner } = await makeRunner("invalid-result");
    const ws = await runner.prepare({ runId: "invalid", files: [], texts: {} });
    const outcome = await runner.run(ws, { spec: SPEC, limits: LIMITS });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.result).toBeNull();
    expect(outcome.stderrTail).toMatch(/result\.json does not match the contract/);
  });

  it("returns no result, with a note, when result.json is missing", async () => {
    const { runner } = await makeRunner("memory");
    const ws = await runner.prepare({ runId: "missing", files: [], texts: {} });
    // A result left by an earlier run in the same workspace must not be picked up.
    await mkdir(path.join(ws.dir, "out"), { recursive: true });
    await writeFile(path.join(ws.dir, "out/result.json"), JSON.stringify({ status: "ok", mode: "train", task: "classification" }));
    const outcome = await runner.run(ws, { spec: SPEC, limits: { ...LIMITS, memoryMb: 512 } });
    expect(outcome.result).toBeNull();
    expect(outcome.stderrTail).toMatch(/no result\.json/);
  });
});

describe("LocalRunner.serve", () => {
  it("starts a server that answers, and stop() ends it", async () => {
    const { runner } = await sandboxedRunner("serve");
    const ws = await runner.prepare({ runId: "srv", files: [], texts: {} });
    const server = await runner.serve(ws);
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, workspace: ws.dir });
    await server.stop();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    await server.stop(); // idempotent
  });

  it("close() stops every server", async () => {
    const { runner } = await sandboxedRunner("serve");
    const a = await runner.serve(await runner.prepare({ runId: "srv-a", files: [], texts: {} }));
    const b = await runner.serve(await runner.prepare({ runId: "srv-b", files: [], texts: {} }));
    expect((await fetch(`${a.url}/health`)).status).toBe(200);
    expect((await fetch(`${b.url}/health`)).status).toBe(200);
    await runner.close();
    await expect(fetch(`${a.url}/health`)).rejects.toThrow();
    await expect(fetch(`${b.url}/health`)).rejects.toThrow();
  });

  it("close() also ends a server that is still starting", async () => {
    const { runner } = await makeRunner("serve-silent");
    await runner.check();
    const ws = await runner.prepare({ runId: "srv-silent", files: [], texts: {} });
    const starting = runner.serve(ws);
    const outcome = starting.then(
      () => "listening",
      (err: Error) => err.message,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    await runner.close();
    expect(await outcome).toMatch(/closed while the model server was starting/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("rejects with the server's stderr when it exits before listening", async () => {
    const { runner } = await makeRunner("serve-broken");
    const ws = await runner.prepare({ runId: "srv-broken", files: [], texts: {} });
    await expect(runner.serve(ws)).rejects.toThrow(/no model\.joblib/);
  });
});
