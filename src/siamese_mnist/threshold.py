"""Choose the distance threshold from validation pairs.

Decision rule, used everywhere in this package: ``distance < threshold``
means the pair is predicted SAME (the positive class).
"""

from dataclasses import dataclass

import numpy as np

from siamese_mnist.errors import UserError

METHODS = ("pr-breakeven", "roc-youden", "max-accuracy", "eer")


@dataclass(frozen=True)
class Sweep:
    """Confusion counts at every candidate threshold, in increasing threshold order.

    ``thresholds[i]`` predicts SAME for exactly the pairs counted in ``tp[i]``
    and ``fp[i]``. The first threshold predicts nothing SAME, the last predicts
    everything SAME.
    """

    thresholds: np.ndarray  # (m,)
    tp: np.ndarray  # (m,) same pairs predicted same
    fp: np.ndarray  # (m,) different pairs predicted same
    positives: int
    negatives: int

    @property
    def recall(self):
        return self.tp / max(self.positives, 1)

    @property
    def fpr(self):
        return self.fp / max(self.negatives, 1)

    @property
    def precision(self):
        predicted = self.tp + self.fp
        # With nothing predicted SAME, precision is taken as 1 (no false positives).
        return np.divide(self.tp, predicted, out=np.ones(len(predicted)), where=predicted > 0)

    @property
    def accuracy(self):
        return (self.tp + self.negatives - self.fp) / (self.positives + self.negatives)


def sweep(distances, is_same):
    """Count true and false positives for every threshold that changes a decision.

    Candidate thresholds sit halfway between consecutive distinct distances,
    plus one at the smallest distance (nothing is SAME) and one just above
    the largest (everything is SAME).
    """
    distances = np.asarray(distances, dtype=np.float64)
    is_same = np.asarray(is_same).astype(np.int64)
    if distances.shape != is_same.shape or distances.ndim != 1 or len(distances) == 0:
        raise ValueError("distances and is_same must be 1-D arrays of the same non-zero length")
    order = np.argsort(distances, kind="stable")
    ordered, labels = distances[order], is_same[order]
    last_of_value = np.r_[ordered[1:] != ordered[:-1], True]
    distinct = ordered[last_of_value]
    tp = np.r_[0, np.cumsum(labels)[last_of_value]]
    fp = np.r_[0, np.cumsum(1 - labels)[last_of_value]]
    thresholds = np.r_[distinct[0], (distinct[:-1] + distinct[1:]) / 2,
                       np.nextafter(distinct[-1], np.inf)]
    return Sweep(thresholds, tp, fp, int(labels.sum()), int(len(labels) - labels.sum()))


@dataclass(frozen=True)
class ThresholdChoice:
    method: str
    threshold: float
    accuracy: float  # on the pairs the threshold was chosen from


def choose_threshold(distances, is_same, method="pr-breakeven"):
    """Pick a threshold on validation pairs.

    Parameters
    ----------
    distances : array, shape (n,)
    is_same : array of 0/1, shape (n,)
    method : {"pr-breakeven", "roc-youden", "max-accuracy", "eer"}
        - ``pr-breakeven``: precision closest to recall (positive class = same).
        - ``roc-youden``: maximum TPR - FPR.
        - ``max-accuracy``: maximum accuracy.
        - ``eer``: false accept rate closest to false reject rate.
        Ties go to the candidate with higher accuracy, then the smaller threshold.

    Returns
    -------
    ThresholdChoice

    Examples
    --------
    >>> choose_threshold([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]).threshold
    0.5
    """
    counts = sweep(distances, is_same)
    if method == "pr-breakeven":
        cost = np.abs(counts.precision - counts.recall)
    elif method == "roc-youden":
        cost = -(counts.recall - counts.fpr)
    elif method == "max-accuracy":
        cost = -counts.accuracy
    elif method == "eer":
        cost = np.abs(counts.fpr - (1 - counts.recall))
    else:
        raise UserError(f"threshold method {method!r} is unknown; use one of {', '.join(METHODS)}")
    # lexsort sorts by the last key first: lowest cost, then highest accuracy, then index.
    best = np.lexsort((np.arange(len(cost)), -counts.accuracy, np.round(cost, 12)))[0]
    return ThresholdChoice(method, float(counts.thresholds[best]), float(counts.accuracy[best]))


def predict_same(distances, threshold):
    """Apply the decision rule: SAME when the distance is below the threshold."""
    return np.asarray(distances) < threshold
