import { spawn } from "node:child_process";
import fs, { constants as C, promises as fsp } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { ClientChannel, SFTPWrapper, Stats } from "ssh2";
import { ConnectionLost, SshError, type ConnectOptions, type ConnLogger, type ExecResult } from "./connection.js";
import { asStdinScript } from "./shell.js";

// The host is this machine: the same surface as SshConnection (scripts through `sh -s`, files through
// an SFTP-like object, TCP channels), backed by child processes, node:fs and node:net. Relative paths
// resolve from the home folder, as they do in an SSH login.

const MAX_OUTPUT = 4 * 1024 * 1024;
const STDERR_KEEP = 64 * 1024;
// After sh exits, how long its pipes may stay open: a background process that kept them must not hold exec.
const PIPE_GRACE_MS = 250;

type Cb<T = void> = (err: Error | undefined, value: T) => void;

/** An fs error as ssh2 reports an SFTP status: a numeric code says the operation failed, not the link. */
function statusError(err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const code = ["ENOENT", "ENOTDIR", "ELOOP"].includes(e.code ?? "") ? 2 : e.code === "EACCES" || e.code === "EPERM" ? 3 : 4;
  return Object.assign(new Error(e.message ?? String(err)), { code });
}

function modeOf(a: unknown, fallback: number): number {
  const m = typeof a === "object" && a !== null ? (a as { mode?: unknown }).mode : a;
  return typeof m === "number" ? m : typeof m === "string" ? parseInt(m, 8) : fallback;
}

/** ssh2-style attributes: times in whole epoch seconds. */
function attrsOf(st: fs.Stats): Stats {
  const is = (type: number) => () => (st.mode & C.S_IFMT) === type;
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
    isDirectory: is(C.S_IFDIR),
    isFile: is(C.S_IFREG),
    isBlockDevice: is(C.S_IFBLK),
    isCharacterDevice: is(C.S_IFCHR),
    isSymbolicLink: is(C.S_IFLNK),
    isFIFO: is(C.S_IFIFO),
    isSocket: is(C.S_IFSOCK),
  };
}

/** The subset of ssh2's SFTPWrapper the runner uses, with its callback signatures and status codes. */
class LocalSftp {
  // sftp.ts uses posix-rename (atomic replace) when the server offers it.
  readonly _extensions = { "posix-rename@openssh.com": "1" };
  private readonly fds = new Map<number, number>();
  private nextId = 1;

  constructor(private readonly home: string) {}

  private at(p: string): string {
    return path.resolve(this.home, p);
  }

  private done<T>(work: Promise<T>, cb: Cb<T> | undefined): void {
    // nextTick: a throwing callback must not be taken for a failed operation.
    work.then(
      (v) => process.nextTick(() => cb?.(undefined, v)),
      (e) => process.nextTick(() => cb?.(statusError(e), undefined as T)),
    );
  }

  private fd(handle: Buffer): number {
    const fd = handle.length === 4 ? this.fds.get(handle.readUInt32BE(0)) : undefined;
    if (fd === undefined) throw new Error("invalid handle");
    return fd;
  }

  stat(p: string, cb: Cb<Stats>): void {
    this.done(fsp.stat(this.at(p)).then(attrsOf), cb);
  }

  open(p: string, flags: string | number, ...rest: unknown[]): void {
    const cb = rest.pop() as Cb<Buffer>;
    const opening = new Promise<number>((resolve, reject) => fs.open(this.at(p), flags, modeOf(rest[0], 0o666), (e, fd) => (e ? reject(e) : resolve(fd))));
    this.done(
      opening.then((fd) => {
        const id = this.nextId++;
        this.fds.set(id, fd);
        const handle = Buffer.alloc(4);
        handle.writeUInt32BE(id);
        return handle;
      }),
      cb,
    );
  }

  close(handle: Buffer, cb?: Cb<void>): void {
    const closing = new Promise<void>((resolve, reject) => {
      const fd = this.fd(handle);
      this.fds.delete(handle.readUInt32BE(0));
      fs.close(fd, (e) => (e ? reject(e) : resolve()));
    });
    this.done(closing, cb);
  }

  read(handle: Buffer, buf: Buffer, off: number, len: number, position: number, cb: (err: Error | undefined, bytesRead: number, buf: Buffer, position: number) => void): void {
    const reading = new Promise<number>((resolve, reject) => fs.read(this.fd(handle), buf, off, len, position, (e, n) => (e ? reject(e) : resolve(n))));
    this.done(reading, (err, n) => cb(err, n ?? 0, buf, position));
  }

  /** SFTP v3 rename: refuses an existing target (a hard link fails atomically when it exists, as in sftp-server). */
  rename(from: string, to: string, cb: Cb<void>): void {
    const [src, dst] = [this.at(from), this.at(to)];
    const renaming = (async () => {
      if ((await fsp.lstat(src)).isFile()) {
        try {
          await fsp.link(src, dst);
          return fsp.unlink(src);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EEXIST") throw e;
        }
      }
      if (await fsp.lstat(dst).then(() => true, () => false)) throw Object.assign(new Error(`${to} exists`), { code: "EEXIST" });
      return fsp.rename(src, dst);
    })();
    this.done(renaming, cb);
  }

  ext_openssh_rename(from: string, to: string, cb: Cb<void>): void {
    this.done(fsp.rename(this.at(from), this.at(to)), cb);
  }

  unlink(p: string, cb: Cb<void>): void {
    this.done(fsp.unlink(this.at(p)), cb);
  }

  mkdir(p: string, ...rest: unknown[]): void {
    const cb = rest.pop() as Cb<void>;
    this.done(fsp.mkdir(this.at(p), { mode: modeOf(rest[0], 0o777) }).then(() => undefined), cb);
  }

  writeFile(p: string, data: string | Buffer, ...rest: unknown[]): void {
    const cb = typeof rest[rest.length - 1] === "function" ? (rest.pop() as Cb<void>) : undefined;
    const o = rest[0];
    const opts = typeof o === "string" ? { encoding: o as BufferEncoding } : ((o ?? {}) as { encoding?: BufferEncoding; mode?: number; flag?: string });
    this.done(fsp.writeFile(this.at(p), data, { encoding: opts.encoding ?? "utf8", mode: modeOf(opts, 0o666), flag: opts.flag ?? "w" }), cb);
  }

  fastPut(local: string, remote: string, ...rest: unknown[]): void {
    const cb = rest.pop() as Cb<void>;
    const mode = (rest[0] as { mode?: unknown } | undefined)?.mode;
    const dst = this.at(remote);
    this.done(fsp.copyFile(local, dst).then(() => (mode === undefined ? undefined : fsp.chmod(dst, modeOf(mode, 0o644)))), cb);
  }

  fastGet(remote: string, local: string, ...rest: unknown[]): void {
    this.done(fsp.copyFile(this.at(remote), local), rest.pop() as Cb<void>);
  }

  /** Entries without . and .., with lstat attributes (SFTP does not follow links in a listing). */
  readdir(dir: string, ...rest: unknown[]): void {
    const cb = rest.pop() as Cb<Array<{ filename: string; longname: string; attrs: Stats }>>;
    const abs = this.at(dir);
    const listing = fsp.readdir(abs).then((names) =>
      Promise.all(
        names.map(async (filename) => {
          const attrs = attrsOf(await fsp.lstat(path.join(abs, filename)));
          const kind = attrs.isDirectory() ? "d" : attrs.isSymbolicLink() ? "l" : "-";
          const perms = [6, 3, 0].map((s) => ["r", "w", "x"].map((c, i) => ((attrs.mode >> s) & (4 >> i) ? c : "-")).join("")).join("");
          return { filename, longname: `${kind}${perms} 1 ${attrs.uid} ${attrs.gid} ${attrs.size} ${filename}`, attrs };
        }),
      ),
    );
    this.done(listing, cb);
  }

  /** Closes the files left open (the link is closing). */
  closeAll(): void {
    for (const fd of this.fds.values()) fs.close(fd, () => undefined);
    this.fds.clear();
  }
}

export class LocalLink {
  private closed = false;
  private files: LocalSftp | null = null;
  private readonly home = os.homedir();

  constructor(
    readonly runner: string,
    private readonly log: ConnLogger,
    /** The scripts' environment, and so the jobs' (they inherit it as they would a login's). */
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get target(): string {
    return "this machine";
  }

  get connected(): boolean {
    return !this.closed;
  }

  /** A local link is never lost. */
  onLost(_listener: (reason: string) => void): () => void {
    return () => undefined;
  }

  private closedError(): SshError {
    return new SshError(`the runner ${this.runner} is closed`, true);
  }

  connect(_options: ConnectOptions = {}): Promise<void> {
    return this.closed ? Promise.reject(this.closedError()) : Promise.resolve();
  }

  /** Runs a POSIX sh script (`sh -s`, the script on stdin) in the home folder, as an SSH login would. */
  exec(lines: string[], options: { timeoutMs?: number } = {}): Promise<ExecResult> {
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise<ExecResult>((resolve, reject) => {
      // detached: a session of its own, without a controlling terminal (as under SSH without a pty),
      // and a process group that a timeout can kill whole.
      const child = spawn("sh", ["-s"], { cwd: this.home, env: this.env, stdio: "pipe", detached: true });
      let stdout = "";
      let stderr = "";
      let exit: { code: number | null; signal: string | null } | null = null;
      let settled = false;
      let grace: NodeJS.Timeout | undefined;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(grace);
        if (err) reject(err);
        else resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, stdout, stderr });
      };
      const timer = options.timeoutMs
        ? setTimeout(() => {
            try {
              process.kill(-child.pid!, "SIGKILL");
            } catch {
              child.kill("SIGKILL");
            }
            finish(new ConnectionLost(`a command on this machine did not answer within ${options.timeoutMs! / 1000} s`));
          }, options.timeoutMs)
        : undefined;
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        if (stdout.length < MAX_OUTPUT) stdout += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr = (stderr + d).slice(-STDERR_KEEP);
      });
      child.on("error", (err: NodeJS.ErrnoException) => finish(new SshError(`cannot run sh on this machine: ${err.message}`, err.code === "ENOENT")));
      child.on("exit", (code, signal) => {
        exit = { code, signal };
        grace = setTimeout(() => {
          this.log.debug({ runner: this.runner }, "a background process kept the script's output open; not waiting for it");
          child.stdout.destroy();
          child.stderr.destroy();
          finish();
        }, PIPE_GRACE_MS);
      });
      child.on("close", () => finish());
      child.stdin.on("error", () => undefined); // sh may exit before reading all of the script
      child.stdin.end(asStdinScript(lines));
    });
  }

  sftp(): Promise<SFTPWrapper> {
    if (this.closed) return Promise.reject(this.closedError());
    // One object per link, as SshConnection keeps one session: callers compare it to reuse handles.
    this.files ??= new LocalSftp(this.home);
    // Only the methods the runner calls exist; the cast lets the SSH helpers take it unchanged.
    return Promise.resolve(this.files as unknown as SFTPWrapper);
  }

  /** A TCP connection to host:port from this machine, shaped like an SSH channel (a duplex with close()). */
  forwardOut(host: string, port: number, _srcHost = "127.0.0.1", _srcPort = 0): Promise<ClientChannel> {
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise<ClientChannel>((resolve, reject) => {
      const sock = net.connect({ host, port });
      sock.once("error", reject);
      sock.once("connect", () => {
        sock.off("error", reject);
        resolve(Object.assign(sock, { close: () => sock.destroy() }) as unknown as ClientChannel);
      });
    });
  }

  /** Nothing to drop: the next operation works as before. */
  drop(): void {}

  close(): void {
    this.closed = true;
    this.files?.closeAll();
  }
}
