import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from siamese_mnist.cli import main

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def pytest_terminal_summary(terminalreporter):
    """Say why the real-data tests skipped, which the summary of -q leaves out."""
    reasons = [report.longrepr[2] for report in terminalreporter.stats.get("skipped", [])
               if isinstance(report.longrepr, tuple)]
    missing = [reason for reason in reasons if "real MNIST not found" in reason]
    if missing:
        reason = missing[0].removeprefix("Skipped: ")
        terminalreporter.write_line(f"{len(missing)} tests skipped: {reason}", yellow=True)


def mnist_dir():
    """Folder with the real MNIST files: $SIAMESE_MNIST_DATA, else the shared copy."""
    folder = Path(os.environ.get("SIAMESE_MNIST_DATA") or SHARED_MNIST)
    if not (folder / "t10k-labels-idx1-ubyte.gz").exists() and not (folder / "t10k-labels-idx1-ubyte").exists():
        pytest.skip(f"real MNIST not found in {folder}; set SIAMESE_MNIST_DATA")
    return folder


def idx_bytes(array):
    """Encode a uint8 array as IDX bytes (magic 0x0801 / 0x0803 for 1-D / 3-D)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 8, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.tobytes()


def write_idx(path, array, compress):
    data = idx_bytes(array)
    if compress:
        path = Path(f"{path}.gz")
        path.write_bytes(gzip.compress(data))
    else:
        Path(path).write_bytes(data)
    return Path(path)


def make_fake_dataset(folder, n_train=200, n_test=100, n_classes=10, compress=True, seed=0):
    """Write four small IDX files with random images and balanced labels; return the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % n_classes
        images = rng.integers(0, 256, size=(n, 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return folder


@pytest.fixture(scope="session", autouse=True)
def no_public_mirrors():
    """Point downloads at a closed loopback port, so that no test can reach the public mirrors."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIAMESE_MNIST_MIRROR", "http://127.0.0.1:9/")
        yield


@pytest.fixture(scope="session")
def real_mnist():
    return mnist_dir()


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, real_mnist):
    """One short real training run shared by the tests that read a run folder."""
    out = tmp_path_factory.mktemp("run") / "short"
    argv = ["run", "--data-dir", str(real_mnist), "--out", str(out), "--epochs", "2",
            "--images-per-epoch", "30720", "--seed", "0", "--device", "cpu"]
    assert main(argv) == 0
    return out
