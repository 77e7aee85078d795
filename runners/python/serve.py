#!/usr/bin/env python3
"""ThreadML model server: serves a model the harness trained.

    python3 serve.py [--host 127.0.0.1] [--port 0 | --fd N] [--token-fd N] [--workspace .] [--out-dir out]

Loads <out-dir>/model.pkl and <out-dir>/model_meta.json (and the solution module, for its predict
slot), then prints one line {"event":"listening","host":H,"port":P} on stdout. With --fd it answers
on an inherited listening socket (serve_launch.py binds it, so the server itself needs no network).
With a token (read from --token-fd or THREADML_SERVE_TOKEN) every request needs
`Authorization: Bearer <token>`, else 401.

    GET  /health   -> {"status":"ok","task":...,"target":...,"features":[...]}
    POST /predict  {"rows":[{...}]} | {"row":{...}} | [{...}] -> {"predictions":[...]}

Models of a harness variant take that variant's request instead (its module's Served class):
    images      {"images": ["<base64 image>", ...]}
    graph       {"nodes": ["<node id>", ...], "new_nodes": [{"features": {...}, "neighbors": [...]}]}
    timeseries  {"history": [{time, id?, target, ...}, ...], "horizon": n}

Exit codes: 0 after SIGTERM/SIGINT, 1 when the model cannot be loaded.
"""

import argparse
import collections
import contextlib
import hmac
import importlib
import importlib.util
import json
import math
import os
import pickle
import queue
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus

MAX_BODY = 10 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
# bodies buffered at once, over all connections; beyond it clients get 503
MAX_BUFFERED = 256 * 1024 * 1024
MAX_HEADER = 64 * 1024
MAX_DEPTH = 64
BACKLOG = 1024
MAX_CONNECTIONS = 4096
DEFAULT_WORKERS = 4
# seconds: a connection with no request, a request's headers, a pause in a body, a whole body, a stalled answer
IDLE_TIMEOUT_S = 5.0
HEADER_TIMEOUT_S = 10.0
BODY_IDLE_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 10.0
SWEEP_S = 0.25

try:
    from variant_common import RequestError
except ImportError:  # a workspace made before variants existed

    class RequestError(ValueError):
        pass


def to_jsonable(obj):
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


class BadRequest(Exception):
    pass


class Model:
    def __init__(self, workspace, out_dir):
        meta_path = os.path.join(workspace, out_dir, "model_meta.json")
        model_path = os.path.join(workspace, out_dir, "model.pkl")
        with open(meta_path, "r", encoding="utf-8") as f:
            self.meta = json.load(f)
        self.features = list(self.meta.get("features") or [])
        self.numeric = set(self.meta.get("numeric") or [])
        self.categorical = set(self.meta.get("categorical") or [])
        # older models have no "text" entry: every non-numeric column was categorical then
        self.text = set(self.meta.get("text") or [])
        # dates stay strings: the model's pipeline reads them (features.DateFeatures)
        self.dates = set(self.meta.get("dates") or [])
        # a binary classifier's decision threshold, chosen by the harness on the validation rows
        self.threshold = self._threshold(self.meta.get("threshold"))
        self.predict_fn = None
        solution = self.meta.get("solution")
        if solution:
            self.predict_fn = self._load_solution(os.path.join(workspace, solution))
        with open(model_path, "rb") as f, contextlib.redirect_stdout(sys.stderr):
            self.model = pickle.load(f)
        self.lock = threading.Lock()
        # a variant's model answers its own request shape
        self.served = None
        variant = self.meta.get("variant")
        if variant:
            # the harness's closed list: the name is read from a file in the workspace, then imported
            from harness import VARIANTS

            if variant not in VARIANTS:
                raise ValueError(f"model_meta.json names an unknown variant {variant!r}")
            module = importlib.import_module(f"variant_{variant}")
            with contextlib.redirect_stdout(sys.stderr):
                self.served = module.Served(self.meta, self.model, self.predict_fn, os.path.join(workspace, out_dir))

    @staticmethod
    def _threshold(entry):
        if entry is None:
            return None
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError("model_meta.json has a threshold that is not a number between 0 and 1")
        return {"value": float(value), "positive_class": entry.get("positive_class")}

    @staticmethod
    def _load_solution(path):
        if not os.path.isfile(path):
            return None
        # the same module name the harness used, so pickled classes resolve
        name = os.path.splitext(os.path.basename(path))[0].replace("-", "_").replace(".", "_") or "solution"
        try:
            spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            with contextlib.redirect_stdout(sys.stderr):
                spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - fall back to model.predict
            sys.modules.pop(name, None)
            sys.stderr.write(f"threadml serve: the solution could not be imported ({type(e).__name__}: {e}); using model.predict\n")
            return None
        fn = getattr(module, "predict", None)
        return fn if callable(fn) else None

    def frame(self, rows):
        import numpy as np
        import pandas as pd

        missing = [c for c in self.features if any(c not in r for r in rows)]
        if missing:
            raise BadRequest(f"rows are missing feature columns: {', '.join(missing)}")
        data = {}
        for c in self.features:
            values = [r[c] for r in rows]
            if c in self.numeric:
                col = []
                for i, v in enumerate(values):
                    if v is None or v == "":
                        col.append(np.nan)
                        continue
                    try:
                        col.append(float(v))
                    except (TypeError, ValueError, OverflowError):
                        raise BadRequest(f"column '{c}' expects a number; row {i} has {json.dumps(v)[:80]}")
                data[c] = pd.Series(col, dtype="float64")
            elif c in self.text:
                data[c] = pd.Series([text_string(v) for v in values], dtype=object)
            elif c in self.dates:
                from features import as_date_strings, parse_dates

                col = as_date_strings(pd.Series(values, dtype=object))

                unreadable = (col.notna() & parse_dates(col).isna()).to_numpy()
                if unreadable.any():
                    i = int(unreadable.argmax())
                    raise BadRequest(f"column '{c}' expects a date such as \"2024-03-01\" or \"2024-03-01T14:30\"; row {i} has {json.dumps(values[i])[:80]}")
                data[c] = col
            else:
                data[c] = pd.Series([category_string(v) for v in values], dtype=object)
        return pd.DataFrame(data, columns=self.features)

    def answer(self, payload):
        """Predictions for a request body: rows for tables, the variant's own shape otherwise."""
        if self.served is not None:
            with self.lock, contextlib.redirect_stdout(sys.stderr):
                return to_jsonable(self.served.predict(payload))
        return self.predict(rows_from(payload))

    def health(self):
        body = {
            "status": "ok",
            "task": self.meta.get("task"),
            "target": self.meta.get("target"),
            "features": self.features,
            "classes": self.meta.get("classes"),
        }
        if self.served is not None:
            # a variant's model inputs are derived (propagated features, lags): their count says enough
            body["features"] = len(self.features)
            body["variant"] = self.meta.get("variant")
            body.update(self.served.health())
        return body

    def predict(self, rows):
        X = self.frame(rows)
        if len(X) == 0:
            return []
        return to_jsonable(self.predict_frame(X).tolist())

    def predict_frame(self, X):
        """One prediction per row (an array) of a frame built by frame(), or of the rows the harness
        prepared: the batch path that the harness's predict and explain modes share with /predict."""
        import numpy as np

        with self.lock, contextlib.redirect_stdout(sys.stderr):
            if self.threshold is not None:
                # as the harness measured it: the threshold replaces the model's own decision
                import threshold

                pred = threshold.predict(self.model, X, self.threshold["value"], self.threshold["positive_class"])
            elif self.predict_fn is not None:
                pred = self.predict_fn(self.model, X)
            else:
                pred = self.model.predict(X)
        pred = np.asarray(pred)
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred.ravel()
        return pred


def category_string(v):
    """Categorical values as the harness saw them: strings, missing stays missing."""
    import numpy as np

    if v is None:
        return np.nan
    if isinstance(v, float):
        if not math.isfinite(v):
            return np.nan
        if v.is_integer():
            return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def text_string(v):
    """A document for the text vectorizer: missing becomes the empty string, as in training."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def rows_from(payload):
    if isinstance(payload, list):
        rows = payload
    elif isinstance(payload, dict):
        if "rows" in payload:
            rows = payload["rows"]
        elif "row" in payload:
            rows = [payload["row"]]
        else:
            rows = [payload]
    else:
        raise BadRequest('expected {"rows": [{...}, ...]}, {"row": {...}} or a list of row objects')
    if not isinstance(rows, list):
        raise BadRequest('"rows" must be a list of row objects')
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise BadRequest(f"row {i} is not an object of column: value")
    return rows


def _not_finite_constant(name):
    raise BadRequest(f"invalid JSON: {name} is not allowed; numbers must be finite")


def _finite_float(text):
    v = float(text)
    if not math.isfinite(v):
        raise BadRequest(f"invalid JSON: the number {text[:40]} is out of range; numbers must be finite")
    return v


def _finite_int(text):
    v = int(text)
    # an integer past the float range would overflow where the model needs a float
    if len(text) > 300:
        try:
            float(v)
        except OverflowError:
            raise BadRequest(f"invalid JSON: the number {text[:40]}… is out of range; numbers must be finite") from None
    return v


def parse_body(body):
    """The request's JSON: finite numbers only, at most MAX_DEPTH levels of nesting."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"invalid JSON: {e}") from None
    try:
        payload = json.loads(text, parse_constant=_not_finite_constant, parse_float=_finite_float, parse_int=_finite_int)
    except RecursionError:
        raise BadRequest(f"invalid JSON: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:
        raise BadRequest(f"invalid JSON: {e}") from None
    # iterative, so a deep document costs no stack
    stack = [(payload, 1)]
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadRequest(f"invalid JSON: nested more than {MAX_DEPTH} levels deep")
            children = obj.values() if isinstance(obj, dict) else obj
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return payload


def json_response(status, body, close=False, headers=()):
    try:
        data = json.dumps(to_jsonable(body), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as e:
        status, data = 500, json.dumps({"error": f"the answer could not be encoded: {type(e).__name__}"}).encode("utf-8")
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", "Server: ThreadML", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    if close:
        lines.append("Connection: close")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class Conn:
    """One client connection; `state` says what the event loop waits for on it."""

    __slots__ = ("sock", "buf", "state", "since", "last", "need", "keep", "pending", "out", "close_after", "reserved", "kind")

    def __init__(self, sock, now):
        self.sock = sock
        self.buf = bytearray()
        self.state = "idle"  # idle | head | body | drain | busy | write
        self.since = now  # start of the current request (or of the idle wait)
        self.last = now  # last byte read or written
        self.need = 0  # body bytes still to read (body) or to discard (drain)
        self.keep = True  # the client allows keep-alive
        self.pending = None  # the answer to send once a drained body has been read
        self.out = b""
        self.close_after = False
        self.reserved = 0  # body bytes counted against the buffer budget
        self.kind = None


class Server:
    """A single-threaded event loop reads whole requests (with deadlines) and writes answers; a fixed
    pool of worker threads runs the model. Idle or slow clients cost a socket, never a thread."""

    def __init__(self, sock, model, token, workers, max_conns):
        self.sock = sock
        self.model = model
        self.token = token.encode("utf-8") if token else None
        self.max_conns = max_conns
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.buffered = 0
        self.stopping = False
        self.done = collections.deque()
        self.ready = collections.deque()  # connections with a pipelined request already buffered
        self.jobs = queue.SimpleQueue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, None)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        for _ in range(workers):
            threading.Thread(target=self._worker, daemon=True).start()

    # ---------------------------------------------------------------- worker side

    def _worker(self):
        while True:
            conn, kind, body = self.jobs.get()
            try:
                status, answer = self._handle(kind, body)
            except BaseException as e:  # noqa: BLE001 - a request must never end a worker
                sys.stderr.write(traceback.format_exc())
                status, answer = 500, {"error": f"prediction failed: {type(e).__name__}: {e}"[:2000]}
            data = json_response(status, answer, close=not conn.keep)
            self.done.append((conn, data))
            self.wake()

    def _handle(self, kind, body):
        if kind == "health":
            return 200, self.model.health()
        try:
            payload = parse_body(body)
            return 200, {"predictions": self.model.answer(payload)}
        except (BadRequest, RequestError) as e:
            return 400, {"error": str(e)}
        except Exception as e:  # noqa: BLE001 - a bad row must not take the server down
            sys.stderr.write(traceback.format_exc())
            return 500, {"error": f"prediction failed: {type(e).__name__}: {e}"[:2000]}

    def wake(self):
        try:
            self.wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending

    # ---------------------------------------------------------------- event loop

    def serve(self):
        next_sweep = 0.0
        while not self.stopping:
            for key, mask in self.sel.select(timeout=0 if self.ready else SWEEP_S):
                if key.fileobj is self.sock:
                    self._accept()
                elif key.fileobj is self.wake_r:
                    try:
                        while self.wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                elif mask & selectors.EVENT_READ:
                    self._guarded(self._on_read, key.data)
                elif mask & selectors.EVENT_WRITE:
                    self._guarded(self._flush, key.data)
            while self.done:
                conn, data = self.done.popleft()
                self._release(conn)
                if conn.state == "busy":
                    self._guarded(self._send, conn, data, not conn.keep)
            for _ in range(len(self.ready)):
                conn = self.ready.popleft()
                if conn.state == "head":
                    self._guarded(self._advance, conn)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + SWEEP_S
                self._sweep(now)
        for conn in list(self.conns.values()):
            self._close(conn)
        self.sel.close()
        self.sock.close()

    def _guarded(self, fn, conn, *args):
        try:
            fn(conn, *args)
        except Exception:  # noqa: BLE001 - one client's trouble must not end the loop
            sys.stderr.write(traceback.format_exc())
            self._close(conn)

    def stop(self):
        self.stopping = True
        self.wake()

    def _accept(self):
        for _ in range(128):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: shed idle clients and try later
                sys.stderr.write(f"threadml serve: accept failed: {e}\n")
                self._evict()
                return
            if len(self.conns) >= self.max_conns and not self._evict():
                sock.close()  # every slot is busy answering: refuse promptly
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock, time.monotonic())
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _evict(self):
        """Closes the longest-quiet connection that is not being answered (idle ones first), to make room."""
        victim = None
        for states in (("idle",), ("head", "body", "drain")):
            for conn in self.conns.values():
                if conn.state in states and (victim is None or conn.last < victim.last):
                    victim = conn
            if victim is not None:
                break
        if victim is None:
            return False
        self._close(victim)
        return True

    def _sweep(self, now):
        for conn in list(self.conns.values()):
            s = conn.state
            if s == "idle":
                expired = now - conn.last > IDLE_TIMEOUT_S
            elif s == "head":
                expired = now - conn.since > HEADER_TIMEOUT_S
            elif s in ("body", "drain"):
                expired = now - conn.last > BODY_IDLE_TIMEOUT_S or now - conn.since > REQUEST_TIMEOUT_S
            elif s == "write":
                expired = now - conn.last > WRITE_TIMEOUT_S
            else:
                expired = False
            if not expired:
                continue
            if s in ("head", "body"):
                self._release(conn)
                self._send(conn, json_response(408, {"error": "the request took too long to arrive"}, close=True), close=True)
            else:
                self._close(conn)

    def _close(self, conn):
        self._release(conn)
        self.conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
        conn.state = "closed"

    def _release(self, conn):
        self.buffered -= conn.reserved
        conn.reserved = 0

    def _on_read(self, conn):
        try:
            data = conn.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.last = time.monotonic()
        if conn.state == "drain":
            if len(data) > conn.need:
                conn.buf += data[conn.need :]  # the next request, pipelined
            conn.need -= len(data)
            if conn.need <= 0:
                status, body, close, headers = conn.pending
                self._send(conn, json_response(status, body, close=close, headers=headers), close=close)
            return
        if conn.state == "idle":
            conn.since = conn.last
            conn.state = "head"
        conn.buf += data
        self._advance(conn)

    def _advance(self, conn):
        """Moves the request on as far as the bytes buffered allow."""
        if conn.state == "head":
            while conn.buf[:2] == b"\r\n":  # stray line ends between requests are allowed
                del conn.buf[:2]
            end = conn.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.buf) > MAX_HEADER:
                    self._reply(conn, 431, {"error": f"request headers are over {MAX_HEADER} bytes"}, close=True)
                elif not conn.buf:
                    conn.state = "idle"
                return
            head = bytes(conn.buf[:end])
            del conn.buf[: end + 4]
            self._on_head(conn, head)
        if conn.state == "body" and len(conn.buf) >= conn.need:
            body = bytes(conn.buf[: conn.need])
            del conn.buf[: conn.need]
            self._dispatch(conn, "predict", body)

    def _on_head(self, conn, head):
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            self._reply(conn, 400, {"error": "malformed request line"}, close=True)
            return
        if not version.startswith("HTTP/1."):
            self._reply(conn, 505, {"error": "only HTTP/1.0 and HTTP/1.1 are supported"}, close=True)
            return
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                self._reply(conn, 400, {"error": "malformed header line"}, close=True)
                return
            name = name.lower()
            value = value.strip()
            if name in headers and name == "content-length" and headers[name] != value:
                self._reply(conn, 400, {"error": "conflicting Content-Length headers"}, close=True)
                return
            headers[name] = value
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        conn.keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        path = target.split("?", 1)[0].rstrip("/") or "/"

        if "transfer-encoding" in headers:
            self._reply(conn, 411, {"error": "a Content-Length header is required (chunked bodies are not supported)"}, close=True)
            return
        length = headers.get("content-length")
        try:
            size = int(length) if length is not None else -1
        except ValueError:
            size = -2
        if size == -2 or (length is not None and size < 0):
            self._reply(conn, 400, {"error": "invalid Content-Length header"}, close=True)
            return

        if self.token is not None:
            got = headers.get("authorization", "")
            scheme, _, cred = got.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(cred.strip().encode("utf-8", "replace"), self.token):
                self._reply_after_body(conn, size, 401, {"error": "missing or wrong bearer token: send Authorization: Bearer <token>"}, ("WWW-Authenticate: Bearer",))
                return

        if method == "GET" and path == "/health":
            if size > 0:
                self._reply_after_body(conn, size, 400, {"error": "GET /health takes no body"})
                return
            self._dispatch(conn, "health", b"")
            return
        if method == "POST" and path == "/predict":
            if size < 0:
                self._reply(conn, 411, {"error": "a Content-Length header is required"}, close=True)
                return
            if size > MAX_BODY:
                self._reply_after_body(conn, size, 413, {"error": f"body of {size} bytes is over the {MAX_BODY} byte limit"}, close=True)
                return
            if self.buffered + size > MAX_BUFFERED:
                self._reply_after_body(conn, size, 503, {"error": "the server is busy; try again shortly"}, ("Retry-After: 1",))
                return
            conn.reserved = size
            self.buffered += size
            conn.need = size
            conn.state = "body"
            if headers.get("expect", "").lower() == "100-continue" and len(conn.buf) < size:
                with contextlib.suppress(OSError):
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        if method in ("GET", "POST"):
            use = "GET /health or POST /predict"
            self._reply_after_body(conn, size, 404, {"error": f"no such path: {path}; use {use}"}, close=method == "POST")
            return
        self._reply_after_body(conn, size, 405, {"error": "use GET /health or POST /predict"}, ("Allow: GET, POST",))

    def _reply_after_body(self, conn, size, status, body, headers=(), close=False):
        """Answers once the request's body has been read and thrown away, so the client sees the answer."""
        if size > DRAIN_LIMIT:
            self._reply(conn, status, body, close=True, headers=headers)
            return
        skip = min(len(conn.buf), max(size, 0))
        del conn.buf[:skip]
        left = max(size, 0) - skip
        close = close or not conn.keep
        if left <= 0:
            self._reply(conn, status, body, close=close, headers=headers)
            return
        self._release(conn)
        conn.state = "drain"
        conn.need = left
        conn.pending = (status, body, close, headers)

    def _reply(self, conn, status, body, close=False, headers=()):
        close = close or not conn.keep
        self._release(conn)
        self._send(conn, json_response(status, body, close=close, headers=headers), close=close)

    def _dispatch(self, conn, kind, body):
        conn.state = "busy"
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        self.jobs.put((conn, kind, body))

    def _send(self, conn, data, close):
        conn.out = memoryview(data)
        conn.close_after = close
        conn.state = "write"
        conn.last = time.monotonic()
        self._flush(conn)

    def _flush(self, conn):
        try:
            while conn.out:
                n = conn.sock.send(conn.out)
                conn.out = conn.out[n:]
                conn.last = time.monotonic()
        except (BlockingIOError, InterruptedError):
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except OSError:
            self._close(conn)
            return
        if conn.close_after:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
            self._close(conn)
            return
        # keep-alive: the next request may already be buffered (handled by the loop, not recursively)
        conn.state = "head" if conn.buf else "idle"
        conn.since = conn.last = time.monotonic()
        conn.pending = None
        self._watch(conn, selectors.EVENT_READ)
        if conn.buf:
            self.ready.append(conn)

    def _watch(self, conn, events):
        try:
            self.sel.modify(conn.sock, events, conn)
        except KeyError:
            self.sel.register(conn.sock, events, conn)


def warm_up(model, result_path):
    """One prediction on a held-out row before listening: the first request of a cold model pays for
    lazy imports and caches (about 0.3 s), so the server pays it before it says it is ready."""
    try:
        with open(result_path, "r", encoding="utf-8") as f:
            sample = json.load(f).get("sample") or {}
        if model.served is not None and sample.get("request") is not None:
            model.answer(sample["request"])
        elif sample.get("rows"):
            model.predict(sample["rows"][:1])
    except Exception as e:  # noqa: BLE001 - warming up is best effort; real requests report errors
        sys.stderr.write(f"threadml serve: warm-up skipped ({type(e).__name__}: {e})\n")


def raise_nofile(want):
    """Soft RLIMIT_NOFILE up to `want` (within the hard limit); returns the soft limit in force."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        return soft if soft != resource.RLIM_INFINITY else want
    except (ImportError, ValueError, OSError):
        return 1024


def read_token(fd):
    """The bearer token from a pipe the launcher filled (never argv, where ps shows it), or the environment."""
    token = os.environ.pop("THREADML_SERVE_TOKEN", "")
    if fd is not None:
        chunks = []
        with os.fdopen(fd, "rb") as f:
            while True:
                b = f.read(4096)
                if not b:
                    break
                chunks.append(b)
        token = b"".join(chunks).decode("utf-8").strip()
    return token or None


def listening_socket(args):
    if args.fd is not None:
        # socket activation: the launcher bound and listened; this process may have no network at all
        sock = socket.socket(fileno=args.fd)
        sock.set_inheritable(False)
        return sock
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    return socket.create_server((args.host, args.port), family=family, backlog=BACKLOG)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="serve.py", description="ThreadML model server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fd", type=int, default=None, help="an inherited, already listening socket")
    parser.add_argument("--token-fd", type=int, default=None, help="a pipe to read the bearer token from")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--workspace", default=".")
    parser.add_argument("--out-dir", default="out")
    args = parser.parse_args(argv)

    # events go to the real stdout only; anything else printing lands on stderr
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def event(obj):
        events.write(json.dumps(obj, separators=(",", ":")) + "\n")
        events.flush()

    token = read_token(args.token_fd)
    workspace = os.path.abspath(args.workspace)
    if workspace not in sys.path:
        sys.path.insert(0, workspace)
    try:
        model = Model(workspace, args.out_dir)
    except ModuleNotFoundError as e:
        event({"event": "error", "class": "environment_error", "message": f"model could not be loaded: missing module '{e.name}'"})
        return 1
    except Exception as e:  # noqa: BLE001
        sys.stderr.write(traceback.format_exc())
        event({"event": "error", "class": "runtime_error", "message": f"model could not be loaded: {type(e).__name__}: {e}"})
        return 1

    warm_up(model, os.path.join(workspace, args.out_dir, "result.json"))
    # each connection is a descriptor; keep some for the model's own files
    max_conns = max(16, min(MAX_CONNECTIONS, raise_nofile(MAX_CONNECTIONS + 256) - 128))
    sock = listening_socket(args)
    server = Server(sock, model, token, max(1, args.workers), max_conns)

    def stop(signum, frame):
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = sock.getsockname()[:2]
    event({"event": "listening", "host": host, "port": port})
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
