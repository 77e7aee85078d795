import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

// A real OpenSSH sshd for tests: 127.0.0.1 on a free port, a temporary host key, one authorized
// client key, running as the current user (root included: then root may log in with a key only).
// Plus a TCP proxy in front of it whose connections a test can sever.

export const SSHD = "/usr/sbin/sshd";

/** Why the SSH tests cannot run here, or null when they can. */
export function sshdMissing(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is missing: install openssh-server (Debian/Ubuntu: apt-get install openssh-server) to run the SSH runner tests`;
  try {
    execFileSync("ssh-keygen", ["-?"], { stdio: "ignore" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "ssh-keygen is missing: install openssh-client to run the SSH runner tests";
  }
  return null;
}

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** Private key the server accepts. */
  identityFile: string;
  /** The host key's fingerprint as ssh-keygen prints it ("SHA256:…"). */
  hostKeyFingerprint: string;
  /** A known_hosts file listing this server. */
  knownHostsFile: string;
  dir: string;
  /** sshd's own log (stderr), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}


function keygen(file: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "threadml-test", "-f", file], { stdio: "ignore" });
}

export async function startSshd(): Promise<Sshd> {
  const missing = sshdMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(path.join(os.tmpdir(), "threadml-sshd-"));
  const hostKey = path.join(dir, "host_ed25519");
  const clientKey = path.join(dir, "client_ed25519");
  keygen(hostKey);
  keygen(clientKey);
  writeFileSync(path.join(dir, "authorized_keys"), readFileSync(`${clientKey}.pub`));
  const isRoot = process.getuid?.() === 0;
  // sshd running as root insists on its privilege-separation folder (Debian's service creates it).
  if (isRoot && !existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const user = os.userInfo().username;
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${hostKey}.pub`], { encoding: "utf8" }).split(/\s+/)[1];

  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const config = path.join(dir, "sshd_config");
    writeFileSync(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
        "StrictModes no",
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        `PermitRootLogin ${isRoot ? "prohibit-password" : "no"}`,
        `AllowUsers ${user}`,
        "AllowTcpForwarding yes",
        "MaxSessions 20",
        "MaxStartups 50",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
      ].join("\n"),
    );
    const child: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (log = (log + d).slice(-64 * 1024)));
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 15_000);
      const check = () => {
        if (/Server listening on/.test(log)) {
          clearTimeout(timer);
          resolve(true);
        } else if (/Bind to port .* failed|Cannot bind any address/.test(log)) {
          clearTimeout(timer);
          resolve(false);
        }
      };
      child.stderr!.on("data", check);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready) {
      child.kill("SIGKILL");
      if (/Bind to port|Cannot bind/.test(log)) continue;
      throw new Error(`sshd did not start:\n${log}`);
    }
    const knownHostsFile = path.join(dir, "known_hosts");
    writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
    const kill = () => child.kill("SIGTERM");
    process.once("exit", kill);
    return {
      host: "127.0.0.1",
      port,
      user,
      identityFile: clientKey,
      hostKeyFingerprint: fingerprint,
      knownHostsFile,
      dir,
      log: () => log,
      stop: async () => {
        process.removeListener("exit", kill);
        if (child.exitCode === null) {
          child.kill("SIGTERM");
          await new Promise((r) => child.once("exit", r));
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error("sshd could not bind a free port after 5 attempts");
}

/** A TCP proxy to host:port whose open connections can be cut at once (a dropped network link). */
export interface Proxy {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys every open connection; returns how many there were. */
  sever(): number;
  close(): Promise<void>;
}

export async function startProxy(host: string, port: number): Promise<Proxy> {
  const open = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(port, host);
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    sever() {
      const n = [...open].length / 2;
      for (const s of [...open]) s.destroy();
      open.clear();
      return Math.round(n);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A harness solution for runner tests: it logs CUDA_VISIBLE_DEVICES, optionally starts a child process
 * (file `spawn_child` in the workspace; its pid goes to `child.pid`), then emits numbered "waiting"
 * progress events until a file `release` appears in the workspace, and only then trains.
 */
export const GATE_SOLUTION = `import os
import subprocess
import sys
import time

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline


def build(ctx):
    ctx.log("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    return Pipeline([("pre", ctx.preprocessor(encode="ordinal")), ("model", HistGradientBoostingClassifier(max_iter=50, random_state=ctx.seed))])


def fit(model, train, valid, ctx):
    if os.path.exists("spawn_child"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open("child.pid", "w") as f:
            f.write(str(child.pid))
    i = 0
    while not os.path.exists("release"):
        ctx.progress("waiting", i)
        i += 1
        time.sleep(0.1)
    model.fit(train.X, train.y)
    return model
`;
import { freePort } from "./ports.js";

/** Polls until the condition holds; the timeout only guards against a hang (no timing is asserted). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  while (!(await cond())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
