"""A binary classifier's decision threshold: chosen on the validation rows, applied wherever the model
predicts (the harness's test metrics, held-out predictions and sample; the model server).

Only the validation split decides; the test split never does. The threshold is kept only when it does
better on the validation rows than the model's own predictions.
"""

import numpy as np

# how a threshold is chosen for each metric: the F-beta maximised when no goal is given
F_BETA = {"f1": 1.0, "precision": 0.5, "recall": 2.0}
# candidate thresholds: every distinct score, thinned to quantiles past this many
MAX_CANDIDATES = 512


def _counts(scores, is_pos):
    """(cut points, true positives, predicted positives) for predicting positive at score >= cut, one
    row per distinct score from the highest down."""
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], is_pos[order]
    tp = np.cumsum(p)
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each run of equal scores
    return s[last], tp[last], np.nonzero(last)[0] + 1


def _midpoints(cuts):
    """A threshold between each distinct score and the next lower one: the decision does not hinge
    on one validation row's exact score."""
    lower = np.r_[cuts[1:], cuts[-1] - 1e-6 if len(cuts) else 0.0]
    return np.clip((cuts + lower) / 2, 0.0, 1.0)


def choose(scores, is_pos, metric, goal=None):
    """(threshold, metric name, value at it) for positive-class scores on the validation rows, or None
    when no threshold meets the aim. f1: best F1. precision: the lowest threshold whose precision reaches
    `goal` (the most recall under it), else the best F0.5. recall: the highest threshold whose recall
    reaches `goal` (the most precision under it), else the best F2."""
    scores = np.asarray(scores, dtype=float)
    is_pos = np.asarray(is_pos, dtype=bool)
    n_pos = int(is_pos.sum())
    if n_pos == 0 or n_pos == len(is_pos) or not np.all(np.isfinite(scores)):
        return None
    cuts, tp, pred = _counts(scores, is_pos)
    thresholds = _midpoints(cuts)
    if len(cuts) > MAX_CANDIDATES:
        keep = np.unique(np.linspace(0, len(cuts) - 1, MAX_CANDIDATES).round().astype(int))
        thresholds, tp, pred = thresholds[keep], tp[keep], pred[keep]
    precision = tp / pred
    recall = tp / n_pos
    if metric == "precision" and goal is not None:
        ok = np.nonzero(precision >= goal)[0]
        if len(ok):
            i = ok[-1]  # cuts run from high to low: the last one is the lowest threshold
            return float(thresholds[i]), "precision", float(precision[i])
    if metric == "recall" and goal is not None:
        ok = np.nonzero(recall >= goal)[0]
        if len(ok):
            i = ok[0]
            return float(thresholds[i]), "recall", float(recall[i])
    beta = F_BETA.get(metric)
    if beta is None:
        return None
    b2 = beta * beta
    f = np.where(tp > 0, (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-12), 0.0)
    best = f.max()
    # among equally good thresholds, the one nearest the usual 0.5
    tied = np.nonzero(f >= best - 1e-12)[0]
    i = tied[np.argmin(np.abs(thresholds[tied] - 0.5))]
    name = "f1" if metric == "f1" else f"f{beta:g}"
    return float(thresholds[i]), name, float(best)


def measure(name, y_is_pos, pred_is_pos):
    """A metric chosen by `choose` (precision, recall or an F-beta) for given positive predictions."""
    y_is_pos = np.asarray(y_is_pos, dtype=bool)
    pred_is_pos = np.asarray(pred_is_pos, dtype=bool)
    tp = float(np.sum(y_is_pos & pred_is_pos))
    predicted, actual = float(pred_is_pos.sum()), float(y_is_pos.sum())
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    if name == "precision":
        return precision
    if name == "recall":
        return recall
    beta = float(name[1:])
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall) if tp else 0.0


def positive_column(model, positive):
    """(column of the positive class in predict_proba, that class, the other class) as the model
    spells them, or None when the model is not a binary classifier with probabilities."""
    classes = list(getattr(model, "classes_", None) if getattr(model, "classes_", None) is not None else [])
    if len(classes) != 2 or not hasattr(model, "predict_proba"):
        return None
    for i, c in enumerate(classes):
        if same_class(c, positive):
            return i, c, classes[1 - i]
    return None


def predict(model, X, value, positive):
    """Labels from predict_proba: the positive class where its probability reaches `value`."""
    found = positive_column(model, positive)
    if found is None:
        raise ValueError("the model has no predict_proba for two classes, which its decision threshold needs")
    col, pos, neg = found
    proba = np.asarray(model.predict_proba(X), dtype=float)
    labels = np.asarray([pos, neg], dtype=object if isinstance(pos, str) else None)
    return labels[np.where(proba[:, col] >= value, 0, 1)]


def same_class(a, b):
    """A class as the model holds it (numpy scalar, str) against one read back from JSON."""
    if hasattr(a, "item"):
        a = a.item()
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return str(a) == str(b)
