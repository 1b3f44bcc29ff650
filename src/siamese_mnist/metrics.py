"""Verification metrics on scored pairs (positive class = same)."""

import math
from itertools import combinations

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from siamese_mnist.threshold import METHODS, choose_threshold, predict_same, sweep


def pair_metrics(distances, is_same, threshold):
    """Return accuracy, precision, recall, F1, ROC AUC, PR AUC and the confusion counts.

    scikit-learn expects a larger score for the positive class, so the curves
    are computed on the negated distances.
    """
    is_same = np.asarray(is_same).astype(bool)
    predicted = predict_same(distances, threshold)
    tp = int(np.sum(predicted & is_same))
    fp = int(np.sum(predicted & ~is_same))
    fn = int(np.sum(~predicted & is_same))
    tn = int(np.sum(~predicted & ~is_same))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    scores = -np.asarray(distances)
    both_classes = 0 < is_same.sum() < len(is_same)
    if both_classes:
        curve_precision, curve_recall, _ = precision_recall_curve(is_same, scores)
        pr_auc = float(auc(curve_recall, curve_precision))
        roc = float(roc_auc_score(is_same, scores))
        ap = float(average_precision_score(is_same, scores))
    else:
        pr_auc = roc = ap = float("nan")
    # Balanced accuracy needs both classes: with one missing, it is undefined (NaN).
    balanced = (tp / (tp + fn) + tn / (tn + fp)) / 2 if both_classes else float("nan")
    return {
        "accuracy": (tp + tn) / len(is_same),
        "balanced_accuracy": balanced,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc,
        "pr_auc": pr_auc,
        "average_precision": ap,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def accuracy_at(distances, is_same, threshold):
    """Return the fraction of pairs that the decision rule gets right at `threshold`."""
    is_same = np.asarray(is_same).astype(bool)
    return float(np.mean(predict_same(distances, threshold) == is_same))


def equal_error_rate(distances, is_same):
    """Return the equal error rate and the threshold where it occurs.

    The false accept rate counts different pairs predicted same, the false
    reject rate same pairs predicted different. On a finite pair set the two
    rarely meet exactly, so the rate is their mean at the candidate threshold
    where they are closest.

    Returns
    -------
    eer : float
    threshold : float

    Examples
    --------
    >>> equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    (0.0, 0.5)
    """
    counts = sweep(distances, is_same)
    if counts.positives == 0 or counts.negatives == 0:
        # One of the two error rates has no pairs to count, so there is no crossing.
        return float("nan"), float("nan")
    false_accept = counts.fpr
    false_reject = 1 - counts.recall
    best = int(np.argmin(np.round(np.abs(false_accept - false_reject), 12)))
    return float((false_accept[best] + false_reject[best]) / 2), float(counts.thresholds[best])


def threshold_methods_table(val_distances, val_is_same, test_distances, test_is_same, in_use,
                            in_use_threshold=None):
    """Choose a threshold with every method on the validation pairs and score it on both splits.

    Parameters
    ----------
    val_distances, val_is_same : arrays, shape (n_val,)
        The pairs every threshold is chosen on.
    test_distances, test_is_same : arrays, shape (n_test,)
        The pairs each threshold is then scored on; they never influence the choice.
    in_use : str
        The method whose threshold the run applies.
    in_use_threshold : float or None
        The threshold the run applies for `in_use`, when it was stored earlier
        (the checkpoint's); by default the one chosen here.

    Returns
    -------
    dict
        ``{method: {"threshold", "val_accuracy", "test_accuracy", "in_use"}}``
        for every method in `siamese_mnist.threshold.METHODS`, in that order.
    """
    table = {}
    for method in METHODS:
        threshold = choose_threshold(val_distances, val_is_same, method).threshold
        if method == in_use and in_use_threshold is not None:
            threshold = float(in_use_threshold)
        table[method] = {
            "threshold": threshold,
            "val_accuracy": accuracy_at(val_distances, val_is_same, threshold),
            "test_accuracy": accuracy_at(test_distances, test_is_same, threshold),
            "in_use": method == in_use,
        }
    return table


def pair_type_accuracy(label_a, label_b, correct, classes):
    """Return the accuracy of each pair type, in the order of the count table.

    Parameters
    ----------
    label_a, label_b : arrays of int, shape (n,)
        Digits of the two images of each pair; the order within a pair does not matter.
    correct : array of bool, shape (n,)
        Whether the pair was classified correctly.
    classes : sequence of int
        All classes; K classes give K positive and K*(K-1)/2 negative types.

    Returns
    -------
    list of dict
        One entry per type with ``type`` (such as ``"(3,5)"``), ``label_a`` <=
        ``label_b``, ``is_same``, ``pairs``, ``correct`` and ``accuracy``
        (None for a type without pairs). Positive types come first.

    Examples
    --------
    >>> rows = pair_type_accuracy([0, 1, 1], [0, 0, 1], [True, False, True], [0, 1])
    >>> [(row["type"], row["accuracy"]) for row in rows]
    [('(0,0)', 1.0), ('(1,1)', 1.0), ('(0,1)', 0.0)]
    """
    classes = [int(c) for c in classes]
    low = np.minimum(label_a, label_b)
    high = np.maximum(label_a, label_b)
    correct = np.asarray(correct).astype(bool)
    types = [(c, c) for c in classes] + list(combinations(classes, 2))
    rows = []
    for a, b in types:
        members = (low == a) & (high == b)
        pairs = int(members.sum())
        right = int(correct[members].sum())
        rows.append({
            "type": f"({a},{b})", "label_a": a, "label_b": b, "is_same": int(a == b),
            "pairs": pairs, "correct": right, "accuracy": right / pairs if pairs else None,
        })
    return rows


def worst_pair_types(rows, count=5):
    """Return up to `count` types with errors, lowest accuracy first.

    Ties keep the count-table order, so a cut can fall inside a tie. The
    second value is the number of types left out that have the same accuracy
    as the last one shown.
    """
    with_errors = [row for row in rows if row["accuracy"] is not None and row["accuracy"] < 1]
    ordered = sorted(with_errors, key=lambda row: row["accuracy"])
    worst, rest = ordered[:count], ordered[count:]
    tied = sum(row["accuracy"] == worst[-1]["accuracy"] for row in rest) if worst else 0
    return worst, tied


def worst_errors(distances, is_same, threshold, count=8):
    """Return the positions of the most confident mistakes.

    Returns
    -------
    false_same : ndarray of int
        Different-digit pairs predicted same, smallest distance first.
    false_different : ndarray of int
        Same-digit pairs predicted different, largest distance first.
    """
    distances = np.asarray(distances)
    is_same = np.asarray(is_same).astype(bool)
    predicted = predict_same(distances, threshold)
    false_same = np.flatnonzero(predicted & ~is_same)
    false_different = np.flatnonzero(~predicted & is_same)
    false_same = false_same[np.argsort(distances[false_same], kind="stable")][:count]
    false_different = false_different[np.argsort(-distances[false_different], kind="stable")][:count]
    return false_same, false_different


def error_examples(pairs, distances, threshold, count=8):
    """List the worst false-same and false-different pairs for ``metrics.json``.

    Parameters
    ----------
    pairs : PairSet
        The scored pairs.
    distances : array, shape (len(pairs),)

    Returns
    -------
    dict
        ``{"false_same": [...], "false_different": [...]}``, each entry with
        ``index_a``, ``index_b``, ``label_a``, ``label_b`` and ``distance``,
        ordered as `worst_errors` orders them.
    """
    false_same, false_different = worst_errors(distances, pairs.is_same, threshold, count)

    def entries(positions):
        return [{"index_a": int(pairs.index_a[i]), "index_b": int(pairs.index_b[i]),
                 "label_a": int(pairs.label_a[i]), "label_b": int(pairs.label_b[i]),
                 "distance": float(distances[i])} for i in positions]

    return {"false_same": entries(false_same), "false_different": entries(false_different)}


def format_value(value, undefined="undefined"):
    """Format a metric with four decimals, or as the word `undefined` when it is missing or NaN.

    Metrics that need both classes are NaN (null in metrics.json) for pairs of one class.
    """
    if value is None or math.isnan(value):
        return undefined
    return f"{value:.4f}"


def summary_lines(metrics, worst_count=5):
    """Return the console lines that describe a scored run beyond its accuracy."""
    lines = ["threshold methods (chosen on validation pairs):",
             f"  {'method':<14} {'threshold':>10} {'val acc':>8} {'test acc':>8}"]
    for name, row in metrics["threshold_methods"].items():
        mark = "*" if row["in_use"] else " "
        lines.append(f"{mark} {name:<14} {row['threshold']:>10.6f} {row['val_accuracy']:>8.4f} "
                     f"{row['test_accuracy']:>8.4f}")
    names = (("precision", "precision"), ("recall", "recall"), ("F1", "f1"), ("ROC AUC", "roc_auc"),
             ("average precision", "average_precision"), ("EER", "eer"))
    lines.append(", ".join(f"{label} {format_value(metrics[key])}" for label, key in names))
    worst, tied = worst_pair_types(metrics["pair_type_accuracy"], worst_count)
    listed = ", ".join(f"{row['type']} {row['accuracy']:.4f} ({row['correct']}/{row['pairs']})"
                       for row in worst)
    if tied:
        listed += f", and {tied} more at {worst[-1]['accuracy']:.4f}"
    lines.append(f"worst pair types: {listed or 'none, every pair type is error-free'}")
    return lines
