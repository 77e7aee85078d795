"""Follow-ups on a trained model: score a new file (predict mode) and say what matters (explain mode).

Both run in a fresh workspace with the trained model copied under `model_dir`, in the layout the host
keeps: <model_dir>/out/model.pkl, <model_dir>/out/model_meta.json and <model_dir>/solution.py. The
model is loaded through serve.py's Model, so a scored file gets exactly what the endpoint answers (the
same row coercion, decision threshold and predict slot), and importance is measured on those decisions.

predict writes <out_dir>/predictions.csv (the input's columns as written, then `prediction`, then each
class's probability) and result.predicted; explain writes result.importance and <out_dir>/importance.png.
"""

import math
import os
import re
from collections import Counter

import harness as H
from harness import HarnessError

PREDICT_STAGES = ["load", "predict", "save"]
EXPLAIN_STAGES = ["load", "split", "explain", "plots"]
# rows per call into the model: a large file is scored without one huge list of row objects
CHUNK_ROWS = 10_000
# missing columns named in one message
MAX_MISSING_SHOWN = 8
EXPLAIN_DEFAULTS = {"repeats": (5, 1, 50), "max_rows": (2000, 10, None), "top": (15, 1, 50)}


# --------------------------------------------------------------------------- spec


def plain_relative(path):
    """A path inside the workspace: relative, no '..', no backslashes or NULs."""
    if not isinstance(path, str) or not path or "\0" in path or "\\" in path or os.path.isabs(path):
        return False
    return ".." not in path.split("/")


def normalise(spec, problems):
    """Defaults and checks for spec.predict or spec.explain (called by harness.normalise_spec)."""
    mode = spec["mode"]
    conf = spec.get(mode)
    if conf is None and mode == "explain":
        conf = {}
    if not isinstance(conf, dict):
        problems.append(f"{mode} mode needs its '{mode}' settings")
        return
    conf = dict(conf)
    conf["model_dir"] = conf.get("model_dir") or "model"
    if not plain_relative(conf["model_dir"]):
        problems.append(f"{mode}.model_dir must be a folder inside the workspace")
    if mode == "predict":
        if not plain_relative(conf.get("input")):
            problems.append("predict.input must be a file inside the workspace")
        conf["delimiter"] = conf.get("delimiter") or ","
        if not isinstance(conf["delimiter"], str) or len(conf["delimiter"]) != 1:
            problems.append("predict.delimiter must be one character")
    else:
        for key, (default, low, high) in EXPLAIN_DEFAULTS.items():
            value = conf.get(key, default)
            if value is None:
                value = default
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
                problems.append(f"explain.{key} must be a whole number from {low}" + (f" to {high}" if high else " up"))
            conf[key] = value
    spec[mode] = conf


# --------------------------------------------------------------------------- the model


def quoted(name, limit=60):
    """A column name or cell for a message: quoted, control characters removed, cut short."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", str(name))
    return "'" + (text if len(text) <= limit else text[: limit - 1] + "…") + "'"


def refuse_variant(variant, doing):
    if variant and variant != "tabular":
        raise HarnessError(
            "value_error",
            f"{doing} works for models trained on a table; this model ({variant}) takes its own request at its endpoint.",
        )


def load_model(spec, model_dir, doing):
    """serve.Model for the model under model_dir; only plain-table models (a variant reads its own input)."""
    import json

    meta_path = os.path.join(model_dir, "out", "model_meta.json")
    for path in (meta_path, os.path.join(model_dir, "out", "model.pkl")):
        if not os.path.isfile(path):
            raise HarnessError("runtime_error", f"The trained model is not in the workspace: {path} is missing.")
    try:
        with open(meta_path, "r", encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise HarnessError("runtime_error", f"{meta_path} could not be read: {H.describe_exception(e, 200)}")
    if not isinstance(meta, dict) or not isinstance(meta.get("features"), list) or not meta["features"]:
        raise HarnessError("runtime_error", f"{meta_path} does not describe the model's feature columns.")
    # checked before anything is unpickled: a variant's model is served by its own module
    refuse_variant(meta.get("variant") or spec.get("variant"), doing)
    if meta.get("task") not in (None, spec["task"]):
        raise HarnessError("value_error", f"The spec says task '{spec['task']}' but the model was trained for {meta.get('task')!r}.")
    import serve

    with H.generated("load model"):
        return serve.Model(model_dir, "out")


def predictions(model, X, where="predict"):
    """The model's answer for a frame of rows, checked for one prediction per row."""
    with H.generated(where):
        pred = model.predict_frame(X)
    if pred.ndim != 1 or len(pred) != len(X):
        raise HarnessError("runtime_error", f"{where} returned an array of shape {pred.shape} for {len(X)} rows; expected one prediction per row.")
    return pred


def probabilities(run, model, X):
    """(matrix, classes) from the model's predict_proba, or (None, None) when it has none."""
    import numpy as np

    inner = model.model
    if not hasattr(inner, "predict_proba") or getattr(inner, "classes_", None) is None:
        return None, None
    try:
        with H.generated("predict_proba"):
            proba = np.asarray(inner.predict_proba(X), dtype=float)
            classes = list(inner.classes_)
    except H.GeneratedCodeError as e:
        run.warn(f"predict_proba failed ({H.describe_exception(e.original, 200)}); the file has no probability columns.")
        return None, None
    if proba.ndim != 2 or proba.shape != (len(X), len(classes)):
        run.warn("predict_proba gave a matrix of the wrong shape; the file has no probability columns.")
        return None, None
    return proba, classes


def label_text(v):
    """A predicted value as one string: 1, 1.0 and numpy's 1 read the same."""
    v = H.to_jsonable(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- predict mode


def check_columns(name, columns, features):
    """Every feature the model was trained on must be a column of the file."""
    missing = [f for f in features if f not in columns]
    if not missing:
        return
    spare = [c for c in columns if c not in features]
    shown = []
    for m in missing[:MAX_MISSING_SHOWN]:
        guess = H.closest(m, spare) if spare else None
        shown.append(quoted(m) + (f" (the file has {quoted(guess)})" if guess else ""))
    more = f" and {len(missing) - MAX_MISSING_SHOWN} more" if len(missing) > MAX_MISSING_SHOWN else ""
    need = ", ".join(quoted(f, 40) for f in features[:30]) + (f", … ({len(features)} in all)" if len(features) > 30 else "")
    raise HarnessError(
        "value_error",
        f"{name} lacks {len(missing)} of the {len(features)} columns the model was trained on: {', '.join(shown)}{more}. "
        f"Send a file whose header row names every one of them ({need}); other columns may stay, they are kept as they are.",
    )


def _is_number(v):
    # what the model server accepts in a numeric column: empty, or anything float() reads
    if v is None or v == "":
        return True
    try:
        float(v)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def check_cells(name, df, model):
    """Numbers where the model takes numbers, readable dates where it takes dates: the checks the
    endpoint makes per request, said once for the file with the first offending row."""
    import pandas as pd

    from features import as_date_strings, parse_dates

    def refuse(column, bad, values, expects):
        first = bad[0]
        count = f" ({len(bad)} cells in all)" if len(bad) > 1 else ""
        raise HarnessError(
            "value_error",
            f"Column {quoted(column)} of {name} must hold {expects}, as in the training data; data row {first + 1} has "
            f"{quoted(values[first], 40)}{count}. Send the file with those cells corrected or left empty.",
        )

    for c in model.features:
        col = df[c]
        if c in model.numeric and not (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)):
            values = col.tolist()
            bad = [i for i, v in enumerate(values) if not _is_number(v)]
            if bad:
                refuse(c, bad, values, "numbers (with '.' as the decimal point)")
        elif c in model.dates:
            cells = as_date_strings(col).reset_index(drop=True)
            unreadable = (cells.notna() & parse_dates(cells).isna()).to_numpy()
            if unreadable.any():
                refuse(c, [int(i) for i in unreadable.nonzero()[0]], cells.tolist(), "dates such as 2024-03-01 or 2024-03-01T14:30")


def read_as_written(path, sep, n_rows):
    """The input's cells exactly as written (strings, nothing parsed), for the file given back; None
    when it does not line up with the parsed rows (then the parsed values are written)."""
    import pandas as pd

    for encoding in ("utf-8", "latin-1"):
        try:
            raw = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding, low_memory=False)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, ValueError):
            return None
        return raw if len(raw) == n_rows else None
    return None


def fresh_name(wanted, taken):
    """`wanted`, or `wanted_1`, `wanted_2` … when the file already has that column."""
    if wanted not in taken:
        return wanted
    i = 1
    while f"{wanted}_{i}" in taken:
        i += 1
    return f"{wanted}_{i}"


def input_metrics(run, spec, model, df, pred, proba, proba_classes, name):
    """The task's metrics on the rows of the file that carry a usable label; None when none do."""
    import numpy as np
    import pandas as pd

    meta, task = model.meta, spec["task"]
    if task == "clustering":
        col = spec.get("labels_column")
        if not col or str(col).strip() not in df.columns:
            return None
        labels = df[str(col).strip()].astype(object).map(lambda v: None if pd.isna(v) else str(v))
        return H.finite_metrics(H.label_metrics(labels.tolist(), [label_text(p) for p in pred])) or None
    target = meta.get("target")
    if target is None or target not in df.columns:
        return None
    y = df[target]
    if task == "regression":
        y = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(y)
        if not keep.any():
            run.warn(f"Column {quoted(target)} of {name} holds no numbers; the predictions are not scored against it.")
            return None
        return H.finite_metrics(H.regression_metrics(y[keep], np.asarray(pred)[keep]))
    # labels read as training read them: whole floats as integers, anything else not numeric as strings
    keep = (y.notna() & (y.astype(str).str.strip() != "")).to_numpy()
    y = y[keep]
    if pd.api.types.is_float_dtype(y.dtype) and np.all(np.mod(y.to_numpy(), 1) == 0):
        y = y.astype("int64")
    elif not (pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)):
        y = y.astype(str)
    classes = meta.get("classes") or H.sorted_classes(y.unique())
    known = {label_text(c) for c in classes}
    if not any(label_text(v) in known for v in y.tolist()):
        run.warn(f"Column {quoted(target)} of {name} holds none of the classes the model knows; the predictions are not scored against it.")
        return None

    def proba_source():
        return (proba[keep], proba_classes) if proba is not None else (None, None)

    return H.finite_metrics(H.classification_metrics(y.to_numpy(), np.asarray(pred)[keep], classes, meta.get("positive_class"), proba_source))


def predict(run, spec):
    import numpy as np

    res, conf, task = run.result, spec["predict"], spec["task"]
    path = conf["input"]
    name = os.path.basename(path)
    run.stage("load", PREDICT_STAGES)
    refuse_variant(spec.get("variant"), "Scoring a file")
    model = load_model(spec, conf["model_dir"], "Scoring a file")
    df = H.read_csv(path, conf["delimiter"])
    df.columns = [str(c).strip() for c in df.columns]
    twice = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if twice:
        raise HarnessError("value_error", f"{name} has more than one column named {', '.join(quoted(c) for c in twice[:5])}; send a file whose header names each column once.")
    if len(df) == 0:
        raise HarnessError("value_error", f"{name} has a header but no rows; send the rows to score under the same header.")
    features = model.features
    check_columns(name, list(df.columns), features)
    check_cells(name, df, model)
    meta = model.meta
    res["features"] = {k: list(meta.get(k) or []) for k in ("numeric", "categorical", "text", "dates")}
    res["classes"] = meta.get("classes")

    run.stage("predict", PREDICT_STAGES, f"{len(df)} rows")
    import serve

    want_proba = task == "classification"
    parts, proba_parts, proba_classes = [], [], None
    for start in range(0, len(df), CHUNK_ROWS):
        rows = df.iloc[start : start + CHUNK_ROWS][features].to_dict(orient="records")
        try:
            X = model.frame(rows)
        except serve.BadRequest as e:  # the checks above should have said it first
            raise HarnessError("value_error", f"{name} could not be scored: {e}.")
        parts.append(predictions(model, X))
        if want_proba:
            proba, proba_classes = probabilities(run, model, X)
            if proba is None:
                want_proba, proba_parts = False, []
            else:
                proba_parts.append(proba)
    pred = np.concatenate(parts)
    proba = np.concatenate(proba_parts) if want_proba and proba_parts else None

    counts, value_range = None, None
    if task == "regression":
        try:
            values = pred.astype(float)
        except (TypeError, ValueError):
            raise HarnessError("runtime_error", "The model's predictions are not numbers.")
        if not np.all(np.isfinite(values)):
            raise HarnessError("runtime_error", f"The model predicted NaN or infinite values for rows of {name}.")
        value_range = {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
    else:
        counts = dict(Counter(label_text(v) for v in pred.tolist()).most_common())
    scored = input_metrics(run, spec, model, df, pred, proba, proba_classes if proba is not None else None, name)
    for metric, value in (scored or {}).items():
        H.emit({"event": "metric", "name": metric, "value": value, "split": "input"})

    run.stage("save", PREDICT_STAGES)
    out = read_as_written(path, conf["delimiter"], len(df))
    out = df.copy() if out is None else out
    out.columns = list(df.columns)
    taken = set(out.columns)
    column = fresh_name("prediction", taken)
    out[column] = [H.to_jsonable(v) for v in pred.tolist()]
    taken.add(column)
    if proba is not None:
        for i, c in enumerate(proba_classes):
            pcol = fresh_name(f"probability_{label_text(c)}", taken)
            out[pcol] = proba[:, i]
            taken.add(pcol)
    os.makedirs(spec["out_dir"], exist_ok=True)
    file = os.path.join(spec["out_dir"], "predictions.csv")
    out.to_csv(file, index=False)
    used = {meta.get("target"), None if spec.get("labels_column") is None else str(spec["labels_column"]).strip()}
    res["predicted"] = {
        "rows": len(df),
        "file": os.path.relpath(file, "."),
        "counts": counts,
        "range": value_range,
        # the target and the known groups score the predictions: not listed as unused
        "ignored_columns": [c for c in df.columns if c not in features and c not in used],
        "metrics": scored,
    }


# --------------------------------------------------------------------------- explain mode


def importance_scorer(run, spec, model, classes, X, y):
    """(metric name, scorer(model, X, y) with greater = better, y to pass) for permutation_importance:
    the primary metric through the loaded model; for clusters, agreement with the unshuffled clusters."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    task = spec["task"]
    if task == "clustering":
        base = np.asarray([label_text(p) for p in predictions(model, X)], dtype=object)

        def agreement(m, Xp, yp):
            return adjusted_rand_score(yp, [label_text(p) for p in predictions(m, Xp)])

        return "adjusted_rand_index", agreement, base
    pos = model.meta.get("positive_class")

    def metrics_of(m, Xp, yp, metric):
        pred = predictions(m, Xp)
        if task == "regression":
            return H.regression_metrics(yp, pred)

        def source():
            if metric != "roc_auc":
                return None, None
            with H.generated("predict_proba"):
                return m.model.predict_proba(Xp), list(m.model.classes_)

        return H.classification_metrics(yp, pred, classes, pos, source)

    metric = spec["metric"]
    base = metrics_of(model, X, y, metric).get(metric)
    if metric not in H.TASK_METRICS[task] or base is None or not math.isfinite(base):
        fallback = H.DEFAULT_METRIC[task]
        run.warn(f"The metric '{metric}' cannot be measured on these rows; importance is measured with {fallback} instead.")
        metric = fallback
    sign = 1.0 if H.GREATER_IS_BETTER.get(metric, True) else -1.0

    def scorer(m, Xp, yp):
        v = metrics_of(m, Xp, yp, metric).get(metric)
        if v is None or not math.isfinite(v):
            raise HarnessError("runtime_error", f"{metric} could not be computed on the shuffled rows.")
        # permutation_importance takes baseline minus shuffled: an error metric counts its increase
        return sign * float(v)

    return metric, scorer, y


def explain(run, spec):
    import numpy as np
    from sklearn.inspection import permutation_importance

    res, conf = run.result, spec["explain"]
    run.stage("load", EXPLAIN_STAGES)
    refuse_variant(spec.get("variant"), "Explaining a model")
    model = load_model(spec, conf["model_dir"], "Explaining a model")
    prep = H.prepare(run, spec)
    missing = [f for f in model.features if f not in prep.X.columns]
    if missing:
        raise HarnessError(
            "value_error",
            f"{spec['data']} no longer holds the model's column(s) {', '.join(quoted(c) for c in missing[:MAX_MISSING_SHOWN])}; "
            "the model is explained on the data it was trained on.",
        )
    res["features"] = {k: list(model.meta.get(k) or []) for k in ("numeric", "categorical", "text", "dates")}
    res["classes"] = prep.classes

    # the validation rows exactly as training cut them: the model never learnt from them
    run.stage("split", EXPLAIN_STAGES)
    tr, va, te = H.split_indices(run, prep, spec)
    res["rows"] = {"train": len(tr), "valid": len(va), "test": len(te)}
    X, y, _ = H.take(prep, va)
    if len(X) > conf["max_rows"]:
        pick = np.sort(np.random.default_rng(spec["seed"]).choice(len(X), conf["max_rows"], replace=False))
        X = X.iloc[pick].reset_index(drop=True)
        y = None if y is None else y.iloc[pick].reset_index(drop=True)
    X = X[model.features]

    run.stage("explain", EXPLAIN_STAGES, f"{X.shape[1]} columns shuffled {conf['repeats']} times on {len(X)} rows")
    metric, scorer, y_scored = importance_scorer(run, spec, model, prep.classes, X, y)
    found = permutation_importance(model, X, y_scored, scoring=scorer, n_repeats=conf["repeats"], random_state=spec["seed"], n_jobs=1)
    features = [
        {"feature": str(c), "mean": float(m), "std": float(s)}
        for c, m, s in zip(X.columns, found.importances_mean, found.importances_std)
    ]
    features.sort(key=lambda f: -f["mean"])
    res["importance"] = {"metric": metric, "rows": len(X), "features": features}

    run.stage("plots", EXPLAIN_STAGES, None if spec["plots"] else "skipped")
    if spec["plots"]:
        res["plots"] = plot_importance(run, spec["out_dir"], spec["task"], metric, len(X), features[: conf["top"]])


def plot_importance(run, out_dir, task, metric, rows, shown):
    """A horizontal bar per feature (largest on top) with the spread over repeats as error bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        run.warn("matplotlib is not installed; no importance plot was drawn (Debian: python3-matplotlib; pip install matplotlib).")
        return []
    try:
        order = list(reversed(shown))  # barh draws the first bar at the bottom
        # "$" would start matplotlib's math text in a column name
        labels = [quoted(f["feature"], 40)[1:-1].replace("$", r"\$") for f in order]
        fig, ax = plt.subplots(figsize=(7, 1.2 + 0.38 * len(order)))
        ax.barh(range(len(order)), [f["mean"] for f in order], xerr=[f["std"] for f in order], color="#4c78a8", ecolor="#333333", capsize=3)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels(labels)
        ax.axvline(0, color="black", linewidth=0.8)
        if task == "clustering":
            ax.set_xlabel("1 - adjusted Rand index with the unshuffled clusters")
        else:
            change = "drop" if H.GREATER_IS_BETTER.get(metric, True) else "increase"
            ax.set_xlabel(f"{change} in {metric} when the column is shuffled")
        ax.set_title(f"Permutation importance ({metric}, {rows} validation rows)")
        fig.tight_layout()
        path = os.path.join(out_dir, "importance.png")
        os.makedirs(out_dir, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return [os.path.relpath(path, ".")]
    except Exception as e:  # noqa: BLE001 - the numbers stand without their picture
        run.warn(f"The importance plot could not be drawn: {H.describe_exception(e, 300)}")
        plt.close("all")
        return []
