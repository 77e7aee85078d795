"""ThreadML harness variant: time-series forecasting.

The data is one table (spec `data`) with a time column, the target and, optionally, a series id column
(one series per value) and other numeric columns (exogenous inputs). Each series is sorted, put on a
regular grid at the frequency the timestamps show (missing steps interpolated) and cut in time order,
never shuffled: the last `test_blocks` horizon-sized blocks of every series are the test split, the
block before them the validation split, the rest trains.

The model is a scikit-learn regressor over features of the history at a forecast origin: lags, rolling
means and spread, calendar terms of the forecast time, exogenous values at the origin and the series
id. Everything is relative to the last observed value and the recent scale of the series, so one model
serves series of any level. Two strategies give the multi-step forecast:
    direct     one model, with the step ahead (1..horizon) as a feature
    recursive  a one-step model fed its own forecasts
A seasonal-naive forecast (the value one season earlier) is scored beside the model (baseline_*).

spec["timeseries"]:
    time_column, id_column (null: one series), horizon, frequency (pandas alias; null: inferred),
    strategy (direct | recursive), exogenous [columns], season_length, lags, windows (null: chosen from
    the frequency), test_blocks (null: about 15% of the shortest series, 1 to 5)

Model server: POST /predict {"history": [{time, id?, target, exogenous...}, ...], "horizon": n?}
-> {"predictions": [{id?, time, target}, ...]}: the next `horizon` values (at most the trained one)
after the end of each series in the history.
"""

import math
import os
import time

import numpy as np

import harness as H
import variant_common as C

# What the harness fits on the rows this variant makes (checked against spec.json's task).
TASK = "regression"

STRATEGIES = ("direct", "recursive")
FORECAST_METRICS = ["rmse", "mae", "mape", "smape", "r2", "rmsle"]
# Direct training rows are (origin, step) pairs; beyond this many a seeded sample is used.
MAX_TRAIN_ROWS = 60_000
SERIES_FEATURE = "series"


class SeriesError(ValueError):
    """A problem with the data as series, phrased for the user."""


# --------------------------------------------------------------------------- time axis


def parse_times(values, kind=None):
    """(values, kind): timestamps as naive datetimes, or plain numbers when the column is numeric."""
    import pandas as pd

    s = pd.Series(values)
    if kind == "number" or (kind is None and pd.api.types.is_numeric_dtype(s.dtype)):
        return pd.to_numeric(s, errors="coerce").astype(float), "number"
    # utc=True reads zone-aware and naive stamps alike; the zone is then dropped
    t = pd.to_datetime(s, errors="coerce", utc=True)
    return t.dt.tz_convert(None), "datetime"


def infer_frequency(times_by_series, kind):
    """A pandas offset alias for datetimes, or the step for numbers, from the longest series."""
    import pandas as pd

    longest = max(times_by_series, key=len)
    if kind == "number":
        diffs = np.diff(np.sort(np.unique(longest)))
        diffs = diffs[diffs > 0]
        if not len(diffs):
            raise SeriesError("the time column holds a single value")
        values, counts = np.unique(np.round(diffs, 9), return_counts=True)
        return None, float(values[np.argmax(counts)])
    index = pd.DatetimeIndex(np.sort(pd.unique(longest)))
    if len(index) < 3:
        raise SeriesError("a series needs at least three distinct timestamps")
    freq = pd.infer_freq(index)
    if freq:
        return freq, None
    diffs = np.diff(index.asi8)
    values, counts = np.unique(diffs[diffs > 0], return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]))
    days = step / pd.Timedelta(days=1)
    starts = bool(np.all(index.day == 1))
    if 28 <= days <= 31:
        return ("MS" if starts else "M"), None
    if 89 <= days <= 92:
        return ("QS" if starts else "Q"), None
    if 365 <= days <= 366:
        return ("AS" if starts else "A"), None
    return pd.tseries.frequencies.to_offset(step).freqstr, None


def granularity(freq):
    """subdaily | daily | weekly | monthly | quarterly | yearly, with the step when it is fixed."""
    import pandas as pd

    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):
        step = None
    name = offset.name.upper()
    if step is not None:
        if step < pd.Timedelta(days=1):
            return "subdaily", step
        return ("daily" if step < pd.Timedelta(days=7) else "weekly"), step
    if name.startswith("W"):
        return "weekly", None
    if name in ("B", "C", "CBMS") or name.startswith(("BH", "CBH")):
        return "daily", None
    if name.startswith(("Q", "BQ")):
        return "quarterly", None
    if name.startswith(("A", "Y", "BA", "BY")):
        return "yearly", None
    if name.startswith(("M", "SM", "BM", "CBM")):
        return "monthly", None
    return "daily", None


def season_from_frequency(freq):
    import pandas as pd

    kind, step = granularity(freq)
    if kind == "subdaily" and step is not None:
        per_day = pd.Timedelta(days=1) / step
        return int(round(per_day)) if 2 <= per_day <= 1440 else 1
    name = pd.tseries.frequencies.to_offset(freq).name.upper()
    if kind == "daily":
        return 5 if name.startswith("B") else 7
    return {"weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 1}.get(kind, 1)


def acf_season(y, max_lag):
    """The lag where the differenced series correlates most with itself (1 when none stands out)."""
    d = np.diff(np.asarray(y, dtype=float))
    d = d - d.mean()
    denom = float((d * d).sum())
    best, lag = 0.3, 1
    if denom <= 0:
        return 1
    for k in range(2, min(max_lag, len(d) - 1) + 1):
        r = float((d[k:] * d[:-k]).sum()) / denom
        if r > best:
            best, lag = r, k
    return lag


def future_times(last, steps, cfg):
    import pandas as pd

    if cfg["kind"] == "number":
        return [last + cfg["step"] * h for h in range(1, steps + 1)]
    return list(pd.date_range(start=last, periods=steps + 1, freq=cfg["frequency"])[1:])


def time_text(t, cfg):
    return float(t) if cfg["kind"] == "number" else t.isoformat()


# --------------------------------------------------------------------------- series


class Series:
    __slots__ = ("key", "times", "y", "exog", "filled")

    def __init__(self, key, times, y, exog, filled):
        self.key, self.times, self.y, self.exog, self.filled = key, times, y, exog, filled


def build_series(df, cfg):
    """Regular series from a table: sorted, duplicates averaged, gaps filled. Raises SeriesError."""
    import pandas as pd

    time_col, id_col, target = cfg["time_column"], cfg["id_column"], cfg["target"]
    times, kind = parse_times(df[time_col], cfg.get("kind"))
    bad_time = int(times.isna().sum())
    if bad_time == len(df):
        raise SeriesError(f"the time column '{time_col}' holds no readable dates, times or numbers (e.g. {df[time_col].iloc[0]!r})")
    y = pd.to_numeric(df[target], errors="coerce")
    if y.notna().sum() == 0:
        raise SeriesError(f"the target '{target}' is not numeric (e.g. {df[target].iloc[0]!r})")
    data = pd.DataFrame({"__t": times.to_numpy(), "__y": y.to_numpy(dtype=float)})
    for c in cfg["exogenous"]:
        data[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
    data["__k"] = H.as_category_strings(df[id_col]).to_numpy() if id_col else "__all__"
    data = data[data["__t"].notna() & data["__k"].notna()]
    groups = [(k, g) for k, g in data.groupby("__k", sort=True)]
    if cfg.get("kind") is None:
        cfg["kind"] = kind
    if cfg["kind"] == "datetime" and not cfg.get("frequency"):
        cfg["frequency"], _ = infer_frequency([g["__t"].to_numpy() for _, g in groups], "datetime")
    if cfg["kind"] == "number" and not cfg.get("step"):
        _, cfg["step"] = infer_frequency([g["__t"].to_numpy() for _, g in groups], "number")
    out = []
    for key, g in groups:
        name = "the series" if key == "__all__" else f"series {key!r}"
        g = g.groupby("__t", sort=True).mean(numeric_only=True)
        if cfg["kind"] == "number":
            t0 = float(g.index[0])
            pos = np.round((g.index.to_numpy(dtype=float) - t0) / cfg["step"]).astype(np.int64)
            g = g.groupby(pos).mean()
            grid = np.arange(0, pos.max() + 1)
            regular = g.reindex(grid)
            stamps = t0 + grid * cfg["step"]
        else:
            grid = pd.date_range(start=g.index[0], end=g.index[-1], freq=cfg["frequency"])
            if len(grid) > 3 * len(g) + 10:
                raise SeriesError(f"the timestamps of {name} are too irregular for the frequency {cfg['frequency']}")
            regular = g.reindex(grid)
            stamps = grid
        missing = int(regular["__y"].isna().sum())
        if missing > 0.5 * len(regular):
            raise SeriesError(f"{name} misses {missing} of {len(regular)} steps at frequency {cfg.get('frequency') or cfg['step']}; its timestamps do not fit one grid")
        yv = regular["__y"].interpolate(limit_direction="both").to_numpy(dtype=float)
        ex = regular[cfg["exogenous"]].ffill().bfill().fillna(0.0).to_numpy(dtype=float) if cfg["exogenous"] else np.zeros((len(regular), 0))
        out.append(Series(None if key == "__all__" else str(key), stamps, yv, ex, missing))
    if not out:
        raise SeriesError("no rows have a readable time")
    return out, bad_time


# --------------------------------------------------------------------------- features


# Calendar terms per granularity, with the steps of one cycle: a term is used only when the shortest
# series spans two of its cycles (a day-of-year term learnt from ten months only overfits).
CALENDAR = {
    "subdaily": [("hour", "day"), ("dow", "week")],
    "daily": [("dow", 7), ("month", 365), ("doy", 365)],
    "weekly": [("week", 52), ("month", 52)],
    "monthly": [("month", 12)],
    "quarterly": [("quarter", 4)],
    "yearly": [],
}


def calendar_terms(cfg, shortest):
    if cfg["kind"] == "number":
        return ["phase"] if cfg["season_length"] > 1 else []
    terms = []
    for name, cycle in CALENDAR[cfg["granularity"]]:
        if isinstance(cycle, str):  # sub-daily: steps per day or per week
            per_day = cfg["season_length"] if cfg["season_length"] > 1 else 24
            cycle = per_day * (1 if cycle == "day" else 7)
        if shortest >= 2 * cycle:
            terms.append(name)
    return terms


def calendar_columns(cfg):
    return [c for name in cfg["calendar"] for c in (name, f"{name}_sin", f"{name}_cos")]


def calendar_values(times, cfg):
    import pandas as pd

    out = {}
    if cfg["kind"] == "number":
        m = cfg["season_length"]
        if cfg["calendar"]:
            phase = np.mod(np.round(np.asarray(times, dtype=float) / cfg["step"]), m)
            out["phase"], out["phase_sin"], out["phase_cos"] = phase, np.sin(2 * np.pi * phase / m), np.cos(2 * np.pi * phase / m)
        return out
    t = pd.DatetimeIndex(times)
    table = {
        "hour": (t.hour + t.minute / 60.0, 24),
        "dow": (t.dayofweek, 7),
        "month": (t.month - 1, 12),
        "doy": (t.dayofyear - 1, 366),
        "week": (t.isocalendar().week.to_numpy(dtype=float) - 1, 53),
        "quarter": (t.quarter - 1, 4),
    }
    for name in cfg["calendar"]:
        v, period = table[name]
        v = np.asarray(v, dtype=float)
        out[name], out[f"{name}_sin"], out[f"{name}_cos"] = v, np.sin(2 * np.pi * v / period), np.cos(2 * np.pi * v / period)
    return out


def feature_columns(cfg):
    cols = ["level"] + [f"lag_{k}" for k in cfg["lags"] if k > 1]
    cols += [f"mean_{w}" for w in cfg["windows"]] + [f"std_{cfg['windows'][-1]}"]
    if cfg["season_length"] > 1:
        cols += ["season_last", "season_mean"]
    cols += [f"ex_{c}" for c in cfg["exogenous"]]
    if cfg["strategy"] == "direct":
        cols.append("step")
    return cols + calendar_columns(cfg)


def _window_stats(y, ts, w):
    cs = np.concatenate([[0.0], np.cumsum(y)])
    cs2 = np.concatenate([[0.0], np.cumsum(y * y)])
    lo = ts + 1 - w
    s1, s2 = cs[ts + 1] - cs[lo], cs2[ts + 1] - cs2[lo]
    mean = s1 / w
    return mean, np.sqrt(np.maximum(s2 / w - mean * mean, 0.0))


def features(y, exog, ts, hs, target_times, key, cfg):
    """Model inputs for forecasts from origins `ts` (the last observed index) `hs` steps ahead, and
    the level and scale that turn the model's output back into values."""
    import pandas as pd

    y = np.asarray(y, dtype=float)
    ts, hs = np.asarray(ts, dtype=np.int64), np.asarray(hs, dtype=np.int64)
    level = y[ts]
    # the recent mean size of the series: features and target are in its units
    recent = _window_stats(np.abs(y), ts, cfg["needed"])[0]
    scale = np.where(recent > 1e-9, recent, 1.0)
    cols = {"level": level / scale}
    for k in cfg["lags"]:
        if k > 1:
            cols[f"lag_{k}"] = (y[ts + 1 - k] - level) / scale
    for w in cfg["windows"]:
        cols[f"mean_{w}"] = (_window_stats(y, ts, w)[0] - level) / scale
    widest = cfg["windows"][-1]
    cols[f"std_{widest}"] = _window_stats(y, ts, widest)[1] / scale
    m = cfg["season_length"]
    if m > 1:
        # the value one season before the forecast time (the seasonal-naive forecast), and the mean of
        # that phase over the last few seasons: the model learns corrections to them
        same = ts + hs - m * np.ceil(hs / m).astype(np.int64)
        cols["season_last"] = (y[same] - level) / scale
        cols["season_mean"] = (np.mean([y[same - k * m] for k in range(cfg["seasons"])], axis=0) - level) / scale
    for j, c in enumerate(cfg["exogenous"]):
        cols[f"ex_{c}"] = exog[ts, j] if len(exog) else np.zeros(len(ts))
    if cfg["strategy"] == "direct":
        cols["step"] = hs.astype(float)
    cols.update(calendar_values(target_times, cfg))
    frame = pd.DataFrame({c: cols[c] for c in cfg["numeric"]})
    if cfg["multi"]:
        frame[SERIES_FEATURE] = pd.Series([key] * len(ts), dtype=object)
    return frame, level, scale


def target_times_for(s, ts, hs, cfg):
    if cfg["kind"] == "number":
        return np.asarray(s.times, dtype=float)[ts] + cfg["step"] * hs
    # positions on the regular grid: index arithmetic, then past the end by the offset
    import pandas as pd

    n = len(s.times)
    pos = ts + hs
    inside = pos < n
    out = np.empty(len(ts), dtype="datetime64[ns]")
    if inside.any():
        out[inside] = np.asarray(s.times)[pos[inside]]
    if (~inside).any():
        extra = pd.date_range(start=s.times[-1], periods=int(pos.max() - n + 2), freq=cfg["frequency"])
        out[~inside] = np.asarray(extra)[pos[~inside] - n + 1]
    return out


def training_rows(series, ends, cfg, strategy, rng, cap=MAX_TRAIN_ROWS, starts=None):
    """(X, y) of forecasts from actual histories whose targets lie in (starts, ends] of each series
    (from its beginning when `starts` is None)."""
    import pandas as pd

    frames, targets = [], []
    steps = range(1, cfg["horizon"] + 1) if strategy == "direct" else [1]
    pairs = []
    for si, (s, end) in enumerate(zip(series, ends)):
        first = -1 if starts is None else starts[si]
        for h in steps:
            ts = np.arange(max(cfg["needed"] - 1, first - h + 1), end - h + 1)
            if len(ts):
                pairs.append((si, ts, np.full(len(ts), h)))
    total = sum(len(p[1]) for p in pairs)
    keep = 1.0 if total <= cap else cap / total
    for si, ts, hs in pairs:
        if keep < 1.0:
            mask = rng.random(len(ts)) < keep
            ts, hs = ts[mask], hs[mask]
            if not len(ts):
                continue
        s = series[si]
        X, level, scale = features(s.y, s.exog, ts, hs, target_times_for(s, ts, hs, cfg), s.key, cfg)
        frames.append(X)
        targets.append((s.y[ts + hs] - level) / scale)
    if not frames:
        raise SeriesError("the series are too short to make training rows")
    X = pd.concat(frames, ignore_index=True)
    return X, pd.Series(np.concatenate(targets))


def _predict(model, predict_fn, X):
    return H.predict_with(predict_fn, model, X).astype(float)


def forecast(model, predict_fn, jobs, cfg, steps):
    """Forecasts `steps` ahead for each job (series, origin index): an array (jobs, steps). Histories
    are the actual values up to each origin; recursive forecasts extend them with their own."""
    import pandas as pd

    if not jobs:
        return np.zeros((0, steps))
    if cfg["strategy"] == "direct":
        frames, levels, scales = [], [], []
        for s, t in jobs:
            ts = np.full(steps, t)
            hs = np.arange(1, steps + 1)
            X, level, scale = features(s.y, s.exog, ts, hs, target_times_for(s, ts, hs, cfg), s.key, cfg)
            frames.append(X)
            levels.append(level)
            scales.append(scale)
        pred = _predict(model, predict_fn, pd.concat(frames, ignore_index=True))
        return (np.concatenate(levels) + np.concatenate(scales) * pred).reshape(len(jobs), steps)
    # recursive: one step at a time, each forecast appended to its job's history
    work = [np.array(s.y[: t + 1], dtype=float) for s, t in jobs]
    out = np.zeros((len(jobs), steps))
    for h in range(1, steps + 1):
        frames, levels, scales = [], [], []
        for j, (s, t) in enumerate(jobs):
            ts = np.array([len(work[j]) - 1])
            exog = s.exog[: t + 1] if len(s.exog) else s.exog
            if len(exog):
                exog = np.vstack([exog, np.repeat(exog[-1:], h - 1, axis=0)])
            X, level, scale = features(work[j], exog, ts, np.array([1]), target_times_for(s, np.array([t]), np.array([h]), cfg), s.key, cfg)
            frames.append(X)
            levels.append(level)
            scales.append(scale)
        pred = _predict(model, predict_fn, pd.concat(frames, ignore_index=True))
        values = np.concatenate(levels) + np.concatenate(scales) * pred
        for j in range(len(jobs)):
            work[j] = np.append(work[j], values[j])
            out[j, h - 1] = values[j]
    return out


def seasonal_naive(jobs, cfg, steps):
    m = max(1, cfg["season_length"])
    out = np.zeros((len(jobs), steps))
    for j, (s, t) in enumerate(jobs):
        for h in range(1, steps + 1):
            back = m * math.ceil(h / m)
            out[j, h - 1] = s.y[t + h - back] if t + h - back >= 0 else s.y[t]
    return out


def forecast_metrics(actual, pred):
    from sklearn import metrics as M

    a, p = np.asarray(actual, dtype=float).ravel(), np.asarray(pred, dtype=float).ravel()
    if not np.all(np.isfinite(p)):
        raise H.HarnessError("runtime_error", "The model forecast NaN or infinite values.")
    out = {"rmse": math.sqrt(M.mean_squared_error(a, p)), "mae": M.mean_absolute_error(a, p)}
    if len(a) > 1 and np.var(a) > 0:
        out["r2"] = M.r2_score(a, p)
    # one definition of the percentage errors, shared with plain regression
    m = H.mape(a, p)
    if m is not None:
        out["mape"] = m
    out["smape"] = H.smape(a, p)
    if np.all(a >= 0):
        out["rmsle"] = H.rmsle(a, p)
    return out


# --------------------------------------------------------------------------- preparation


def normalise(spec, problems):
    conf = dict(spec["timeseries"])
    if not conf.get("time_column"):
        problems.append("timeseries.time_column is required")
    conf["id_column"] = conf.get("id_column") or None
    conf["horizon"] = int(conf.get("horizon") or 0)
    if conf["horizon"] < 1:
        problems.append("timeseries.horizon must be at least 1")
    conf["strategy"] = conf.get("strategy") or "direct"
    if conf["strategy"] not in STRATEGIES:
        problems.append("timeseries.strategy must be direct or recursive")
    conf["exogenous"] = list(conf.get("exogenous") or [])
    for key in ("season_length", "test_blocks"):
        conf[key] = int(conf[key]) if conf.get(key) else None
    for key in ("lags", "windows"):
        conf[key] = sorted({int(v) for v in conf[key] if int(v) >= 1}) if conf.get(key) else None
    conf["frequency"] = conf.get("frequency") or None
    spec["timeseries"] = conf


class SeriesData(H.Prepared):
    pass


def load(run, spec):
    """The series and the forecasting configuration, with the held-out layout decided."""
    conf, target = spec["timeseries"], str(spec["target"]).strip()
    df = H.read_csv(spec["data"], spec.get("delimiter") or ",")
    df.columns = [str(c).strip() for c in df.columns]
    for what, name in [("Target column", target), ("time_column", conf["time_column"])] + (
        [("id_column", conf["id_column"])] if conf["id_column"] else []
    ) + [("exogenous column", c) for c in conf["exogenous"]]:
        if name not in df.columns:
            raise H.HarnessError("value_error", H.missing_column_message(what, name, list(df.columns), spec["data"]))
    import pandas as pd

    exogenous = []
    for c in conf["exogenous"]:
        if c in (target, conf["time_column"], conf["id_column"]):
            continue
        if pd.to_numeric(df[c], errors="coerce").notna().any():
            exogenous.append(c)
        else:
            run.warn(f"Exogenous column '{c}' holds no numbers; it is left out.")
    conf["exogenous"] = exogenous
    cfg = {
        "time_column": conf["time_column"],
        "id_column": conf["id_column"],
        "target": target,
        "exogenous": conf["exogenous"],
        "frequency": conf["frequency"],
        "horizon": conf["horizon"],
        "strategy": conf["strategy"],
        "kind": None,
        "step": None,
    }
    try:
        series, bad_time = build_series(df, cfg)
    except SeriesError as e:
        raise H.HarnessError("value_error", f"{os.path.basename(spec['data'])}: {e}.")
    if bad_time:
        run.warn(f"{bad_time} row(s) have no readable time in '{conf['time_column']}' and are left out.")
    filled = sum(s.filled for s in series)
    if filled:
        run.warn(f"{filled} missing step(s) were filled by interpolation to keep the series regular.")
    if cfg["kind"] == "datetime":
        cfg["granularity"] = granularity(cfg["frequency"])[0]

    horizon = cfg["horizon"]
    shortest = min(len(s.y) for s in series)
    m = conf["season_length"] or (season_from_frequency(cfg["frequency"]) if cfg["kind"] == "datetime" else acf_season(max(series, key=lambda s: len(s.y)).y, shortest // 3))
    if m > 1 and shortest < 3 * m + 2 * horizon:
        m = acf_season(max(series, key=lambda s: len(s.y)).y, max(2, shortest // 4))
    cfg["season_length"] = int(m)
    lags = conf["lags"] or sorted({*range(1, (min(m, 7) if m > 1 else 3) + 1), *([m] if m > 1 else []), *([2 * m] if 1 < m and 2 * m <= shortest // 4 else [])})
    windows = conf["windows"] or sorted({w for w in (3, m) if w >= 2})
    cfg["lags"], cfg["windows"] = lags, windows
    base_needed = max(max(lags), max(windows))
    # seasons averaged for the seasonal features: three when the series are long enough
    cfg["seasons"] = 3 if m > 1 and shortest >= max(base_needed, 3 * m) + 3 * horizon + 10 else 1
    cfg["needed"] = max(base_needed, cfg["seasons"] * m if m > 1 else 1)
    cfg["multi"] = cfg["id_column"] is not None and len(series) > 1
    cfg["calendar"] = calendar_terms(cfg, shortest)

    minimum = cfg["needed"] + 3 * horizon + 10
    keep = [s for s in series if len(s.y) >= minimum]
    if len(keep) < len(series):
        run.warn(f"{len(series) - len(keep)} series have fewer than {minimum} points and are left out.")
    if not keep:
        raise H.HarnessError(
            "value_error",
            f"Forecasting {horizon} steps with lags up to {cfg['needed']} needs at least {minimum} points per series; the longest has {max(len(s.y) for s in series)}.",
        )
    series = keep
    if spec.get("sample_rows"):
        per = max(minimum, int(spec["sample_rows"]) // len(series))
        for s in series:
            if len(s.y) > per:
                cut = len(s.y) - per
                s.times, s.y, s.exog = s.times[cut:], s.y[cut:], s.exog[cut:]
        run.log(f"Smoke run: the last {per} points of each series.")

    shortest = min(len(s.y) for s in series)
    blocks = conf["test_blocks"] or max(1, min(5, int(round(0.15 * shortest / horizon))))
    while blocks > 1 and shortest - (blocks + 1) * horizon < cfg["needed"] + horizon + 10:
        blocks -= 1
    cfg["test_blocks"] = blocks
    cfg["numeric"] = feature_columns(cfg)

    p = SeriesData()
    p.series, p.cfg = series, cfg
    p.numeric = list(cfg["numeric"])
    p.categorical = [SERIES_FEATURE] if cfg["multi"] else []
    p.text, p.features = [], p.numeric + p.categorical
    p.classes, p.target, p.labels_col, p.labels = None, target, None, None
    p.context = {
        "horizon": horizon,
        "frequency": cfg["frequency"] or cfg["step"],
        "season_length": cfg["season_length"],
        "strategy": cfg["strategy"],
        "time_column": cfg["time_column"],
        "id_column": cfg["id_column"],
        "lags": list(lags),
    }
    p.details = {
        "series": len(series),
        "points": int(sum(len(s.y) for s in series)),
        "frequency": cfg["frequency"] or f"step {cfg['step']:g}",
        "horizon": horizon,
        "season_length": cfg["season_length"],
        "strategy": cfg["strategy"],
        "test_blocks": blocks,
        "lags": list(lags),
        "windows": list(windows),
        "filled_steps": int(filled),
    }
    run.log(
        f"{len(series)} series, {p.details['points']} points at {p.details['frequency']}; season {cfg['season_length']}, "
        f"{blocks} test block(s) of {horizon} steps per series."
    )
    return p


def layout(prep):
    """Per series: the last training index, and the origins of the validation and test forecasts."""
    horizon, B = prep.cfg["horizon"], prep.cfg["test_blocks"]
    ends, valid_jobs, test_jobs = [], [], []
    for s in prep.series:
        n = len(s.y)
        end = n - B * horizon - horizon - 1
        ends.append(end)
        valid_jobs.append((s, end))
        test_jobs += [(s, n - (B - b) * horizon - 1) for b in range(B)]
    return ends, valid_jobs, test_jobs


def actual(jobs, steps):
    return np.array([s.y[t + 1 : t + 1 + steps] for s, t in jobs])


# --------------------------------------------------------------------------- train and search


def train(run, spec):
    res, stages, out_dir = run.result, H.TRAIN_STAGES, spec["out_dir"]
    run.stage("load", stages)
    t_load = time.perf_counter()
    prep = load(run, spec)
    load_s = time.perf_counter() - t_load
    cfg, horizon = prep.cfg, prep.cfg["horizon"]
    res["features"] = {"numeric": prep.numeric, "categorical": prep.categorical, "text": []}
    res["details"] = dict(prep.details)

    run.stage("split", stages)
    ends, valid_jobs, test_jobs = layout(prep)
    rng = np.random.default_rng(spec["seed"])
    X_tr, y_tr = training_rows(prep.series, ends, cfg, cfg["strategy"], rng)
    # the validation block: forecasts whose targets fall in it (for early stopping in a fit slot)
    X_va, y_va = training_rows(prep.series, [e + horizon for e in ends], cfg, cfg["strategy"], rng, cap=10**9, starts=ends)
    res["rows"] = {"train": len(X_tr), "valid": len(valid_jobs) * horizon, "test": len(test_jobs) * horizon}

    run.stage("build", stages)
    ctx = H.Context(run, spec, prep, None)
    model, fit_fn, predict_fn = H.build_solution(spec, ctx)

    run.stage("fit", stages)
    model, train_time = H.fit_solution(run, "regression", model, fit_fn, H.DataSplit(X_tr, y_tr), H.DataSplit(X_va, y_va), ctx)

    run.stage("evaluate", stages)
    f_va = forecast(model, predict_fn, valid_jobs, cfg, horizon)
    t = time.perf_counter()
    f_te = forecast(model, predict_fn, test_jobs, cfg, horizon)
    test_predict_s = time.perf_counter() - t
    a_va, a_te = actual(valid_jobs, horizon), actual(test_jobs, horizon)
    base_te = seasonal_naive(test_jobs, cfg, horizon)
    res["valid_metrics"] = H.finite_metrics(forecast_metrics(a_va, f_va))
    test = forecast_metrics(a_te, f_te)
    test.update({f"baseline_{k}": v for k, v in forecast_metrics(a_te, base_te).items() if k in ("rmse", "mae", "mape", "smape", "rmsle")})
    res["metrics"] = H.finite_metrics(test)
    for split, d in (("valid", res["valid_metrics"]), ("test", res["metrics"])):
        for name, value in d.items():
            H.emit({"event": "metric", "name": name, "value": value, "split": split})
    if spec["metric"] not in res["metrics"]:
        run.warn(f"The primary metric '{spec['metric']}' could not be computed for these forecasts.")
    singles = []
    for job in test_jobs[: min(10, len(test_jobs))]:
        t = time.perf_counter()
        forecast(model, predict_fn, [job], cfg, horizon)
        singles.append(time.perf_counter() - t)

    run.stage("save", stages)
    model_path = H.save_model(model, out_dir)
    meta = {
        "task": "regression",
        "variant": "timeseries",
        "target": prep.target,
        "features": prep.features,
        "numeric": prep.numeric,
        "categorical": prep.categorical,
        "text": [],
        "classes": None,
        "positive_class": None,
        "solution": spec["solution"],
        "timeseries": dict(cfg),
    }
    H.write_json(os.path.join(out_dir, "model_meta.json"), meta)
    reloaded, model_load_s = H.reload_model(model_path)
    res["model_path"] = os.path.relpath(model_path, ".")
    res["sample"] = H.to_jsonable(sample(prep, reloaded, predict_fn))
    res["complexity"] = H.finite_metrics(
        {
            "train_time_s": train_time,
            "test_predict_s": test_predict_s,
            # one forecast request: one series, every step of the horizon
            "latency_ms_per_row": float(np.median(singles)) * 1000 if singles else float("nan"),
            "batch_latency_ms_per_row": test_predict_s * 1000 / max(1, len(test_jobs)),
            "model_size_mb": os.path.getsize(model_path) / (1024 * 1024),
            "load_s": model_load_s,
            "data_load_s": load_s,
        }
    )

    run.stage("plots", stages, None if spec["plots"] else "skipped")
    if spec["plots"]:
        res["plots"] = plot(run, out_dir, prep, test_jobs, f_te, base_te)
    res["complexity"]["total_s"] = time.perf_counter() - run.t0


def search(run, spec):
    res, conf = run.result, spec["search"]
    run.stage("load", H.SEARCH_STAGES)
    prep = load(run, spec)
    cfg, horizon = prep.cfg, prep.cfg["horizon"]
    res["features"] = {"numeric": prep.numeric, "categorical": prep.categorical, "text": []}
    res["details"] = dict(prep.details)

    run.stage("split", H.SEARCH_STAGES)
    ends, valid_jobs, test_jobs = layout(prep)
    res["rows"] = {"train": int(sum(e + 1 for e in ends)), "valid": len(valid_jobs) * horizon, "test": len(test_jobs) * horizon}
    metric = H.search_metric(run, spec, FORECAST_METRICS, "rmse")
    # rolling origins inside the training part: each fold forecasts the horizon after its cut
    folds = []
    for f in range(conf["cv_folds"]):
        cuts = [e - (conf["cv_folds"] - 1 - f) * horizon - horizon for e in ends]
        if all(c - cfg["needed"] >= horizon + 5 for c in cuts):
            folds.append(cuts)
    if not folds:
        folds = [[e - horizon for e in ends]]
        run.warn("The series are short: the search backtests one forecast origin.")
    states = H.candidate_states(run, spec, conf)
    rows_cache = {}

    def rows(strategy, fold):
        key = (strategy, fold)
        if key not in rows_cache:
            rng = np.random.default_rng(spec["seed"] + fold)
            c = dict(cfg, strategy=strategy, numeric=feature_columns(dict(cfg, strategy=strategy)))
            rows_cache[key] = (training_rows(prep.series, folds[fold], c, strategy, rng, cap=conf["sample_rows"]), c)
        return rows_cache[key]

    def score(state, trial_params, report=None):
        strategy = state.get("strategy") or cfg["strategy"]
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be direct or recursive, not {strategy!r}")
        actual_all, pred_all = [], []
        for fold in range(len(folds)):
            (X, y), c = rows(strategy, fold)
            pipe = H.candidate_pipeline(_with_columns(prep, c), state, trial_params)
            pipe.fit(X, y)
            jobs = [(s, cut) for s, cut in zip(prep.series, folds[fold])]
            pred_all.append(forecast(pipe, None, jobs, c, horizon))
            actual_all.append(actual(jobs, horizon))
            if report is not None and fold < len(folds) - 1:
                # the backtest so far, for the search's pruner
                report(fold, forecast_metrics(np.concatenate(actual_all), np.concatenate(pred_all))[metric])
        return forecast_metrics(np.concatenate(actual_all), np.concatenate(pred_all))[metric]

    H.run_search(run, conf, states, metric, score)
    res["complexity"] = {"total_s": time.perf_counter() - run.t0}


def _with_columns(prep, cfg):
    """The prepared data seen with another strategy's feature columns (direct adds `step`)."""
    view = SeriesData()
    view.__dict__.update(prep.__dict__)
    view.numeric = list(cfg["numeric"])
    return view


# --------------------------------------------------------------------------- serving and samples


def sample(prep, model, predict_fn):
    """The end of up to two series as a request, answered as the server will answer it."""
    cfg = prep.cfg
    served = Served({"timeseries": cfg}, model, predict_fn)
    history = []
    for s in prep.series[:2]:
        n = min(len(s.y), cfg["needed"] + 2 * cfg["horizon"])
        for i in range(len(s.y) - n, len(s.y)):
            row = {cfg["time_column"]: time_text(s.times[i], cfg), cfg["target"]: float(s.y[i])}
            if cfg["id_column"]:
                row[cfg["id_column"]] = s.key
            for j, c in enumerate(cfg["exogenous"]):
                row[c] = float(s.exog[i, j])
            history.append(row)
    request = {"history": history, "horizon": cfg["horizon"]}
    return {"rows": history[-3:], "request": request, "predictions": served.predict(request)}


class Served:
    """The model server's side: a history in, the next values of each series out."""

    def __init__(self, meta, model, predict_fn, out_dir=None):
        self.cfg = dict(meta["timeseries"])
        self.model, self.predict_fn = model, predict_fn

    def health(self):
        c = self.cfg
        keys = [c["time_column"]] + ([c["id_column"]] if c["id_column"] else []) + [c["target"]] + list(c["exogenous"])
        return {
            "input": 'POST /predict {"history": [{' + ", ".join(f'"{k}": ...' for k in keys) + '}, ...], "horizon": n}',
            "horizon": c["horizon"],
            "frequency": c["frequency"] or c["step"],
            "min_history": c["needed"],
        }

    def predict(self, payload):
        import pandas as pd

        c = self.cfg
        if not isinstance(payload, dict):
            raise C.RequestError('expected {"history": [{...}, ...], "horizon": n}')
        rows = payload.get("history", payload.get("rows"))
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise C.RequestError('"history" must be a non-empty list of row objects')
        steps = payload.get("horizon", c["horizon"])
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= c["horizon"]:
            raise C.RequestError(f'"horizon" must be a whole number from 1 to {c["horizon"]}, the horizon the model was trained for')
        needed = [c["time_column"], c["target"]] + ([c["id_column"]] if c["id_column"] else []) + list(c["exogenous"])
        for i, r in enumerate(rows):
            lacking = [k for k in needed if k not in r]
            if lacking:
                raise C.RequestError(f"history row {i} lacks {', '.join(lacking)}")
        df = pd.DataFrame(rows)
        if c["kind"] == "number":
            df[c["time_column"]] = pd.to_numeric(df[c["time_column"]], errors="coerce")
        cfg = dict(c)
        try:
            series, bad = build_series(df, cfg)
        except SeriesError as e:
            raise C.RequestError(str(e)) from None
        if bad:
            raise C.RequestError(f"{bad} history row(s) have no readable '{c['time_column']}'")
        for s in series:
            if len(s.y) < c["needed"]:
                raise C.RequestError(f"series {s.key or ''} has {len(s.y)} points; at least {c['needed']} are needed".replace("series  has", "the series has"))
        jobs = [(s, len(s.y) - 1) for s in series]
        values = forecast(self.model, self.predict_fn, jobs, cfg, steps)
        out = []
        for (s, t), row in zip(jobs, values):
            for when, v in zip(future_times(s.times[t], steps, cfg), row):
                item = {c["id_column"]: s.key} if c["id_column"] else {}
                item[c["time_column"]] = time_text(when, cfg)
                item[c["target"]] = float(v)
                out.append(item)
        return out


# --------------------------------------------------------------------------- plots


def plot(run, out_dir, prep, jobs, pred, base):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        run.warn("matplotlib is not installed; no plots were made (Debian: python3-matplotlib; pip install matplotlib).")
        return []
    cfg, horizon = prep.cfg, prep.cfg["horizon"]
    shown = prep.series[:3]
    try:
        fig, axes = plt.subplots(len(shown), 1, figsize=(9, 3.2 * len(shown)), squeeze=False)
        for ax, s in zip(axes[:, 0], shown):
            n = len(s.y)
            start = max(0, n - (cfg["test_blocks"] + 3) * horizon - cfg["needed"])
            x = np.arange(n) if cfg["kind"] == "number" else np.asarray(s.times)
            ax.plot(x[start:], s.y[start:], color="black", linewidth=1, label="actual")
            first = True
            for (js, t), f, b in zip(jobs, pred, base):
                if js is not s:
                    continue
                xs = x[t + 1 : t + 1 + horizon]
                ax.plot(xs, f, color="tab:blue", linewidth=1.5, label="forecast" if first else None)
                ax.plot(xs, b, color="tab:orange", linewidth=1, linestyle="--", label="seasonal naive" if first else None)
                first = False
            ax.set_title(f"{cfg['target']}{'' if s.key is None else f' — {s.key}'}: test forecasts ({horizon} steps ahead)")
            ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        plot_dir = os.path.join(out_dir, "plots")
        os.makedirs(plot_dir, exist_ok=True)
        path = os.path.join(plot_dir, "forecast.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return [os.path.relpath(path, ".")]
    except Exception as e:  # noqa: BLE001 - a plot is never worth failing a run
        run.warn(f"The forecast plot could not be drawn: {H.describe_exception(e, 300)}")
        plt.close("all")
        return []
