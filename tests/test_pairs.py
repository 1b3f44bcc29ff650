from itertools import combinations

import numpy as np
import pytest

from siamese_mnist.errors import UserError
from siamese_mnist.pairs import (
    build_pair_set, check_size, format_counts, pair_unit, read_pairs_csv, type_counts,
    write_pairs_csv,
)

MNIST_LIKE = np.repeat(np.arange(10), [98, 113, 103, 101, 98, 89, 96, 103, 97, 101])


def test_pair_unit_for_ten_classes():
    assert pair_unit(10) == 180
    assert pair_unit(3) == 6
    assert pair_unit(2) == 4


def test_default_size_counts_exact():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=0)
    positive, negative = type_counts(pairs.label_a, pairs.label_b, range(10))
    assert set(positive.values()) == {450}
    assert len(positive) == 10
    assert set(negative.values()) == {100}
    assert len(negative) == 45
    assert int(pairs.is_same.sum()) == 4500
    assert len(pairs) == 9000


def test_no_self_or_repeated_pairs():
    pairs = build_pair_set(MNIST_LIKE, 18000, seed=1)
    assert np.all(pairs.index_a != pairs.index_b)
    keys = {tuple(sorted(p)) for p in zip(pairs.index_a.tolist(), pairs.index_b.tolist())}
    assert len(keys) == 18000


def test_labels_match_indices():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=2)
    assert np.array_equal(pairs.label_a, MNIST_LIKE[pairs.index_a])
    assert np.array_equal(pairs.label_b, MNIST_LIKE[pairs.index_b])


def test_image_usage_even_within_class():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=3)
    uses = np.bincount(np.concatenate([pairs.index_a, pairs.index_b]), minlength=len(MNIST_LIKE))
    for digit in range(10):
        members = uses[MNIST_LIKE == digit]
        assert members.max() - members.min() <= 1, digit


def test_same_seed_same_pairs_other_seed_differs():
    first = build_pair_set(MNIST_LIKE, 9000, seed=7)
    second = build_pair_set(MNIST_LIKE, 9000, seed=7)
    third = build_pair_set(MNIST_LIKE, 9000, seed=8)
    assert np.array_equal(first.index_a, second.index_a)
    assert np.array_equal(first.index_b, second.index_b)
    assert not np.array_equal(first.index_a, third.index_a)


@pytest.mark.parametrize("size, nearest", [(9001, "9000 and 9180"), (100, "9000 and 9180"),
                                           (9100, "9000 and 9180"), (9359, "9180 and 9360")])
def test_invalid_test_size_names_nearest(size, nearest):
    with pytest.raises(UserError, match=f"size {size} is invalid.*nearest valid sizes are {nearest}"):
        check_size(size, 10, minimum=9000)


def test_too_many_pairs_for_class_rejected():
    labels = np.repeat(np.arange(3), 4)  # 6 distinct positive pairs per class
    build_pair_set(labels, 36, seed=0)  # 6 positives per class: every distinct pair
    with pytest.raises(UserError, match="too few for 7 distinct positive pairs"):
        build_pair_set(labels, 42, seed=0)


def test_dense_request_uses_every_distinct_pair():
    labels = np.repeat(np.arange(3), 4)
    pairs = build_pair_set(labels, 36, seed=5)
    keys = {tuple(sorted(p)) for p in zip(pairs.index_a.tolist(), pairs.index_b.tolist())}
    assert len(keys) == 36


def test_count_table_format():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=0)
    lines = format_counts(pairs.label_a, pairs.label_b, range(10)).splitlines()
    expected = [f"Positive ({d},{d}): 450" for d in range(10)] + ["Pos Total: 4500"]
    expected += [f"Negative ({a},{b}): 100" for a, b in combinations(range(10), 2)]
    expected += ["Neg Total: 4500", "Total: 9000"]
    assert lines == expected


def test_count_table_recounts_rows():
    table = format_counts(np.array([0, 1, 1]), np.array([0, 0, 1]), [0, 1])
    assert table == ("Positive (0,0): 1\nPositive (1,1): 1\nPos Total: 2\n"
                     "Negative (0,1): 1\nNeg Total: 1\nTotal: 3\n")


def test_csv_round_trip(tmp_path):
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=0)
    path = tmp_path / "pairs.csv"
    write_pairs_csv(path, pairs)
    assert path.read_text().splitlines()[0] == "index_a,index_b,label_a,label_b,is_same"
    loaded, is_same = read_pairs_csv(path)
    assert np.array_equal(loaded.index_a, pairs.index_a)
    assert np.array_equal(loaded.index_b, pairs.index_b)
    assert np.array_equal(is_same, pairs.is_same)
