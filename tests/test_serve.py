import base64
import io
import logging
import re
import socket
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from siamese_mnist.checkpoint import load_checkpoint
from siamese_mnist.cli import build_parser
from siamese_mnist.data import load_dataset
from siamese_mnist.errors import UserError
from siamese_mnist.preprocess import preprocess
from siamese_mnist.serve import WEB_DIR, bind_server, create_app, run_server

GALLERY_SIZE = 500


@pytest.fixture(scope="module")
def setup(short_run, real_mnist):
    model, state = load_checkpoint(short_run / "model.pt")
    dataset = load_dataset(real_mnist, download=False)
    images, labels = dataset.test_images[:GALLERY_SIZE], dataset.test_labels[:GALLERY_SIZE]
    return model, state, images, labels


@pytest.fixture(scope="module")
def client(setup):
    app = create_app(*setup, neighbours=5)
    return app.test_client()


def png_bytes(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def post_images(client, a=None, b=None):
    data = {}
    if a is not None:
        data["a"] = (io.BytesIO(a), "a.png")
    if b is not None:
        data["b"] = (io.BytesIO(b), "b.png")
    return client.post("/api/compare", data=data, content_type="multipart/form-data")


def decode_data_url(url):
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix):]))))


def test_index_page(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count("<canvas") == 2
    assert 'src="/static/app.js"' in html
    assert 'href="/static/style.css"' in html


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_web_files_local_only(client, name):
    text = (WEB_DIR / name).read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text)
    assert "url(http" not in text
    if name != "index.html":
        assert client.get(f"/static/{name}").status_code == 200


def test_info(client, setup):
    _, state, _, _ = setup
    info = client.get("/api/info").get_json()
    assert info["threshold"] == state["threshold"]
    assert info["gallery_size"] == GALLERY_SIZE
    assert info["neighbours"] == 5


def test_compare_same_image(client, setup):
    _, state, images, labels = setup
    digit = png_bytes(images[0])
    response = post_images(client, digit, digit)
    assert response.status_code == 200
    result = response.get_json()
    assert result["distance"] < 1e-5
    assert result["threshold"] == state["threshold"]
    assert result["same"] is True
    assert result["verdict"] == "same"
    expected = preprocess(Image.fromarray(images[0]), state["normalization"]).digit
    for url in result["inputs"]:
        assert np.array_equal(decode_data_url(url), expected)


def test_compare_inverted_enlarged_digit(client, setup):
    _, _, images, _ = setup
    plain = png_bytes(images[1])
    inverted = png_bytes(np.asarray(Image.fromarray(255 - images[1]).resize((112, 112))))
    result = post_images(client, plain, inverted).get_json()
    assert result["verdict"] == "same"


def test_compare_neighbours(client, setup):
    model, state, images, labels = setup
    result = post_images(client, png_bytes(images[0]), png_bytes(images[1])).get_json()
    assert len(result["neighbours"]) == 2
    for side, index in enumerate((0, 1)):
        neighbours = result["neighbours"][side]
        assert len(neighbours) == 5
        distances = [n["distance"] for n in neighbours]
        assert distances == sorted(distances)
        # Each gallery entry's image is the test digit its index names.
        for n in neighbours:
            assert np.array_equal(decode_data_url(n["image"]), images[n["index"]])
            assert n["label"] == labels[n["index"]]
        # The digit itself is in the gallery, so its closest match is itself or a twin.
        assert neighbours[0]["distance"] < 0.05
        assert neighbours[0]["label"] == labels[index]


def test_compare_different_digits(client, setup):
    _, state, images, labels = setup
    # Test digits 0 and 1 are a 7 and a 2.
    assert (labels[0], labels[1]) == (7, 2)
    result = post_images(client, png_bytes(images[0]), png_bytes(images[1])).get_json()
    assert result["verdict"] == "different"
    assert result["distance"] > state["threshold"]


def test_missing_field(client, setup):
    response = post_images(client, a=png_bytes(setup[2][0]))
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("image B missing")


def test_empty_upload(client, setup):
    response = post_images(client, a=b"", b=png_bytes(setup[2][0]))
    assert response.status_code == 400
    assert response.get_json()["error"] == "image A: the uploaded file is empty"


def test_not_an_image(client, setup):
    response = post_images(client, a=png_bytes(setup[2][0]), b=b"<html>not pixels</html>")
    assert response.status_code == 400
    assert response.get_json()["error"] == "image B: not a PNG, JPEG, BMP, GIF or WebP image"


def test_blank_upload(client, setup):
    blank = png_bytes(np.full((280, 280), 255, np.uint8))
    response = post_images(client, a=blank, b=png_bytes(setup[2][0]))
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("image A: blank image")


def test_pixel_limit(setup):
    client = create_app(*setup, max_pixels=100 * 100).test_client()
    response = post_images(client, a=png_bytes(np.zeros((101, 100), np.uint8)), b=png_bytes(setup[2][0]))
    assert response.status_code == 400
    assert response.get_json()["error"] == ("image A: 100x101 pixels is over the limit of 10,000 pixels; "
                                            "scale the image down")


def test_request_size_limit(setup):
    client = create_app(*setup, max_upload_bytes=4096).test_client()
    noise = np.random.default_rng(0).integers(0, 256, size=(100, 100), dtype=np.uint8)
    response = post_images(client, a=png_bytes(noise), b=png_bytes(setup[2][0]))
    assert response.status_code == 413
    assert response.get_json()["error"].startswith("request too large")


def test_unknown_path_json(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_compare_rejects_get(client):
    response = client.get("/api/compare")
    assert response.status_code == 405
    assert "error" in response.get_json()


def test_serve_defaults_to_loopback():
    args = build_parser().parse_args(["serve", "--checkpoint", "model.pt"])
    assert args.host == "127.0.0.1"
    assert args.port == 8000
    assert args.neighbours == 5


def test_port_in_use(setup):
    app = create_app(*setup)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"):
            run_server(app, "127.0.0.1", port)


def fetch_and_log(app, caplog, path):
    """Serve `app` on a free loopback port, request `path`, return the access log lines."""
    server = bind_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_address[1]}{path}"
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(url, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    return [record.getMessage() for record in caplog.records if record.name == "werkzeug"]


def test_access_log_plain_when_redirected(setup, caplog):
    lines = fetch_and_log(create_app(*setup), caplog, "/missing")
    assert len(lines) == 1
    assert lines[0].endswith('"GET /missing HTTP/1.1" 404 -')
    assert "\x1b[" not in lines[0]


def test_access_log_coloured_on_terminal(setup, caplog, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    lines = fetch_and_log(create_app(*setup), caplog, "/missing")
    assert len(lines) == 1
    assert "\x1b[" in lines[0]
