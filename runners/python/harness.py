#!/usr/bin/env python3
"""ThreadML harness: the fixed code that loads data, runs a generated solution and measures it.

Usage (cwd = the workspace; every path in the spec is relative to it):
    python3 harness.py [--spec spec.json]    train, search, score, predict or explain, as spec.json says
    python3 harness.py --check               one JSON line describing the interpreter

Events are compact JSON lines on stdout; everything else (including anything generated code
prints) goes to stderr. The result is written to <out_dir>/result.json.

spec.json's `variant` says how the data is read: plain tables here; time series, graphs (a node table
with an edge list) and images in variant_timeseries.py, variant_graph.py and variant_images.py beside
this file, each with its settings under its own name in the spec. The follow-up modes on a trained
model (predict: score a new file; explain: permutation importance) are in followup.py.

Exit codes: 0 ok, 1 error (classified in result.json), 2 bad command line,
3 the interpreter lacks numpy/pandas/scikit-learn.
"""

import argparse
import contextlib
import difflib
import importlib
import importlib.util
import inspect
import json
import math
import os
import pickle
import platform
import random
import sys
import threading
import time
import traceback
import zlib

MODES = ("train", "search", "score", "predict", "explain")
TRAIN_STAGES = ["load", "split", "build", "fit", "evaluate", "save", "plots"]
SEARCH_STAGES = ["load", "split", "search"]

# module name -> (Debian package, pip package)
REQUIRED_MODULES = [
    ("numpy", "python3-numpy", "numpy"),
    ("pandas", "python3-pandas", "pandas"),
    ("sklearn", "python3-sklearn", "scikit-learn"),
]
OPTIONAL_MODULES = [("matplotlib", "python3-matplotlib", "matplotlib")]

# Import names whose pip distribution is named differently (PyTorch is installed as the pair).
PIP_NAMES = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "torch": "torch torchvision",
    "torchvision": "torch torchvision",
}
# Debian packages for the modules ThreadML's setup (bin/setup.sh) installs or a plan may name.
DEBIAN_NAMES = {
    **{m: deb for m, deb, _ in REQUIRED_MODULES + OPTIONAL_MODULES},
    "scipy": "python3-scipy",
    "xgboost": "python3-xgboost",
    "optuna": "python3-optuna",
    "openpyxl": "python3-openpyxl",
    "PIL": "python3-pil",
    "yaml": "python3-yaml",
    "cv2": "python3-opencv",
    "torch": "python3-torch python3-torchvision",
    "torchvision": "python3-torch python3-torchvision",
}

# Harness variants beyond tables, each in variant_<name>.py beside this file (which declares the harness
# task it runs as). The host maps task kinds to variants (src/schema/tasks.ts); this closed list stays
# because spec.json and model_meta.json name the module to import.
VARIANTS = ("timeseries", "graph", "images")

METRIC_ALIASES = {
    "acc": "accuracy",
    "f1_score": "f1",
    "auc": "roc_auc",
    "roc": "roc_auc",
    "rand": "rand_index",
    "ari": "adjusted_rand_index",
    "adjusted_rand": "adjusted_rand_index",
    "normalized_mutual_info": "nmi",
    "silhouette_score": "silhouette",
    "mse_log": "rmsle",
}
GREATER_IS_BETTER = {
    "accuracy": True, "balanced_accuracy": True, "f1": True, "precision": True, "recall": True, "roc_auc": True,
    "rmse": False, "mae": False, "r2": True, "rmsle": False, "mape": False, "smape": False,
    "silhouette": True, "rand_index": True, "adjusted_rand_index": True, "nmi": True,
}
TASK_METRICS = {
    "classification": ["accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc"],
    "regression": ["rmse", "mae", "r2", "rmsle", "mape", "smape"],
    "clustering": ["silhouette", "rand_index", "adjusted_rand_index", "nmi"],
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse", "clustering": "silhouette"}
LABEL_METRICS = {"rand_index", "adjusted_rand_index", "nmi"}


# --------------------------------------------------------------------------- errors


class HarnessError(Exception):
    """A problem the harness found itself, already classified."""

    def __init__(self, cls, message, exit_code=1):
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.exit_code = exit_code


class GeneratedCodeError(Exception):
    """An exception raised inside generated code (solution import or a slot call)."""

    def __init__(self, where, original):
        super().__init__(f"{where}: {type(original).__name__}: {original}")
        self.where = where
        self.original = original


def pip_name(module):
    root = (module or "").split(".")[0]
    return PIP_NAMES.get(root, root)


def install_hint(module):
    """How to install a module on the runner: the Debian packages where there are some, and pip."""
    root = (module or "").split(".")[0]
    deb = DEBIAN_NAMES.get(root)
    pip = f"pip install {pip_name(root)}"
    return f"Debian/Ubuntu: apt-get install {deb}; or {pip}" if deb else pip


def describe_exception(e, limit=800):
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify(exc):
    """(failure class, message) for any exception that ended a run."""
    if isinstance(exc, HarnessError):
        return exc.cls, exc.message
    if isinstance(exc, GeneratedCodeError):
        e, where = exc.original, exc.where
        if isinstance(e, SyntaxError):
            loc = f"{os.path.basename(e.filename or 'solution')} line {e.lineno}" if e.lineno else "the solution"
            text = f": {e.text.strip()}" if e.text else ""
            return "syntax_error", f"{type(e).__name__} in {loc}: {e.msg}{text}"
        if isinstance(e, ModuleNotFoundError):
            mod = e.name or str(e)
            return (
                "environment_error",
                f"The solution imports '{mod}', which is not installed for {sys.executable}. "
                f"Install it on the runner ({install_hint(mod)}) or use a scikit-learn estimator instead.",
            )
        if isinstance(e, ImportError):
            return (
                "environment_error",
                f"The solution failed to import something ({e}); it is not available for {sys.executable}. "
                f"Install it on the runner or use a scikit-learn estimator instead.",
            )
        if isinstance(e, MemoryError):
            return "runtime_error", f"Memory ran out during {where}; use fewer rows, fewer features or a smaller model."
        if isinstance(e, ValueError):
            return "value_error", f"{where}: {describe_exception(e)}"
        return "runtime_error", f"{where}: {describe_exception(e)}"
    if isinstance(exc, MemoryError):
        return "runtime_error", "Memory ran out in the harness; use fewer rows (sample_rows) or fewer features."
    if isinstance(exc, ImportError):
        return "environment_error", f"The harness could not import what it needs ({exc}) with {sys.executable}."
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return "value_error", describe_exception(exc)
    return "runtime_error", describe_exception(exc)


def traceback_tail(exc, lines=40):
    if isinstance(exc, HarnessError):
        return ""  # the harness's own checks: the message says it all
    target = exc.original if isinstance(exc, GeneratedCodeError) else exc
    text = "".join(traceback.format_exception(type(target), target, target.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------- JSON


def to_jsonable(obj):
    """Plain JSON values: numpy scalars unwrapped, NaN/inf -> None, unknown objects -> str."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    mod = type(obj).__module__ or ""
    if mod.startswith("numpy"):
        if hasattr(obj, "tolist"):
            return to_jsonable(obj.tolist())
    if mod.startswith("pandas"):
        if type(obj).__name__ in ("NAType", "NaTType"):
            return None
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        if hasattr(obj, "tolist"):
            return to_jsonable(obj.tolist())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_jsonable(obj), f, indent=2)


def finite_metrics(d):
    out = {}
    for k, v in d.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[k] = f
    return out


# --------------------------------------------------------------------------- events


class Events:
    """Owns the real stdout; the process's fd 1 is pointed at stderr so nothing else can write events."""

    def __init__(self):
        self._out = sys.stdout
        self._lock = threading.Lock()

    def install(self):
        sys.stdout.flush()
        try:
            fd = os.dup(1)
            os.dup2(2, 1)
            self._out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        except OSError:
            self._out = sys.__stdout__
        sys.stdout = sys.stderr

    def emit(self, event):
        line = json.dumps(to_jsonable(event), separators=(",", ":"), allow_nan=False)
        with self._lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (OSError, ValueError):
                pass


EVENTS = Events()


def emit(event):
    EVENTS.emit(event)


@contextlib.contextmanager
def generated(where):
    """Runs generated code with prints sent to stderr and its exceptions tagged as its own."""
    with contextlib.redirect_stdout(sys.stderr):
        try:
            yield
        except (HarnessError, GeneratedCodeError, KeyboardInterrupt):
            raise
        except SystemExit as e:
            raise GeneratedCodeError(where, RuntimeError(f"the solution called exit({e.code})")) from e
        except BaseException as e:  # noqa: BLE001 - everything from generated code is classified
            raise GeneratedCodeError(where, e) from e


# --------------------------------------------------------------------------- run state


class Run:
    def __init__(self, spec):
        self.spec = spec
        self.t0 = time.perf_counter()
        self.warnings = []
        self.result = {
            "status": "ok",
            "mode": spec.get("mode") if spec.get("mode") in MODES else "train",
            "task": spec.get("task") if spec.get("task") in TASK_METRICS else "classification",
            "metrics": {},
            "valid_metrics": {},
            "complexity": {},
            "rows": None,
            "features": None,
            "model_path": None,
            "plots": [],
            "sample": None,
            "classes": None,
            "search": None,
            "threshold": None,
            "predicted": None,
            "importance": None,
            "env": None,
            "details": {},
            "warnings": self.warnings,
            "error": None,
        }

    def warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)
        emit({"event": "log", "level": "warning", "message": message})

    def log(self, message, level="info"):
        emit({"event": "log", "level": level, "message": str(message)})

    def stage(self, name, stages, message=None):
        event = {"event": "progress", "stage": name, "done": stages.index(name) + 1, "total": len(stages)}
        if message:
            event["message"] = message
        emit(event)

    def out_dir(self):
        return self.spec.get("out_dir") or "out"

    def write_result(self):
        out = self.out_dir()
        try:
            os.makedirs(out, exist_ok=True)
            path = os.path.join(out, "result.json")
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(to_jsonable(self.result), f, indent=2, allow_nan=False)
            os.replace(tmp, path)
        except OSError as e:
            sys.stderr.write(f"threadml harness: could not write result.json: {e}\n")


# --------------------------------------------------------------------------- spec


def read_spec(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise HarnessError("value_error", f"Spec file '{path}' not found in {os.getcwd()}.")
    except (OSError, ValueError) as e:
        raise HarnessError("value_error", f"Spec file '{path}' could not be read: {e}")
    if not isinstance(raw, dict):
        raise HarnessError("value_error", f"Spec file '{path}' must hold a JSON object.")
    return raw


def normalise_spec(raw):
    """Applies the contract's defaults and checks the fields the harness relies on."""
    spec = dict(raw)
    problems = []
    if spec.get("mode") not in MODES:
        problems.append(f"mode must be one of {', '.join(MODES)}")
    if spec.get("task") not in TASK_METRICS:
        problems.append("task must be classification, regression or clustering")
    if not isinstance(spec.get("data"), str) or not spec.get("data"):
        problems.append("data must be a file path")
    spec.setdefault("target", None)
    if spec.get("task") in ("classification", "regression") and not spec.get("target"):
        problems.append(f"a {spec.get('task')} task needs a target column")
    spec.setdefault("labels_column", None)
    spec["drop_columns"] = list(spec.get("drop_columns") or [])
    spec["text_columns"] = list(spec.get("text_columns") or [])
    spec.setdefault("positive_class", None)
    spec.setdefault("n_clusters", None)
    goal = spec.get("metric_goal")
    if goal is not None and (isinstance(goal, bool) or not isinstance(goal, (int, float)) or not math.isfinite(goal)):
        problems.append("metric_goal must be a number or null")
    spec["metric_goal"] = float(goal) if isinstance(goal, (int, float)) and not isinstance(goal, bool) else None
    metric = str(spec.get("metric") or "").strip().lower().replace("-", "_").replace(" ", "_")
    spec["metric"] = METRIC_ALIASES.get(metric, metric)
    spec["seed"] = int(spec.get("seed") if spec.get("seed") is not None else 42)
    split = spec.get("split") or {}
    spec["split"] = {"valid": float(split.get("valid", 0.15)), "test": float(split.get("test", 0.15))}
    for k, v in spec["split"].items():
        if not 0 < v < 0.5:
            problems.append(f"split.{k} must be between 0 and 0.5")
    spec.setdefault("sample_rows", None)
    spec["solution"] = spec.get("solution") or "solution.py"
    spec["out_dir"] = spec.get("out_dir") or "out"
    spec["plots"] = bool(spec.get("plots", True))
    holdout = spec.get("holdout")
    if holdout is not None:
        if not isinstance(holdout, dict) or not isinstance(holdout.get("features"), (str, type(None))):
            problems.append("holdout must be an object with a features path or null")
        elif spec.get("variant", "tabular") not in (None, "tabular"):
            problems.append("holdout applies to plain tables only")
    if spec.get("mode") == "score":
        score = spec.get("score")
        if not isinstance(score, dict) or not isinstance(score.get("predictions"), str):
            problems.append("score mode needs score.predictions")
    if spec.get("mode") in ("predict", "explain"):
        # the follow-up modes (followup.py) check their own settings
        import followup

        followup.normalise(spec, problems)
    search = spec.get("search")
    if spec.get("mode") == "search":
        if not isinstance(search, dict) or not search.get("candidates"):
            problems.append("search mode needs search.candidates")
        else:
            search = dict(search)
            search["n_iter"] = max(1, int(search.get("n_iter") or 6))
            search["budget_s"] = float(search.get("budget_s") or 20)
            search["cv_folds"] = max(2, int(search.get("cv_folds") or 3))
            search["sample_rows"] = max(1, int(search.get("sample_rows") or 3000))
            search["sampler"] = search.get("sampler") or "auto"
            if search["sampler"] not in ("auto", "tpe", "random"):
                problems.append("search.sampler must be auto, tpe or random")
            spec["search"] = search
    variant = spec.get("variant") or "tabular"
    spec["variant"] = variant
    if variant != "tabular":
        module = load_variant(variant) if variant in VARIANTS else None
        if module is None:
            problems.append(f"variant must be tabular or one of {', '.join(VARIANTS)}")
        elif spec.get("task") != module.TASK:
            problems.append(f"the {variant} variant runs as task '{module.TASK}'")
        elif not isinstance(spec.get(variant), dict):
            problems.append(f"the {variant} variant needs its '{variant}' settings")
        else:
            module.normalise(spec, problems)
    if problems:
        raise HarnessError("value_error", "spec.json is invalid: " + "; ".join(problems))
    return spec


def load_variant(name):
    """The module of a harness variant, or None for plain tables."""
    if not name or name == "tabular":
        return None
    module = f"variant_{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise HarnessError("environment_error", f"{module}.py is missing beside harness.py; the {name} variant cannot run.")
        raise


# --------------------------------------------------------------------------- data


def closest(name, options):
    lowered = {o.lower(): o for o in options}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def missing_column_message(what, name, columns, data):
    shown = ", ".join(columns[:60]) + (f", ... ({len(columns)} in all)" if len(columns) > 60 else "")
    msg = f"{what} '{name}' is not a column of {data}. Available columns: {shown}."
    guess = closest(name, columns)
    if guess:
        msg += f" Did you mean '{guess}'?"
    return msg


def read_csv(path, sep=","):
    import pandas as pd

    if not os.path.exists(path):
        raise HarnessError("value_error", f"Data file '{path}' was not found in the workspace.")
    if os.path.isdir(path):
        raise HarnessError("value_error", f"Data path '{path}' is a folder, not a CSV file.")
    if os.path.getsize(path) == 0:
        raise HarnessError("value_error", f"Data file '{path}' is empty: it has no rows.")
    last = None
    for encoding in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(path, sep=sep, encoding=encoding, low_memory=False)
        except UnicodeDecodeError as e:
            last = e
            continue
        except pd.errors.EmptyDataError:
            raise HarnessError("value_error", f"Data file '{path}' has no rows (no header or data).")
        except (pd.errors.ParserError, ValueError) as e:
            raise HarnessError("value_error", f"Data file '{path}' could not be parsed as CSV: {e}")
    raise HarnessError("value_error", f"Data file '{path}' could not be decoded as text: {last}")


class Prepared:
    """Features, target and known groups after the checks, before splitting. Variants fill the same
    fields and may change how features are preprocessed (images, say, become feature vectors)."""

    # extra attributes the solution's ctx receives (variants describe their data there)
    context = {}
    # facts for result.json's details (variants: series, frequency, images read ...)
    details = {}
    text_min_df = {}
    # date and timestamp columns (plain tables only): calendar features inside the pipeline
    dates = []

    def preprocessor(self, scale=False, encode="onehot"):
        return make_preprocessor(
            self.numeric,
            self.categorical,
            scale=scale,
            encode=encode,
            text=self.text,
            text_min_df=self.text_min_df,
            dates=self.dates,
        )


# A text column is an identifier (a name, an e-mail, a ticket code) when nearly every filled cell is
# different and the values are short: longer ones are free text, which the spec lists to vectorise.
ID_MIN_ROWS = 50
ID_MIN_DISTINCT = 0.95
ID_MAX_MEAN_LENGTH = 25


def set_aside(run, X, kinds):
    """Columns a data scientist would not feed a model: constant ones and identifiers (see ID_*).
    Numeric columns are never taken for identifiers, and at least one feature always stays.
    Returns [{column, reason}]."""
    found = []
    for c, kind in kinds.items():
        col = X[c]
        filled = col.dropna()
        if kind == "categorical" or kind == "text":
            filled = filled[filled.astype(str).str.strip() != ""]
        distinct = filled.nunique()
        if distinct <= 1:
            found.append({"column": c, "reason": "constant"})
        elif (
            kind == "categorical"
            and col.dtype == object
            and len(filled) >= ID_MIN_ROWS
            and distinct >= ID_MIN_DISTINCT * len(filled)
            and filled.astype(str).str.len().mean() < ID_MAX_MEAN_LENGTH
        ):
            found.append({"column": c, "reason": "identifier"})
    if len(found) == len(kinds):
        names = ", ".join(f"'{f['column']}'" for f in found)
        run.warn(f"Every feature looks constant or like an identifier ({names}); they are all kept, as nothing else is left.")
        return []
    for f in found:
        c = f["column"]
        if f["reason"] == "constant":
            run.warn(f"Column '{c}' is set aside: it holds a single value, so it cannot tell rows apart.")
        else:
            n = int(X[c].nunique())
            run.warn(
                f"Column '{c}' is set aside: it looks like an identifier ({n} distinct short values in "
                f"{int(X[c].notna().sum())} rows), which would not carry over to new rows."
            )
    return found


def prepare(run, spec):
    import numpy as np
    import pandas as pd

    from features import as_date_strings, looks_like_dates

    task, data = spec["task"], spec["data"]
    df = read_csv(data, spec.get("delimiter") or ",")
    stripped = [str(c).strip() for c in df.columns]
    if stripped != [str(c) for c in df.columns]:
        run.warn("Column names had surrounding spaces; they were stripped.")
    df.columns = stripped
    columns = list(df.columns)
    if len(df) == 0:
        raise HarnessError("value_error", f"Data file '{data}' has no rows (only a header).")

    # names are compared stripped, like the header
    target = None if spec.get("target") is None else str(spec["target"]).strip()
    if target is not None and target not in columns:
        if task == "clustering":
            run.warn(f"Target '{target}' is not a column; ignored for clustering.")
            target = None
        else:
            raise HarnessError("value_error", missing_column_message("Target column", target, columns, data))
    labels_col = None if spec.get("labels_column") is None else str(spec["labels_column"]).strip()
    spec["drop_columns"] = [str(c).strip() for c in spec["drop_columns"]]
    if labels_col is not None and labels_col not in columns:
        raise HarnessError("value_error", missing_column_message("labels_column", labels_col, columns, data))
    for c in spec["drop_columns"]:
        if c not in columns:
            raise HarnessError("value_error", missing_column_message("drop_columns entry", c, columns, data))
    spec["text_columns"] = [str(c).strip() for c in spec["text_columns"]]
    for c in spec["text_columns"]:
        if c not in columns:
            raise HarnessError("value_error", missing_column_message("text_columns entry", c, columns, data))

    if target is not None and task != "clustering":
        n_before = len(df)
        df = df[df[target].notna()]
        if df[target].dtype == object:
            df = df[df[target].astype(str).str.strip() != ""]
        dropped = n_before - len(df)
        if dropped:
            run.warn(f"Dropped {dropped} rows whose target '{target}' is missing.")

    sample_rows = spec.get("sample_rows")
    if sample_rows and int(sample_rows) < len(df):
        df = df.sample(n=int(sample_rows), random_state=spec["seed"])
        run.log(f"Smoke run: sampled {len(df)} rows.")
    df = df.reset_index(drop=True)

    if len(df) < 10:
        raise HarnessError(
            "value_error", f"Data file '{data}' has only {len(df)} usable rows; at least 10 are needed."
        )

    excluded = set(spec["drop_columns"])
    if target is not None:
        excluded.add(target)
    if labels_col is not None:
        excluded.add(labels_col)
    features = [c for c in columns if c not in excluded]
    if not features:
        raise HarnessError("value_error", f"No feature columns are left in '{data}' after removing the target and dropped columns.")

    X = df[features].copy()
    kinds = {}
    listed = set(spec["text_columns"])
    for c in features:
        dtype = X[c].dtype
        # Only the columns the spec names are vectorised: a text task lists them. Elsewhere a long string
        # column stays categorical, so dense-only models never meet sparse TF-IDF features.
        if c in listed:
            kinds[c] = "text"
        elif looks_like_dates(X[c]):
            kinds[c] = "date"
        elif pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            kinds[c] = "categorical"
        else:
            kinds[c] = "numeric"
    aside = set_aside(run, X, kinds)
    if aside:
        features = [c for c in features if c not in {f["column"] for f in aside}]
        X = X[features]
    numeric, categorical, text, dates = ([c for c in features if kinds[c] == k] for k in ("numeric", "categorical", "text", "date"))
    text_min = {}
    for c in list(text):
        docs = as_text_strings(X[c])
        # Only the words of the feature column decide this, never the target; a sample is enough, since
        # terms shared within a sample are shared in the whole column.
        probe = docs.sample(n=TFIDF_PROBE_ROWS, random_state=spec["seed"]) if len(docs) > TFIDF_PROBE_ROWS else docs
        found = text_min_df(probe)
        if found is None:
            run.warn(f"Text column '{c}' holds no words to vectorise; it is treated as categorical.")
            text.remove(c)
            categorical.append(c)
        else:
            X[c] = docs
            text_min[c] = found
    for c in categorical:
        X[c] = as_category_strings(X[c])
    for c in dates:
        X[c] = as_date_strings(X[c])
    if text:
        run.log(f"Text column(s) {', '.join(text)} become TF-IDF features.")
    if dates:
        run.log(f"Date column(s) {', '.join(dates)} become calendar features (year, month, weekday, season, trend).")
    for c in numeric:
        if X[c].isna().all():
            run.warn(f"Feature '{c}' is empty in every row.")
    for c in categorical:
        n_unique = X[c].nunique(dropna=True)
        if len(X) >= 50 and n_unique > 0.5 * len(X):
            run.warn(f"Categorical feature '{c}' has {n_unique} distinct values (an identifier?); consider dropping it.")

    p = Prepared()
    p.X, p.numeric, p.categorical, p.text, p.features = X, numeric, categorical, text, features
    p.dates = dates
    p.text_min_df = text_min
    p.details = {"set_aside": aside} if aside else {}
    p.target, p.labels_col = target, labels_col
    p.y, p.labels, p.classes = None, None, None
    if task == "classification":
        y = df[target]
        if pd.api.types.is_float_dtype(y.dtype) and np.all(np.mod(y.to_numpy(), 1) == 0):
            y = y.astype("int64")
        elif not (pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)):
            y = y.astype(str)
        classes = sorted_classes(y.unique())
        if len(classes) < 2:
            raise HarnessError(
                "value_error",
                f"Target '{target}' has a single class ({to_jsonable(classes[0])!r}); classification needs at least two.",
            )
        if len(classes) > max(50, len(y) // 5):
            run.warn(f"Target '{target}' has {len(classes)} classes for {len(y)} rows; is this really classification?")
        p.y, p.classes = y, classes
    elif task == "regression":
        y = pd.to_numeric(df[target], errors="coerce")
        bad = int(y.isna().sum())
        if bad == len(y):
            raise HarnessError(
                "value_error",
                f"Target '{target}' is not numeric (e.g. {to_jsonable(df[target].iloc[0])!r}); regression needs numbers.",
            )
        if bad:
            run.warn(f"Dropped {bad} rows whose target '{target}' is not a number.")
            keep = y.notna().to_numpy()
            p.X = p.X[keep].reset_index(drop=True)
            df = df[keep].reset_index(drop=True)
            y = y[keep].reset_index(drop=True)
            if len(y) < 10:
                raise HarnessError("value_error", f"Only {len(y)} rows have a numeric target; at least 10 are needed.")
        p.y = y.astype(float)
    if labels_col is not None:
        p.labels = df[labels_col].astype(object).map(lambda v: None if pd.isna(v) else str(v))
    return p


def as_text_strings(s):
    """Documents for the vectorizer: missing cells become empty strings (TF-IDF cannot take NaN)."""
    import pandas as pd

    return s.astype(object).map(lambda v: "" if pd.isna(v) else str(v))


def as_category_strings(s):
    """Strings for encoding, keeping missing cells missing (so the imputer sees them)."""
    import numpy as np
    import pandas as pd

    def conv(v):
        if pd.isna(v):
            return np.nan
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return s.astype(object).map(conv)


def sorted_classes(values):
    vals = [to_jsonable(v) for v in values]
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


class DataSplit:
    """What a slot sees: X (DataFrame) and y (Series, or None for clustering)."""

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def __len__(self):
        return len(self.X)

    def __repr__(self):
        return f"DataSplit(rows={len(self.X)}, columns={list(self.X.columns)})"


def split_indices(run, prep, spec):
    from sklearn.model_selection import train_test_split
    import numpy as np

    n = len(prep.X)
    seed = spec["seed"]
    if spec.get("holdout") is not None:
        return split_train_valid(run, prep, spec)
    n_test = max(1, int(round(n * spec["split"]["test"])))
    n_valid = max(1, int(round(n * spec["split"]["valid"])))
    if n - n_test - n_valid < 5:
        raise HarnessError("value_error", f"{n} rows are too few to split into train, valid and test sets.")
    idx = np.arange(n)
    y = prep.y.to_numpy() if spec["task"] == "classification" else None

    def cut(items, size, strat):
        if strat is not None:
            try:
                return train_test_split(items, test_size=size, random_state=seed, stratify=strat)
            except ValueError:
                run.warn("A class is too rare to stratify the split; the split is random instead.")
        return train_test_split(items, test_size=size, random_state=seed)

    rest, test = cut(idx, n_test, y)
    train, valid = cut(rest, n_valid, None if y is None else y[rest])
    return np.sort(train), np.sort(valid), np.sort(test)


def split_train_valid(run, prep, spec):
    """The test rows were held out on the host: cut the validation rows from what is here, in the same
    proportion of the whole table as without a holdout."""
    from sklearn.model_selection import train_test_split
    import numpy as np

    n = len(prep.X)
    frac = spec["split"]["valid"] / (1 - spec["split"]["test"])
    n_valid = max(1, int(round(n * frac)))
    if n - n_valid < 5:
        raise HarnessError("value_error", f"{n} rows are too few to split into train and valid sets.")
    idx = np.arange(n)
    y = prep.y.to_numpy() if spec["task"] == "classification" else None
    try:
        train, valid = train_test_split(idx, test_size=n_valid, random_state=spec["seed"], stratify=y)
    except ValueError:
        if y is not None:
            run.warn("A class is too rare to stratify the split; the split is random instead.")
        train, valid = train_test_split(idx, test_size=n_valid, random_state=spec["seed"])
    return np.sort(train), np.sort(valid), np.array([], dtype=int)


def holdout_features(run, spec, prep):
    """The held-out test rows' features (no labels), prepared the way the model server prepares rows."""
    import pandas as pd

    from features import as_date_strings

    path = (spec.get("holdout") or {}).get("features")
    if not path:
        return None
    df = read_csv(path, spec.get("delimiter") or ",")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in prep.features if c not in df.columns]
    if missing:
        raise HarnessError("value_error", f"The held-out rows lack the feature column(s) {', '.join(missing[:5])}.")
    X = df[prep.features].copy()
    for c in prep.numeric:
        X[c] = pd.to_numeric(X[c], errors="coerce")
    for c in prep.text:
        X[c] = as_text_strings(X[c])
    for c in prep.categorical:
        X[c] = as_category_strings(X[c])
    for c in prep.dates:
        X[c] = as_date_strings(X[c])
    return X.reset_index(drop=True)


def take(prep, idx):
    X = prep.X.iloc[idx].reset_index(drop=True)
    y = None if prep.y is None else prep.y.iloc[idx].reset_index(drop=True)
    labels = None if prep.labels is None else prep.labels.iloc[idx].reset_index(drop=True)
    return X, y, labels


def pick_positive_class(run, spec, classes, y_train):
    if classes is None or len(classes) != 2:
        return None
    wanted = spec.get("positive_class")
    if wanted is not None:
        for c in classes:
            if str(c) == str(wanted):
                return c
        run.warn(f"positive_class {wanted!r} is not a class of the target ({classes}); using the minority class.")
    counts = {c: 0 for c in classes}
    for v in y_train:
        v = to_jsonable(v)
        if v in counts:
            counts[v] += 1
    # ties go to the later class ("1", "yes", "Good" usually sort last)
    pos = min(reversed(classes), key=lambda c: counts[c])
    run.warn(f"Positive class for f1/precision/recall: {pos!r} (the minority class in train).")
    return pos


# --------------------------------------------------------------------------- preprocessing


# TF-IDF settings for text columns: word unigrams and bigrams, damped term counts, a capped vocabulary.
TFIDF_MAX_FEATURES = 20000
TFIDF_NGRAMS = (1, 2)
# Terms must appear in two documents, unless there are too few rows for that to leave any.
TFIDF_MIN_DF_ROWS = 100
# Rows looked at to choose min_df.
TFIDF_PROBE_ROWS = 5000


def make_text_vectorizer(min_df=2):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        sublinear_tf=True, ngram_range=TFIDF_NGRAMS, max_features=TFIDF_MAX_FEATURES, min_df=min_df, strip_accents="unicode"
    )


def text_min_df(docs):
    """2 when terms shared by two documents exist, 1 when only single ones do, None when there are no
    words at all (single characters, symbols or empty cells): such a column cannot be vectorised."""
    from sklearn.feature_extraction.text import CountVectorizer

    for min_df in ((2, 1) if len(docs) >= TFIDF_MIN_DF_ROWS else (1,)):
        try:
            CountVectorizer(ngram_range=TFIDF_NGRAMS, min_df=min_df, strip_accents="unicode").fit(docs)
            return min_df
        except ValueError:  # no terms remain after pruning, or none to begin with
            continue
    return None


def make_preprocessor(numeric, categorical, scale=False, encode="onehot", text=(), text_min_df=None, dates=()):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from features import DateFeatures

    if encode not in ("onehot", "ordinal"):
        raise ValueError(f"encode must be 'onehot' or 'ordinal', not {encode!r}")
    parts = []
    if numeric:
        steps = [("impute", SimpleImputer(strategy="median"))]
        if scale:
            steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(steps), list(numeric)))
    if categorical:
        if encode == "onehot":
            try:
                enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            except TypeError:  # scikit-learn < 1.2
                enc = OneHotEncoder(handle_unknown="ignore", sparse=False)
        else:
            enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        steps = [("impute", SimpleImputer(strategy="most_frequent")), ("encode", enc)]
        parts.append(("cat", Pipeline(steps), list(categorical)))
    if dates:
        # calendar features, not one column per distinct date string; unreadable dates are imputed
        steps = [("calendar", DateFeatures()), ("impute", SimpleImputer(strategy="median"))]
        if scale:
            steps.append(("scale", StandardScaler()))
        parts.append(("dates", Pipeline(steps), list(dates)))
    for i, c in enumerate(text):
        # a scalar column name hands the vectorizer a 1-D series of documents, as it expects
        parts.append((f"text{i}", make_text_vectorizer((text_min_df or {}).get(c, 2)), c))
    if text:
        # TF-IDF matrices stay sparse: densifying thousands of columns would cost far more memory than
        # the model. Linear models and naive Bayes take sparse input; tree ensembles such as
        # HistGradientBoosting need dense input, so the planner does not offer them when text is present.
        return ColumnTransformer(parts, remainder="drop", sparse_threshold=1.0)
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


class Context:
    """What every slot receives: facts about the task and a few helpers."""

    def __init__(self, run, spec, prep, positive_class):
        self._run = run
        self._prep = prep
        self.variant = spec.get("variant") or "tabular"
        self.task = spec["task"]
        self.target = prep.target
        self.metric = spec["metric"]
        self.seed = spec["seed"]
        self.numeric_columns = list(prep.numeric)
        self.categorical_columns = list(prep.categorical)
        self.text_columns = list(prep.text)
        self.date_columns = list(prep.dates)
        self.n_clusters = spec.get("n_clusters")
        self.positive_class = positive_class
        self.classes = list(prep.classes) if prep.classes is not None else None
        for key, value in prep.context.items():
            setattr(self, key, value)

    def preprocessor(self, scale=False, encode="onehot"):
        """An unfitted ColumnTransformer: median-impute (+scale) numerics, impute + encode categoricals,
        calendar features for date columns, TF-IDF for text columns (then the output is a sparse
        matrix). For images, the image feature extractor (pixels, colour and gradient histograms),
        scaled when asked."""
        return self._prep.preprocessor(scale=scale, encode=encode)

    def progress(self, stage, done=None, total=None):
        event = {"event": "progress", "stage": str(stage)}
        for k, v in (("done", done), ("total", total)):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
                event[k] = float(v) if isinstance(v, float) else int(v)
        emit(event)

    def log(self, message):
        emit({"event": "log", "level": "info", "message": str(message)[:4000]})

    def report(self, name, value):
        """A number the solution claims; the harness checks claims against its own metrics."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            self._run.warn(f"ctx.report({name!r}) got a value that is not a number; ignored.")
            return
        if math.isfinite(v):
            emit({"event": "metric", "name": str(name), "value": v, "split": "claimed"})

    def __repr__(self):
        return f"Context(task={self.task!r}, target={self.target!r}, metric={self.metric!r})"


# --------------------------------------------------------------------------- solution


def load_solution(path):
    if not os.path.isfile(path):
        raise HarnessError("runtime_error", f"Solution file '{path}' was not found in the workspace.")
    name = os.path.splitext(os.path.basename(path))[0].replace("-", "_").replace(".", "_") or "solution"
    mod_spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    module = importlib.util.module_from_spec(mod_spec)
    # registered so that pickle can find classes the solution defines
    sys.modules[name] = module
    with generated("import"):
        mod_spec.loader.exec_module(module)
    return module


def slot(module, name):
    fn = getattr(module, name, None)
    if fn is None:
        return None
    if not callable(fn):
        raise HarnessError("runtime_error", f"The solution's '{name}' is not a function.")
    return fn


def predict_with(predict_fn, model, X, where="predict"):
    import numpy as np

    with generated(where):
        if predict_fn is not None:
            pred = predict_fn(model, X)
        else:
            if not hasattr(model, "predict"):
                raise TypeError(
                    f"{type(model).__name__} has no predict(); use a model that can label new rows "
                    "or define predict(model, X) in the solution"
                )
            pred = model.predict(X)
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred.ravel()
    if pred.ndim != 1 or len(pred) != len(X):
        raise HarnessError(
            "runtime_error",
            f"{where} returned an array of shape {pred.shape} for {len(X)} rows; expected one prediction per row.",
        )
    return pred


# --------------------------------------------------------------------------- metrics


def classification_metrics(y_true, y_pred, classes, pos_label, proba_source):
    import numpy as np
    from sklearn import metrics as M

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.dtype.kind in "iub" and y_pred.dtype.kind == "f":
        if np.all(np.isfinite(y_pred)) and np.all(np.mod(y_pred, 1) == 0):
            y_pred = y_pred.astype(y_true.dtype)
    if y_true.dtype.kind in "OUS":
        y_pred = y_pred.astype(str)
    out = {"accuracy": M.accuracy_score(y_true, y_pred), "balanced_accuracy": M.balanced_accuracy_score(y_true, y_pred)}
    if len(classes) == 2 and pos_label is not None:
        kw = {"pos_label": pos_label, "average": "binary", "zero_division": 0, "labels": list(classes)}
    else:
        kw = {"average": "macro", "zero_division": 0, "labels": list(classes)}
    out["f1"] = M.f1_score(y_true, y_pred, **kw)
    out["precision"] = M.precision_score(y_true, y_pred, **kw)
    out["recall"] = M.recall_score(y_true, y_pred, **kw)
    try:
        proba, model_classes = proba_source()
        if proba is not None:
            proba = np.asarray(proba, dtype=float)
            model_classes = [to_jsonable(c) for c in model_classes]
            if len(classes) == 2:
                col = model_classes.index(pos_label)
                is_pos = np.array([to_jsonable(v) == pos_label for v in y_true.tolist()])
                out["roc_auc"] = M.roc_auc_score(is_pos, proba[:, col])
            else:
                out["roc_auc"] = M.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=model_classes)
    except Exception:  # noqa: BLE001 - roc_auc is best effort
        pass
    return out


def regression_metrics(y_true, y_pred):
    import numpy as np
    from sklearn import metrics as M

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if not np.all(np.isfinite(y_pred)):
        raise HarnessError("runtime_error", "The model predicted NaN or infinite values.")
    out = {
        "rmse": math.sqrt(M.mean_squared_error(y_true, y_pred)),
        "mae": M.mean_absolute_error(y_true, y_pred),
        "r2": M.r2_score(y_true, y_pred) if len(y_true) > 1 else float("nan"),
    }
    if np.all(y_true >= 0):
        out["rmsle"] = rmsle(y_true, y_pred)
    m = mape(y_true, y_pred)
    if m is not None:
        out["mape"] = m
    out["smape"] = smape(y_true, y_pred)
    return out


def rmsle(y_true, y_pred):
    import numpy as np

    y_pred = np.clip(np.asarray(y_pred, dtype=float), 0, None)
    return float(np.sqrt(np.mean((np.log1p(y_pred) - np.log1p(np.asarray(y_true, dtype=float))) ** 2)))


# MAPE and sMAPE are fractions (0.1 is 10%), defined as variant_timeseries.forecast_metrics defines them.


def mape(y_true, y_pred):
    """Mean absolute percentage error over the rows whose actual is not zero; None when every actual
    is zero (the metric is undefined and left out, as for forecasts)."""
    import numpy as np

    a, p = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    nonzero = np.abs(a) > 1e-12
    if not nonzero.any():
        return None
    return float(np.mean(np.abs(a[nonzero] - p[nonzero]) / np.abs(a[nonzero])))


def smape(y_true, y_pred):
    """Symmetric MAPE, 2|a - p| / (|a| + |p|) per row (0 where both are zero), in [0, 2]."""
    import numpy as np

    a, p = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    denom = np.abs(a) + np.abs(p)
    return float(np.mean(np.where(denom > 0, 2 * np.abs(a - p) / np.where(denom > 0, denom, 1), 0.0)))


def label_metrics(labels, clusters):
    import numpy as np
    from sklearn import metrics as M

    labels = np.asarray(labels, dtype=object)
    keep = np.array([v is not None for v in labels])
    if keep.sum() < 2:
        return {}
    a, b = labels[keep].astype(str), np.asarray(clusters)[keep]
    return {
        "rand_index": M.rand_score(a, b),
        "adjusted_rand_index": M.adjusted_rand_score(a, b),
        "nmi": M.normalized_mutual_info_score(a, b),
    }


def safe_silhouette(Z, clusters, seed):
    import numpy as np
    from sklearn.metrics import silhouette_score

    clusters = np.asarray(clusters)
    n = len(clusters)
    if n > 2000:
        pick = np.random.default_rng(seed).choice(n, 2000, replace=False)
        Z, clusters = Z[pick], clusters[pick]
    k = len(np.unique(clusters))
    if k < 2 or k >= len(clusters):
        return None
    return float(silhouette_score(Z, clusters))


def as_matrix(Z):
    """A float matrix for silhouette and plots; sparse input (TF-IDF) stays sparse, which both can use."""
    import numpy as np
    from scipy import sparse

    if sparse.issparse(Z):
        return sparse.csr_matrix(Z, dtype=float)
    return np.asarray(Z, dtype=float)


def features_for(model, X, X_train, prep):
    """The preprocessed view of X: the fitted pipeline's own steps when there are any."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        try:
            return as_matrix(model[:-1].transform(X))
        except Exception:  # noqa: BLE001 - fall back to a fresh preprocessor
            pass
    pre = make_preprocessor(
        prep.numeric, prep.categorical, scale=True, text=prep.text, text_min_df=prep.text_min_df, dates=prep.dates
    )
    pre.fit(X_train)
    return as_matrix(pre.transform(X))


# --------------------------------------------------------------------------- plots


def make_plots(run, spec, out_dir, task, y_test, pred, Z, classes):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        run.warn("matplotlib is not installed; no plots were made (Debian: python3-matplotlib; pip install matplotlib).")
        return []
    import numpy as np

    plot_dir = os.path.join(out_dir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    made = []
    try:
        if task == "classification":
            from sklearn.metrics import ConfusionMatrixDisplay

            fig, ax = plt.subplots(figsize=(5.5, 4.5))
            labels = list(classes)
            yt = np.asarray(y_test)
            yp = np.asarray(pred)
            if yt.dtype.kind in "OUS":
                yp = yp.astype(str)
            ConfusionMatrixDisplay.from_predictions(yt, yp, labels=labels, ax=ax, colorbar=False, cmap="Blues")
            ax.set_title(f"Confusion matrix (test, {len(yt)} rows)")
            if len(labels) > 8:
                plt.setp(ax.get_xticklabels(), rotation=90)
            path = os.path.join(plot_dir, "confusion_matrix.png")
        elif task == "regression":
            yt = np.asarray(y_test, dtype=float)
            yp = np.asarray(pred, dtype=float)
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5))
            a1.scatter(yt, yp, s=10, alpha=0.6)
            lo, hi = float(min(yt.min(), yp.min())), float(max(yt.max(), yp.max()))
            a1.plot([lo, hi], [lo, hi], color="black", linewidth=1)
            a1.set_xlabel("actual")
            a1.set_ylabel("predicted")
            a1.set_title("Predicted vs actual (test)")
            a2.scatter(yp, yt - yp, s=10, alpha=0.6)
            a2.axhline(0, color="black", linewidth=1)
            a2.set_xlabel("predicted")
            a2.set_ylabel("residual (actual - predicted)")
            a2.set_title("Residuals (test)")
            path = os.path.join(plot_dir, "residuals.png")
        else:
            from scipy import sparse
            from sklearn.decomposition import PCA, TruncatedSVD

            fig, ax = plt.subplots(figsize=(6, 5))
            clusters = np.asarray(pred)
            n = Z.shape[0]
            if n > 2000:
                pick = np.random.default_rng(spec["seed"]).choice(n, 2000, replace=False)
                Z, clusters = Z[pick], clusters[pick]
            n_comp = min(2, Z.shape[1], Z.shape[0])
            if sparse.issparse(Z) and min(Z.shape) > 2:
                # PCA here needs dense input; TruncatedSVD projects the sparse TF-IDF matrix directly
                P = TruncatedSVD(n_components=2, random_state=spec["seed"]).fit_transform(Z)
                projection, axis = "truncated SVD", "component"
            else:
                Z = Z.toarray() if sparse.issparse(Z) else Z
                P = PCA(n_components=n_comp, random_state=spec["seed"]).fit_transform(Z)
                projection, axis = "PCA", "PC"
            if P.shape[1] == 1:
                P = np.column_stack([P[:, 0], np.zeros(len(P))])
            codes = {c: i for i, c in enumerate(sorted(set(clusters.tolist()), key=str))}
            sc = ax.scatter(P[:, 0], P[:, 1], c=[codes[c] for c in clusters.tolist()], cmap="tab10", s=12, alpha=0.8)
            if len(codes) <= 12:
                handles = sc.legend_elements()[0]
                ax.legend(handles, [str(c) for c in codes], title="cluster", fontsize=8)
            ax.set_xlabel(f"{axis} 1")
            ax.set_ylabel(f"{axis} 2")
            ax.set_title(f"Clusters (test, 2-D {projection})")
            path = os.path.join(plot_dir, "clusters.png")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(os.path.relpath(path, "."))
    except Exception as e:  # noqa: BLE001 - a plot is never worth failing a run
        run.warn(f"A plot could not be drawn: {describe_exception(e, 300)}")
        plt.close("all")
    return made


def drop_vectorizer_stop_words(model, depth=0):
    """Fitted text vectorizers keep every pruned term in stop_words_, which only serves introspection
    and can dwarf the model once pickled; it is cleared before saving."""
    if depth > 6 or model is None:
        return
    if hasattr(model, "stop_words_") and hasattr(model, "vocabulary_"):
        try:
            model.stop_words_ = None
        except Exception:  # noqa: BLE001 - only a size saving
            pass
        return
    children = []
    for attr in ("steps", "transformers_"):
        for item in getattr(model, attr, None) or []:
            if isinstance(item, tuple) and len(item) >= 2:
                children.append(item[1])
    for child in children:
        drop_vectorizer_stop_words(child, depth + 1)


# --------------------------------------------------------------------------- train mode


def write_predictions(out_dir, task, model, X, pred, classes, pos):
    """out/predictions.json: the held-out rows' predictions (and class probabilities) for the scorer."""
    out = {"task": task, "n": len(X), "predictions": to_jsonable(list(pred)), "classes": to_jsonable(classes), "positive_class": to_jsonable(pos)}
    if task == "classification" and hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        try:
            with generated("predict_proba"):
                proba = model.predict_proba(X)
            out["proba"] = to_jsonable(proba)
            out["proba_classes"] = to_jsonable(list(model.classes_))
        except GeneratedCodeError:
            pass
    write_json(os.path.join(out_dir, "predictions.json"), out)


def build_solution(spec, ctx):
    """(unfitted model, fit slot, predict slot) from the generated solution."""
    module = load_solution(spec["solution"])
    build_fn = slot(module, "build")
    if build_fn is None:
        raise HarnessError("runtime_error", f"{spec['solution']} defines no build(ctx) function; it is required.")
    fit_fn, predict_fn = slot(module, "fit"), slot(module, "predict")
    with generated("build"):
        model = build_fn(ctx)
    if model is None:
        raise HarnessError("runtime_error", "build(ctx) returned None; it must return an unfitted model.")
    return model, fit_fn, predict_fn


def hold_cluster_count(run, model, n):
    """The number of clusters the user asked for outranks the generated code's (a GaussianMixture left
    at its single default component, say): set on the final estimator before it is fitted."""
    est, prefix = model, ""
    while hasattr(est, "steps") and est.steps:
        name, est = est.steps[-1]
        prefix += f"{name}__"
    try:
        own = est.get_params(deep=False)
    except Exception:  # noqa: BLE001 - not an estimator the harness can adjust
        return
    # n_clusters where the estimator has it (SpectralClustering also has an unrelated n_components),
    # else n_components (GaussianMixture); a distance threshold would contradict a fixed count.
    key = next((k for k in ("n_clusters", "n_components") if k in own), None)
    if key is None or own[key] == n:
        return
    changed = {f"{prefix}{key}": n}
    if own.get("distance_threshold") is not None:
        changed[f"{prefix}distance_threshold"] = None
    try:
        model.set_params(**changed)
    except Exception:  # noqa: BLE001 - the fit then shows what the code built
        return
    run.warn(f"The code built {type(est).__name__} with {key}={own[key]!r}; set to the {n} clusters asked for.")


def fit_solution(run, task, model, fit_fn, train_split, valid_split, ctx):
    """(fitted model, seconds): the fit slot, or the estimator's own fit."""
    t_fit = time.perf_counter()
    with generated("fit"):
        if fit_fn is not None:
            fitted = fit_fn(model, train_split, valid_split, ctx)
        elif task == "clustering":
            fitted = model.fit(train_split.X)
        else:
            fitted = model.fit(train_split.X, train_split.y)
    train_time = time.perf_counter() - t_fit
    if fitted is None:
        if fit_fn is not None:
            run.warn("fit() returned None; using the model it was given (assumed fitted in place).")
        fitted = model
    return fitted, train_time


def use_own_estimators(solution_path):
    """A solution that imports xgboost's XGBClassifier or XGBRegressor gets the harness's versions of
    them (estimators.py: any labels, class_weight, a few threads); xgboost is imported only then."""
    try:
        with open(solution_path, "r", encoding="utf-8", errors="replace") as f:
            mentions = "xgboost" in f.read()
    except OSError:
        return
    if not mentions or not module_available("xgboost"):
        return
    try:
        with contextlib.redirect_stdout(sys.stderr):
            import estimators
        estimators.install()
    except Exception:  # noqa: BLE001 - a broken xgboost shows when the solution imports it
        pass


def choose_threshold(run, spec, model, predict_fn, X_va, y_va, pred_va, pos):
    """{value, metric, valid_default, valid_chosen} when a decision threshold chosen on the validation
    rows beats the model's own predictions there, else None. Only for a binary classifier with
    predict_proba and a primary metric of f1, precision or recall."""
    import numpy as np

    import threshold as T

    metric = spec["metric"]
    if metric not in T.F_BETA or pos is None:
        return None
    found = T.positive_column(model, pos)
    if found is None:
        run.log(f"The model gives no class probabilities; it decides at its own threshold for {metric}.")
        return None
    try:
        with generated("predict_proba"):
            proba = np.asarray(model.predict_proba(X_va), dtype=float)
    except GeneratedCodeError as e:
        run.warn(f"predict_proba failed on the validation rows ({describe_exception(e.original, 200)}); the model keeps its own threshold.")
        return None
    if proba.ndim != 2 or proba.shape[0] != len(X_va) or proba.shape[1] != 2:
        return None
    scores = proba[:, found[0]]
    y_pos = np.array([T.same_class(v, pos) for v in np.asarray(y_va).tolist()])
    own = np.array([T.same_class(v, pos) for v in np.asarray(pred_va).tolist()])
    # a solution's own predict may post-process; a threshold on predict_proba would then replace
    # something else than the model's decision
    if predict_fn is not None and np.mean((scores >= 0.5) == own) < 0.9:
        run.log("The solution's predict does not follow predict_proba; its decisions are kept as they are.")
        return None
    chosen = T.choose(scores, y_pos, metric, spec.get("metric_goal"))
    if chosen is None:
        return None
    value, name, at_chosen = chosen
    at_default = T.measure(name, y_pos, own)
    if at_chosen <= at_default + 1e-9:
        run.log(f"The decision threshold stays the model's own: validation {name} {at_default:.4f} there, {at_chosen:.4f} at the best other.")
        return None
    run.log(
        f"Decision threshold {value:.4f} for {to_jsonable(pos)!r}, chosen on the validation rows: {name} "
        f"{at_default:.4f} at the model's own threshold, {at_chosen:.4f} at this one."
    )
    run.result["threshold"] = {"value": value, "metric": name, "valid_default": at_default, "valid_chosen": at_chosen}
    return run.result["threshold"]


def predict_at_threshold(model, X, value, pos, where="predict"):
    """The positive class where predict_proba reaches the decision threshold, else the other class."""
    import threshold as T

    with generated(where):
        pred = T.predict(model, X, value, pos)
    if len(pred) != len(X):
        raise HarnessError("runtime_error", f"{where} returned {len(pred)} predictions for {len(X)} rows.")
    return pred


def save_model(model, out_dir):
    """Pickles the fitted model to <out_dir>/model.pkl; returns the path."""
    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, "model.pkl")
    drop_vectorizer_stop_words(model)
    try:
        with open(model_path, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise HarnessError(
            "runtime_error",
            f"The fitted model could not be pickled ({describe_exception(e, 300)}); avoid lambdas and local classes in it.",
        )
    return model_path


def reload_model(model_path):
    """(model, seconds): loaded back as the model server will load it."""
    t = time.perf_counter()
    with open(model_path, "rb") as f:
        with generated("load model"):
            reloaded = pickle.load(f)
    return reloaded, time.perf_counter() - t


def train(run, spec):
    import numpy as np

    res, task, stages = run.result, spec["task"], TRAIN_STAGES
    out_dir = spec["out_dir"]
    variant = load_variant(spec.get("variant"))
    if variant is not None and hasattr(variant, "train"):
        return variant.train(run, spec)

    run.stage("load", stages)
    t_load = time.perf_counter()
    prep = variant.prepare(run, spec) if variant else prepare(run, spec)
    load_s = time.perf_counter() - t_load
    res["features"] = {"numeric": prep.numeric, "categorical": prep.categorical, "text": prep.text, "dates": prep.dates}
    res["classes"] = prep.classes
    res["details"] = dict(prep.details)

    run.stage("split", stages)
    tr, va, te = split_indices(run, prep, spec)
    X_tr, y_tr, _ = take(prep, tr)
    X_va, y_va, lab_va = take(prep, va)
    # held: the test rows' labels are not in this process at all; the scorer computes the test metrics
    held = spec.get("holdout") is not None
    if held:
        X_te, y_te, lab_te = holdout_features(run, spec, prep), None, None
    else:
        X_te, y_te, lab_te = take(prep, te)
    res["rows"] = {"train": len(tr), "valid": len(va), "test": len(te) if not held else (0 if X_te is None else len(X_te))}
    pos = pick_positive_class(run, spec, prep.classes, y_tr) if task == "classification" else None
    if task == "classification" and y_tr.nunique() < 2:
        raise HarnessError("value_error", f"The training split of '{prep.target}' holds a single class.")

    run.stage("build", stages)
    ctx = Context(run, spec, prep, pos)
    use_own_estimators(spec["solution"])
    model, fit_fn, predict_fn = build_solution(spec, ctx)
    if task == "clustering" and spec.get("n_clusters"):
        hold_cluster_count(run, model, int(spec["n_clusters"]))

    run.stage("fit", stages)
    model, train_time = fit_solution(run, task, model, fit_fn, DataSplit(X_tr, y_tr), DataSplit(X_va, y_va), ctx)

    run.stage("evaluate", stages)
    pred_va = predict_with(predict_fn, model, X_va)
    # a binary classifier judged by f1, precision or recall decides at a threshold chosen on the
    # validation rows; from here on every prediction of this model uses it
    decision = None
    if task == "classification" and variant is None:
        decision = choose_threshold(run, spec, model, predict_fn, X_va, y_va, pred_va, pos)

    def final_predict(m, X, where="predict"):
        if decision is None:
            return predict_with(predict_fn, m, X, where)
        return predict_at_threshold(m, X, decision["value"], pos, where)

    # valid_metrics stay those of the model's own decisions: what the solution itself can measure and
    # claim (ctx.report); the threshold's gain on the validation rows is in result.threshold
    t_pred = time.perf_counter()
    pred_te = None if held else final_predict(model, X_te)
    test_predict_s = time.perf_counter() - t_pred
    Z_te = None

    def proba_for(X):
        def source():
            if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
                return None, None
            with generated("predict_proba"):
                return model.predict_proba(X), list(model.classes_)

        return source

    try:
        if task == "classification":
            valid = classification_metrics(y_va, pred_va, prep.classes, pos, proba_for(X_va))
            test = {} if held else classification_metrics(y_te, pred_te, prep.classes, pos, proba_for(X_te))
        elif task == "regression":
            valid = regression_metrics(y_va, pred_va)
            test = {} if held else regression_metrics(y_te, pred_te)
        else:
            Z_va = features_for(model, X_va, X_tr, prep)
            Z_te = None if held else features_for(model, X_te, X_tr, prep)
            valid, test = {}, {}
            splits = ((valid, Z_va, pred_va, lab_va),) if held else ((valid, Z_va, pred_va, lab_va), (test, Z_te, pred_te, lab_te))
            for d, Z, p, lab in splits:
                s = safe_silhouette(Z, p, spec["seed"])
                if s is not None:
                    d["silhouette"] = s
                if lab is not None:
                    d.update(label_metrics(lab, p))
            if len(np.unique(pred_va if held else pred_te)) < 2:
                run.warn("The model put every row in one cluster; silhouette is undefined.")
    except (HarnessError, GeneratedCodeError):
        raise
    except Exception as e:  # noqa: BLE001 - odd predictions are the solution's problem
        raise HarnessError("runtime_error", f"The predictions could not be scored: {describe_exception(e)}")

    res["valid_metrics"] = finite_metrics(valid)
    res["metrics"] = finite_metrics(test)
    for split, d in (("valid", res["valid_metrics"]), ("test", res["metrics"])):
        for name, value in d.items():
            emit({"event": "metric", "name": name, "value": value, "split": split})
    if spec["metric"] and spec["metric"] not in res["metrics"]:
        run.warn(f"The primary metric '{spec['metric']}' could not be computed for this model.")

    X_lat = X_te if X_te is not None else X_va
    singles = []
    for i in range(min(20, len(X_lat))):
        t = time.perf_counter()
        final_predict(model, X_lat.iloc[[i]])
        singles.append(time.perf_counter() - t)

    run.stage("save", stages)
    model_path = save_model(model, out_dir)
    meta = {
        "task": task,
        "target": prep.target,
        "features": prep.features,
        "numeric": prep.numeric,
        "categorical": prep.categorical,
        "text": prep.text,
        "dates": prep.dates,
        "classes": prep.classes,
        "positive_class": pos,
        "solution": spec["solution"],
    }
    if decision is not None:
        # the model server decides as the harness did: positive where predict_proba reaches it
        meta["threshold"] = {"value": decision["value"], "positive_class": pos, "metric": decision["metric"]}
    # what a variant's server needs beside the model (the graph, the image size ...)
    extra_files = []
    if variant is not None:
        meta["variant"] = spec["variant"]
        meta.update(variant.meta(prep))
        extra_files = variant.save(run, spec, prep, out_dir)
    write_json(os.path.join(out_dir, "model_meta.json"), meta)
    # reload, as the model server will, and let the reloaded model answer the sample rows
    reloaded, model_load_s = reload_model(model_path)
    res["model_path"] = os.path.relpath(model_path, ".")
    if held and X_te is not None:
        # the saved model, as deployed, predicts the held-out rows; the scorer compares them with the labels
        t_pred = time.perf_counter()
        pred_te = final_predict(reloaded, X_te)
        test_predict_s = time.perf_counter() - t_pred
        write_predictions(out_dir, task, reloaded, X_te, pred_te, prep.classes, pos)
    if variant is not None:
        # the exact request body a client sends, answered the way the model server will answer it
        res["sample"] = to_jsonable(variant.sample(run, spec, prep, te[: min(3, len(te))], reloaded, predict_fn))
    else:
        sample_X = X_lat.iloc[: min(3, len(X_lat))]
        sample_pred = final_predict(reloaded, sample_X)
        res["sample"] = {
            "rows": [to_jsonable(r) for r in sample_X.to_dict(orient="records")],
            "predictions": to_jsonable(sample_pred.tolist()),
        }
    res["complexity"] = finite_metrics(
        {
            "train_time_s": train_time,
            "test_predict_s": test_predict_s,
            "latency_ms_per_row": float(np.median(singles)) * 1000 if singles else float("nan"),
            "batch_latency_ms_per_row": test_predict_s * 1000 / max(1, len(X_lat)),
            "model_size_mb": sum(os.path.getsize(p) for p in [model_path, *extra_files]) / (1024 * 1024),
            "load_s": model_load_s,
            "data_load_s": load_s,
        }
    )

    # with a holdout, the scorer draws the test-split plots: only it has the labels
    run.stage("plots", stages, None if spec["plots"] and not held else "skipped")
    if spec["plots"] and not held:
        if task == "clustering" and Z_te is None:
            Z_te = features_for(model, X_te, X_tr, prep)
        res["plots"] = make_plots(run, spec, out_dir, task, y_te, pred_te, Z_te, prep.classes)
    res["complexity"]["total_s"] = time.perf_counter() - run.t0


# --------------------------------------------------------------------------- score mode

SCORE_STAGES = ["load", "score", "plots"]
MAX_PREDICTIONS_BYTES = 256 * 1024 * 1024


def label_key(v):
    """One spelling per class, whichever side wrote it: 1, 1.0 and "1" are the same class."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)) or hasattr(v, "dtype"):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return str(v)
        if math.isfinite(f) and f == int(f):
            return str(int(f))
        return repr(f)
    s = str(v).strip()
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if math.isfinite(f) and f == int(f) else s


def read_predictions(path, n):
    """A train run's predictions.json: written by a process that ran generated code, so checked as hostile."""
    try:
        if os.path.getsize(path) > MAX_PREDICTIONS_BYTES:
            raise HarnessError("hallucination", "predictions.json is implausibly large.")
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f, parse_constant=lambda c: None)
    except FileNotFoundError:
        raise HarnessError("runtime_error", "The training run wrote no predictions for the held-out rows.")
    except (OSError, ValueError) as e:
        raise HarnessError("hallucination", f"predictions.json could not be read: {describe_exception(e, 200)}")
    if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
        raise HarnessError("hallucination", "predictions.json does not hold a list of predictions.")
    if len(data["predictions"]) != n:
        raise HarnessError("hallucination", f"predictions.json has {len(data['predictions'])} predictions for {n} held-out rows.")
    return data


def wait_for_predictions(run, spec):
    """The scorer may start beside the training run: it loads its libraries while the model trains,
    then waits for the host to put the predictions in (whole, by rename)."""
    path = spec["score"]["predictions"]
    if os.path.exists(path):
        return
    import pandas  # noqa: F401 - loaded now, while waiting
    import sklearn.metrics  # noqa: F401

    if spec["plots"]:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except ImportError:
            pass
    run.log("Waiting for the training run's predictions.")
    deadline = time.monotonic() + float(spec["score"].get("wait_s") or 3600)
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise HarnessError("runtime_error", "The training run's predictions never arrived.")
        time.sleep(0.05)


def score(run, spec):
    """Test metrics from the held-out labels and a train run's predictions. This process imports no
    generated code and unpickles nothing: its numbers are the ones reports and constraints use."""
    import numpy as np
    import pandas as pd

    res, task = run.result, spec["task"]
    out_dir = spec["out_dir"]
    run.stage("load", SCORE_STAGES)
    wait_for_predictions(run, spec)
    df = read_csv(spec["data"], spec.get("delimiter") or ",")
    df.columns = [str(c).strip() for c in df.columns]
    data = read_predictions(spec["score"]["predictions"], len(df))
    pred_all = data["predictions"]
    target = None if spec.get("target") is None else str(spec["target"]).strip()
    labels_col = None if spec.get("labels_column") is None else str(spec["labels_column"]).strip()
    for name in (target, labels_col):
        if name is not None and name not in df.columns and task != "clustering":
            raise HarnessError("value_error", missing_column_message("Column", name, list(df.columns), spec["data"]))

    run.stage("score", SCORE_STAGES)
    y_plot, p_plot, Z, classes = None, None, None, None
    if task == "classification":
        keys = [label_key(v) for v in df[target].tolist()]
        keep = [i for i, k in enumerate(keys) if k not in (None, "", "nan")]
        y_true = np.array([keys[i] for i in keep], dtype=object)
        y_pred = np.array([label_key(pred_all[i]) for i in keep], dtype=object)
        trained = data.get("classes") if isinstance(data.get("classes"), list) else []
        classes = sorted({*(label_key(c) for c in trained), *y_true.tolist()} - {None})
        pos = label_key(data.get("positive_class"))
        if len(classes) == 2 and pos not in classes:
            pos = classes[1]

        def proba_source():
            proba, pcls = data.get("proba"), data.get("proba_classes")
            if not isinstance(proba, list) or not isinstance(pcls, list) or len(proba) != len(df):
                return None, None
            matrix = np.asarray([proba[i] for i in keep], dtype=float)
            if matrix.ndim != 2 or matrix.shape[1] != len(pcls) or not np.all(np.isfinite(matrix)):
                return None, None
            return matrix, [label_key(c) for c in pcls]

        test = classification_metrics(y_true, y_pred, classes, pos, proba_source)
        y_plot, p_plot = y_true, y_pred
    elif task == "regression":
        y = pd.to_numeric(df[target], errors="coerce").to_numpy(dtype=float)
        keep = [i for i in range(len(y)) if np.isfinite(y[i])]
        try:
            y_pred = np.asarray([pred_all[i] for i in keep], dtype=float)
        except (TypeError, ValueError):
            raise HarnessError("runtime_error", "The predictions for the held-out rows are not numbers.")
        test = regression_metrics(y[keep], y_pred)
        y_plot, p_plot = y[keep], y_pred
    else:
        clusters = np.asarray([label_key(v) for v in pred_all], dtype=object)
        if any(c is None for c in clusters):
            raise HarnessError("runtime_error", "Some held-out rows got no cluster.")
        test = {}
        if labels_col is not None and labels_col in df.columns:
            labels = df[labels_col].astype(object).map(lambda v: None if pd.isna(v) else str(v))
            test.update(label_metrics(labels.tolist(), clusters))
        # silhouette in a space this process builds itself, so no generated code can shape it
        excluded = {c for c in (target, labels_col) if c} | {str(c).strip() for c in spec["drop_columns"]}
        feats = [c for c in df.columns if c not in excluded]
        numeric = [c for c in feats if pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype)]
        categorical = [c for c in feats if c not in numeric]
        X = df[feats].copy()
        for c in categorical:
            X[c] = as_category_strings(X[c])
        if feats:
            try:
                Z = as_matrix(make_preprocessor(numeric, categorical, scale=True).fit_transform(X))
                s = safe_silhouette(Z, clusters.astype(str), spec["seed"])
                if s is not None:
                    test["silhouette"] = s
            except Exception as e:  # noqa: BLE001 - silhouette is best effort
                run.warn(f"Silhouette could not be computed: {describe_exception(e, 200)}")
        p_plot = clusters.astype(str)
    res["metrics"] = finite_metrics(test)
    res["rows"] = {"train": 0, "valid": 0, "test": len(df)}
    res["classes"] = classes
    for name, value in res["metrics"].items():
        emit({"event": "metric", "name": name, "value": value, "split": "test"})
    run.stage("plots", SCORE_STAGES, None if spec["plots"] else "skipped")
    if spec["plots"] and (task != "clustering" or Z is not None):
        res["plots"] = make_plots(run, spec, out_dir, task, y_plot, p_plot, Z, classes)


# --------------------------------------------------------------------------- search mode


def import_estimator(path):
    """(class, None) or (None, error string)."""
    if not isinstance(path, str) or "." not in path:
        return None, f"value_error: estimator must be a dotted import path, got {path!r}"
    # xgboost's scikit-learn classes run as estimators.py's (any labels, class_weight, a few threads)
    if path in OWN_ESTIMATORS and module_available("xgboost"):
        path = OWN_ESTIMATORS[path]
    mod_name, _, attr = path.rpartition(".")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        missing = e.name or mod_name
        return None, (
            f"environment_error: module '{missing}' is not installed for {sys.executable} "
            f"({install_hint(missing)})"
        )
    except Exception as e:  # noqa: BLE001
        return None, f"environment_error: importing {mod_name} failed: {describe_exception(e, 300)}"
    cls = getattr(module, attr, None)
    if cls is None:
        return None, f"hallucination: module '{mod_name}' has no attribute '{attr}'"
    if not callable(cls):
        return None, f"value_error: {path} is not a class"
    # estimators of our own variants name the optional modules they need (the CNN needs PyTorch)
    for needed in getattr(cls, "threadml_requires", ()):
        if not module_available(needed):
            return None, (
                f"environment_error: {attr} needs the module '{needed}', which is not installed for {sys.executable}; "
                f"install it on the runner ({install_hint(needed)})"
            )
    return cls, None


# import paths plans name -> the harness's own stand-ins (estimators.py)
OWN_ESTIMATORS = {"xgboost.XGBClassifier": "estimators.XGBClassifier", "xgboost.XGBRegressor": "estimators.XGBRegressor"}


def module_available(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def accepted_params(cls):
    try:
        if hasattr(cls, "_get_param_names"):
            names = set(cls._get_param_names())
            # a constructor taking **kwargs passes them up (xgboost's): its bases' parameters count too
            if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()):
                for base in cls.__mro__[1:]:
                    if "__init__" in vars(base) and hasattr(base, "_get_param_names"):
                        names |= set(base._get_param_names())
            return names
    except Exception:  # noqa: BLE001
        pass
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


def sample_space(rng, space):
    out = {}
    for name, s in space.items():
        kind = s.get("type") if isinstance(s, dict) else None
        if kind == "int":
            lo, hi = sorted((int(s["low"]), int(s["high"])))
            out[name] = rng.randint(lo, hi)
        elif kind == "float":
            lo, hi = sorted((float(s["low"]), float(s["high"])))
            out[name] = rng.uniform(lo, hi)
        elif kind == "log":
            lo, hi = sorted((float(s["low"]), float(s["high"])))
            out[name] = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        elif kind == "choice" and s.get("values"):
            out[name] = rng.choice(list(s["values"]))
        else:
            raise ValueError(f"space entry '{name}' is not a valid range: {s!r}")
    return out


def neg_rmsle(y_true, y_pred):
    return -rmsle(y_true, y_pred)


def neg_mape(y_true, y_pred):
    # NaN for a fold whose actuals are all zero: the trial fails as "not a finite number"
    m = mape(y_true, y_pred)
    return float("nan") if m is None else -m


def neg_smape(y_true, y_pred):
    return -smape(y_true, y_pred)


def make_scorer_for(metric, task, pos_label, n_classes):
    """(sklearn scorer, sign) where sign turns the scorer's value into natural units."""
    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score

    if task == "classification":
        if metric in ("f1", "precision", "recall"):
            fn = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[metric]
            if n_classes == 2 and pos_label is not None:
                return make_scorer(fn, pos_label=pos_label, zero_division=0), 1
            return make_scorer(fn, average="macro", zero_division=0), 1
        if metric == "roc_auc":
            return ("roc_auc" if n_classes == 2 else "roc_auc_ovr"), 1
        return {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy"}[metric], 1
    return {
        "rmse": ("neg_root_mean_squared_error", -1),
        "mae": ("neg_mean_absolute_error", -1),
        "r2": ("r2", 1),
        "rmsle": (make_scorer(neg_rmsle), -1),
        # not sklearn's neg_mean_absolute_percentage_error: that divides by max(|actual|, eps) instead of
        # skipping zero actuals, so the search would rank by another number than the test metric
        "mape": (make_scorer(neg_mape), -1),
        "smape": (make_scorer(neg_smape), -1),
    }[metric]


def search(run, spec):
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

    res, task, stages, conf = run.result, spec["task"], SEARCH_STAGES, spec["search"]
    seed = spec["seed"]
    variant = load_variant(spec.get("variant"))
    if variant is not None and hasattr(variant, "search"):
        return variant.search(run, spec)

    run.stage("load", stages)
    prep = variant.prepare(run, spec) if variant else prepare(run, spec)
    res["features"] = {"numeric": prep.numeric, "categorical": prep.categorical, "text": prep.text, "dates": prep.dates}
    res["classes"] = prep.classes
    res["details"] = dict(prep.details)

    run.stage("split", stages)
    tr, va, te = split_indices(run, prep, spec)
    res["rows"] = {"train": len(tr), "valid": len(va), "test": len(te)}
    X, y, labels = take(prep, tr)
    if len(X) > conf["sample_rows"]:
        pick = np.sort(np.random.default_rng(seed).choice(len(X), conf["sample_rows"], replace=False))
        X = X.iloc[pick].reset_index(drop=True)
        y = None if y is None else y.iloc[pick].reset_index(drop=True)
        labels = None if labels is None else labels.iloc[pick].reset_index(drop=True)
        run.log(f"Search uses {len(X)} sampled training rows.")
    pos = pick_positive_class(run, spec, prep.classes, y) if task == "classification" else None

    metric = search_metric(run, spec, TASK_METRICS[task], DEFAULT_METRIC[task])
    if task == "clustering" and metric in LABEL_METRICS and labels is None:
        run.warn(f"Metric '{metric}' needs labels_column; the search uses silhouette.")
        metric = "silhouette"
        res["search"]["metric"], res["search"]["greater_is_better"] = metric, GREATER_IS_BETTER[metric]

    cv = None
    scorer, sign = None, 1
    if task != "clustering":
        folds = min(conf["cv_folds"], len(X))
        if task == "classification" and y.value_counts().min() >= folds:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        else:
            cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
        scorer, sign = make_scorer_for(metric, task, pos, len(prep.classes or []))
        stratify = task == "classification" and y.value_counts().min() >= 2
        holdout = (StratifiedShuffleSplit if stratify else ShuffleSplit)(n_splits=1, test_size=0.25, random_state=seed)

    states = candidate_states(run, spec, conf)

    def score(state, trial_params, report=None):
        pipe = candidate_pipeline(prep, state, trial_params)
        if task == "clustering":
            fitted = clone(pipe)
            if hasattr(fitted, "fit_predict"):
                clusters = fitted.fit_predict(X)
            else:
                clusters = fitted.fit(X).predict(X)
            if metric in LABEL_METRICS:
                return label_metrics(labels, clusters).get(metric)
            Z = as_matrix(fitted[:-1].transform(X))
            s = safe_silhouette(Z, clusters, seed)
            if s is None:
                raise ValueError("every row landed in one cluster (or each in its own); silhouette is undefined")
            return s
        # a network on raw input (the CNN) is costly to fit: one held-out quarter instead of k folds
        folds = holdout if state["raw"] else cv
        return cv_score(pipe, X, y, folds, scorer, sign, report)

    run_search(run, conf, states, metric, score)
    res["complexity"] = {"total_s": time.perf_counter() - run.t0}


def cv_score(pipe, X, y, folds, scorer, sign, report=None):
    """The mean of the folds' scores in natural units, as cross_val_score computes it, one fold at a
    time: the running mean goes to `report` after each fold but the last, so a pruner can stop early."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    score_fn = get_scorer(scorer) if isinstance(scorer, str) else scorer
    splits = list(folds.split(X, y))
    scores = []
    for i, (a, b) in enumerate(splits):
        fitted = clone(pipe).fit(X.iloc[a], y.iloc[a])
        scores.append(float(score_fn(fitted, X.iloc[b], y.iloc[b])))
        if report is not None and i < len(splits) - 1:
            report(i, sign * float(np.mean(scores)))
    return sign * float(np.mean(scores))


def search_metric(run, spec, known, default):
    """The metric the search optimises (the spec's when the task knows it), recorded in the result."""
    metric = spec["metric"]
    if metric not in known:
        run.warn(f"Metric '{metric}' is not known for {spec['task']}; the search uses {default}.")
        metric = default
    run.result["search"] = {"metric": metric, "greater_is_better": GREATER_IS_BETTER[metric], "candidates": []}
    return metric


def candidate_states(run, spec, conf):
    """One search state per candidate: its estimator class, fixed and searched parameters, its own
    random stream. A candidate whose class cannot be imported is recorded with the reason."""
    seed = spec["seed"]
    states = []
    for cand in conf["candidates"]:
        cand = dict(cand) if isinstance(cand, dict) else {}
        cid = str(cand.get("id") or cand.get("estimator") or f"candidate-{len(states) + 1}")
        record = {"id": cid, "best_params": None, "best_score": None, "trials": []}
        run.result["search"]["candidates"].append(record)
        cls, err = import_estimator(cand.get("estimator"))
        if err:
            record["error"] = err
            run.warn(f"Candidate {cid}: {err}")
            continue
        accepted = accepted_params(cls)
        params = dict(cand.get("params") or {})
        space = dict(cand.get("space") or {})
        if accepted and "class_weight" not in accepted and ("class_weight" in params or "class_weight" in space):
            # planners offer class weights to every classifier of a rare class; not all can take them
            params.pop("class_weight", None)
            space.pop("class_weight", None)
            run.log(f"Candidate {cid}: {cls.__name__} takes no class_weight; it is searched without one.")
        extra = {}
        if "random_state" in accepted and "random_state" not in params and "random_state" not in space:
            extra["random_state"] = seed
        if spec["task"] == "clustering" and spec.get("n_clusters"):
            for key in ("n_clusters", "n_components"):
                if key in accepted and key not in params and key not in space:
                    extra[key] = int(spec["n_clusters"])
                    break
        pre = cand.get("preprocess") or {}
        states.append(
            {
                "id": cid,
                "cls": cls,
                "params": params,
                "extra": extra,
                "space": space,
                "scale": bool(pre.get("scale", False)),
                "encode": pre.get("encode", "onehot"),
                "raw": bool(pre.get("raw", False)),
                "strategy": cand.get("strategy"),
                "rng": random.Random(f"{seed}:{cid}"),
                # Optuna's sampler seed: the spec's seed and the candidate, stable across runs
                "seed": zlib.crc32(f"{seed}:{cid}".encode("utf-8")) & 0x7FFFFFFF,
                "seen": set(),
                "done": False,
                "record": record,
            }
        )
    return states


def candidate_pipeline(prep, state, trial_params):
    """The candidate's preprocessing and estimator; a raw candidate (a CNN on pixels) takes the
    variant's raw input directly."""
    from sklearn.pipeline import Pipeline

    model = state["cls"](**{**trial_params, **state["extra"]})
    if state["raw"]:
        return Pipeline([("model", model)])
    return Pipeline([("pre", prep.preprocessor(state["scale"], state["encode"])), ("model", model)])


def make_proposer(run, conf, states, metric):
    """Optuna's TPE where it is installed (sampler auto or tpe) and some candidate has a space to search;
    random search otherwise (tuning.py)."""
    import tuning

    wanted = conf.get("sampler") or "auto"
    if wanted != "random" and any(s["space"] for s in states):
        if module_available("optuna"):
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    return tuning.OptunaProposer(GREATER_IS_BETTER[metric], conf["n_iter"])
            except ImportError as e:
                if wanted == "tpe":
                    run.warn(f"Optuna could not be imported ({describe_exception(e, 200)}); the search samples at random.")
        elif wanted == "tpe":
            run.warn(f"Optuna is not installed for {sys.executable} ({install_hint('optuna')}); the search samples at random.")
    return tuning.RandomProposer()


def run_search(run, conf, states, metric, score):
    """Round-robin over the candidates: every candidate gets its default trial first, then proposed
    configurations (tuning.py: Optuna's TPE or random draws) until n_iter or the time budget.
    `score(state, params, report)` returns the trial's score in the metric's natural units; it may call
    `report(fold, running score)` between folds, which raises tuning.TrialPruned when the pruner stops
    the trial. A trial that raises is recorded and skipped; the best comes from completed trials only."""
    import tuning

    proposer = make_proposer(run, conf, states, metric)
    run.result["search"]["sampler"] = proposer.name
    planned = sum(conf["n_iter"] if s["space"] else 1 for s in states)
    done_trials = 0
    emit({"event": "progress", "stage": "search", "done": 0, "total": planned})
    started = time.perf_counter()
    budget_hit = False
    for round_no in range(conf["n_iter"]):
        for state in states:
            if state["done"]:
                continue
            if round_no > 0 and time.perf_counter() - started >= conf["budget_s"]:
                budget_hit = True
                break
            handle = None
            if round_no == 0:
                trial_params = dict(state["params"])
                if state["space"]:
                    with contextlib.redirect_stdout(sys.stderr):
                        proposer.start(state)
            elif not state["space"]:
                state["done"] = True
                continue
            else:
                try:
                    with contextlib.redirect_stdout(sys.stderr):
                        proposed = proposer.next(state)
                except (ValueError, KeyError, TypeError) as e:
                    state["record"]["error"] = f"value_error: {e}"
                    proposed = None
                if proposed is None:
                    state["done"] = True
                    continue
                trial_params, handle = proposed
            state["seen"].add(tuning.params_key(trial_params))
            reporter = proposer.reporter(state, handle)
            t = time.perf_counter()
            trial = {"params": to_jsonable(trial_params), "score": None}
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    value = score(state, trial_params, reporter)
                if value is None or not math.isfinite(float(value)):
                    raise ValueError("the score is not a finite number")
                trial["score"] = float(value)
            except KeyboardInterrupt:
                raise
            except tuning.TrialPruned as stop:
                trial["pruned"] = True
                trial["score"] = stop.partial if math.isfinite(stop.partial) else None
            except MemoryError:
                trial["error"] = "runtime_error: memory ran out"
            except ImportError as e:
                missing = getattr(e, "name", None) or str(e)
                trial["error"] = f"environment_error: {missing} is not installed for {sys.executable} ({install_hint(missing)})"
            except Exception as e:  # noqa: BLE001 - a failing trial never stops the search
                cls_name = "value_error" if isinstance(e, (ValueError, TypeError)) else "runtime_error"
                trial["error"] = f"{cls_name}: {describe_exception(e, 500)}"
            trial["fit_s"] = time.perf_counter() - t
            with contextlib.redirect_stdout(sys.stderr):
                proposer.settle(state, handle, trial, reporter)
            record = state["record"]
            record["trials"].append(trial)
            emit({"event": "trial", "candidate": state["id"], **trial})
            if trial["score"] is not None and not trial.get("pruned"):
                better = GREATER_IS_BETTER[metric]
                best = record["best_score"]
                if best is None or (trial["score"] > best if better else trial["score"] < best):
                    record["best_score"] = trial["score"]
                    record["best_params"] = trial["params"]
            done_trials += 1
            emit({"event": "progress", "stage": "search", "done": done_trials, "total": planned})
        if budget_hit:
            break
    if budget_hit:
        run.warn(f"The search budget of {conf['budget_s']:g}s ran out after {done_trials} of {planned} trials.")
    pruned = sum(1 for s in states for t in s["record"]["trials"] if t.get("pruned"))
    if pruned:
        run.log(f"The pruner stopped {pruned} unpromising trial(s) before their last fold.")
    for state in states:
        record = state["record"]
        if record["best_score"] is None and record["trials"] and "error" not in record:
            record["error"] = record["trials"][-1].get("error") or "no trial produced a score"
    if not any(c["best_score"] is not None for c in run.result["search"]["candidates"]):
        run.warn("No candidate produced a score.")


# --------------------------------------------------------------------------- entry points


def check():
    modules = {}
    for name, _, _ in REQUIRED_MODULES + OPTIONAL_MODULES:
        try:
            with contextlib.redirect_stdout(sys.stderr):
                mod = importlib.import_module(name)
            modules[name] = str(getattr(mod, "__version__", "unknown"))
        except Exception:  # noqa: BLE001
            modules[name] = None
    print(
        json.dumps({"python": sys.executable, "version": platform.python_version(), "modules": modules}),
        flush=True,
    )
    return 0


# Distributions a served model needs, by import name; the optional ones only when this run imported
# them (the solution or the unpickled model did), so torch is never imported just to be listed.
ENV_ALWAYS = (("numpy", "numpy"), ("pandas", "pandas"), ("sklearn", "scikit-learn"), ("scipy", "scipy"), ("joblib", "joblib"))
ENV_WHEN_USED = (("xgboost", "xgboost"), ("lightgbm", "lightgbm"), ("torch", "torch"), ("torchvision", "torchvision"))


def training_env():
    """{python, packages: {distribution: version}} for pinning the model's requirements. Debian's
    packages carry dist-info too; a build's local label ("1.13.0a0+gitunknown") is dropped, as no
    package index serves it. Never fails a run: whatever cannot be found is left out."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        metadata = None
    packages = {}
    for module, dist in ENV_ALWAYS + ENV_WHEN_USED:
        if (module, dist) in ENV_WHEN_USED and module not in sys.modules:
            continue
        version = None
        try:
            version = metadata.version(dist) if metadata else None
        except Exception:  # noqa: BLE001 - no dist-info: the module's own attribute below
            version = None
        if not version and module in sys.modules:
            version = getattr(sys.modules[module], "__version__", None)
        if isinstance(version, str) and version.strip():
            packages[dist] = version.strip().split("+", 1)[0]
    return {"python": platform.python_version(), "packages": packages}


def missing_required():
    # find_spec does not import: data errors can be reported before scikit-learn's slow import
    missing = []
    for name, deb, pip in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append((name, deb, pip))
    return missing


def main(argv=None):
    parser = argparse.ArgumentParser(prog="harness.py", description="ThreadML harness")
    parser.add_argument("--spec", default="spec.json")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.check:
        return check()

    EVENTS.install()
    # variant modules import this file as `harness`: they must share this run's module, not a fresh copy
    sys.modules.setdefault("harness", sys.modules[__name__])
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.getcwd(), ".mplconfig"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    raw = {}
    try:
        raw = read_spec(args.spec)
    except HarnessError:
        pass
    run = Run(raw)
    exit_code = 0
    try:
        if not raw:
            read_spec(args.spec)  # raises the classified error
        missing = missing_required()
        if missing:
            names = ", ".join(m[0] for m in missing)
            raise HarnessError(
                "environment_error",
                f"The Python interpreter {sys.executable} lacks {names}. Install "
                f"(Debian/Ubuntu: apt-get install {' '.join(m[1] for m in missing)}; "
                f"or pip install {' '.join(m[2] for m in missing)}), or point ThreadML at an interpreter that has them.",
                exit_code=3,
            )
        spec = normalise_spec(raw)
        run.spec = spec
        if spec["mode"] == "search":
            search(run, spec)
        elif spec["mode"] == "score":
            score(run, spec)
        elif spec["mode"] in ("predict", "explain"):
            import followup

            (followup.predict if spec["mode"] == "predict" else followup.explain)(run, spec)
        else:
            train(run, spec)
            try:
                run.result["env"] = training_env()
            except Exception as e:  # noqa: BLE001 - the versions are a courtesy, never worth a failed run
                run.warn(f"The library versions could not be recorded: {describe_exception(e, 200)}")
    except KeyboardInterrupt:
        message = "The run was interrupted."
        run.result.update(status="error", error={"class": "runtime_error", "message": message, "traceback": ""})
        emit({"event": "error", "class": "runtime_error", "message": message})
        exit_code = 130
    except BaseException as exc:  # noqa: BLE001 - every failure ends in result.json
        cls, message = classify(exc)
        if isinstance(exc, SystemExit):
            cls, message = "runtime_error", f"The harness was asked to exit ({exc.code})."
        run.result.update(status="error", error={"class": cls, "message": message, "traceback": traceback_tail(exc)})
        emit({"event": "error", "class": cls, "message": message})
        exit_code = exc.exit_code if isinstance(exc, HarnessError) else 1
    run.write_result()
    emit({"event": "done", "status": run.result["status"]})
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
