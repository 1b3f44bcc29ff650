"""Verification metrics on scored pairs (positive class = same)."""

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from siamese_mnist.threshold import predict_same


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
    tpr = recall
    tnr = tn / (tn + fp) if tn + fp else 0.0
    return {
        "accuracy": (tp + tn) / len(is_same),
        "balanced_accuracy": (tpr + tnr) / 2,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc,
        "pr_auc": pr_auc,
        "average_precision": ap,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }
