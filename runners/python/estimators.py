"""XGBoost as the harness runs it: the classes plans name as xgboost.XGBClassifier and xgboost.XGBRegressor.

xgboost 1.7's classifier refuses labels other than 0..n-1 ("Y"/"N", "Good"/"Bad"), knows no
class_weight, and takes every core. These subclasses label-encode at fit and decode at predict
(classes_ holds the original labels, predict_proba's columns follow it), turn class_weight into
sample weights, and default to the histogram method on a few threads. They stay xgboost estimators,
so get_params, clone and pickling work; the model server imports this module from the workspace.
"""

import os

import numpy as np
import xgboost
from xgboost.sklearn import XGBClassifier as _XGBClassifier
from xgboost.sklearn import XGBRegressor as _XGBRegressor


def default_jobs():
    # a shared runner: a few threads, never more than the cores there are
    return max(1, min(4, os.cpu_count() or 1))


def _defaults(kwargs):
    if kwargs.get("n_jobs") is None:
        kwargs["n_jobs"] = default_jobs()
    if kwargs.get("tree_method") is None:
        kwargs["tree_method"] = "hist"
    return kwargs


class XGBClassifier(_XGBClassifier):
    """xgboost.XGBClassifier for any labels, with class_weight (None, "balanced" or {label: weight})."""

    # random_state is named so that code asking the signature for it (the solution template) seeds it
    def __init__(self, *, class_weight=None, random_state=None, **kwargs):
        super().__init__(random_state=random_state, **_defaults(kwargs))
        self.class_weight = class_weight

    def get_xgb_params(self):
        # the booster's own parameters: class_weight is this wrapper's, applied at fit
        params = super().get_xgb_params()
        params.pop("class_weight", None)
        return params

    def fit(self, X, y, *, sample_weight=None, **kwargs):
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.class_weight import compute_sample_weight

        encoder = LabelEncoder()
        codes = encoder.fit_transform(np.asarray(y).ravel())
        if self.class_weight is not None:
            weights = self.class_weight
            if isinstance(weights, dict):
                # keys are the original labels; the encoded targets are what the weights index
                weights = {int(code): weights[label] for code, label in enumerate(encoder.classes_) if label in weights}
            balanced = compute_sample_weight(weights, codes)
            sample_weight = balanced if sample_weight is None else np.asarray(sample_weight, dtype=float) * balanced
        if kwargs.get("eval_set"):
            # validation labels are spelled like the training ones
            kwargs["eval_set"] = [(Xe, encoder.transform(np.asarray(ye).ravel())) for Xe, ye in kwargs["eval_set"]]
        super().fit(X, codes, sample_weight=sample_weight, **kwargs)
        self.classes_ = encoder.classes_
        return self

    def predict(self, X, **kwargs):
        codes = super().predict(X, **kwargs)
        if kwargs.get("output_margin"):
            return codes
        return self.classes_[np.asarray(codes, dtype=int)]


class XGBRegressor(_XGBRegressor):
    """xgboost.XGBRegressor with the histogram method and a few threads unless told otherwise."""

    def __init__(self, *, random_state=None, **kwargs):
        super().__init__(random_state=random_state, **_defaults(kwargs))


def install():
    """Points xgboost.XGBClassifier and xgboost.XGBRegressor at these classes, so a solution that
    imports them from xgboost trains (and pickles) these."""
    for name, cls in (("XGBClassifier", XGBClassifier), ("XGBRegressor", XGBRegressor)):
        setattr(xgboost, name, cls)
