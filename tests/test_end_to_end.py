"""One short real training run on MNIST, read back through its files."""

import csv
import json
from itertools import combinations

import numpy as np

from siamese_mnist.checkpoint import load_checkpoint
from siamese_mnist.threshold import predict_same


def expected_table():
    lines = [f"Positive ({d},{d}): 450" for d in range(10)] + ["Pos Total: 4500"]
    lines += [f"Negative ({a},{b}): 100" for a, b in combinations(range(10), 2)]
    return "\n".join(lines + ["Neg Total: 4500", "Total: 9000"]) + "\n"


def test_run_writes_every_file(short_run):
    for name in ("config.json", "model.pt", "test_pairs.csv", "pair_counts.txt", "test_distances.csv",
                 "metrics.json", "pr_curve.png", "train_log.csv"):
        assert (short_run / name).is_file(), name


def test_run_count_table_exact(short_run):
    assert (short_run / "pair_counts.txt").read_text() == expected_table()


def test_run_accuracy_above_bar(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["threshold_split"] == "validation"
    assert metrics["threshold_method"] == "pr-breakeven"
    assert metrics["n_test_pairs"] == 9000
    assert metrics["epochs"] == 2
    assert metrics["seed"] == 0
    assert 0.9 < metrics["roc_auc"] <= 1.0


def test_accuracy_recomputed_from_distances(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    with open(short_run / "test_distances.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index_a", "index_b", "is_same", "distance", "predicted_same"]
    distances = np.array([float(r["distance"]) for r in rows])
    is_same = np.array([int(r["is_same"]) for r in rows])
    predicted = predict_same(distances, metrics["threshold"])
    assert np.array_equal(predicted.astype(int), [int(r["predicted_same"]) for r in rows])
    assert np.mean(predicted == is_same) == metrics["test_accuracy"]


def test_checkpoint_carries_threshold(short_run):
    _, state = load_checkpoint(short_run / "model.pt")
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert state["threshold"] == metrics["threshold"]
    assert set(state["normalization"]) == {"mean", "std"}
    assert state["train_config"]["seed"] == 0


def test_train_log_one_row_per_epoch(short_run):
    with open(short_run / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0.5 < float(r["val_accuracy"]) <= 1 for r in rows)


def test_recorded_command_names_seed_and_data():
    from siamese_mnist.config import TrainConfig
    from siamese_mnist.pipeline import run_config

    config = run_config(TrainConfig(seed=4), "/data/mnist", ["run", "--epochs", "3"])
    assert config["command"] == "siamese-mnist run --epochs 3 --seed 4 --data-dir /data/mnist"
    given = run_config(TrainConfig(seed=4), "/data/mnist", ["run", "--seed=4", "--data-dir", "x y"])
    assert given["command"] == "siamese-mnist run --seed=4 --data-dir 'x y'"
