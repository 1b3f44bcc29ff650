import gzip
import hashlib

import numpy as np
import pytest

from siamese_mnist import data
from siamese_mnist.cli import main
from siamese_mnist.data import load_dataset, parse_idx, read_idx_file, split_train_val
from siamese_mnist.errors import UserError
from tests.conftest import idx_bytes, make_fake_dataset, write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader_round_trip(tmp_path, compress):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = write_idx(tmp_path / "x-images-idx3-ubyte", images, compress)
    array, verified = read_idx_file(path, "x-images-idx3-ubyte", data.IDX_IMAGES_MAGIC)
    assert array.shape == (2, 28, 28)
    assert np.array_equal(array, images)
    assert verified is False  # no published checksum for this name


def test_idx_reader_labels(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([3, 1, 4, 1, 5]), compress=True)
    array, _ = read_idx_file(path, "labels", data.IDX_LABELS_MAGIC)
    assert array.tolist() == [3, 1, 4, 1, 5]


def test_idx_wrong_magic_rejected(tmp_path):
    raw = idx_bytes(np.zeros(4))
    with pytest.raises(UserError, match="magic number is 2049, expected 2051"):
        parse_idx(raw, tmp_path / "f", data.IDX_IMAGES_MAGIC)


def test_idx_truncated_rejected(tmp_path):
    raw = idx_bytes(np.zeros((3, 28, 28)))[:-5]
    with pytest.raises(UserError, match="truncated or damaged"):
        parse_idx(raw, tmp_path / "f", data.IDX_IMAGES_MAGIC)


def test_checksum_mismatch_reported(tmp_path, monkeypatch):
    labels = np.array([1, 2, 3])
    path = write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, compress=True)
    good = hashlib.md5(idx_bytes(labels)).hexdigest()
    monkeypatch.setitem(data.MNIST_MD5, "t10k-labels-idx1-ubyte", good)
    _, verified = read_idx_file(path, "t10k-labels-idx1-ubyte", data.IDX_LABELS_MAGIC)
    assert verified is True

    changed = idx_bytes(labels)[:-1] + b"\x07"
    path.write_bytes(gzip.compress(changed))
    with pytest.raises(UserError, match=f"MD5 of the decompressed content is .* expected {good}"):
        read_idx_file(path, "t10k-labels-idx1-ubyte", data.IDX_LABELS_MAGIC)


def test_missing_files_error_names_folder(tmp_path):
    with pytest.raises(UserError, match=f"MNIST files missing in {tmp_path}"):
        load_dataset(tmp_path, download=False)


def test_fake_dataset_loads_without_verify(tmp_path):
    folder = make_fake_dataset(tmp_path, n_train=50, n_test=30, n_classes=5)
    dataset = load_dataset(folder, download=False, verify=False)
    assert dataset.train_images.shape == (50, 28, 28)
    assert dataset.test_labels.tolist() == [i % 5 for i in range(30)]
    assert dataset.classes.tolist() == [0, 1, 2, 3, 4]
    assert dataset.verified is False


def test_fake_dataset_fails_md5(tmp_path):
    folder = make_fake_dataset(tmp_path)
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz: MD5"):
        load_dataset(folder, download=False)


def test_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(10), [600, 700, 600, 600, 600, 500, 600, 600, 600, 600])
    train, val = split_train_val(labels, 600, seed=3)
    assert len(val) == 600
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) + len(val) == len(labels)
    counts = np.bincount(labels[val])
    assert counts.tolist() == [60, 70, 60, 60, 60, 50, 60, 60, 60, 60]
    again, val_again = split_train_val(labels, 600, seed=3)
    assert np.array_equal(val, val_again)
    _, other = split_train_val(labels, 600, seed=4)
    assert not np.array_equal(val, other)


def test_real_mnist_verified(real_mnist):
    dataset = load_dataset(real_mnist, download=False)
    assert dataset.verified is True
    assert dataset.train_images.shape == (60000, 28, 28)
    assert dataset.test_images.shape == (10000, 28, 28)
    assert np.bincount(dataset.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_parent_folder_points_to_files(tmp_path, capsys):
    make_fake_dataset(tmp_path / "mnist", n_train=100, n_test=20)
    (tmp_path / "notes").mkdir()
    assert main(["data", "--data-dir", str(tmp_path), "--no-verify"]) == 2
    assert capsys.readouterr().err == (
        f"error: MNIST files missing in {tmp_path}, but {tmp_path / 'mnist'} has all four; "
        f"pass --data-dir {tmp_path / 'mnist'}\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mnist", "notes"]
