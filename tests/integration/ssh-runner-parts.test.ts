import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { chooseGpus, parseNvidiaSmi } from "../../runners/ssh/gpu.js";
import { fingerprint, hostKeyPolicy, parseKnownHosts, patternsMatch } from "../../runners/ssh/hostkeys.js";
import { LineReader } from "../../runners/ssh/lines.js";
import { q, qPath } from "../../runners/ssh/shell.js";
import { Slots } from "../../runners/ssh/slots.js";
import { sshdMissing } from "../helpers/sshd.js";
import { tempDir } from "../helpers/tmp.js";

// The SSH runner's pure parts, checked against the real tools where there is one (ssh-keygen, sh).

const missing = sshdMissing();

// A missing sshd fails the suite with what to install, rather than skipping it silently.
if (missing) throw new Error(missing);

describe("host keys against ssh-keygen", () => {
  const tmp = tempDir("threadml-hostkeys-");
  const key = (name: string) => {
    const file = join(tmp.dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
    const line = readFileSync(`${file}.pub`, "utf8").trim();
    return { line, blob: Buffer.from(line.split(" ")[1], "base64"), fp: execFileSync("ssh-keygen", ["-lf", `${file}.pub`], { encoding: "utf8" }).split(" ")[1] };
  };
  const host = key("host");
  const other = key("other");

  it("computes OpenSSH's SHA256 fingerprint", () => {
    expect(fingerprint(host.blob)).toBe(host.fp);
  });

  it("trusts plain, bracketed and hashed known_hosts lines and refuses others", () => {
    const plain = tmp.write("kh-plain", `gpu.example.com,10.0.0.5 ${host.line}\n`);
    expect(hostKeyPolicy({ runner: "g", host: "10.0.0.5", port: 22, knownHosts: plain }).verify(host.blob)).toBeNull();
    expect(hostKeyPolicy({ runner: "g", host: "10.0.0.5", port: 2222, knownHosts: plain }).verify(host.blob)).toMatch(/not known/);

    const bracketed = tmp.write("kh-port", `# a comment\n[gpu.example.com]:2222 ${host.line}\n`);
    const policy = hostKeyPolicy({ runner: "g", host: "gpu.example.com", port: 2222, knownHosts: bracketed });
    expect(policy.verify(host.blob)).toBeNull();
    expect(policy.algorithms).toEqual(["ssh-ed25519"]);
    const changed = policy.verify(other.blob);
    expect(changed).toMatch(/CHANGED/);
    expect(changed).toContain(other.fp);
    expect(changed).toContain(host.fp);
    expect(changed).toContain(`hostKey: "${other.fp}" under runners.g`);

    // ssh-keygen -H hashes the host names as OpenSSH writes them with HashKnownHosts.
    const hashed = tmp.write("kh-hashed", `[gpu.example.com]:2222 ${host.line}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", hashed], { stdio: "ignore" });
    expect(readFileSync(hashed, "utf8")).toMatch(/^\|1\|/);
    expect(hostKeyPolicy({ runner: "g", host: "gpu.example.com", port: 2222, knownHosts: hashed }).verify(host.blob)).toBeNull();
    expect(hostKeyPolicy({ runner: "g", host: "gpu2.example.com", port: 2222, knownHosts: hashed }).verify(host.blob)).toMatch(/not known/);
  });

  it("honours wildcards, negation and @revoked, and explains a missing file", () => {
    expect(patternsMatch("*.example.com,!bad.example.com", "gpu.example.com")).toBe(true);
    expect(patternsMatch("*.example.com,!bad.example.com", "bad.example.com")).toBe(false);
    expect(patternsMatch("gpu?.lab", "gpu7.lab")).toBe(true);
    const revoked = tmp.write("kh-revoked", `@revoked * ${other.line}\n*.lab ${host.line}\n`);
    expect(hostKeyPolicy({ runner: "g", host: "a.lab", port: 22, knownHosts: revoked }).verify(other.blob)).toMatch(/@revoked/);
    expect(hostKeyPolicy({ runner: "g", host: "a.lab", port: 22, knownHosts: revoked }).verify(host.blob)).toBeNull();
    expect(parseKnownHosts("garbage\n\n# x\nh ssh-ed25519 !!!\n")).toEqual([]);
    const none = hostKeyPolicy({ runner: "g", host: "a.lab", port: 22, knownHosts: join(tmp.dir, "absent") }).verify(host.blob);
    expect(none).toMatch(/cannot be read \(it does not exist\)/);
    expect(none).toContain(`ssh-keyscan a.lab >> ${join(tmp.dir, "absent")}`);
  });

  it("accepts a configured fingerprint with or without padding", () => {
    expect(hostKeyPolicy({ runner: "g", host: "h", port: 22, hostKey: host.fp }).verify(host.blob)).toBeNull();
    expect(hostKeyPolicy({ runner: "g", host: "h", port: 22, hostKey: `${host.fp}=` }).verify(host.blob)).toBeNull();
    expect(hostKeyPolicy({ runner: "g", host: "h", port: 22, hostKey: host.fp }).verify(other.blob)).toMatch(/does not match the configured hostKey/);
  });
});

describe("GPU choice from nvidia-smi", () => {
  const smi = "0, 90, 15000, 16000\n1, 0, 300, 16000\n2, 10, 1000, 16000\n3, [N/A], [N/A], 16000\n";

  it("parses the CSV, counting unknown fields as busy", () => {
    expect(parseNvidiaSmi(smi)).toEqual([
      { index: 0, utilization: 90, memoryUsedMb: 15000, memoryTotalMb: 16000 },
      { index: 1, utilization: 0, memoryUsedMb: 300, memoryTotalMb: 16000 },
      { index: 2, utilization: 10, memoryUsedMb: 1000, memoryTotalMb: 16000 },
      { index: 3, utilization: 100, memoryUsedMb: 16000, memoryTotalMb: 16000 },
    ]);
    expect(parseNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the driver\n")).toEqual([]);
  });

  it("picks the least-loaded devices, the ones other jobs hold last", () => {
    const gpus = parseNvidiaSmi(smi);
    expect(chooseGpus("auto", 1, gpus).visible).toBe("1");
    expect(chooseGpus("auto", 2, gpus)).toMatchObject({ visible: "1,2", label: "GPUs 1, 2" });
    expect(chooseGpus("auto", 1, gpus, new Set([1])).visible).toBe("2");
    expect(chooseGpus("none", 1, gpus)).toMatchObject({ visible: "", devices: [] });
    expect(chooseGpus("auto", 1, null)).toMatchObject({ visible: null, label: expect.stringMatching(/nvidia-smi not found/) });
    expect(chooseGpus("auto", 1, [])).toMatchObject({ visible: "" });
  });

  it("gives a job exactly the configured devices that are present", () => {
    const gpus = parseNvidiaSmi(smi);
    expect(chooseGpus([0, 3], 1, gpus)).toMatchObject({ visible: "0,3", label: "GPUs 0, 3" });
    expect(chooseGpus([0, 7], 1, gpus).visible).toBe("0");
    expect(chooseGpus([7], 1, gpus)).toMatchObject({ visible: "", label: expect.stringMatching(/none of the configured GPUs 7/) });
    expect(chooseGpus([2, 5], 1, null).visible).toBe("2,5");
  });
});

describe("following a log by byte offset", () => {
  it("hands on whole lines only and commits the offset of the first incomplete one", () => {
    const r = new LineReader(100);
    expect(r.push(Buffer.from('{"a":1}\n{"b"'))).toEqual(['{"a":1}']);
    expect(r.committed).toBe(108);
    expect(r.push(Buffer.from(":2}\r\nhé"))).toEqual(['{"b":2}']);
    // "hé" is 3 bytes, still pending
    expect(r.offset).toBe(100 + 20);
    expect(r.committed).toBe(117);
    expect(r.flush()).toEqual(["hé"]);
    // A multi-byte character split across reads survives.
    const s = new LineReader(0);
    const bytes = Buffer.from("é\n");
    expect(s.push(bytes.subarray(0, 1))).toEqual([]);
    expect(s.push(bytes.subarray(1))).toEqual(["é"]);
  });
});

describe("sh quoting", () => {
  const tmp = tempDir("threadml-quote-");
  it("round-trips any text through a real sh", () => {
    const weird = `it's "quoted" $HOME \`x\` \\ back\nslash; rm -rf / #`;
    const script = tmp.write("q.sh", `printf '%s' ${q(weird)}`);
    expect(execFileSync("sh", [script], { encoding: "utf8" })).toBe(weird);
    writeFileSync(script, `HOME=/h; printf '%s' ${qPath("~/a b/c'd")}`);
    expect(execFileSync("sh", [script], { encoding: "utf8" })).toBe("/h/a b/c'd");
  });
});

describe("job slots", () => {
  it("lets maxJobs jobs run and queues the rest; an aborted waiter leaves the queue", async () => {
    const slots = new Slots(1);
    expect(await slots.acquire()).toBe(true);
    const ctl = new AbortController();
    const aborted = slots.acquire(ctl.signal);
    const waiting = slots.acquire();
    ctl.abort();
    expect(await aborted).toBe(false);
    let got = false;
    void waiting.then(() => (got = true));
    await Promise.resolve();
    expect(got).toBe(false);
    slots.release();
    expect(await waiting).toBe(true);
  });
});
