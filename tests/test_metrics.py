import numpy as np
import pytest

from siamese_mnist.metrics import (
    accuracy_at, equal_error_rate, error_examples, pair_metrics, pair_type_accuracy,
    summary_lines, threshold_methods_table, worst_errors, worst_pair_types,
)
from siamese_mnist.pairs import PairSet, build_pair_set, type_counts
from siamese_mnist.threshold import METHODS

# Sorted: 0.1(S) 0.2(D) 0.3(S) 0.4(D) 0.5(S) 0.6(D). The known choices on these scores:
# pr-breakeven and eer 0.35, roc-youden and max-accuracy 0.15 (three-way tie, smallest wins).
VAL_DISTANCES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
VAL_SAME = [1, 0, 1, 0, 1, 0]
# At 0.35 every test pair is right; at 0.15 only 0.12 is called same, so two of four are right.
TEST_DISTANCES = [0.12, 0.3, 0.32, 0.5]
TEST_SAME = [1, 1, 1, 0]


def test_pair_metrics_by_hand():
    # Predicted same: 0.1 (S), 0.2 (D), 0.3 (S) -> tp 2, fp 1, fn 1, tn 2.
    result = pair_metrics(VAL_DISTANCES, VAL_SAME, 0.35)
    assert result["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 2}
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)


def test_accuracy_at_threshold():
    assert accuracy_at(TEST_DISTANCES, TEST_SAME, 0.35) == 1.0
    assert accuracy_at(TEST_DISTANCES, TEST_SAME, 0.15) == 0.5


def test_equal_error_rate_by_hand():
    # At k=3 both the false accept and the false reject rate are 1/3.
    eer, threshold = equal_error_rate(VAL_DISTANCES, VAL_SAME)
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.35)


def test_equal_error_rate_separable():
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == (0.0, pytest.approx(0.5))


def test_threshold_methods_table_by_hand():
    table = threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES, TEST_SAME,
                                    "pr-breakeven")
    assert list(table) == list(METHODS)
    expected = {"pr-breakeven": 0.35, "roc-youden": 0.15, "max-accuracy": 0.15, "eer": 0.35}
    for method, threshold in expected.items():
        assert table[method]["threshold"] == pytest.approx(threshold), method
        assert table[method]["val_accuracy"] == pytest.approx(4 / 6), method
    assert table["pr-breakeven"]["test_accuracy"] == 1.0
    assert table["roc-youden"]["test_accuracy"] == 0.5
    assert table["max-accuracy"]["test_accuracy"] == 0.5
    assert table["eer"]["test_accuracy"] == 1.0
    assert [m for m, row in table.items() if row["in_use"]] == ["pr-breakeven"]


def test_threshold_methods_table_stored_threshold():
    table = threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES, TEST_SAME, "eer",
                                    in_use_threshold=0.31)
    assert table["eer"]["threshold"] == 0.31
    # 0.31 calls 0.1, 0.2, 0.3 same on validation (4 of 6 right) and 0.12, 0.3 on test (3 of 4).
    assert table["eer"]["val_accuracy"] == pytest.approx(4 / 6)
    assert table["eer"]["test_accuracy"] == 0.75
    assert table["pr-breakeven"]["threshold"] == pytest.approx(0.35)
    assert table["eer"]["in_use"] and not table["pr-breakeven"]["in_use"]


def test_threshold_methods_ignore_test_pairs():
    first = threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES, TEST_SAME, "eer")
    flipped = threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES, [0, 0, 0, 1], "eer")
    for method in METHODS:
        assert first[method]["threshold"] == flipped[method]["threshold"]


def test_pair_type_accuracy_by_hand():
    # Types: (0,0) one right one wrong; (1,1) right; (2,2) absent;
    # (0,1) one right, and (1,0) counts as (0,1) and is wrong; (0,2) right; (1,2) wrong.
    label_a = [0, 0, 1, 0, 1, 2, 1]
    label_b = [0, 0, 1, 1, 0, 0, 2]
    correct = [True, False, True, True, False, True, False]
    rows = pair_type_accuracy(label_a, label_b, correct, [0, 1, 2])
    assert [row["type"] for row in rows] == ["(0,0)", "(1,1)", "(2,2)", "(0,1)", "(0,2)", "(1,2)"]
    assert [row["pairs"] for row in rows] == [2, 1, 0, 2, 1, 1]
    assert [row["correct"] for row in rows] == [1, 1, 0, 1, 1, 0]
    assert [row["accuracy"] for row in rows] == [0.5, 1.0, None, 0.5, 1.0, 0.0]
    assert [row["is_same"] for row in rows] == [1, 1, 1, 0, 0, 0]


def test_pair_type_accuracy_all_55_types():
    labels = np.repeat(np.arange(10), 30)
    pairs = build_pair_set(labels, 1980, seed=3)
    correct = np.ones(len(pairs), dtype=bool)
    correct[0] = False  # a (0,0) pair
    rows = pair_type_accuracy(pairs.label_a, pairs.label_b, correct, range(10))
    assert len(rows) == 55
    assert sum(row["is_same"] for row in rows) == 10
    positive, negative = type_counts(pairs.label_a, pairs.label_b, range(10))
    assert [row["pairs"] for row in rows] == list(positive.values()) + list(negative.values())
    assert rows[0]["accuracy"] == pytest.approx(98 / 99)
    assert all(row["accuracy"] == 1.0 for row in rows[1:])


def test_worst_pair_types_order():
    rows = pair_type_accuracy([0, 0, 1, 0, 1, 2, 1], [0, 0, 1, 1, 0, 0, 2],
                              [True, False, True, True, False, True, False], [0, 1, 2])
    worst, tied = worst_pair_types(rows, 3)
    assert [row["type"] for row in worst] == ["(1,2)", "(0,0)", "(0,1)"]
    assert tied == 0


def test_worst_pair_types_counts_cut_ties():
    rows = pair_type_accuracy([0, 0, 1, 0, 1, 2, 1], [0, 0, 1, 1, 0, 0, 2],
                              [True, False, True, True, False, True, False], [0, 1, 2])
    worst, tied = worst_pair_types(rows, 2)
    assert [row["type"] for row in worst] == ["(1,2)", "(0,0)"]
    assert tied == 1  # (0,1) has the same accuracy, 0.5, as (0,0)


def test_worst_pair_types_skips_error_free_types():
    rows = pair_type_accuracy([0, 1, 0], [0, 1, 1], [True, True, True], [0, 1])
    assert worst_pair_types(rows) == ([], 0)


def test_worst_errors_by_hand():
    distances = [0.1, 0.2, 0.3, 0.9, 0.8, 0.05, 0.7]
    is_same = [0, 0, 1, 1, 1, 0, 0]
    false_same, false_different = worst_errors(distances, is_same, 0.5)
    assert false_same.tolist() == [5, 0, 1]  # different pairs below 0.5, closest first
    assert false_different.tolist() == [3, 4]  # same pairs above 0.5, farthest first
    false_same, _ = worst_errors(distances, is_same, 0.5, count=1)
    assert false_same.tolist() == [5]


def test_error_examples_entries():
    pairs = PairSet(np.array([10, 11, 12]), np.array([20, 21, 22]), np.array([3, 4, 7]),
                    np.array([5, 4, 7]))
    examples = error_examples(pairs, np.array([0.2, 0.9, 0.1]), 0.5)
    assert examples["false_same"] == [
        {"index_a": 10, "index_b": 20, "label_a": 3, "label_b": 5, "distance": 0.2}]
    assert examples["false_different"] == [
        {"index_a": 11, "index_b": 21, "label_a": 4, "label_b": 4, "distance": 0.9}]


def test_summary_lines_worst_types_and_methods():
    rows = pair_type_accuracy([0, 0, 1, 0, 1, 2, 1], [0, 0, 1, 1, 0, 0, 2],
                              [True, False, True, True, False, True, False], [0, 1, 2])
    metrics = {
        "threshold_methods": threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES,
                                                     TEST_SAME, "roc-youden"),
        "precision": 0.5, "recall": 0.25, "f1": 1 / 3, "roc_auc": 0.75, "average_precision": 0.6,
        "eer": 0.125, "pair_type_accuracy": rows,
    }
    lines = summary_lines(metrics, worst_count=2)
    assert lines[3].startswith("* roc-youden")
    assert "0.150000" in lines[3]
    assert "EER 0.1250" in lines[6]
    assert lines[7] == ("worst pair types: (1,2) 0.0000 (0/1), (0,0) 0.5000 (1/2), "
                        "and 1 more at 0.5000")


def test_summary_lines_without_errors():
    rows = pair_type_accuracy([0, 1, 0], [0, 1, 1], [True, True, True], [0, 1])
    metrics = {
        "threshold_methods": threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES,
                                                     TEST_SAME, "roc-youden"),
        "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "average_precision": 1.0,
        "eer": 0.0, "pair_type_accuracy": rows,
    }
    assert summary_lines(metrics)[7] == "worst pair types: none, every pair type is error-free"


def test_summary_lines_undefined_metrics():
    rows = pair_type_accuracy([0, 0], [0, 0], [True, False], [0, 1])
    metrics = {
        "threshold_methods": threshold_methods_table(VAL_DISTANCES, VAL_SAME, TEST_DISTANCES,
                                                     TEST_SAME, "roc-youden"),
        "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "roc_auc": float("nan"),
        "average_precision": None, "eer": float("nan"), "pair_type_accuracy": rows,
    }
    assert summary_lines(metrics)[6] == ("precision 1.0000, recall 0.5000, F1 0.6667, "
                                         "ROC AUC undefined, average precision undefined, "
                                         "EER undefined")
