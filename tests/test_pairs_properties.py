"""Properties of pair sets over random class counts, class sizes, sizes and seeds."""

from itertools import combinations
from math import comb

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_mnist.data import Split
from siamese_mnist.pair_audit import audit_pair_file
from siamese_mnist.pairs import (
    build_pair_set, pair_keys, pair_unit, read_pair_file, type_counts, write_pairs_csv,
)

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def pair_requests(draw, density=1.0):
    """Draw (labels, classes, size, seed) for which an exact pair set exists.

    `density` caps each type's request at that share of its distinct pairs.
    """
    classes = sorted(draw(st.sets(st.integers(0, 30), min_size=2, max_size=6)))
    sizes = draw(st.lists(st.integers(3, 40), min_size=len(classes), max_size=len(classes)))
    order_seed = draw(st.integers(0, 2**32 - 1))
    labels = np.random.default_rng(order_seed).permutation(np.repeat(classes, sizes))
    k = len(classes)
    unit = pair_unit(k)
    # One unit of N gives each positive and each negative type this many pairs.
    pos_per_unit, neg_per_unit = unit // 2 // k, unit // 2 // comb(k, 2)
    max_pos = int(density * min(comb(n, 2) for n in sizes))
    max_neg = int(density * min(a * b for a, b in combinations(sizes, 2)))
    max_units = min(max_pos // pos_per_unit, max_neg // neg_per_unit)
    if max_units < 1:
        sizes = [40] * k
        labels = np.repeat(classes, sizes)
        max_units = 1
    units = draw(st.integers(1, max_units))
    seed = draw(st.integers(0, 2**32 - 1))
    return labels, np.array(classes), unit * units, seed


@SETTINGS
@given(pair_requests())
def test_counts_exact(request):
    labels, classes, size, seed = request
    pairs = build_pair_set(labels, size, seed)
    positive, negative = type_counts(pairs.label_a, pairs.label_b, classes)
    k = len(classes)
    assert len(pairs) == size
    assert set(positive.values()) == {size // 2 // k}
    assert set(negative.values()) == {size // 2 // comb(k, 2)}
    assert int(pairs.is_same.sum()) == size // 2


@SETTINGS
@given(pair_requests())
def test_no_self_or_repeated_pairs(request):
    labels, _, size, seed = request
    pairs = build_pair_set(labels, size, seed)
    assert not np.any(pairs.index_a == pairs.index_b)
    assert len(np.unique(pair_keys(pairs.index_a, pairs.index_b, len(labels)))) == size


@SETTINGS
@given(pair_requests())
def test_labels_match_images(request):
    labels, _, size, seed = request
    pairs = build_pair_set(labels, size, seed)
    assert np.array_equal(pairs.label_a, labels[pairs.index_a])
    assert np.array_equal(pairs.label_b, labels[pairs.index_b])


@SETTINGS
@given(pair_requests())
def test_same_seed_same_file(tmp_path_factory, request):
    labels, _, size, seed = request
    folder = tmp_path_factory.mktemp("determinism")
    write_pairs_csv(folder / "first.csv", build_pair_set(labels, size, seed))
    write_pairs_csv(folder / "second.csv", build_pair_set(labels, size, seed))
    assert (folder / "first.csv").read_bytes() == (folder / "second.csv").read_bytes()


@SETTINGS
@given(pair_requests())
def test_written_file_passes_audit(tmp_path_factory, request):
    labels, _, size, seed = request
    path = tmp_path_factory.mktemp("audit") / "pairs.csv"
    write_pairs_csv(path, build_pair_set(labels, size, seed))
    split = Split("train", np.zeros((len(labels), 1, 1), dtype=np.uint8), labels)
    audit = audit_pair_file(read_pair_file(path), split)
    assert audit.messages() == []


@SETTINGS
@given(pair_requests(density=0.5))
def test_usage_spread_at_most_one_when_sparse(request):
    labels, classes, size, seed = request
    pairs = build_pair_set(labels, size, seed)
    uses = np.bincount(np.concatenate([pairs.index_a, pairs.index_b]), minlength=len(labels))
    for c in classes:
        assert np.ptp(uses[labels == c]) <= 1, c
