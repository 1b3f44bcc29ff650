"""Atomic file writes, so that an interrupted write never leaves a half file."""

import contextlib
import csv
import json
import math
import os
import tempfile
from pathlib import Path


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` and rename it onto `path` on success.

    The temporary file lives in the same folder, so the final rename is atomic
    on POSIX and Windows. On any exception the temporary file is removed and
    `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file readable by its owner only; give it the
        # permissions a plain open() would have given under the user's umask.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def finite_or_none(value):
    """Replace NaN and infinities, recursively, by None: strict JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def write_json(path, obj):
    """Write `obj` as strict JSON; undefined metrics (NaN) become null."""
    write_text(path, json.dumps(finite_or_none(obj), indent=2, allow_nan=False) + "\n")


def write_csv(path, header, rows):
    """Write `rows` (an iterable of sequences) under `header`, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
