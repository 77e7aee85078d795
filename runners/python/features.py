"""Feature helpers the harness puts inside a model's pipeline: dates become calendar features.

The fitted transformers are pickled with the model, so this module must stay importable from the
workspace (the model server runs with that folder on sys.path).
"""

import math
import re

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

# A canonical date or timestamp: the rule the host's profile uses (graphs/automl/data/profile.ts,
# DATE_LIKE), anchored, with fractional seconds and a Z/offset suffix allowed.
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
# The same, capturing the wall-clock part: an offset is dropped so the hour is the local one the data states.
_ISO_LOCAL = r"^(\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)(?:Z|[+-]\d{2}:?\d{2})$"

_DAY_NS = 86_400 * 10**9


def _mixed_formats():
    """pandas 2 infers one format from the first cell unless told the cells may differ."""
    import pandas as pd

    return {"format": "mixed"} if int(pd.__version__.split(".")[0]) >= 2 else {}


_MIXED = None


def looks_like_dates(series):
    """True when every filled cell of a text column is an ISO date or timestamp (and there is one)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return False
    filled = series.dropna()
    if len(filled) == 0:
        return False
    values = filled.astype(str).str.strip()
    return bool(values.str.match(ISO_DATE).all())


def as_date_strings(series):
    """Cells of a date column as the model sees them: trimmed strings, missing stays missing."""
    import pandas as pd

    def conv(v):
        if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NaT:
            return np.nan
        text = str(v).strip()
        return text if text else np.nan

    return series.astype(object).map(conv)


def parse_dates(values):
    """Timestamps (naive, wall-clock) for any iterable of cells; unreadable or missing cells are NaT.
    ISO strings are read first; other common spellings ("03/04/2024", "4 Mar 2024") also parse, as a
    client of the model server may send them."""
    import pandas as pd

    s = as_date_strings(pd.Series(list(values), dtype=object)).reset_index(drop=True)
    local = s.str.replace(_ISO_LOCAL, r"\1", regex=True)
    global _MIXED
    if _MIXED is None:
        _MIXED = _mixed_formats()
    try:
        parsed = pd.to_datetime(local, errors="coerce", **_MIXED)
    except (ValueError, TypeError, OverflowError):
        parsed = None
    if parsed is not None and pd.api.types.is_datetime64_any_dtype(parsed.dtype):
        return parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed
    # mixed offsets, or aware and naive cells together: one cell at a time
    return pd.Series([_one_date(v) for v in local], dtype="datetime64[ns]")


def _one_date(v):
    import pandas as pd

    if not isinstance(v, str):
        return pd.NaT
    try:
        t = pd.Timestamp(pd.to_datetime(v))
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return t.tz_localize(None) if t.tzinfo is not None else t


class DateFeatures(BaseEstimator, TransformerMixin):
    """Calendar features for date columns: year, month, day, day of week, day of year, weekend,
    quarter, hour and minute (when the column holds times), sine/cosine of the day of year and of the
    week, and days since the earliest training date (a trend). Missing dates give NaN features, which
    the pipeline's imputer fills."""

    def fit(self, X, y=None):
        self._fit_parsed(self._parsed(X))
        return self

    def fit_transform(self, X, y=None, **fit_params):
        # one parse of the training rows serves both steps
        parsed = self._parsed(X)
        self._fit_parsed(parsed)
        return self._stack(parsed, len(X))

    def transform(self, X):
        frame = self._frame(X)
        if frame.shape[1] != len(self.columns_):
            raise ValueError(f"DateFeatures was fitted on {len(self.columns_)} date column(s), got {frame.shape[1]}")
        return self._stack([parse_dates(frame.iloc[:, i]) for i in range(frame.shape[1])], len(frame))

    def _parsed(self, X):
        frame = self._frame(X)
        self.columns_ = list(frame.columns)
        return [parse_dates(frame[c]) for c in self.columns_]

    def _fit_parsed(self, parsed):
        self.start_ns_ = {}
        self.has_time_ = {}
        for c, t in zip(self.columns_, parsed):
            ok = t.notna()
            self.start_ns_[c] = int(t[ok].min().value) if ok.any() else None
            self.has_time_[c] = bool(ok.any() and ((t[ok].dt.hour != 0) | (t[ok].dt.minute != 0)).any())

    def _stack(self, parsed, rows):
        if not parsed:
            return np.zeros((rows, 0))
        return np.column_stack([self._calendar(t, c) for t, c in zip(parsed, self.columns_)])

    def _calendar(self, t, column):
        ok = t.notna().to_numpy()
        dt = t.dt

        def num(values):
            out = np.asarray(values, dtype=float)
            out[~ok] = np.nan
            return out

        dow = num(dt.dayofweek)
        doy = num(dt.dayofyear)
        cols = [num(dt.year), num(dt.month), num(dt.day), dow, doy, num(dow >= 5), num(dt.quarter)]
        if self.has_time_[column]:
            cols += [num(dt.hour), num(dt.minute)]
        cols += [np.sin(2 * np.pi * (doy - 1) / 365.25), np.cos(2 * np.pi * (doy - 1) / 365.25)]
        cols += [np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)]
        start = self.start_ns_[column]
        if start is None:
            trend = np.full(len(t), np.nan)
        else:
            trend = (t.astype("int64").to_numpy(dtype=float) - start) / _DAY_NS
            trend[~ok] = np.nan
        cols.append(trend)
        return np.column_stack(cols)

    def get_feature_names_out(self, input_features=None):
        names = []
        for c in self.columns_:
            parts = ["year", "month", "day", "dayofweek", "dayofyear", "weekend", "quarter"]
            if self.has_time_[c]:
                parts += ["hour", "minute"]
            parts += ["dayofyear_sin", "dayofyear_cos", "dayofweek_sin", "dayofweek_cos", "days_since_start"]
            names += [f"{c}__{p}" for p in parts]
        return np.asarray(names, dtype=object)

    @staticmethod
    def _frame(X):
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            return X
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        return pd.DataFrame(arr)
