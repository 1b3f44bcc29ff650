import numpy as np
import torch

from siamese_mnist.config import TrainConfig
from siamese_mnist.data import get_splits, load_dataset
from siamese_mnist.pairs import build_pair_set
from siamese_mnist.train import train


def short_training(splits, val_pairs, seed):
    config = TrainConfig(epochs=1, images_per_epoch=2048, seed=seed, device="cpu")
    model, history, normalization = train(splits, val_pairs, config)
    return model.state_dict(), history, normalization


def test_same_seed_same_weights_on_cpu(real_mnist):
    assert torch.get_num_threads() >= 1
    splits = get_splits(load_dataset(real_mnist, download=False), 5000, 0)
    val_pairs = build_pair_set(splits["val"].labels, 180, 0)
    first, history, normalization = short_training(splits, val_pairs, seed=0)
    second, _, _ = short_training(splits, val_pairs, seed=0)
    for name in first:
        assert torch.equal(first[name], second[name]), name
    other, _, _ = short_training(splits, val_pairs, seed=1)
    assert not torch.equal(first["head.3.weight"], other["head.3.weight"])
    assert len(history) == 1
    assert np.isfinite(history[0].loss)
    assert 0.1 < normalization["mean"] < 0.15
