"""Download missing MNIST files from mirrors, verified and written atomically."""

import contextlib
import gzip
import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

from siamese_mnist.errors import UserError
from siamese_mnist.fileio import atomic_path

log = logging.getLogger(__name__)

MIRROR_ENV = "SIAMESE_MNIST_MIRROR"
# Tried in order. Both serve the original gzip archives under the standard names.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
URL_SCHEMES = ("http", "https", "file")
TIMEOUT_SECONDS = 30
# A live download writes at least every TIMEOUT_SECONDS, so a temporary file
# untouched for this long was left by a killed process.
STALE_SECONDS = 600

# Everything a bad mirror can raise: refused or dropped connections and timeouts
# (OSError, which includes urllib's URLError and HTTPError), malformed HTTP
# (HTTPException) and content that fails the checks (UserError).
DOWNLOAD_ERRORS = (OSError, http.client.HTTPException, UserError)


def mirrors(mirror=None):
    """Return the base URLs to try: `mirror`, else ``$SIAMESE_MNIST_MIRROR``, else the defaults.

    Both accept several base URLs separated by commas, tried in order.
    """
    chosen = mirror or os.environ.get(MIRROR_ENV)
    if not chosen:
        return DEFAULT_MIRRORS
    source = "--mirror" if mirror else f"${MIRROR_ENV}"
    urls = [url.strip() for url in chosen.split(",") if url.strip()]
    if not urls:
        raise UserError(f"{source} {chosen!r} contains no URL; give base URLs separated by commas")
    for url in urls:
        if urllib.parse.urlsplit(url).scheme not in URL_SCHEMES:
            raise UserError(
                f"{source}: {url!r} is not an http://, https:// or file:// URL; "
                "give base URLs separated by commas"
            )
    return tuple(url.rstrip("/") + "/" for url in urls)


def fetch(url, destination, label):
    """Stream `url` into `destination`, with a progress bar.

    Raises OSError (urllib's errors included) or http.client.HTTPException on
    failure, also when the server closes the connection before the promised
    Content-Length.
    """
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(destination, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=label, leave=False, disable=None,
        ) as bar:
            received = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise ConnectionError(f"connection closed after {received} of {total} bytes")


def check_download(path, url, name, verify):
    """Raise UserError naming `url` unless `path` contains a complete gzip IDX file `name`.

    With `verify`, the decompressed MD5 must match the published one;
    without it, the IDX header must still match the file kind and length.
    """
    from siamese_mnist.data import (
        GZIP_MAGIC, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, MNIST_MD5, describe_non_gzip, parse_idx,
    )

    raw = Path(path).read_bytes()
    if raw[:2] != GZIP_MAGIC:
        raise UserError(f"{url}: the response is {describe_non_gzip(raw[:64])}")
    try:
        content = gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UserError(f"{url}: damaged or truncated gzip data ({exc})") from None
    if verify:
        actual, expected = hashlib.md5(content).hexdigest(), MNIST_MD5[name]
        if actual != expected:
            raise UserError(f"{url}: MD5 of the content is {actual}, expected {expected}")
    parse_idx(content, url, IDX_IMAGES_MAGIC if "images" in name else IDX_LABELS_MAGIC)


def describe_failure(url, exc):
    """Return one line saying why downloading `url` failed."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return f"{url}: HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError):
        return f"{url}: no data for {TIMEOUT_SECONDS} s, timed out"
    if isinstance(exc, http.client.HTTPException):
        return f"{url}: invalid HTTP response ({type(exc).__name__}: {exc})"
    return f"{url}: {getattr(exc, 'strerror', None) or exc}"


def prepare_data_dir(folder):
    """Create `folder` if needed and make sure files can be written there.

    Returns the outermost folder that this call created, or None when
    `folder` already existed.
    """
    created = None
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        created = parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        remove_empty_folders(folder, created)
        raise UserError(
            f"cannot write to data folder {folder}: {exc.strerror or exc}; "
            "pass --data-dir with a writable folder"
        ) from None
    if created is not None:
        log.info("created data folder %s", folder)
    return created


def remove_empty_folders(folder, outermost):
    """Remove `folder` and its parents up to `outermost` while they are empty."""
    if outermost is None:
        return
    for path in (folder, *folder.parents):
        try:
            path.rmdir()
        except OSError:
            return
        if path == outermost:
            return


def remove_stale_temporary_files(final):
    """Delete temporary files of `final` that no write has touched for `STALE_SECONDS`."""
    cutoff = time.time() - STALE_SECONDS
    for tmp in final.parent.glob(f".{final.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                log.info("deleted stale temporary file %s", tmp)


def download_files(folder, names, mirror=None, verify=True):
    """Download each IDX file in `names` as ``name.gz`` into `folder`.

    Each mirror is tried in turn. When a later mirror delivers the file, the
    failures before it are logged as warnings. When none does, the error lists
    every failure, and the folders created for the download are removed again
    if still empty. A file is written under a temporary name, checked (gzip, IDX header and,
    with `verify`, MD5) and only then renamed to its final name, so a failed,
    interrupted or wrong download never appears under the final name. A
    process killed outright (SIGKILL, power loss) can leave a hidden
    ``.NAME.gz.*.tmp`` file. It is never read, and the next download of the
    same file deletes it once it is `STALE_SECONDS` old.

    Raises
    ------
    UserError
        When no mirror delivers a good copy of a file; the message lists
        every mirror's failure.
    """
    from siamese_mnist.data import FILE_NAMES

    folder = Path(folder)
    bases = mirrors(mirror)
    created = prepare_data_dir(folder)
    for name in names:
        assert name in FILE_NAMES, name
        final = folder / f"{name}.gz"
        remove_stale_temporary_files(final)
        failures = []
        for base in bases:
            url = base + final.name
            log.info("downloading %s", url)
            try:
                with atomic_path(final) as tmp:
                    fetch(url, tmp, f"{name} from {urllib.parse.urlsplit(url).netloc or base}")
                    check_download(tmp, url, name, verify)
            except DOWNLOAD_ERRORS as exc:
                failures.append(describe_failure(url, exc))
                continue
            for reason in failures:
                log.warning("download failed, used the next mirror: %s", reason)
            break
        else:
            remove_empty_folders(folder, created)
            raise UserError(
                f"could not download {final.name} from any mirror ({'; '.join(failures)}); "
                f"check the network or --mirror / ${MIRROR_ENV}, or copy the four MNIST IDX files "
                f"into {folder}"
            )
