import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SshRunnerConfig, type SshRunnerConfig as SshRunnerConfigT } from "../../config/schema.js";
import type { HarnessEvent, HarnessSpecInput } from "../../runners/contract.js";
import { LocalRunner } from "../../runners/local/index.js";
import { SshRunner } from "../../runners/ssh/index.js";
import type { Workspace } from "../../runners/types.js";
import { createLogger } from "../../src/logger.js";
import { requirePython, ROOT } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { GATE_SOLUTION, sshdMissing, startSshd, until, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// The SSH runner against a real OpenSSH sshd on 127.0.0.1: the host is this machine, so the tests can
// look at the remote workspace and processes directly.

const PYTHON = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
const missing = sshdMissing();
if (missing) console.warn(`Skipping the SSH runner tests: ${missing}`);

const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data/bananas.csv", target: "Quality", metric: "accuracy", seed: 42 };
const LIMITS = { wallTimeS: 120, cpuS: 120, memoryMb: 4096 };
const logger = createLogger("silent");
// A setup line that makes bubblewrap fail, as on a host without it.
const NO_BWRAP = "bwrap() { return 1; }";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie nobody reaped yet has ended all the same.
  const stat = (() => {
    try {
      return readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return "";
    }
  })();
  return !/^\d+ \(.*\) Z/.test(stat);
}

// A missing sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

describe("the SSH runner against a real sshd", () => {
  const tmp = tempDir("threadml-ssh-");
  const remoteDir = join(tmp.dir, "remote");
  let sshd: Sshd;
  let data: string;
  const open: SshRunner[] = [];

  beforeAll(async () => {
    requirePython();
    sshd = await startSshd();
    data = join(tmp.dir, "bananas.csv");
    writeClassificationCsv(data, { rows: 600, seed: 101 });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  function runner(overrides: Partial<SshRunnerConfigT> = {}): SshRunner {
    const config = SshRunnerConfig.parse({
      kind: "ssh",
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      identityFile: sshd.identityFile,
      knownHosts: sshd.knownHostsFile,
      workdir: remoteDir,
      python: PYTHON,
      ...overrides,
    });
    const r = new SshRunner({ name: "gpu1", config, dataDir: join(tmp.dir, "local"), logger });
    open.push(r);
    return r;
  }

  const gate = (runId: string, extra: Record<string, string> = {}) => ({
    runId,
    files: [{ source: data, dest: "data/bananas.csv" }],
    texts: { "solution.py": GATE_SOLUTION, ...extra },
  });

  function recorder() {
    const waits: number[] = [];
    const events: HarnessEvent[] = [];
    const notices: string[] = [];
    return {
      waits,
      events,
      notices,
      onEvent: (e: HarnessEvent) => {
        events.push(e);
        if (e.event === "progress" && e.stage === "waiting") waits.push(e.done ?? -1);
      },
      onNotice: (n: string) => notices.push(n),
    };
  }

  const jobFile = (ws: Workspace, name: string) => join(ws.dir, ".job", name);
  const startsOf = (ws: Workspace) => readFileSync(join(ws.dir, "starts.log"), "utf8").split("\n").filter((l) => l.startsWith("job "));

  it("checks the host's interpreter, modules and sandbox", async () => {
    const check = await runner().check();
    expect(check.ok).toBe(true);
    expect(check.missing).toEqual([]);
    expect(check.sandbox).toBe("bubblewrap");
    expect(check.message).toContain("gpu1");
    const without = await runner({ setup: [NO_BWRAP] }).check();
    expect(without.ok).toBe(true);
    expect(without.sandbox).toBe("limits-only");
    expect(without.message).toMatch(/Sandbox: none, because bubblewrap does not work on the host.*Install bubblewrap/);
  });

  it("runs jobs in bubblewrap where the host has it (no network, nothing outside the workspace), and says so where it has not", async () => {
    const probe = [
      "import json, os, socket",
      "from sklearn.ensemble import HistGradientBoostingClassifier",
      "from sklearn.pipeline import Pipeline",
      "",
      "def build(ctx):",
      "    out = {}",
      "    try:",
      `        socket.create_connection(("127.0.0.1", ${sshd.port}), timeout=3).close()`,
      "        out['net'] = True",
      "    except OSError:",
      "        out['net'] = False",
      `    out['outside'] = os.path.exists(${JSON.stringify(sshd.identityFile)})`,
      "    out['secret'] = os.environ.get('THREADML_PROBE_SECRET')",
      "    try:",
      "        with open('.job/pid', 'w') as f:",
      "            f.write('1')",
      "        out['job_folder'] = 'written'",
      "    except OSError:",
      "        out['job_folder'] = 'read-only'",
      // A module the unsandboxed server launcher would import if it ran with the folder on its path.
      "    os.makedirs('.serve', exist_ok=True)",
      "    with open('.serve/json.py', 'w') as f:",
      "        f.write('open(\"planted-ran\", \"w\").close()\\n')",
      "    with open('probe.json', 'w') as f:",
      "        json.dump(out, f)",
      "    return Pipeline([('pre', ctx.preprocessor(encode='ordinal')), ('model', HistGradientBoostingClassifier(max_iter=20, random_state=ctx.seed))])",
      "",
    ].join("\n");
    const secret = "export THREADML_PROBE_SECRET=s3cret";
    for (const [setup, sandboxed] of [[[secret], true], [[secret, NO_BWRAP], false]] as const) {
      const r = runner({ setup: [...setup] });
      const rec = recorder();
      const ws = await r.prepare({ runId: `sandbox-${sandboxed}`, files: [{ source: data, dest: "data/bananas.csv" }], texts: { "solution.py": probe } });
      const out = await r.run(ws, { spec: SPEC, limits: LIMITS, onNotice: rec.onNotice });
      expect(out.result?.status, out.stderrTail).toBe("ok");
      const seen = JSON.parse(readFileSync(join(ws.dir, "probe.json"), "utf8"));
      expect(seen).toEqual({ net: !sandboxed, outside: !sandboxed, secret: sandboxed ? null : "s3cret", job_folder: sandboxed ? "read-only" : "written" });
      expect(readFileSync(jobFile(ws, "sandbox"), "utf8").trim()).toBe(sandboxed ? "bubblewrap" : "none");
      if (!sandboxed) {
        expect(rec.notices.join("\n")).toMatch(/without a sandbox: bubblewrap is not available there/);
        expect(out.stderrTail).toMatch(/bubblewrap is not usable on .*; the job runs without a sandbox/);
      } else {
        expect(rec.notices.join("\n")).not.toMatch(/without a sandbox/);
        // What the job left for the unsandboxed launcher is never imported by it.
        const server = await r.serve(ws);
        expect(existsSync(join(ws.dir, "planted-ran"))).toBe(false);
        await server.stop();
      }
    }
  });

  it("gives exactly the local runner's metrics for the same spec, data and seed", async () => {
    const solution = readFileSync(join(ROOT, "runners/python/solution_example.py"), "utf8");
    const input = { runId: "parity", files: [{ source: data, dest: "data/bananas.csv" }], texts: { "solution.py": solution } };
    const ssh = runner();
    const remote = await ssh.prepare(input);
    const viaSsh = await ssh.run(remote, { spec: SPEC, limits: LIMITS });
    const local = new LocalRunner({ dataDir: join(tmp.dir, "local-runner"), python: PYTHON });
    const viaLocal = await local.run(await local.prepare(input), { spec: SPEC, limits: LIMITS });
    await local.close();

    expect(viaSsh.result?.status).toBe("ok");
    expect(viaLocal.result?.status).toBe("ok");
    expect(viaSsh.result!.metrics).toEqual(viaLocal.result!.metrics);
    expect(viaSsh.result!.valid_metrics).toEqual(viaLocal.result!.valid_metrics);
    expect(viaSsh.result!.sample).toEqual(viaLocal.result!.sample);
    // The artifacts the graph reads are fetched into the local workspace.
    expect(existsSync(join(remote.localDir, viaSsh.result!.model_path!))).toBe(true);
    expect(viaSsh.result!.plots.length).toBeGreaterThan(0);
    for (const plot of viaSsh.result!.plots) expect(existsSync(join(remote.localDir, plot))).toBe(true);
    expect(readFileSync(join(remote.localDir, "solution.py"), "utf8")).toBe(solution);
  });

  it("after a restart of ThreadML re-attaches to the running job: same process, one start, the log resumed exactly", async () => {
    const first = runner();
    const ws = await first.prepare(gate("restart"));
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent, onNotice: a.onNotice });
    await until(() => a.waits.length >= 3, "the first events");
    const pid = readFileSync(jobFile(ws, "pid"), "utf8");
    await first.detach(); // a restart: the job keeps running on the host

    const second = runner();
    const again = await second.prepare(gate("restart"));
    expect(again.dir).toBe(ws.dir);
    const b = recorder();
    const outcome = second.run(again, { spec: SPEC, limits: LIMITS, onEvent: b.onEvent, onNotice: b.onNotice });
    await until(() => b.waits.length >= 2, "events after re-attaching");
    writeFileSync(join(ws.dir, "release"), "");
    const out = await outcome;

    expect(out.result?.status).toBe("ok");
    expect(b.notices.join("\n")).toMatch(/already running on gpu1 \(127\.0\.0\.1\).*instead of starting it twice/);
    expect(readFileSync(jobFile(ws, "pid"), "utf8")).toBe(pid);
    expect(startsOf(ws)).toHaveLength(1);
    // The second runner continued from the saved byte offset: no event twice, none lost.
    expect(b.waits[0]).toBe(a.waits[a.waits.length - 1] + 1);
    const all = [...a.waits, ...b.waits];
    expect(all).toEqual(all.map((_, i) => i));
    // Asked again, the finished job gives its result without running.
    const c = recorder();
    const replay = await runner().run(again, { spec: SPEC, limits: LIMITS, onNotice: c.onNotice });
    expect(replay.result?.metrics).toEqual(out.result?.metrics);
    expect(c.notices.join("\n")).toMatch(/already finished on gpu1/);
    expect(startsOf(ws)).toHaveLength(1);
  });

  it("starts again, and says so, a job that died on the host without a result", async () => {
    const first = runner();
    const ws = await first.prepare(gate("dead"));
    const a = recorder();
    void first.run(ws, { spec: SPEC, limits: LIMITS, onEvent: a.onEvent });
    await until(() => a.waits.length >= 1, "the job to start");
    await first.detach();
    // What a host restart leaves: no processes, no exit status, no result.
    const pid = Number(readFileSync(jobFile(ws, "pid"), "utf8"));
    const wrapper = Number(readFileSync(jobFile(ws, "wrapper.pid"), "utf8"));
    process.kill(wrapper, "SIGKILL");
    process.kill(-pid, "SIGKILL");
    await until(() => !alive(pid) && !alive(wrapper), "the job's processes to end");
    writeFileSync(join(ws.dir, "release"), "");

    const b = recorder();
    const second = runner();
    const out = await second.run(await second.prepare(gate("dead")), { spec: SPEC, limits: LIMITS, onNotice: b.onNotice });
    expect(out.result?.status).toBe("ok");
    expect(b.notices.join("\n")).toMatch(/stopped without a result.*starting it again/);
    expect(startsOf(ws)).toHaveLength(2);
  });

  it("cancel stops the job's whole process group on the host", async () => {
    // Unsandboxed, so that the child's pid is the host's.
    const r = runner({ setup: [NO_BWRAP] });
    const ws = await r.prepare(gate("cancel", { spawn_child: "" }));
    const rec = recorder();
    const ctl = new AbortController();
    const outcome = r.run(ws, { spec: SPEC, limits: LIMITS, signal: ctl.signal, onEvent: rec.onEvent });
    await until(() => rec.waits.length >= 1 && existsSync(join(ws.dir, "child.pid")), "the job and its child");
    const pid = Number(readFileSync(jobFile(ws, "pid"), "utf8"));
    const child = Number(readFileSync(join(ws.dir, "child.pid"), "utf8"));
    expect(alive(pid) && alive(child)).toBe(true);
    ctl.abort();
    const out = await outcome;
    expect(out.cancelled).toBe(true);
    expect(out.result).toBeNull();
    expect(out.signal).toBe("SIGTERM");
    await until(() => !alive(pid) && !alive(child), "the job's processes to end");
    expect(existsSync(jobFile(ws, "cancelled"))).toBe(true);
  });

  it("close() stops the jobs it follows", async () => {
    const r = runner();
    const ws = await r.prepare(gate("closing"));
    const rec = recorder();
    const outcome = r.run(ws, { spec: SPEC, limits: LIMITS, onEvent: rec.onEvent });
    await until(() => rec.waits.length >= 1, "the job to start");
    await r.close();
    const out = await outcome;
    expect(out.cancelled).toBe(true);
    expect(alive(Number(readFileSync(jobFile(ws, "pid"), "utf8")))).toBe(false);
  });

  it("stops a job at its wall-time limit on the host itself", async () => {
    const r = runner();
    const ws = await r.prepare(gate("stuck"));
    const out = await r.run(ws, { spec: SPEC, limits: { ...LIMITS, wallTimeS: 4 } });
    expect(out.timedOut).toBe(true);
    expect(out.cancelled).toBe(false);
    expect(out.result).toBeNull();
    expect(out.stderrTail).toContain("[runner] killed after the wall-time limit of 4 s");
    expect(existsSync(jobFile(ws, "timedout"))).toBe(true);
    expect(alive(Number(readFileSync(jobFile(ws, "pid"), "utf8")))).toBe(false);
  });

  it("gives the least-loaded GPU that nvidia-smi reports to the job and names it in the thread", async () => {
    const bin = join(tmp.dir, "fake-gpu-bin");
    mkdirSync(bin, { recursive: true });
    const smi = join(bin, "nvidia-smi");
    // index, utilization.gpu, memory.used, memory.total
    writeFileSync(smi, `#!/bin/sh\nprintf '0, 85, 12000, 16000\\n1, 3, 500, 16000\\n2, 40, 2000, 16000\\n'\n`);
    chmodSync(smi, 0o755);
    const r = runner({ setup: [`PATH='${bin}':"$PATH"; export PATH`] });
    const rec = recorder();
    const out = await r.run(await r.prepare(gate("gpu", { release: "" })), { spec: SPEC, limits: LIMITS, onEvent: rec.onEvent, onNotice: rec.onNotice });
    expect(out.result?.status).toBe("ok");
    expect(rec.notices.join("\n")).toContain("Training on gpu1 (127.0.0.1), GPU 1.");
    const logs = rec.events.flatMap((e) => (e.event === "log" ? [e.message] : []));
    expect(logs).toContain("CUDA_VISIBLE_DEVICES=1");
  });

  it("refuses a host key that does not match, saying what it saw and how to trust it", async () => {
    const fp = sshd.hostKeyFingerprint;
    const wrong = runner({ knownHosts: undefined, hostKey: `SHA256:${Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "")}` });
    const check = await wrong.check();
    expect(check.ok).toBe(false);
    expect(check.message).toContain(`ssh-ed25519 ${fp} does not match the configured hostKey`);
    expect(check.message).toContain(`hostKey: "${fp}" under runners.gpu1`);
    await expect(wrong.prepare(gate("never"))).rejects.toThrow(fp);

    const empty = tmp.write("known_hosts_empty", "");
    const unknown = await runner({ knownHosts: empty }).check();
    expect(unknown.message).toMatch(/host key is not known/);
    expect(unknown.message).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1 >> ${empty}`);

    const otherKey = join(tmp.dir, "other_host_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
    const changedFile = tmp.write("known_hosts_changed", `[127.0.0.1]:${sshd.port} ${readFileSync(`${otherKey}.pub`, "utf8")}`);
    const changed = await runner({ knownHosts: changedFile }).check();
    expect(changed.message).toMatch(/host key has CHANGED/);
    expect(changed.message).toContain(fp);
    expect(existsSync(join(remoteDir, "runs", "never"))).toBe(false);
  });

  it("says what to fix when the key cannot be used or is not authorized", async () => {
    const garbage = tmp.write("not-a-key", "hello\n");
    expect((await runner({ identityFile: garbage }).check()).message).toMatch(/runners\.gpu1\.identityFile cannot be used/);
    const stranger = join(tmp.dir, "stranger_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    const refused = await runner({ identityFile: stranger, agent: undefined }).check();
    expect(refused.ok).toBe(false);
    expect(refused.message).toMatch(new RegExp(`refused the login for ${sshd.user}.*authorized_keys`));
  });

  it("names the host, the interpreter and what to install when Python or its packages are missing", async () => {
    const none = runner({ python: "/nonexistent/bin/python3" });
    const check = await none.check();
    expect(check.ok).toBe(false);
    for (const part of ["gpu1", `${sshd.user}@127.0.0.1:${sshd.port}`, '"/nonexistent/bin/python3" was not found', "pip install", "runners.gpu1.python"])
      expect(check.message).toContain(part);
    const ws = await none.prepare(gate("nopython", { release: "" }));
    await expect(none.run(ws, { spec: SPEC, limits: LIMITS })).rejects.toThrow(/not usable.*\/nonexistent\/bin\/python3/s);

    // A virtual environment without the packages, activated by a setup line written the bash way.
    const venv = join(tmp.dir, "bare-venv");
    execFileSync(PYTHON, ["-m", "venv", "--without-pip", venv]);
    const bare = await runner({ python: "python", setup: [`source '${venv}/bin/activate'`] }).check();
    expect(bare.ok).toBe(false);
    expect(bare.missing).toEqual(["numpy", "pandas", "sklearn"]);
    expect(bare.message).toContain(`${venv}/bin/python`);
    expect(bare.message).toContain("lacks numpy, pandas, sklearn");

    const broken = await runner({ setup: ["conda-that-is-not-there activate ml"] }).check();
    expect(broken.message).toMatch(/setup line `conda-that-is-not-there activate ml` failed with exit code 127/);
  });

  it("uploads a dataset of tens of MB once and gives each workspace its own copy", async () => {
    const big = join(tmp.dir, "big.csv");
    const rows: string[] = ["id,value,label"];
    for (let i = 0; rows.length < 1_500_000; i++) rows.push(`${i},${(Math.sin(i) * 1000).toFixed(6)},${i % 7}`);
    writeFileSync(big, rows.join("\n") + "\n");
    const size = statSync(big).size;
    expect(size).toBeGreaterThan(25 * 1024 * 1024);
    const sha = createHash("sha256").update(readFileSync(big)).digest("hex");
    const r = runner();
    const one = await r.prepare({ runId: "big-1", files: [{ source: big, dest: "data/big.csv" }], texts: {} });
    const cached = join(remoteDir, "cache", sha);
    const cachedAt = statSync(cached).mtimeMs;
    const two = await r.prepare({ runId: "big-2", files: [{ source: big, dest: "data/big.csv" }], texts: {} });
    for (const ws of [one, two]) expect(createHash("sha256").update(readFileSync(join(ws.dir, "data/big.csv"))).digest("hex")).toBe(sha);
    expect(statSync(cached).mtimeMs).toBe(cachedAt);
    expect(statSync(join(one.dir, "data/big.csv")).ino).not.toBe(statSync(cached).ino);
  });
});
