import { mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import type { SFTPWrapper } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionLost, SshError, type HostLink } from "../../runners/ssh/connection.js";
import { phaseOf, readJobFiles } from "../../runners/ssh/job.js";
import { LocalLink } from "../../runners/ssh/local-link.js";
import { healthCheck, localForward } from "../../runners/ssh/serve.js";
import { closeHandle, downloadDir, isMissing, open, readAt, readTail, readText, stat, upload, writeText } from "../../runners/ssh/sftp.js";
import { fillWorkspace, mkdirp } from "../../runners/ssh/upload.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("threadml-local-link-");
const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };
const link = new LocalLink("local", quiet);
// Compile-time check: the runner's code takes a LocalLink wherever it takes an SshConnection.
const _asHost: HostLink = link;
let sftp: SFTPWrapper;
const started: number[] = [];

beforeAll(async () => {
  sftp = await link.sftp();
});
afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

// A zombie counts as gone (a container's init may not reap the orphans).
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};
const cb = <T = void>(fn: (done: (err: Error | null | undefined, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

describe("LocalLink.exec", () => {
  it("runs the lines as one sh script and collects output, status and stderr", async () => {
    const r = await link.exec([`x=hello`, `echo "$x"`, `echo oops >&2`, `exit 3`]);
    expect(r).toEqual({ code: 3, signal: null, stdout: "hello\n", stderr: "oops\n" });
    // A command that reads stdin cannot swallow the rest of the script.
    expect((await link.exec([`cat`, `echo after`])).stdout).toBe("after\n");
  });

  it("starts in the home folder, as an SSH login does", async () => {
    expect((await link.exec([`pwd -P`])).stdout.trim()).toBe(realpathSync(os.homedir()));
    expect((await stat(sftp, "."))?.isDirectory()).toBe(true);
  });

  it("gives the scripts the environment it was given", async () => {
    const l = new LocalLink("env", quiet, { PATH: process.env.PATH, ONLY_THIS: "1" });
    expect((await l.exec([`echo "$ONLY_THIS"`, `env | grep -c '^HOME=' || true`])).stdout).toBe("1\n0\n");
    expect((await link.exec([`echo "$HOME"`])).stdout.trim()).toBe(process.env.HOME);
  });

  it("has no terminal", async () => {
    expect((await link.exec([`[ -t 0 ] || [ -t 1 ] && echo tty; tty >/dev/null 2>&1 && echo ctty; echo done`])).stdout).toBe("done\n");
  });

  it("rejects with ConnectionLost after the timeout and kills the script's processes", async () => {
    const pidFile = join(tmp.dir, "bg.pid");
    const t0 = Date.now();
    await expect(link.exec([`sleep 30 & echo $! > '${pidFile}'`, `wait`], { timeoutMs: 300 })).rejects.toBeInstanceOf(ConnectionLost);
    expect(Date.now() - t0).toBeLessThan(2000);
    const pid = Number(readFileSync(pidFile, "utf8"));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid)).toBe(false);
  });

  it("returns at once from a script that starts a detached job, which keeps running", async () => {
    const t0 = Date.now();
    const r = await link.exec([`setsid nohup sleep 5 >/dev/null 2>&1 &`, `echo $!`]);
    expect(Date.now() - t0).toBeLessThan(1500);
    const pid = Number(r.stdout.trim());
    started.push(pid);
    expect(r.code).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(alive(pid)).toBe(true);
  });

  it("does not wait for a background process that kept the output open", async () => {
    const t0 = Date.now();
    const r = await link.exec([`sleep 5 &`, `echo $!`, `echo bye`]);
    started.push(Number(r.stdout.split("\n")[0]));
    expect(r.stdout.endsWith("bye\n")).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("LocalLink.sftp with the SSH runner's helpers", () => {
  it("stat: null when missing, attributes with times in seconds", async () => {
    expect(await stat(sftp, join(tmp.dir, "nope"))).toBeNull();
    const file = tmp.write("a.txt", "12345");
    const st = (await stat(sftp, file))!;
    expect(st.size).toBe(5);
    expect(st.isFile() && !st.isDirectory() && !st.isSymbolicLink()).toBe(true);
    expect(Number.isInteger(st.mtime)).toBe(true);
    expect(st.mtime).toBe(Math.floor(statSync(file).mtimeMs / 1000));
    expect(Math.abs(st.mtime - Date.now() / 1000)).toBeLessThan(60);
    expect((await stat(sftp, tmp.dir))?.isDirectory()).toBe(true);
  });

  it("writeText / readText / readTail, replacing an existing file", async () => {
    const file = join(tmp.dir, "w.txt");
    await writeText(sftp, file, "first");
    await writeText(sftp, file, "second version", 0o755);
    expect(await readText(sftp, file)).toBe("second version");
    expect((await readTail(sftp, file, 7))?.toString()).toBe("version");
    expect(await readText(sftp, join(tmp.dir, "missing.txt"))).toBeNull();
    expect(readdirSync(tmp.dir).filter((n) => n.includes(".part-"))).toEqual([]);
  });

  it("open / readAt at offsets, empty at the end; handles are closed", async () => {
    const file = tmp.write("r.txt", "0123456789");
    const h = await open(sftp, file, "r");
    expect((await readAt(sftp, h, 3, 4)).toString()).toBe("3456");
    expect((await readAt(sftp, h, 8, 100)).toString()).toBe("89");
    expect((await readAt(sftp, h, 10, 100)).length).toBe(0);
    await closeHandle(sftp, h);
    await expect(readAt(sftp, h, 0, 1)).rejects.toMatchObject({ code: 4 });
    await expect(open(sftp, join(tmp.dir, "none"), "r")).rejects.toSatisfy(isMissing);
  });

  it("mkdirp makes parents and accepts an existing folder; mkdir fails on one with SFTP's code", async () => {
    const dir = join(tmp.dir, "m", "n", "o");
    await mkdirp(sftp, dir);
    await mkdirp(sftp, dir);
    expect(statSync(dir).isDirectory()).toBe(true);
    await expect(cb((done) => sftp.mkdir(dir, done))).rejects.toMatchObject({ code: 4 });
    tmp.write("plain", "x");
    await expect(mkdirp(sftp, join(tmp.dir, "plain"))).rejects.toThrow(/not a folder/);
  });

  it("rename refuses an existing target; ext_openssh_rename replaces it; unlink of a missing file is a missing error", async () => {
    const a = tmp.write("ra", "A");
    const b = tmp.write("rb", "B");
    await expect(cb((done) => sftp.rename(a, b, done))).rejects.toMatchObject({ code: 4 });
    expect(readFileSync(a, "utf8")).toBe("A");
    await cb((done) => sftp.rename(a, join(tmp.dir, "rc"), done));
    await cb((done) => sftp.ext_openssh_rename(join(tmp.dir, "rc"), b, done));
    expect(readFileSync(b, "utf8")).toBe("A");
    await expect(cb((done) => sftp.unlink(a, done))).rejects.toSatisfy(isMissing);
  });

  it("upload and downloadDir (links not followed)", async () => {
    const src = tmp.write("up.bin", "payload");
    const dest = join(tmp.dir, "remote-up.bin");
    await upload(sftp, src, dest);
    expect(readFileSync(dest, "utf8")).toBe("payload");

    const out = join(tmp.dir, "out");
    mkdirSync(join(out, "sub"), { recursive: true });
    writeFileSync(join(out, "result.json"), "{}");
    writeFileSync(join(out, "sub", "plot.png"), "png!");
    symlinkSync("/etc/hostname", join(out, "link"));
    const local = join(tmp.dir, "fetched");
    expect(await downloadDir(sftp, out, local, 1024)).toBe(6);
    expect(readFileSync(join(local, "sub", "plot.png"), "utf8")).toBe("png!");
    expect(readdirSync(local).sort()).toEqual(["result.json", "sub"]);
    await expect(downloadDir(sftp, out, join(tmp.dir, "fetched2"), 3)).rejects.toThrow(/exceed/);
    expect(await downloadDir(sftp, join(tmp.dir, "no-out"), join(tmp.dir, "f3"), 1024)).toBe(0);
  });

  it("fillWorkspace fills a workspace through the cache", async () => {
    const base = join(tmp.dir, "work");
    const data = tmp.write("train.csv", "a,b\n1,2\n");
    const harness = tmp.write("harness.py", "print('hi')\n");
    const plan = (ws: string) => ({
      ws,
      cacheDir: join(base, "cache"),
      files: [
        { source: harness, dest: "harness.py" },
        { source: data, dest: "data/train.csv" },
      ],
      texts: [{ dest: "gen/solution.py", content: "x = 1\n" }],
    });
    await fillWorkspace(link, plan(join(base, "runs", "r1")));
    await fillWorkspace(link, plan(join(base, "runs", "r2")));
    for (const r of ["r1", "r2"]) {
      const ws = join(base, "runs", r);
      expect(readFileSync(join(ws, "data", "train.csv"), "utf8")).toBe("a,b\n1,2\n");
      expect(readFileSync(join(ws, "harness.py"), "utf8")).toBe("print('hi')\n");
      expect(readFileSync(join(ws, "gen", "solution.py"), "utf8")).toBe("x = 1\n");
    }
    expect(readdirSync(join(base, "cache"))).toHaveLength(2);
  });

  it("readJobFiles reads a job folder's state", async () => {
    const ws = join(tmp.dir, "job-ws");
    const J = join(ws, ".job");
    mkdirSync(join(J, "lock"), { recursive: true });
    writeFileSync(join(J, "pid"), "4242\n");
    writeFileSync(join(J, "wrapper.pid"), "4241\n");
    writeFileSync(join(J, "started"), "1700000000\n");
    writeFileSync(join(J, "spec.sha"), "abc123\n");
    let s = await readJobFiles(sftp, ws, "job", join(ws, "out", "result.json"));
    expect(s).toMatchObject({ ws: true, lock: true, pid: 4242, wpid: 4241, started: 1700000000, spec: "abc123", result: false, liveness: false });
    expect(s.exit).toBeUndefined();
    writeFileSync(join(J, "exit"), "0\n");
    writeFileSync(join(J, "timedout"), "");
    s = await readJobFiles(sftp, ws, "job", null);
    expect(s).toMatchObject({ exit: 0, timedout: true, cancelled: false, ended: Math.floor(statSync(join(J, "exit")).mtimeMs / 1000) });
    expect(phaseOf(s)).toBe("finished");
    expect((await readJobFiles(sftp, join(tmp.dir, "no-ws"), "job", null)).ws).toBe(false);
  });
});

describe("LocalLink.forwardOut", () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.statusCode = req.url === "/health" ? 200 : 404;
      res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("reaches a local server, through healthCheck and localForward", async () => {
    expect(await healthCheck(link, "127.0.0.1", port)).toBe(true);
    expect(await healthCheck(link, "0.0.0.0", port)).toBe(true);
    const fwd = await localForward(link, "127.0.0.1", port, quiet);
    try {
      const res = await fetch(`http://127.0.0.1:${(fwd.address() as net.AddressInfo).port}/health`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("ok");
    } finally {
      fwd.close();
    }
  });

  it("rejects when nothing listens", async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", () => r()));
    const unused = (free.address() as net.AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    await expect(link.forwardOut("127.0.0.1", unused)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("LocalLink lifecycle", () => {
  it("is never lost, and refuses work once closed", async () => {
    const l = new LocalLink("other", quiet);
    expect(l.target).toBe("this machine");
    expect(l.connected).toBe(true);
    l.onLost(() => undefined)();
    l.drop();
    await l.connect();
    expect((await l.exec([`echo ok`])).stdout).toBe("ok\n");
    l.close();
    expect(l.connected).toBe(false);
    for (const p of [l.exec([`true`]), l.sftp(), l.connect(), l.forwardOut("127.0.0.1", 1)])
      await expect(p).rejects.toSatisfy((e: unknown) => e instanceof SshError && e.permanent);
  });
});
