"""Locate, verify and read the MNIST IDX files, and split them.

Splits:
- ``test``: the 10,000 t10k images.
- ``val``: a stratified, seeded hold-out of the 60,000 training images, used
  only to pick the distance threshold and to watch training.
- ``train``: the remaining training images.
Pair files store indices into one of these splits.
"""

import gzip
import hashlib
import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamese_mnist.errors import UserError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DATA_ENV = "SIAMESE_MNIST_DATA"
DEFAULT_VAL_SIZE = 5000

# MD5 of the decompressed content of the official MNIST files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FILE_NAMES = tuple(MNIST_MD5)

IDX_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension
N_CLASSES = 10  # MNIST-format labels are the digits 0-9
GZIP_MAGIC = b"\x1f\x8b"


def default_data_dir():
    """Return the per-user cache folder used when neither option nor variable is set."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "siamese-mnist" / "mnist"


def resolve_data_dir(data_dir=None):
    """Pick the data folder: the argument, else ``$SIAMESE_MNIST_DATA``, else the cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return default_data_dir()


def find_file(folder, name):
    """Return the path of `name` or `name.gz` in `folder`, or None when neither exists."""
    for candidate in (Path(folder) / name, Path(folder) / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def describe_non_gzip(head):
    """Name what a file that should be gzip starts with, for the error message."""
    if head.lstrip()[:1] == b"<":
        return "an HTML or XML page, not gzip data (an error page saved by a failed download?)"
    if head[:3] == b"\x00\x00\x08":
        return "uncompressed IDX data under a .gz name (remove the .gz from the name)"
    return f"not gzip data (it starts with {head[:8]!r})"


def read_raw_bytes(path):
    """Return the decompressed content of an IDX file, gzip or not."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        if head[:2] != GZIP_MAGIC:
            if path.suffix == ".gz":
                raise UserError(
                    f"{path}: {describe_non_gzip(head)}; delete the file and download it again"
                )
            return path.read_bytes()
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UserError(
            f"{path}: damaged or truncated gzip file ({exc}); delete it and download it again"
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot read {path}: {exc.strerror or exc}; check the file and its permissions"
        ) from None


def parse_idx(raw, path, expected_magic):
    """Decode IDX bytes into a uint8 array, checking the magic number and the length."""
    if len(raw) < 4:
        raise UserError(f"{path}: file too short for an IDX header; download it again")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise UserError(
            f"{path}: IDX magic number is {magic}, expected {expected_magic}; "
            "this is not the right IDX file, check the folder"
        )
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise UserError(f"{path}: truncated IDX header; download it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected_len = header_len + math.prod(shape)  # exact: np.prod can overflow on a garbage header
    if len(raw) != expected_len:
        raise UserError(
            f"{path}: IDX header promises {expected_len} bytes of shape {shape} but the file "
            f"has {len(raw)}; the file is truncated or damaged, download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def check_md5(raw, path, name):
    expected = MNIST_MD5.get(name)
    if expected is None:
        return False
    actual = hashlib.md5(raw).hexdigest()
    if actual != expected:
        raise UserError(
            f"{path}: MD5 of the decompressed content is {actual}, expected {expected}; "
            "the file is damaged or from another dataset: download it again, "
            "or pass --no-verify for a dataset without published checksums"
        )
    return True


def read_idx_file(path, name, expected_magic, verify=True):
    """Read one IDX file; return ``(array, verified)``.

    The header is checked before the MD5, so that a wrong or truncated file
    gets the more precise of the two messages.
    """
    raw = read_raw_bytes(path)
    array = parse_idx(raw, path, expected_magic)
    verified = check_md5(raw, path, name) if verify else False
    return array, verified


@dataclass(frozen=True)
class Dataset:
    """The four IDX files in memory: images as uint8 ``(n, 28, 28)``, labels as int64 ``(n,)``."""

    folder: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    verified: bool

    @property
    def classes(self):
        return np.unique(np.concatenate([self.train_labels, self.test_labels]))


def read_pair_of_files(folder, prefix, verify):
    images_name, labels_name = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    images_path, labels_path = find_file(folder, images_name), find_file(folder, labels_name)
    images, images_ok = read_idx_file(images_path, images_name, IDX_IMAGES_MAGIC, verify)
    labels, labels_ok = read_idx_file(labels_path, labels_name, IDX_LABELS_MAGIC, verify)
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            "the two files do not belong together, download them again"
        )
    if images.shape[1:] != (28, 28):
        raise UserError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28; "
            "use an MNIST-format dataset"
        )
    outside = np.flatnonzero(labels >= N_CLASSES)
    if len(outside):
        raise UserError(
            f"{labels_path}: label {int(labels[outside[0]])} at position {int(outside[0])} is outside "
            f"the class range 0-{N_CLASSES - 1} ({len(outside)} such labels); the file is damaged or "
            "not an MNIST-format label file, download it again or check the folder"
        )
    return images, labels.astype(np.int64), images_ok and labels_ok


def missing_files(folder):
    return [name for name in FILE_NAMES if find_file(folder, name) is None]


def load_dataset(data_dir=None, download=True, verify=True, mirror=None):
    """Load MNIST from `data_dir` (see `resolve_data_dir`), downloading missing files.

    Parameters
    ----------
    data_dir : path-like or None
        Folder with the four IDX files, each ``.gz`` or uncompressed.
    download : bool
        Fetch missing files from the public mirrors (or `mirror`).
    verify : bool
        Check each file's decompressed MD5 against the published one, also
        for downloaded files.
    mirror : str or None
        Base URL, or comma-separated base URLs tried in order, that replaces
        the default mirrors.

    Returns
    -------
    Dataset
    """
    folder = resolve_data_dir(data_dir)
    missing = missing_files(folder)
    if missing and folder.is_dir():
        # A common slip: naming the folder above the one with the files.
        below = [sub for sub in sorted(folder.iterdir()) if sub.is_dir() and not missing_files(sub)]
        if below:
            raise UserError(f"MNIST files missing in {folder}, but {below[0]} has all four; "
                            f"pass --data-dir {below[0]}")
    if missing and download:
        from siamese_mnist.download import download_files

        existed = folder.exists()
        try:
            download_files(folder, missing, mirror=mirror, verify=verify)
        except UserError as exc:
            # A folder the user named that does not exist is most likely a typo.
            if existed or not (data_dir or os.environ.get(DATA_ENV)):
                raise
            source = "--data-dir" if data_dir else f"${DATA_ENV}"
            raise UserError(f"{source} {folder} did not exist, check the path; downloading into it "
                            f"failed: {exc}") from None
        missing = missing_files(folder)
    if missing:
        raise UserError(
            f"MNIST files missing in {folder}: {', '.join(missing)}; put the four IDX files "
            f"(.gz or uncompressed) there, or pass --data-dir / set {DATA_ENV}"
        )
    train_images, train_labels, train_ok = read_pair_of_files(folder, "train", verify)
    test_images, test_labels, test_ok = read_pair_of_files(folder, "t10k", verify)
    classes = np.unique(train_labels)
    stray = np.setdiff1d(np.unique(test_labels), classes)
    if len(stray):
        raise UserError(
            f"{folder}: test labels {stray.tolist()} never occur in the training labels; "
            "the files come from different datasets"
        )
    return Dataset(folder, train_images, train_labels, test_images, test_labels,
                   verified=train_ok and test_ok)


def split_train_val(labels, val_size, seed):
    """Hold out a stratified validation split from the training labels.

    Each class contributes in proportion to its frequency (largest-remainder
    rounding), so class shares in the validation split match the training set.

    Returns
    -------
    train_index, val_index : ndarray of int64
        Sorted indices into `labels`.
    """
    labels = np.asarray(labels)
    if not 0 < val_size < len(labels):
        raise UserError(f"--val-size {val_size} must be between 1 and {len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * val_size / len(labels)
    per_class = np.floor(exact).astype(int)
    leftover = val_size - per_class.sum()
    per_class[np.argsort(-(exact - per_class), kind="stable")[:leftover]] += 1
    val_parts = []
    for cls, take in zip(classes, per_class):
        members = np.flatnonzero(labels == cls)
        val_parts.append(rng.choice(members, size=take, replace=False))
    val_index = np.sort(np.concatenate(val_parts))
    train_index = np.setdiff1d(np.arange(len(labels)), val_index)
    return train_index, val_index


@dataclass(frozen=True)
class Split:
    name: str
    images: np.ndarray  # (n, 28, 28) uint8
    labels: np.ndarray  # (n,) int64


def get_splits(dataset, val_size=DEFAULT_VAL_SIZE, seed=0):
    """Return ``{"train": Split, "val": Split, "test": Split}`` for `dataset`."""
    train_index, val_index = split_train_val(dataset.train_labels, val_size, seed)
    return {
        "train": Split("train", dataset.train_images[train_index], dataset.train_labels[train_index]),
        "val": Split("val", dataset.train_images[val_index], dataset.train_labels[val_index]),
        "test": Split("test", dataset.test_images, dataset.test_labels),
    }


def load_splits(data_dir, mirror, verify, val_size, seed):
    """Load the dataset (see `load_dataset`) and return it with its three splits."""
    dataset = load_dataset(data_dir, mirror=mirror, verify=verify)
    return dataset, get_splits(dataset, val_size, seed)


def describe(dataset, splits):
    """Return the text that ``siamese-mnist data`` prints."""
    lines = [f"Data folder: {dataset.folder}",
             "Checksums: " + ("verified (MD5 of decompressed content)" if dataset.verified
                              else "not verified")]
    classes = dataset.classes
    header = "split  " + " ".join(f"{c:>6}" for c in classes) + "   total"
    lines.append(header)
    for name in SPLITS:
        counts = np.bincount(splits[name].labels, minlength=classes.max() + 1)[classes]
        lines.append(f"{name:<6} " + " ".join(f"{n:>6}" for n in counts) + f" {counts.sum():>7}")
    return "\n".join(lines)
