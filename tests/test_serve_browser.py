"""Drive the served page in headless Chromium: draw on both canvases, compare, read the verdict."""

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP_SECONDS = 180  # importing torch and embedding 10,000 digits on a busy 2-core machine

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason="Chromium not installed (Debian package 'chromium')")


@pytest.fixture(scope="module")
def server_url(short_run, real_mnist):
    """Run ``siamese-mnist serve`` on a free loopback port; yield its URL."""
    command = [sys.executable, "-m", "siamese_mnist", "serve", "--checkpoint", str(short_run / "model.pt"),
               "--port", "0", "--data-dir", str(real_mnist)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = queue.Queue()
    # A thread drains the output, so that the server never blocks on a full pipe.
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output = []
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    try:
        while url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"server did not start in {STARTUP_SECONDS} s; output: {''.join(output)}")
            output.append(line)
            if line.startswith("serving on "):
                url = line.split()[2]
            elif process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}; output: {''.join(output)}")
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, server_url):
    page = browser.new_page()
    page.goto(server_url)
    yield page
    page.close()


def draw_stroke(page, canvas, points):
    """Drag the mouse through `points`, given as fractions of the canvas size."""
    box = page.locator(canvas).bounding_box()
    xs = [box["x"] + fx * box["width"] for fx, _ in points]
    ys = [box["y"] + fy * box["height"] for _, fy in points]
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for x, y in zip(xs[1:], ys[1:]):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def draw_seven(page, canvas):
    draw_stroke(page, canvas, [(0.25, 0.2), (0.75, 0.2)])
    draw_stroke(page, canvas, [(0.72, 0.25), (0.45, 0.85)])


def read_numbers(page):
    """Return the distance and threshold shown on the page."""
    match = re.match(r"distance (\d+\.\d+), threshold (\d+\.\d+) ", page.locator("#numbers").inner_text())
    assert match, page.locator("#numbers").inner_text()
    return float(match[1]), float(match[2])


def test_draw_and_compare_same(page):
    draw_seven(page, "#canvas-a")
    draw_seven(page, "#canvas-b")
    page.click("#compare")
    verdict = page.locator("#verdict")
    verdict.wait_for(state="visible", timeout=30_000)
    assert verdict.get_attribute("data-verdict") == "same"
    assert verdict.inner_text() == "Same digit"
    # The two canvases sit at different page offsets, so the same mouse path
    # rasterizes a little differently on each and the distance is small but not zero.
    distance, threshold = read_numbers(page)
    assert distance < threshold / 4
    # The preprocessed inputs are 28x28 images, and each side lists 5 test digits.
    for side in ("a", "b"):
        width = page.eval_on_selector(f"#input-{side}", "image => image.naturalWidth")
        assert width == 28
        assert page.locator(f"#neighbours-{side} li").count() == 5
    assert page.locator("#error").is_hidden()


def test_draw_and_compare_different_strokes(page):
    draw_seven(page, "#canvas-a")
    # A zero: a loop drawn as two half strokes.
    draw_stroke(page, "#canvas-b", [(0.5, 0.15), (0.3, 0.3), (0.28, 0.6), (0.5, 0.85)])
    draw_stroke(page, "#canvas-b", [(0.5, 0.15), (0.7, 0.3), (0.72, 0.6), (0.5, 0.85)])
    page.click("#compare")
    verdict = page.locator("#verdict")
    verdict.wait_for(state="visible", timeout=30_000)
    distance, threshold = read_numbers(page)
    expected = "same" if distance < threshold else "different"
    assert verdict.get_attribute("data-verdict") == expected
    assert distance > 0


def test_blank_canvas_error(page):
    draw_seven(page, "#canvas-a")
    page.click("#compare")
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=30_000)
    assert error.inner_text().startswith("image B: blank image")
    assert page.locator("#result").is_hidden()


def test_upload_non_image_error(page, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    page.set_input_files("#file-a", str(notes))
    draw_seven(page, "#canvas-b")
    page.click("#compare")
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=30_000)
    assert error.inner_text() == "image A: not a PNG, JPEG, BMP, GIF or WebP image"
