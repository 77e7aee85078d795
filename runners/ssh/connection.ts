import { readFileSync } from "node:fs";
import ssh2 from "ssh2";
import type { Client as SshClient, ClientChannel, ConnectConfig, SFTPWrapper } from "ssh2";
import type { SshRunnerConfig } from "../../config/schema.js";
import { expandHome, hostKeyPolicy } from "./hostkeys.js";
import { asStdinScript } from "./shell.js";

const { Client } = ssh2;

// One SSH connection per runner, shared by its jobs: connected on first use, with keepalives, and
// re-established with backoff after a drop. Failures that retrying cannot fix (host key, login,
// configuration) are permanent and reported at once.

export interface ConnLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export class SshError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = "SshError";
  }
}

/** The connection went away while an operation was using it; retrying after a reconnect is safe. */
export class ConnectionLost extends SshError {
  constructor(message: string) {
    super(message, false);
    this.name = "ConnectionLost";
  }
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface ConnectOptions {
  /** Attempts before giving up (default: until connected or aborted). */
  attempts?: number;
  signal?: AbortSignal;
  /** Called before each wait between attempts. */
  onRetry?: (err: Error, attempt: number, delayMs: number) => void;
}

interface Live {
  client: SshClient;
  generation: number;
  alive: boolean;
  sftp: Promise<SFTPWrapper> | null;
}

const READY_TIMEOUT_MS = 20_000;
const MAX_OUTPUT = 4 * 1024 * 1024;
// OpenSSH allows 10 sessions per connection (MaxSessions); leave room for SFTP and servers.
const MAX_EXECS = 6;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];

const TRANSIENT = /No response from server|Not connected|ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Timed out while waiting for handshake|Keepalive timeout|socket hang up|Connection lost|channel closed|Channel open failure|connection closed/i;

/** Whether an error means the connection failed (retry after reconnecting) rather than the operation. */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof SshError) return !err.permanent;
  const e = err as { message?: string; code?: unknown; level?: string };
  if (typeof e?.code === "number") return false; // an SFTP status: the operation failed, the link is fine
  return TRANSIENT.test(e?.message ?? "") || e?.level === "client-socket" || e?.level === "client-timeout";
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function backoffDelay(attempt: number): number {
  const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** What the runner needs of a host: an SSH connection, or LocalLink for a cluster reached from this machine. */
export type HostLink = Pick<SshConnection, "exec" | "sftp" | "forwardOut" | "onLost" | "target" | "connected" | "connect" | "close" | "drop">;

export class SshConnection {
  private live: Live | null = null;
  private connecting: Promise<Live> | null = null;
  private generation = 0;
  private closed = false;
  private execs = 0;
  private readonly execWaiters: Array<() => void> = [];
  private readonly lostListeners = new Set<(reason: string) => void>();

  constructor(
    readonly runner: string,
    private readonly config: SshRunnerConfig,
    private readonly log: ConnLogger,
  ) {}

  /** "user@host:port", for messages. */
  get target(): string {
    return `${this.config.user}@${this.config.host}${this.config.port === 22 ? "" : `:${this.config.port}`}`;
  }

  get connected(): boolean {
    return this.live?.alive === true;
  }

  /** Registers a listener for drops of an established connection; returns its remover. */
  onLost(listener: (reason: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** A ready connection: the current one, or one new attempt. */
  private ready(): Promise<Live> {
    if (this.closed) return Promise.reject(new SshError(`the SSH runner ${this.runner} is closed`, true));
    if (this.live?.alive) return Promise.resolve(this.live);
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Connects, retrying failures that may pass (network, host down) with exponential backoff. */
  async connect(options: ConnectOptions = {}): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.ready();
        return;
      } catch (err) {
        const e = err as Error;
        if (!isConnectionError(e) || options.signal?.aborted) throw e;
        if (options.attempts !== undefined && attempt + 1 >= options.attempts) throw e;
        const delay = backoffDelay(attempt);
        options.onRetry?.(e, attempt + 1, delay);
        await sleep(delay, options.signal);
        if (options.signal?.aborted) throw e;
      }
    }
  }

  private connectConfig(policyMessage: { value: string | null }): ConnectConfig {
    const c = this.config;
    const policy = hostKeyPolicy({ runner: this.runner, host: c.host, port: c.port, hostKey: c.hostKey, knownHosts: c.knownHosts });
    const cfg: ConnectConfig = {
      host: c.host,
      port: c.port,
      username: c.user,
      readyTimeout: READY_TIMEOUT_MS,
      keepaliveInterval: Math.round(c.keepaliveS * 1000),
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        policyMessage.value = policy.verify(key);
        return policyMessage.value === null;
      },
    };
    if (policy.algorithms) cfg.algorithms = { serverHostKey: policy.algorithms as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] };
    if (c.identityFile) {
      const file = expandHome(c.identityFile);
      try {
        cfg.privateKey = readFileSync(file);
      } catch (err) {
        throw new SshError(`runners.${this.runner}.identityFile ${file} cannot be read: ${(err as Error).message}`, true);
      }
      if (c.passphrase) cfg.passphrase = c.passphrase;
    }
    const agent = c.agent ?? process.env.SSH_AUTH_SOCK;
    if (agent) cfg.agent = expandHome(agent);
    if (!cfg.privateKey && !cfg.agent)
      throw new SshError(`runners.${this.runner} has no identityFile and no SSH agent is available (set identityFile, or agent / SSH_AUTH_SOCK).`, true);
    return cfg;
  }

  private open(): Promise<Live> {
    const policyMessage = { value: null as string | null };
    let cfg: ConnectConfig;
    try {
      cfg = this.connectConfig(policyMessage);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Live>((resolve, reject) => {
      const client = new Client();
      const live: Live = { client, generation: ++this.generation, alive: false, sftp: null };
      let settled = false;
      client.on("ready", () => {
        settled = true;
        live.alive = true;
        this.live = live;
        this.log.debug({ generation: live.generation }, `ssh connected to ${this.target}`);
        resolve(live);
      });
      client.on("error", (err: Error & { level?: string }) => {
        if (!settled) {
          settled = true;
          reject(this.explain(err, policyMessage.value));
          client.destroy();
          return;
        }
        this.log.debug({ err: err.message }, `ssh connection error (${this.target})`);
      });
      client.on("close", () => {
        if (!settled) {
          settled = true;
          reject(new ConnectionLost(`the connection to ${this.target} closed during the handshake`));
        }
        if (live.alive) {
          live.alive = false;
          if (this.live === live) this.live = null;
          this.log.info({}, `ssh connection to ${this.target} closed`);
          for (const listener of this.lostListeners) listener("the connection closed");
        }
      });
      try {
        client.connect(cfg);
      } catch (err) {
        // ssh2 throws at once for a key it cannot parse.
        settled = true;
        reject(this.explain(err as Error, null));
      }
    });
  }

  private explain(err: Error & { level?: string }, hostKeyMessage: string | null): Error {
    if (hostKeyMessage) return new SshError(hostKeyMessage, true);
    if (err.level === "client-authentication")
      return new SshError(
        `${this.target} refused the login for ${this.config.user} (${err.message}). Check that runners.${this.runner}.identityFile (or the agent's key) is in ~${this.config.user}/.ssh/authorized_keys on the host.`,
        true,
      );
    if (/no matching host key format|Handshake failed: no matching/i.test(err.message))
      return new SshError(`${this.target} offers no host key of a type listed for it in known_hosts (${err.message}).`, true);
    if (/Cannot parse privateKey|Encrypted private OpenSSH key detected|bad passphrase/i.test(err.message))
      return new SshError(`runners.${this.runner}.identityFile cannot be used: ${err.message} (set passphrase for an encrypted key).`, true);
    return new ConnectionLost(`cannot reach ${this.target}: ${err.message}`);
  }

  /** Runs an operation on the current connection; a drop during it becomes ConnectionLost. */
  async use<T>(fn: (client: SshClient, live: { generation: number }) => Promise<T>): Promise<T> {
    const live = await this.ready();
    try {
      return await fn(live.client, live);
    } catch (err) {
      if (err instanceof SshError) throw err;
      if (!live.alive || isConnectionError(err)) throw new ConnectionLost(`lost the connection to ${this.target}: ${(err as Error).message}`);
      throw err;
    }
  }

  /** The connection's SFTP session (one per connection). */
  sftp(): Promise<SFTPWrapper> {
    return this.use((client, l) => {
      const live = l as Live;
      live.sftp ??= new Promise<SFTPWrapper>((resolve, reject) => {
        client.sftp((err, sftp) => {
          if (err) {
            live.sftp = null;
            return reject(err);
          }
          sftp.on("close", () => {
            if (live.sftp) live.sftp = null;
          });
          resolve(sftp);
        });
      });
      return live.sftp;
    });
  }

  private async acquireExec(): Promise<void> {
    while (this.execs >= MAX_EXECS) await new Promise<void>((resolve) => this.execWaiters.push(resolve));
    this.execs++;
  }

  private releaseExec(): void {
    this.execs--;
    this.execWaiters.shift()?.();
  }

  /** Runs a POSIX sh script (`sh -s`, the script on stdin) and collects its output. */
  async exec(lines: string[], options: { timeoutMs?: number } = {}): Promise<ExecResult> {
    await this.acquireExec();
    try {
      return await this.use(
        (client) =>
          new Promise<ExecResult>((resolve, reject) => {
            client.exec("sh -s", (err, stream: ClientChannel) => {
              if (err) return reject(err);
              let stdout = "";
              let stderr = "";
              let code: number | null = null;
              let signal: string | null = null;
              let exited = false;
              const timer = options.timeoutMs
                ? setTimeout(() => {
                    stream.close();
                    reject(new ConnectionLost(`a command on ${this.target} did not answer within ${options.timeoutMs! / 1000} s`));
                  }, options.timeoutMs)
                : null;
              stream.on("exit", (c: number | null, s?: string) => {
                exited = true;
                code = c;
                signal = s ?? null;
              });
              stream.on("data", (d: Buffer) => {
                if (stdout.length < MAX_OUTPUT) stdout += d.toString("utf8");
              });
              stream.stderr.on("data", (d: Buffer) => {
                stderr = (stderr + d.toString("utf8")).slice(-64 * 1024);
              });
              stream.on("close", () => {
                if (timer) clearTimeout(timer);
                if (!exited) return reject(new ConnectionLost(`lost the connection to ${this.target} while a command ran`));
                resolve({ code, signal, stdout, stderr });
              });
              stream.end(asStdinScript(lines));
            });
          }),
      );
    } finally {
      this.releaseExec();
    }
  }

  /** A TCP channel to host:port as seen from the SSH host. */
  forwardOut(host: string, port: number, srcHost = "127.0.0.1", srcPort = 0): Promise<ClientChannel> {
    return this.use(
      (client) =>
        new Promise<ClientChannel>((resolve, reject) => {
          client.forwardOut(srcHost, srcPort, host, port, (err, channel) => (err ? reject(err) : resolve(channel)));
        }),
    );
  }

  /** Drops the current connection (the next operation reconnects). */
  drop(): void {
    this.live?.client.destroy();
  }

  close(): void {
    this.closed = true;
    const live = this.live;
    this.live = null;
    if (live) {
      live.alive = false;
      live.client.end();
      // end() waits for the server; make sure the socket goes.
      setTimeout(() => live.client.destroy(), 1000).unref();
    }
  }
}
