"""A local web page to draw or upload two digits and compare them with a checkpoint.

The page (``web/``, plain HTML, CSS and JavaScript, no external files) posts
both images to ``/api/compare``. The JSON response contains the preprocessed
28x28 inputs, the distance, the threshold, the verdict and the nearest
test-set digits to each input.
"""

import base64
import io
import logging
import socket
import sys
import threading
from pathlib import Path

import numpy as np
import torch
from flask import Flask, jsonify, request
from PIL import Image
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from siamese_mnist.compare import embed_tensors
from siamese_mnist.embed import embed_images
from siamese_mnist.errors import UserError
from siamese_mnist.preprocess import MAX_PIXELS, load_digit

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
# The limit covers both images of one request together.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
DEFAULT_NEIGHBOURS = 5
FIELDS = ("a", "b")


def png_data_url(digit):
    """Return a uint8 ``(28, 28)`` image as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class Gallery:
    """Embedded reference digits (the MNIST test split) for nearest-neighbour look-ups."""

    def __init__(self, model, images, labels, normalization):
        self.images = images
        self.labels = labels
        self.embeddings = embed_images(model, images, **normalization)  # (n, embedding_dim)

    def nearest(self, embedding, k):
        """Return the `k` gallery digits closest to `embedding`, closest first."""
        distances = np.linalg.norm(self.embeddings - embedding, axis=1)
        k = min(k, len(distances))
        index = np.argpartition(distances, k - 1)[:k]
        index = index[np.argsort(distances[index], kind="stable")]
        return [{"index": int(i), "label": int(self.labels[i]), "distance": float(distances[i]),
                 "image": png_data_url(self.images[i])} for i in index]


def read_upload(field, normalization, max_pixels):
    upload = request.files.get(field)
    name = f"image {field.upper()}"
    if upload is None:
        raise UserError(f"{name} missing: send two images in the form fields 'a' and 'b'")
    data = upload.read()
    if not data:
        raise UserError(f"{name}: the uploaded file is empty")
    return load_digit(io.BytesIO(data), normalization, name, max_pixels)


def create_app(model, state, gallery_images, gallery_labels, neighbours=DEFAULT_NEIGHBOURS,
               max_upload_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS):
    """Build the Flask app, embedding the gallery digits once.

    Parameters
    ----------
    model : EmbeddingNet
    state : dict
        The checkpoint state, for ``normalization`` and ``threshold``.
    gallery_images : uint8 ndarray (n, 28, 28)
        Reference digits shown as nearest neighbours (the MNIST test split).
    gallery_labels : int ndarray (n,)
    neighbours : int
        Nearest gallery digits returned per input.
    max_upload_bytes : int
        Largest request body; larger requests get HTTP 413.
    max_pixels : int
        Largest image (width x height) accepted; larger ones get HTTP 400.
    """
    normalization = state["normalization"]
    threshold = float(state["threshold"])
    gallery = Gallery(model, gallery_images, gallery_labels, normalization)
    # Flask serves requests on several threads. One comparison at a time bounds
    # the memory of decoding large images and keeps torch from oversubscribing the cores.
    compare_lock = threading.Lock()

    app = Flask(__name__, static_folder=str(WEB_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/info")
    def info():
        return jsonify(threshold=threshold, threshold_method=state.get("threshold_method"),
                       gallery_size=len(gallery_labels), neighbours=neighbours)

    @app.post("/api/compare")
    def compare():
        with compare_lock:
            try:
                inputs = [read_upload(field, normalization, max_pixels) for field in FIELDS]
            except UserError as exc:
                log.warning("rejected upload from %s: %s", request.remote_addr, exc)
                return jsonify(error=str(exc)), 400
            embeddings = embed_tensors(model, [item.tensor for item in inputs])
        distance = torch.linalg.vector_norm(embeddings[0] - embeddings[1]).item()
        same = distance < threshold
        return jsonify(
            distance=distance, threshold=threshold, same=same,
            verdict="same" if same else "different",
            inputs=[png_data_url(item.digit) for item in inputs],
            neighbours=[gallery.nearest(e.numpy(), neighbours) for e in embeddings],
        )

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if exc.code == 413:
            message = (f"request too large: the limit is {max_upload_bytes // (1024 * 1024)} MB "
                       "for both images together; send smaller images")
        else:
            message = f"{exc.name}: {exc.description}"
        log.info("HTTP %s for %s %s: %s", exc.code, request.method, request.path, message)
        return jsonify(error=message), exc.code

    return app


class AccessLogHandler(WSGIRequestHandler):
    """Request handler whose access log has colour codes only when stderr is a terminal."""

    def log_request(self, code="-", size="-"):
        if sys.stderr.isatty():
            super().log_request(code, size)
            return
        # Control characters in the request line are escaped, as werkzeug does.
        line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in self.requestline)
        self.log("info", '"%s" %s %s', line, code, size)


def bind_server(app, host, port):
    """Return a threaded WSGI server for `app` bound to `host`:`port`; port 0 picks a free port."""
    # Bind here rather than in werkzeug, which prints and exits on a port in use.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}); "
                        "pass another --port or --host") from None
    with listener:
        return make_server(host, port, app, threaded=True, fd=listener.fileno(),
                           request_handler=AccessLogHandler)


def run_server(app, host, port):
    """Serve `app` on `host`:`port` until Ctrl+C; port 0 picks a free port."""
    server = bind_server(app, host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: other machines on the network can reach this page", host)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown_host}:{server.server_address[1]}/ (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
