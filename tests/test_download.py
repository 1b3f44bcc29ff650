"""Downloads against a misbehaving HTTP server on 127.0.0.1, started inside the tests.

The server handles requests for ``/<behaviour>/<file name>``: behaviour ``ok`` serves the
real MNIST archives, the others fail in one way each.
"""

import gzip
import http.server
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from siamese_mnist import download
from siamese_mnist.cli import main
from siamese_mnist.data import FILE_NAMES
from siamese_mnist.download import download_files
from siamese_mnist.errors import UserError

SMALL = "t10k-labels-idx1-ubyte"  # 4.5 kB compressed
HTML = b"<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body>gone</body></html>\n"


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        behaviour, _, name = self.path.strip("/").partition("/")
        self.server.requests.append(self.path)
        real = self.server.data_dir / name
        if behaviour in ("404", "500"):
            self.send_error(int(behaviour))
        elif behaviour == "html":
            self.send_body(HTML)
        elif behaviour == "ok":
            self.send_body(real.read_bytes())
        elif behaviour == "changed":
            raw = bytearray(gzip.decompress(real.read_bytes()))
            raw[-1] ^= 1
            self.send_body(gzip.compress(bytes(raw)))
        elif behaviour == "cut":
            # Promise the whole file, send half, close the connection.
            body = real.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
        elif behaviour == "cut-no-length":
            body = real.read_bytes()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
        elif behaviour == "stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(2)
        else:
            self.send_error(400)

    def send_body(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(real_mnist):
    """Base URL of a fresh loopback server on an ephemeral port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    httpd.data_dir = Path(real_mnist)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("behaviour, reason", [
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
    ("html", "HTML"),
    ("cut", "connection closed after"),
    ("cut-no-length", "truncated gzip data"),
    ("changed", "MD5 of the content is"),
])
def test_bad_mirror_leaves_nothing(tmp_path, server, behaviour, reason):
    httpd, base = server
    url = f"{base}/{behaviour}/{SMALL}.gz"
    with pytest.raises(UserError) as caught:
        download_files(tmp_path, [SMALL], mirror=f"{base}/{behaviour}/")
    message = str(caught.value)
    assert url in message
    assert reason in message
    assert f"copy the four MNIST IDX files into {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []  # no final file and no temporary file
    assert httpd.requests == [f"/{behaviour}/{SMALL}.gz"]


def test_stalled_server_times_out(tmp_path, server, monkeypatch):
    _, base = server
    monkeypatch.setattr(download, "TIMEOUT_SECONDS", 0.5)
    with pytest.raises(UserError, match="timed out"):
        download_files(tmp_path, [SMALL], mirror=f"{base}/stall/")
    assert list(tmp_path.iterdir()) == []


def test_fallback_after_each_failure(tmp_path, server, caplog, real_mnist):
    httpd, base = server
    mirrors = f"{base}/500/,{base}/cut/,{base}/ok/"
    download_files(tmp_path, [SMALL], mirror=mirrors)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{SMALL}.gz"]
    assert (tmp_path / f"{SMALL}.gz").read_bytes() == (Path(real_mnist) / f"{SMALL}.gz").read_bytes()
    assert httpd.requests == [f"/500/{SMALL}.gz", f"/cut/{SMALL}.gz", f"/ok/{SMALL}.gz"]
    reported = warnings_in(caplog)
    assert len(reported) == 2
    assert f"{base}/500/{SMALL}.gz: HTTP 500" in reported[0]
    assert f"{base}/cut/{SMALL}.gz: connection closed after" in reported[1]


def test_no_verify_accepts_other_content(tmp_path, server):
    """Without verification a file of the right shape but other content is kept."""
    _, base = server
    download_files(tmp_path, [SMALL], mirror=f"{base}/changed/", verify=False)
    assert (tmp_path / f"{SMALL}.gz").is_file()


def test_cli_downloads_all_files_from_fallback(tmp_path, server, capsys, caplog, real_mnist):
    _, base = server
    folder = tmp_path / "cache" / "mnist"
    status = main(["data", "--data-dir", str(folder), "--mirror", f"{base}/404/,{base}/ok/"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "Checksums: verified" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.gz" for name in FILE_NAMES)
    for name in FILE_NAMES:
        assert (folder / f"{name}.gz").read_bytes() == (Path(real_mnist) / f"{name}.gz").read_bytes()
    reported = warnings_in(caplog)
    assert len(reported) == 4
    assert all("HTTP 404" in line for line in reported)


def test_mirror_list_from_environment(tmp_path, server, capsys, monkeypatch):
    httpd, base = server
    monkeypatch.setenv("SIAMESE_MNIST_MIRROR", f"{base}/html/, {base}/ok/")
    download_files(tmp_path, [SMALL])
    assert (tmp_path / f"{SMALL}.gz").is_file()
    assert httpd.requests == [f"/html/{SMALL}.gz", f"/ok/{SMALL}.gz"]


def test_cli_all_mirrors_fail(tmp_path, server, capsys, caplog):
    _, base = server
    folder = tmp_path / "mnist"
    folder.mkdir()
    status = main(["data", "--data-dir", str(folder), "--mirror", f"{base}/404/,{base}/cut/"])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert f"{base}/404/train-images-idx3-ubyte.gz: HTTP 404" in err
    assert f"{base}/cut/train-images-idx3-ubyte.gz: connection closed after" in err
    assert "did not exist" not in err
    assert warnings_in(caplog) == []  # each failure is reported once, in the error
    assert list(folder.iterdir()) == []


def test_mistyped_folder_removed_after_failure(tmp_path, server, capsys):
    _, base = server
    typo = tmp_path / "dtaa"
    folder = typo / "mnist"
    status = main(["data", "--data-dir", str(folder), "--mirror", f"{base}/404/"])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1
    assert err.startswith(f"error: --data-dir {folder} did not exist, check the path; "
                          "downloading into it failed: could not download ")
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_cache_folder_needs_no_path_check(tmp_path, server, capsys, monkeypatch):
    _, base = server
    monkeypatch.delenv("SIAMESE_MNIST_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status = main(["data", "--mirror", f"{base}/404/"])
    _, err = capsys.readouterr()
    assert status == 2
    assert f"copy the four MNIST IDX files into {tmp_path / 'cache' / 'siamese-mnist' / 'mnist'}" in err
    assert "check the path" not in err
    assert not (tmp_path / "cache").exists()


def test_mistyped_environment_folder_named(tmp_path, server, capsys, monkeypatch):
    _, base = server
    folder = tmp_path / "mnsit"
    monkeypatch.setenv("SIAMESE_MNIST_DATA", str(folder))
    status = main(["data", "--mirror", f"{base}/404/"])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.startswith(f"error: $SIAMESE_MNIST_DATA {folder} did not exist, check the path; ")
    assert not folder.exists()


def test_later_run_restarts_cleanly(tmp_path, server, capsys, real_mnist):
    _, base = server
    assert main(["data", "--data-dir", str(tmp_path), "--mirror", f"{base}/cut/"]) == 2
    assert list(tmp_path.iterdir()) == []
    # What a download killed outright leaves behind; it must not stop or confuse the next run.
    stale = tmp_path / f".{SMALL}.gz.x1y2z3.tmp"
    stale.write_bytes(b"\x1f\x8b half")

    assert main(["data", "--data-dir", str(tmp_path), "--mirror", f"{base}/ok/"]) == 0
    out, _ = capsys.readouterr()
    assert "Checksums: verified" in out
    for name in FILE_NAMES:
        assert (tmp_path / f"{name}.gz").read_bytes() == (Path(real_mnist) / f"{name}.gz").read_bytes()


def test_stale_temporary_file_deleted(tmp_path, server):
    _, base = server
    stale = tmp_path / f".{SMALL}.gz.old123.tmp"
    live = tmp_path / f".{SMALL}.gz.new456.tmp"
    other = tmp_path / ".train-labels-idx1-ubyte.gz.old789.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"\x1f\x8b half")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))

    download_files(tmp_path, [SMALL], mirror=f"{base}/ok/")
    assert not stale.exists()
    assert live.exists()  # may belong to a download still running
    assert other.exists()  # belongs to a file that was not downloaded


@pytest.mark.parametrize("value", ["ftp://example.invalid/mnist/", "mirror.local/mnist", " , "])
def test_invalid_mirror_rejected(tmp_path, capsys, value):
    status = main(["data", "--data-dir", str(tmp_path), "--mirror", value])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.startswith("error: --mirror")
    assert "give base URLs separated by commas" in err
    assert list(tmp_path.iterdir()) == []


def test_default_mirrors_unreachable_from_tests(monkeypatch):
    """The autouse fixture keeps every test away from the public mirrors."""
    assert download.mirrors() == ("http://127.0.0.1:9/",)
