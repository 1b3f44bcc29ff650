import numpy as np
import pytest

from siamese_mnist.errors import UserError
from siamese_mnist.threshold import choose_threshold, predict_same, sweep


def test_sweep_counts_and_midpoints():
    result = sweep([0.4, 0.1, 0.3, 0.3], [0, 1, 1, 0])
    assert result.thresholds.tolist() == [0.1, 0.2, 0.35, np.nextafter(0.4, 1)]
    assert result.tp.tolist() == [0, 1, 2, 2]
    assert result.fp.tolist() == [0, 0, 1, 2]


def test_separable_scores_split_in_the_gap():
    choice = choose_threshold([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], "pr-breakeven")
    assert choice.threshold == pytest.approx(0.5)
    assert choice.accuracy == 1.0


# distances sorted: 0.1(S) 0.2(D) 0.3(S) 0.4(D) 0.5(S) 0.6(D); three same, three different.
# Predicting the first k as same gives (tp, fp) = (0,0) (1,0) (1,1) (2,1) (2,2) (3,2) (3,3).
HAND_DISTANCES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
HAND_SAME = [1, 0, 1, 0, 1, 0]


def test_pr_breakeven_by_hand():
    # k=3: precision 2/3, recall 2/3 -> breakeven; threshold halfway between 0.3 and 0.4.
    assert choose_threshold(HAND_DISTANCES, HAND_SAME, "pr-breakeven").threshold == pytest.approx(0.35)


def test_roc_youden_by_hand():
    # TPR - FPR: k=1 -> 1/3, k=3 -> 1/3, k=5 -> 1/3; accuracy ties too (4/6), so the smallest wins.
    assert choose_threshold(HAND_DISTANCES, HAND_SAME, "roc-youden").threshold == pytest.approx(0.15)


def test_max_accuracy_by_hand():
    choice = choose_threshold([0.1, 0.2, 0.3, 0.4, 0.5], [1, 1, 0, 1, 0], "max-accuracy")
    # k=2 -> 4/5, k=4 -> 4/5: the smaller threshold 0.25 wins the tie.
    assert choice.threshold == pytest.approx(0.25)
    assert choice.accuracy == pytest.approx(0.8)


def test_eer_by_hand():
    # FPR equals FNR (1/3) at k=3.
    assert choose_threshold(HAND_DISTANCES, HAND_SAME, "eer").threshold == pytest.approx(0.35)


def test_decision_rule_strictly_below():
    assert predict_same([0.5, 0.49, 0.51], 0.5).tolist() == [False, True, False]


def test_unknown_method_rejected():
    with pytest.raises(UserError, match="threshold method 'median' is unknown"):
        choose_threshold([0.1, 0.2], [1, 0], "median")
