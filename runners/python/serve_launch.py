#!/usr/bin/env python3
"""ThreadML model server launcher (trusted, stdlib only): socket activation for serve.py.

    python3 serve_launch.py --host H --port P [--backlog 1024] -- COMMAND [ARG...]

Binds and listens on H:P (port 0: any free port), prints one line
{"event":"bound","host":H,"port":P} on stdout, then execs COMMAND ARG... --fd N, where N is the
listening socket, inherited. COMMAND (prlimit, bubblewrap, serve.py) can then answer on the socket
from inside a sandbox without any network of its own. The address comes from this line, printed
before any untrusted code runs, never from what the server says.

A bearer token in THREADML_SERVE_TOKEN is taken out of the environment and handed over through a
pipe (… --token-fd M), so that it shows neither in argv nor in the sandboxed process's environment.
"""

import json
import os
import socket
import sys

BACKLOG = 1024
# descriptors the server may open: its connection cap plus its own files
NOFILE = 8192


def fail(message):
    sys.stdout.write(json.dumps({"event": "error", "class": "environment_error", "message": message}) + "\n")
    sys.stdout.flush()
    sys.exit(2)


def parse(argv):
    if "--" not in argv:
        fail("serve_launch.py: usage: --host H --port P [--backlog N] -- COMMAND [ARG...]")
    split = argv.index("--")
    opts, command = argv[:split], argv[split + 1 :]
    values = {"--host": "127.0.0.1", "--port": "0", "--backlog": str(BACKLOG)}
    i = 0
    while i < len(opts):
        if opts[i] not in values or i + 1 >= len(opts):
            fail(f"serve_launch.py: unknown or incomplete option {opts[i]!r}")
        values[opts[i]] = opts[i + 1]
        i += 2
    if not command:
        fail("serve_launch.py: no command to run after --")
    try:
        port, backlog = int(values["--port"]), int(values["--backlog"])
    except ValueError:
        fail("serve_launch.py: --port and --backlog take numbers")
    return values["--host"], port, max(1, backlog), command


def raise_nofile():
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def main():
    host, port, backlog, command = parse(sys.argv[1:])
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        fail(f"the model server cannot listen on {host}:{port}: {e}")
    sock.set_inheritable(True)
    bound_host, bound_port = sock.getsockname()[:2]
    extra = ["--fd", str(sock.fileno())]

    token = os.environ.pop("THREADML_SERVE_TOKEN", "")
    if token:
        r, w = os.pipe()
        os.write(w, token.encode("utf-8"))
        os.close(w)
        os.set_inheritable(r, True)
        extra += ["--token-fd", str(r)]

    raise_nofile()
    # a command that wraps the server (the SSH host's sandbox script) runs it with this interpreter
    os.environ["THREADML_SERVE_PYTHON"] = sys.executable
    sys.stdout.write(json.dumps({"event": "bound", "host": bound_host, "port": bound_port}, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command + extra, dict(os.environ))
    except OSError as e:
        sys.stderr.write(f"serve_launch.py: cannot run {command[0]}: {e}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
