"""Damaged, wrong and foreign data files, seen through the command line: one line, exit 2."""

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from siamese_mnist import data
from siamese_mnist.cli import main
from siamese_mnist.data import FILE_NAMES, MNIST_MD5
from siamese_mnist.errors import UserError
from tests.conftest import idx_bytes, make_fake_dataset, write_idx


def run_data(capsys, folder, *options):
    """Run ``siamese-mnist data`` on `folder`; return the exit status, stdout and stderr."""
    status = main(["data", "--data-dir", str(folder), "--val-size", "20", *options])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture
def fake(tmp_path):
    return make_fake_dataset(tmp_path / "data", n_train=200, n_test=100)


def test_fake_dataset_loads(capsys, fake):
    status, out, _ = run_data(capsys, fake, "--no-verify")
    assert status == 0
    assert "Checksums: not verified" in out


def test_truncated_gz(capsys, fake):
    path = fake / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, str(path), "truncated gzip", "download it again")


def test_html_page_under_gz_name(capsys, fake):
    path = fake / "t10k-images-idx3-ubyte.gz"
    path.write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, str(path), "HTML", "download it again")


def test_html_page_under_raw_name(capsys, fake):
    (fake / "t10k-labels-idx1-ubyte.gz").unlink()
    path = fake / "t10k-labels-idx1-ubyte"
    path.write_text("<html><body>Service unavailable</body></html>\n")
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, str(path), "IDX magic number", "expected 2049", "check the folder")


def test_uncompressed_idx_under_gz_name(capsys, fake):
    path = fake / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.decompress(path.read_bytes()))
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, str(path), "uncompressed IDX data", "remove the .gz")


def test_wrong_idx_magic(capsys, fake):
    # A label file (magic 2049) under the image file's name.
    path = fake / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(200))))
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, str(path), "magic number is 2049, expected 2051",
                          "check the folder")


def test_image_label_counts_disagree(capsys, fake):
    labels = fake / "t10k-labels-idx1-ubyte"
    (fake / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(labels, np.arange(99) % 10, compress=True)
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, "t10k-images-idx3-ubyte.gz has 100 images",
                          "t10k-labels-idx1-ubyte.gz has 99 labels", "download them again")


def test_images_not_28x28(capsys, fake):
    path = fake / "train-images-idx3-ubyte"
    (fake / "train-images-idx3-ubyte.gz").unlink()
    write_idx(path, np.zeros((200, 32, 32)), compress=True)
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, f"{path}.gz", "images are 32x32, expected 28x28")


def test_labels_outside_class_range(capsys, fake):
    path = fake / "train-labels-idx1-ubyte"
    labels = np.arange(200) % 10
    labels[57] = 12
    (fake / "train-labels-idx1-ubyte.gz").unlink()
    write_idx(path, labels, compress=True)
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, f"{path}.gz", "label 12 at position 57",
                          "outside the class range 0-9")


def test_missing_file_and_no_mirror(capsys, fake):
    (fake / "t10k-labels-idx1-ubyte.gz").unlink()
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, "could not download t10k-labels-idx1-ubyte.gz",
                          "127.0.0.1:9", f"copy the four MNIST IDX files into {fake}")


def test_unreadable_file(capsys, fake):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    path = fake / "train-images-idx3-ubyte.gz"
    path.chmod(0)
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, f"cannot read {path}", "permissions")


def test_permission_denied_on_read(capsys, fake, monkeypatch):
    """An unreadable data file, made by a stand-in for open() so that the test also runs as root."""
    path = fake / "train-images-idx3-ubyte.gz"
    real_open = open

    def denying_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(data, "open", denying_open, raising=False)
    status, _, err = run_data(capsys, fake, "--no-verify")
    assert_one_line_error(status, err, f"cannot read {path}: Permission denied", "permissions")


@pytest.fixture
def real_copy(tmp_path, real_mnist):
    """A folder of links to the real MNIST files, in which one file can be replaced."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILE_NAMES:
        (folder / f"{name}.gz").symlink_to(Path(real_mnist) / f"{name}.gz")
    return folder


def test_one_changed_byte_fails_md5(capsys, real_copy):
    path = real_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8 + 500] = (raw[8 + 500] + 1) % 10  # still a valid digit label
    path.unlink()
    path.write_bytes(gzip.compress(bytes(raw)))

    status, _, err = run_data(capsys, real_copy)
    assert_one_line_error(status, err, str(path), f"expected {MNIST_MD5['t10k-labels-idx1-ubyte']}",
                          "download it again", "--no-verify")

    status, out, err = run_data(capsys, real_copy, "--no-verify")
    assert status == 0, err
    assert "Checksums: not verified" in out


def test_truncated_real_file_named_before_md5(capsys, real_copy):
    """With verification on, a truncated file still gets the truncation message, not an MD5 one."""
    path = real_copy / "t10k-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])
    status, _, err = run_data(capsys, real_copy)
    assert_one_line_error(status, err, str(path), "truncated gzip")


def test_debug_after_command_raises(fake):
    (fake / "train-images-idx3-ubyte.gz").write_text("<html></html>")
    with pytest.raises(UserError, match="HTML"):
        main(["data", "--debug", "--data-dir", str(fake), "--no-verify"])
    with pytest.raises(UserError, match="HTML"):
        main(["--debug", "data", "--data-dir", str(fake), "--no-verify"])


def test_debug_prints_traceback(fake):
    (fake / "train-images-idx3-ubyte.gz").write_text("<html></html>")
    command = [sys.executable, "-m", "siamese_mnist", "data", "--data-dir", str(fake), "--no-verify"]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1
    debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "UserError" in debug.stderr
