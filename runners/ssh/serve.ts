import { readFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { fromRoot } from "../../src/paths.js";
import { parseBoundLine, parseEventLine } from "../contract.js";
import type { ModelServer } from "../types.js";
import type { ConnLogger, HostLink } from "./connection.js";
import { bwrapProbeScript, jobDir, parseJobState, phaseOf, retireScript, SANDBOX_SH, startScript, stateScript, stopScript, wrapperScript } from "./job.js";
import { withReconnect, type ReconnectHooks } from "./reconnect.js";
import { readTail, readText, stat, writeText } from "./sftp.js";
import type { RunContext } from "./run.js";
import { pjoin, q } from "./shell.js";

// The model server on the host: started detached like a job, checked with GET /health through the
// SSH connection, and reported at an address the bot can reach — the host's own when it is served
// on a reachable interface, else a local port forwarded over SSH (plus the `ssh -L` line for others).

const LISTEN_TIMEOUT_MS = 60_000;

export interface ServeContext extends Pick<RunContext, "conn" | "runner" | "config" | "log" | "python" | "ws" | "pickGpus"> {
  signal?: AbortSignal;
  onNotice?: (text: string) => void;
  /** The host is this machine (a cluster driven from here): the server's own address is reachable, no forward. */
  here?: boolean;
}

/** A model server on the host, with what the thread should be told about reaching it. */
export interface SshModelServer extends ModelServer {
  /** The server's address on the host. */
  remote: { host: string; port: number };
  /** How to reach it from another machine when it only listens on the host's loopback. */
  tunnel: string | null;
}

export class RemoteServeError extends Error {
  constructor(
    message: string,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = "RemoteServeError";
  }
}

const LOOPBACK = /^(127\.|localhost$|::1$|\[::1\]$)/i;
const WILDCARD = /^(0\.0\.0\.0|::|\[::\])$/;

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** GET /health over an SSH channel to the server. */
export async function healthCheck(conn: HostLink, host: string, port: number): Promise<boolean> {
  const channel = await conn.forwardOut(WILDCARD.test(host) ? "127.0.0.1" : host, port);
  return new Promise<boolean>((resolve) => {
    const req = http.request(
      { createConnection: () => channel as unknown as net.Socket, path: "/health", method: "GET", headers: { Host: `${formatHost(host)}:${port}`, Connection: "close" }, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200));
        res.on("error", () => resolve(false));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** A local TCP port whose connections are carried over SSH to host:port on the runner's host. */
export async function localForward(conn: HostLink, host: string, port: number, log: ConnLogger): Promise<net.Server> {
  const target = WILDCARD.test(host) ? "127.0.0.1" : host;
  const server = net.createServer((sock) => {
    sock.pause();
    conn.forwardOut(target, port, sock.remoteAddress ?? "127.0.0.1", sock.remotePort ?? 0).then(
      (channel) => {
        sock.pipe(channel).pipe(sock);
        sock.resume();
        const end = () => {
          sock.destroy();
          channel.close();
        };
        sock.on("error", end);
        channel.on("error", end);
        channel.on("close", () => sock.destroy());
      },
      (err: Error) => {
        log.debug({ err: err.message }, "port forward failed");
        sock.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return server;
}

export async function startRemoteServer(ctx: ServeContext): Promise<SshModelServer> {
  const { conn, ws, config, runner } = ctx;
  const where = `${runner} (${config.host})`;
  const S = jobDir(ws.dir, "serve");
  const hooks: ReconnectHooks = { maxDownMs: () => 60_000 };
  const remote = <T>(step: () => Promise<T>) => withReconnect(conn, step, hooks);
  const state = async () => parseJobState((await conn.exec(stateScript(ws.dir, "serve", null))).stdout);

  // A server already running for this workspace (ThreadML restarted after deploying) is reused.
  let s = await remote(state);
  if (!s.ws) throw new Error(`the workspace ${ws.dir} does not exist on ${where}`);
  let listening = phaseOf(s) === "running" ? await remote(() => findListening(conn, S)) : null;
  if (!listening) {
    if (phaseOf(s) === "running") await remote(() => conn.exec(stopScript(ws.dir, "serve", null)));
    // Always: a .serve folder without a running server may hold files the training job left to be imported.
    await remote(() => conn.exec(retireScript(ws.dir, "serve")));
    const gpus = await remote(() => ctx.pickGpus());
    // With bubblewrap the launcher binds the socket and the server runs without network, the workspace
    // read-only; without it the server binds by itself, unsandboxed, as training jobs run there.
    const bwrap = (await remote(() => conn.exec(bwrapProbeScript()))).stdout.match(/bwrap=(\w+)/)?.[1] ?? "missing";
    const sandboxed = bwrap === "ok";
    const launcher = sandboxed ? await readFile(fromRoot("runners/python/serve_launch.py"), "utf8") : null;
    // Relative to the workspace, where the wrapper runs.
    const args = sandboxed
      ? // -I: the launcher runs unsandboxed, so nothing beside it may shadow a module it imports.
        ["-I", ".serve/launch.py", "--host", config.serveHost, "--port", "0", "--", "sh", ".serve/sandbox.sh", "serve.py", "--workspace", ws.dir]
      : ["serve.py", "--host", config.serveHost, "--port", "0", "--workspace", ws.dir];
    const wrapper = wrapperScript({ ws: ws.dir, kind: "serve", setup: config.setup, python: ctx.python, args, cudaVisible: gpus.visible });
    await remote(async () => {
      const r = await conn.exec([`mkdir -p ${q(S)}`]);
      if (r.code !== 0) throw new Error(`cannot create ${S} on ${where}: ${r.stderr.trim()}`);
      const sftp = await conn.sftp();
      await writeText(sftp, pjoin(S, "run.sh"), wrapper, 0o755);
      if (launcher !== null) {
        await writeText(sftp, pjoin(S, "launch.py"), launcher, 0o644);
        await writeText(sftp, pjoin(S, "sandbox.sh"), SANDBOX_SH, 0o644);
      }
    });
    if (!sandboxed) {
      const why = bwrap === "broken" ? "bubblewrap does not work on the host" : "bubblewrap is not installed on the host";
      const text = `The model server on ${where} runs without a sandbox (with the host's network and a writable workspace) because ${why}; install bubblewrap there to isolate it.`;
      ctx.log.warn({ runId: ws.runId, bwrap }, text);
      try {
        ctx.onNotice?.(text);
      } catch {
        // a faulty listener must not stop the deployment
      }
    }
    const start = await remote(() => conn.exec(startScript(ws.dir, "serve", null)));
    if (!/start=(ok|busy)/.test(start.stdout)) throw new Error(`the model server could not be started on ${where}: ${(start.stderr || start.stdout).trim().slice(-500)}`);
    listening = await waitListening(ctx, S);
  }

  const { host, port } = listening;
  let healthy = false;
  for (let i = 0; i < 3 && !healthy; i++) healthy = await remote(() => healthCheck(conn, host, port));
  if (!healthy) {
    await remote(() => conn.exec(stopScript(ws.dir, "serve", null))).catch(() => undefined);
    throw new RemoteServeError(`the model server on ${where} listens on ${host}:${port} but GET /health failed`, "");
  }

  const reachable = ctx.here
    ? WILDCARD.test(host)
      ? "127.0.0.1"
      : host
    : (config.publicHost ?? (LOOPBACK.test(config.serveHost) ? null : WILDCARD.test(config.serveHost) ? config.host : config.serveHost));
  let forward: net.Server | null = null;
  let url: string;
  let tunnel: string | null = null;
  let urlHost: string;
  let urlPort: number;
  if (reachable) {
    urlHost = reachable;
    urlPort = port;
    url = `http://${formatHost(reachable)}:${port}`;
  } else {
    forward = await localForward(conn, host, port, ctx.log);
    urlHost = "127.0.0.1";
    urlPort = (forward.address() as net.AddressInfo).port;
    url = `http://127.0.0.1:${urlPort}`;
    tunnel = `ssh -N -L ${port}:${formatHost(host)}:${port}${config.port === 22 ? "" : ` -p ${config.port}`} ${config.user}@${config.host}`;
  }
  const text = reachable
    ? `The model server runs on ${where} at ${url}.`
    : `The model server runs on ${where} at ${formatHost(host)}:${port}, which only the host can reach; it is forwarded here through SSH at ${url}. From another machine: ${tunnel} and then use http://127.0.0.1:${port}.`;
  ctx.log.info({ runId: ws.runId, url, remote: `${host}:${port}` }, text);
  try {
    ctx.onNotice?.(text);
  } catch {
    // a faulty listener must not stop the deployment
  }

  let stopping: Promise<void> | null = null;
  return {
    url,
    host: urlHost,
    port: urlPort,
    remote: { host, port },
    tunnel,
    stop: () => {
      stopping ??= (async () => {
        forward?.close();
        await withReconnect(conn, () => conn.exec(stopScript(ws.dir, "serve", null)), { maxDownMs: () => 15_000 }).catch((err: Error) =>
          ctx.log.warn({ runId: ws.runId, err: err.message }, "could not stop the model server on the host"),
        );
      })();
      return stopping;
    },
  };
}

/**
 * The server's address once it says it listens. When the launcher started it, the address is the one
 * on its first line (printed before any generated code ran), never what the server itself reports.
 */
async function findListening(conn: HostLink, S: string): Promise<{ host: string; port: number } | null> {
  const text = await readText(await conn.sftp(), pjoin(S, "out"), 1024 * 1024);
  const lines = (text ?? "").split("\n");
  const bound = parseBoundLine(lines[0] ?? "");
  for (const line of bound ? lines.slice(1) : lines) {
    const event = parseEventLine(line);
    if (event?.event === "listening") return bound ?? { host: event.host, port: event.port };
  }
  return null;
}


async function waitListening(ctx: ServeContext, S: string): Promise<{ host: string; port: number }> {
  const { conn } = ctx;
  const where = `${ctx.runner} (${ctx.config.host})`;
  const hooks: ReconnectHooks = { maxDownMs: () => 60_000 };
  const started = Date.now();
  for (let delay = 100; ; delay = Math.min(1000, delay * 1.5)) {
    if (ctx.signal?.aborted) {
      await withReconnect(conn, () => conn.exec(stopScript(ctx.ws.dir, "serve", null)), hooks).catch(() => undefined);
      throw new Error("serve cancelled");
    }
    const found = await withReconnect(conn, () => findListening(conn, S), hooks);
    if (found) return found;
    const exited = await withReconnect(conn, async () => (await stat(await conn.sftp(), pjoin(S, "exit"))) !== null, hooks);
    if (exited || Date.now() - started > LISTEN_TIMEOUT_MS) {
      if (!exited) await withReconnect(conn, () => conn.exec(stopScript(ctx.ws.dir, "serve", null)), hooks).catch(() => undefined);
      const tail = await withReconnect(conn, async () => ((await readTail(await conn.sftp(), pjoin(S, "err"), 8192)) ?? Buffer.alloc(0)).toString("utf8"), hooks);
      const why = exited ? "exited before listening" : `did not report listening within ${LISTEN_TIMEOUT_MS / 1000} s`;
      throw new RemoteServeError(`the model server on ${where} ${why}${tail.trim() ? `:\n${tail.trim().split("\n").slice(-10).join("\n")}` : ""}`, tail);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
