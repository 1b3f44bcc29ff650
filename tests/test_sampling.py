from itertools import combinations

import numpy as np
import pytest

from siamese_mnist.errors import UserError
from siamese_mnist.sampling import BalancedPairSampler

LABELS = np.repeat(np.arange(10), 60)


def test_batch_half_positive_types_spread():
    sampler = BalancedPairSampler(LABELS, batch_size=200, images_per_batch=100,
                                  rng=np.random.default_rng(0))
    images, position_a, position_b, is_same = sampler.sample()
    label_a, label_b = LABELS[images[position_a]], LABELS[images[position_b]]
    assert is_same.sum() == 100
    assert np.array_equal(is_same, (label_a == label_b).astype(int))
    positive = np.bincount(label_a[is_same == 1], minlength=10)
    assert positive.tolist() == [10] * 10
    negative_counts = [np.sum((label_a == a) & (label_b == b)) for a, b in combinations(range(10), 2)]
    assert set(negative_counts) <= {2, 3}
    assert sum(negative_counts) == 100


def test_batch_images_distinct_and_never_self_paired():
    sampler = BalancedPairSampler(LABELS, batch_size=1000, images_per_batch=40,
                                  rng=np.random.default_rng(1))
    images, position_a, position_b, _ = sampler.sample()
    assert len(np.unique(images)) == 40
    assert np.all(position_a != position_b)
    assert np.bincount(LABELS[images]).tolist() == [4] * 10


def test_sampler_same_seed_same_batches():
    first = BalancedPairSampler(LABELS, 64, 40, np.random.default_rng(5)).sample()
    second = BalancedPairSampler(LABELS, 64, 40, np.random.default_rng(5)).sample()
    for x, y in zip(first, second):
        assert np.array_equal(x, y)


def test_odd_batch_size_rejected():
    with pytest.raises(UserError, match="--batch-size 33 must be an even number"):
        BalancedPairSampler(LABELS, 33, 40, np.random.default_rng(0))


def test_too_few_images_per_batch_rejected():
    with pytest.raises(UserError, match="--images-per-batch 10 must be at least 20"):
        BalancedPairSampler(LABELS, 64, 10, np.random.default_rng(0))
