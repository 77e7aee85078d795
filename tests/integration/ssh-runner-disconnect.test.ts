import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshRunnerConfig } from "../../config/schema.js";
import type { HarnessEvent, HarnessSpecInput } from "../../runners/contract.js";
import { SshRunner } from "../../runners/ssh/index.js";
import { createLogger } from "../../src/logger.js";
import { requirePython } from "../helpers/cli.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { GATE_SOLUTION, sshdMissing, startProxy, startSshd, until, type Proxy, type Sshd } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// Dropped connections during training: a TCP proxy between the runner and a real sshd is severed
// several times while the job runs. The job must never notice: same process, started once, every
// event delivered exactly once, and the same metrics as an undisturbed run.
// THREADML_SSH_DISCONNECTS sets how many times (default 3); the summary line reports reconnect times.

const PYTHON = process.env.THREADML_PYTHON ?? "/usr/bin/python3";
const CUTS = Number(process.env.THREADML_SSH_DISCONNECTS ?? 3);
const missing = sshdMissing();
if (missing) console.warn(`Skipping the SSH disconnect tests: ${missing}`);

const SPEC: HarnessSpecInput = { mode: "train", task: "classification", data: "data/bananas.csv", target: "Quality", metric: "accuracy", seed: 42 };
const LIMITS = { wallTimeS: 600, cpuS: 600, memoryMb: 4096 };

// A missing sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

describe("the SSH runner across dropped connections", () => {
  const tmp = tempDir("threadml-ssh-cut-");
  let sshd: Sshd;
  let proxy: Proxy;
  let runner: SshRunner;
  let data: string;
  let baselineMetrics: Record<string, number>;
  const input = (runId: string, extra: Record<string, string> = {}) => ({
    runId,
    files: [{ source: data, dest: "data/bananas.csv" }],
    texts: { "solution.py": GATE_SOLUTION, ...extra },
  });

  beforeAll(async () => {
    requirePython();
    sshd = await startSshd();
    proxy = await startProxy(sshd.host, sshd.port);
    data = join(tmp.dir, "bananas.csv");
    writeClassificationCsv(data, { rows: 600, seed: 101 });
    const config = SshRunnerConfig.parse({
      kind: "ssh",
      host: "127.0.0.1",
      port: proxy.port,
      user: sshd.user,
      identityFile: sshd.identityFile,
      hostKey: sshd.hostKeyFingerprint,
      workdir: join(tmp.dir, "remote"),
      python: PYTHON,
      keepaliveS: 2,
    });
    runner = new SshRunner({ name: "gpu1", config, dataDir: join(tmp.dir, "local"), logger: createLogger("silent") });
    // An undisturbed run of the same job: what every disturbed one must give.
    const calm = await runner.run(await runner.prepare(input("calm", { release: "" })), { spec: SPEC, limits: LIMITS });
    expect(calm.result?.status).toBe("ok");
    baselineMetrics = calm.result!.metrics;
  });
  afterAll(async () => {
    await runner?.close();
    await proxy?.close();
    await sshd?.stop();
  });

  it(`loses no job and starts none twice across ${CUTS} severed connections`, { timeout: 120_000 + CUTS * 20_000 }, async () => {
    const ws = await runner.prepare(input("stormy"));
    const waits: number[] = [];
    const notices: string[] = [];
    const metricEvents: HarnessEvent[] = [];
    const outcome = runner.run(ws, {
      spec: SPEC,
      limits: LIMITS,
      onEvent: (e) => {
        if (e.event === "progress" && e.stage === "waiting") waits.push(e.done ?? -1);
        if (e.event === "metric") metricEvents.push(e);
      },
      onNotice: (n) => notices.push(n),
    });
    await until(() => waits.length >= 3, "the job's first events");
    const pid = readFileSync(join(ws.dir, ".job/pid"), "utf8");
    const reconnected = () => notices.filter((n) => n.startsWith("Reconnected to gpu1")).length;
    const downMs: number[] = [];
    for (let cut = 1; cut <= CUTS; cut++) {
      const seen = waits.length;
      const t = Date.now();
      expect(proxy.sever()).toBeGreaterThan(0);
      await until(() => reconnected() >= cut, `reconnect ${cut}`);
      downMs.push(Date.now() - t);
      await until(() => waits.length >= seen + 2, `events after reconnect ${cut}`);
    }
    writeFileSync(join(ws.dir, "release"), "");
    const out = await outcome;

    expect(out.result?.status).toBe("ok");
    expect(out.result!.metrics).toEqual(baselineMetrics);
    expect(readFileSync(join(ws.dir, ".job/pid"), "utf8")).toBe(pid);
    const starts = readFileSync(join(ws.dir, "starts.log"), "utf8").split("\n").filter((l) => l.startsWith("job "));
    expect(starts).toHaveLength(1);
    expect(waits).toEqual(waits.map((_, i) => i));
    expect(notices.filter((n) => n.startsWith("Lost the connection to gpu1"))).toHaveLength(CUTS);
    expect(reconnected()).toBe(CUTS);
    expect(proxy.accepted).toBeGreaterThanOrEqual(CUTS + 1);
    const testMetrics = metricEvents.filter((e) => e.event === "metric" && e.split === "test");
    expect(testMetrics.length).toBe(Object.keys(out.result!.metrics).length);
    downMs.sort((a, b) => a - b);
    console.log(
      `ssh disconnects: ${CUTS} cuts, ${proxy.accepted} connections, ${waits.length} events in order, reconnect ms median ${downMs[Math.floor(CUTS / 2)]} max ${downMs[CUTS - 1]}`,
    );
  });

  it("a cut while the job starts or while its result is fetched neither starts it twice nor loses the result", async () => {
    const ws = await runner.prepare(input("edges", { release: "" }));
    // Cut the link the moment the host shows the job claimed (start script running) and exited
    // (result being fetched). When a cut lands a little late the run is merely calmer.
    const cuts: string[] = [];
    let watching = true;
    const watch = (async () => {
      for (const [file, phase] of [[".job/lock", "start"], [".job/exit", "fetch"]] as const) {
        while (watching && !existsSync(join(ws.dir, file))) await new Promise((r) => setTimeout(r, 2));
        if (watching && proxy.sever() > 0) cuts.push(phase);
      }
    })();
    const notices: string[] = [];
    const out = await runner.run(ws, { spec: SPEC, limits: LIMITS, onNotice: (n) => notices.push(n) });
    watching = false;
    await watch;
    expect(out.result?.status).toBe("ok");
    expect(out.result!.metrics).toEqual(baselineMetrics);
    expect(existsSync(join(ws.localDir, out.result!.model_path!))).toBe(true);
    const starts = readFileSync(join(ws.dir, "starts.log"), "utf8").split("\n").filter((l) => l.startsWith("job "));
    expect(starts).toHaveLength(1);
    expect(cuts.length).toBeGreaterThan(0);
  });
});
