import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort } from "./ports.js";

// A real redis-server (Debian's package) on 127.0.0.1 and a random free port, for integration tests.
// Nothing is persisted unless asked; crash tests ask for `appendonly` and restart on the same folder.

export interface RedisServerOptions {
  /** Write an append-only file (fsync on every write unless `appendfsync` says otherwise). */
  appendonly?: boolean;
  appendfsync?: "always" | "everysec" | "no";
  /** Data folder; a fresh temporary one (removed on stop) when absent. */
  dir?: string;
  /** Port to listen on; a free one when absent. */
  port?: number;
  /** Milliseconds to wait for the first PING answer. */
  startTimeoutMs?: number;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Sends a signal (default SIGKILL) and waits for the process to exit; the data folder stays. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and folder (stopping it first if it runs); stop the returned one, not this. */
  restart(): Promise<RedisServer>;
  /** Stops the server and removes the data folder when this helper created it. */
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";

function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/bin", "/usr/sbin"];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The redis-server binary on PATH or in /usr/bin; a clear error naming the package when neither has it. */
export function findRedisServer(): string {
  const found = which("redis-server");
  if (!found) throw new Error("redis-server is not installed (looked on PATH and in /usr/bin): install Debian's redis-server package (apt-get install redis-server)");
  return found;
}


/** One PING over a raw socket: true when the server answers +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.connect(port, HOST, () => socket.write("PING\r\n"));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

// A test process that dies without its teardown must not leave servers behind.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });
}

async function launch(binary: string, port: number, dir: string, options: RedisServerOptions): Promise<ChildProcess> {
  const args = [
    "--port", String(port),
    "--bind", HOST,
    "--dir", dir,
    "--save", "",
    "--appendonly", options.appendonly ? "yes" : "no",
    "--appendfsync", options.appendfsync ?? "always",
    "--daemonize", "no",
    "--logfile", "",
    "--loglevel", "warning",
  ];
  // util-linux's setpriv (when present) makes the kernel kill the server if this process dies without
  // its teardown (a test run killed by a timeout); it execs, so the child is still redis-server itself.
  const setpriv = which("setpriv");
  const child = setpriv
    ? spawn(setpriv, ["--pdeathsig", "SIGKILL", binary, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  running.add(child);
  child.once("exit", () => running.delete(child));
  installExitHook();

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited before answering PING (port ${port}): ${output.trim() || `exit ${child.exitCode ?? child.signalCode}`}`);
    }
    if (await ping(port)) return child;
    await sleep(25);
  }
  child.kill("SIGKILL");
  await exited(child);
  throw new Error(`redis-server did not answer PING on port ${port} within ${options.startTimeoutMs ?? 15_000} ms: ${output.trim()}`);
}

/** Starts redis-server and resolves once it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "threadml-redis-"));
  try {
    return await startIn(findRedisServer(), dir, ownDir, options);
  } catch (err) {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(binary: string, dir: string, ownDir: boolean, options: RedisServerOptions): Promise<RedisServer> {
  let child: ChildProcess | undefined;
  let port = options.port ?? 0;
  // Another process may take the free port between the probe and the bind: try a few.
  for (let attempt = 0; !child; attempt += 1) {
    if (!options.port) port = await freePort();
    try {
      child = await launch(binary, port, dir, options);
    } catch (err) {
      if (options.port || attempt >= 4 || !/in use|bind/i.test((err as Error).message)) throw err;
    }
  }
  const proc = child;
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  const server: RedisServer = {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    dir,
    process: proc,
    async kill(signal = "SIGKILL") {
      proc.kill(signal);
      await exited(proc);
    },
    async restart() {
      if (alive()) await server.kill("SIGTERM");
      // The restarted server owns the folder from now on: stopping it removes a folder this helper made.
      return startIn(binary, dir, ownDir, { ...options, port });
    },
    async stop() {
      if (alive()) {
        proc.kill("SIGTERM");
        await exited(proc);
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
