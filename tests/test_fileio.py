import json
import os
import stat

import pytest

from siamese_mnist.fileio import atomic_path, write_json


def test_json_nan_written_as_null(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"roc_auc": float("nan"), "nested": [1.5, float("inf")], "n": 3})
    assert json.loads(path.read_text()) == {"roc_auc": None, "nested": [1.5, None], "n": 3}


def test_failed_write_leaves_old_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def test_written_file_follows_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
