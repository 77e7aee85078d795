#!/usr/bin/env python3
"""ThreadML model server: serves a model the harness trained.

    python3 serve.py [--host 127.0.0.1] [--port 0] [--workspace .] [--out-dir out]

Loads <out-dir>/model.pkl and <out-dir>/model_meta.json (and the solution module, for its predict
slot), then prints one line {"event":"listening","host":H,"port":P} on stdout.

    GET  /health   -> {"status":"ok","task":...,"target":...,"features":[...]}
    POST /predict  {"rows":[{...}]} | {"row":{...}} | [{...}] -> {"predictions":[...]}

Models of a harness variant take that variant's request instead (its module's Served class):
    images      {"images": ["<base64 image>", ...]}
    graph       {"nodes": ["<node id>", ...], "new_nodes": [{"features": {...}, "neighbors": [...]}]}
    timeseries  {"history": [{time, id?, target, ...}, ...], "horizon": n}

Exit codes: 0 after SIGTERM/SIGINT, 1 when the model cannot be loaded.
"""

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import pickle
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 10 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
VARIANT_MODULES = {"timeseries": "variant_timeseries", "graph": "variant_graph", "images": "variant_images"}

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
            if variant not in VARIANT_MODULES:
                raise ValueError(f"model_meta.json names an unknown variant {variant!r}")
            module = importlib.import_module(VARIANT_MODULES[variant])
            with contextlib.redirect_stdout(sys.stderr):
                self.served = module.Served(self.meta, self.model, self.predict_fn, os.path.join(workspace, out_dir))

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
                    except (TypeError, ValueError):
                        raise BadRequest(f"column '{c}' expects a number; row {i} has {json.dumps(v)[:80]}")
                data[c] = pd.Series(col, dtype="float64")
            elif c in self.text:
                data[c] = pd.Series([text_string(v) for v in values], dtype=object)
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
        import numpy as np

        X = self.frame(rows)
        if len(X) == 0:
            return []
        with self.lock, contextlib.redirect_stdout(sys.stderr):
            if self.predict_fn is not None:
                pred = self.predict_fn(self.model, X)
            else:
                pred = self.model.predict(X)
        pred = np.asarray(pred)
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred.ravel()
        return to_jsonable(pred.tolist())


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


def make_handler(model):
    class Handler(BaseHTTPRequestHandler):
        server_version = "ThreadML"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("threadml serve: " + (fmt % args) + "\n")

        def send_json(self, status, body):
            data = json.dumps(to_jsonable(body), allow_nan=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/health":
                self.send_json(200, model.health())
            else:
                self.send_json(404, {"error": f"no such path: {path}; use GET /health or POST /predict"})

        def do_POST(self):
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path != "/predict":
                self.close_connection = True
                self.send_json(404, {"error": f"no such path: {path}; use POST /predict"})
                return
            length = self.headers.get("Content-Length")
            try:
                size = int(length) if length is not None else -1
            except ValueError:
                size = -1
            if size < 0:
                self.close_connection = True
                self.send_json(411, {"error": "a Content-Length header is required"})
                return
            if size > MAX_BODY:
                # drain a moderately large body so the client gets to read the answer
                self.close_connection = True
                if size <= DRAIN_LIMIT:
                    left = size
                    while left > 0:
                        chunk = self.rfile.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        left -= len(chunk)
                self.send_json(413, {"error": f"body of {size} bytes is over the {MAX_BODY} byte limit"})
                return
            body = self.rfile.read(size)
            try:
                payload = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                self.send_json(400, {"error": f"invalid JSON: {e}"})
                return
            try:
                predictions = model.answer(payload)
            except (BadRequest, RequestError) as e:
                self.send_json(400, {"error": str(e)})
                return
            except Exception as e:  # noqa: BLE001 - a bad row must not take the server down
                sys.stderr.write(traceback.format_exc())
                self.send_json(500, {"error": f"prediction failed: {type(e).__name__}: {e}"[:2000]})
                return
            self.send_json(200, {"predictions": predictions})

        def do_PUT(self):
            self.send_json(405, {"error": "use GET /health or POST /predict"})

        do_DELETE = do_PUT
        do_PATCH = do_PUT

    return Handler


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="serve.py", description="ThreadML model server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
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
    server = ThreadingHTTPServer((args.host, args.port), make_handler(model))
    server.daemon_threads = True

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it must run on another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    event({"event": "listening", "host": host, "port": port})
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
