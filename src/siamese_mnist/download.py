"""Download missing MNIST files from public mirrors, verified and written atomically."""

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from siamese_mnist.errors import UserError

log = logging.getLogger(__name__)

MIRROR_ENV = "SIAMESE_MNIST_MIRROR"
# Tried in order. Both serve the original gzip archives under the standard names.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
TIMEOUT_SECONDS = 30


def mirrors(mirror=None):
    """Return the base URLs to try: `mirror`, else ``$SIAMESE_MNIST_MIRROR``, else the defaults."""
    chosen = mirror or os.environ.get(MIRROR_ENV)
    if chosen:
        return tuple(url.rstrip("/") + "/" for url in chosen.split(","))
    return DEFAULT_MIRRORS


def fetch(url, destination):
    """Stream `url` into `destination`, with a progress bar; raise OSError on failure."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(destination, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=Path(destination).name.split(".")[1],
            leave=False, disable=None,
        ) as bar:
            received = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")


def download_files(folder, names, mirror=None):
    """Download each IDX file in `names` as ``name.gz`` into `folder`.

    Each mirror is tried in turn. A file is first written under a temporary
    name, checked (gzip, IDX header, MD5), and only then renamed to its final
    name, so an interrupted or bad download never looks like a good file.
    """
    from siamese_mnist.data import FILE_NAMES, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx_file

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create data folder {folder}: {exc.strerror}; pass --data-dir") from None
    for name in names:
        assert name in FILE_NAMES, name
        magic = IDX_IMAGES_MAGIC if "images" in name else IDX_LABELS_MAGIC
        final = folder / f"{name}.gz"
        partial = folder / f".{name}.gz.part"
        failures = []
        for base in mirrors(mirror):
            url = base + final.name
            log.info("downloading %s", url)
            try:
                fetch(url, partial)
                read_idx_file(partial, name, magic, verify=True)
            except (OSError, urllib.error.URLError, UserError) as exc:
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
                log.warning("download failed: %s: %s", url, reason)
                partial.unlink(missing_ok=True)
                continue
            os.replace(partial, final)
            break
        else:
            raise UserError(
                f"could not download {final.name} ({'; '.join(failures)}); without network, "
                f"copy the four MNIST IDX files into {folder} or pass --data-dir"
            )
