import json

import numpy as np
import pytest
from PIL import Image

from siamese_mnist.checkpoint import load_checkpoint, save_checkpoint
from siamese_mnist.cli import main
from siamese_mnist.data import load_dataset
from siamese_mnist.embed import embed_images, pair_distances_from_embeddings
from siamese_mnist.model import EmbeddingNet
from siamese_mnist.preprocess import MAX_PIXELS
from siamese_mnist.config import TrainConfig

N_CANDIDATES = 300
N_PAIRS = 4


@pytest.fixture(scope="module")
def confident_pairs(short_run, real_mnist):
    """Same and different test-digit pairs whose distance is far from the threshold.

    Returns ``(same, different, images, labels)``: lists of index pairs into the
    first `N_CANDIDATES` test digits. Same pairs lie below half the threshold and
    different pairs above twice it, so preprocessing changes of a few grey
    levels cannot flip their verdict.
    """
    model, state = load_checkpoint(short_run / "model.pt")
    dataset = load_dataset(real_mnist, download=False)
    images, labels = dataset.test_images[:N_CANDIDATES], dataset.test_labels[:N_CANDIDATES]
    embeddings = embed_images(model, images, **state["normalization"])
    index_a, index_b = np.triu_indices(N_CANDIDATES, k=1)
    distances = pair_distances_from_embeddings(embeddings, index_a, index_b)
    threshold = state["threshold"]
    same, different, used = [], [], set()
    # Walk the pairs in index order and use each image once, so every digit class can appear.
    for a, b, distance in zip(index_a, index_b, distances):
        if a in used or b in used:
            continue
        if labels[a] == labels[b] and distance < threshold / 2 and len(same) < N_PAIRS:
            same.append((a, b))
        elif labels[a] != labels[b] and distance > 2 * threshold and len(different) < N_PAIRS:
            different.append((a, b))
        else:
            continue
        used.update((a, b))
    assert len(same) == N_PAIRS
    assert len(different) == N_PAIRS
    return same, different, images, labels


def save_digit(digit, path, dark_on_light=False, scale=1):
    image = Image.fromarray(255 - digit if dark_on_light else digit)
    if scale != 1:
        image = image.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    image.save(path)
    return str(path)


def run_compare(capsys, checkpoint, paths, *options):
    code = main(["compare", "--checkpoint", str(checkpoint), *options, *paths])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("style", ["plain", "dark-on-light-4x", "mixed"])
def test_compare_verdicts_on_mnist_pngs(tmp_path, capsys, short_run, confident_pairs, style):
    same, different, images, _ = confident_pairs
    paths, expected = [], []
    for pairs, verdict in ((same, "same"), (different, "different")):
        for a, b in pairs:
            plain_a = save_digit(images[a], tmp_path / f"{a}.png")
            inverted_b = save_digit(images[b], tmp_path / f"{b}-inverted-4x.png", dark_on_light=True,
                                    scale=4)
            if style == "plain":
                paths += [plain_a, save_digit(images[b], tmp_path / f"{b}.png")]
            elif style == "dark-on-light-4x":
                paths += [save_digit(images[a], tmp_path / f"{a}-inverted-4x.png", dark_on_light=True,
                                     scale=4), inverted_b]
            else:
                paths += [plain_a, inverted_b]
            expected.append(verdict)
    code, out, err = run_compare(capsys, short_run / "model.pt", paths, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [p["verdict"] for p in report["pairs"]] == expected
    assert [p["image_a"] for p in report["pairs"]] == paths[0::2]
    assert [p["image_b"] for p in report["pairs"]] == paths[1::2]


def test_compare_image_with_its_inverted_enlargement(tmp_path, capsys, short_run, confident_pairs):
    _, different, images, _ = confident_pairs
    paths = []
    for a, _ in different:
        paths += [save_digit(images[a], tmp_path / f"{a}.png"),
                  save_digit(images[a], tmp_path / f"{a}-4x.png", dark_on_light=True, scale=4)]
    code, out, err = run_compare(capsys, short_run / "model.pt", paths, "--json")
    assert code == 0, err
    assert [p["verdict"] for p in json.loads(out)["pairs"]] == ["same"] * len(different)


def test_compare_text_output(tmp_path, capsys, short_run, confident_pairs):
    same, different, images, _ = confident_pairs
    (a, b), (c, d) = same[0], different[0]
    paths = [save_digit(images[i], tmp_path / f"{i}.png") for i in (a, b, c, d)]
    code, out, err = run_compare(capsys, short_run / "model.pt", paths)
    assert code == 0, err
    _, state = load_checkpoint(short_run / "model.pt")
    lines = out.splitlines()
    assert len(lines) == 2
    first, second = lines[0].split(), lines[1].split()
    assert first[:3] == [paths[0], paths[1], "distance"]
    assert first[-3:] == ["threshold", f"{state['threshold']:.4f}", "same"]
    assert second[:2] == [paths[2], paths[3]]
    assert second[-1] == "different"
    assert float(first[3]) < state["threshold"] < float(second[3])


def test_compare_json_fields(tmp_path, capsys, short_run, confident_pairs):
    same, _, images, _ = confident_pairs
    paths = [save_digit(images[i], tmp_path / f"{i}.png") for i in same[0]]
    code, out, _ = run_compare(capsys, short_run / "model.pt", paths, "--json")
    assert code == 0
    report = json.loads(out)
    _, state = load_checkpoint(short_run / "model.pt")
    assert report["checkpoint"] == str(short_run / "model.pt")
    pair = report["pairs"][0]
    assert set(pair) == {"image_a", "image_b", "distance", "threshold", "same", "verdict"}
    assert pair["threshold"] == state["threshold"]
    assert pair["same"] is True
    assert 0 <= pair["distance"] < state["threshold"] / 2


def test_compare_same_file_distance_zero(tmp_path, capsys, short_run, confident_pairs):
    _, _, images, _ = confident_pairs
    path = save_digit(images[0], tmp_path / "0.png")
    code, out, _ = run_compare(capsys, short_run / "model.pt", [path, path], "--json")
    assert code == 0
    assert json.loads(out)["pairs"][0]["distance"] < 1e-5


def assert_one_line_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    for fragment in fragments:
        assert fragment in err


@pytest.fixture()
def digit_png(tmp_path, confident_pairs):
    return save_digit(confident_pairs[2][0], tmp_path / "digit.png")


def test_compare_odd_number_of_files(tmp_path, capsys, short_run, digit_png):
    code, out, err = run_compare(capsys, short_run / "model.pt", [digit_png, digit_png, digit_png])
    assert_one_line_error(code, out, err, digit_png, "odd", "in pairs")


def test_compare_missing_file(tmp_path, capsys, short_run, digit_png):
    missing = str(tmp_path / "missing.png")
    code, out, err = run_compare(capsys, short_run / "model.pt", [digit_png, missing])
    assert_one_line_error(code, out, err, f"{missing}: file not found")


def test_compare_not_an_image(tmp_path, capsys, short_run, digit_png):
    text = tmp_path / "notes.jpg"
    text.write_text("just text")
    code, out, err = run_compare(capsys, short_run / "model.pt", [str(text), digit_png])
    assert_one_line_error(code, out, err, f"{text}: not a PNG")


def test_compare_blank_image(tmp_path, capsys, short_run, digit_png):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), "white").save(blank)
    code, out, err = run_compare(capsys, short_run / "model.pt", [digit_png, str(blank)])
    assert_one_line_error(code, out, err, f"{blank}: blank image")


def test_compare_image_over_pixel_limit(tmp_path, capsys, short_run, digit_png):
    side = int(MAX_PIXELS ** 0.5) + 1
    large = tmp_path / "large.png"
    Image.new("L", (side, side)).save(large)
    code, out, err = run_compare(capsys, short_run / "model.pt", [digit_png, str(large)])
    assert_one_line_error(code, out, err, f"{large}: {side}x{side} pixels is over the limit")


def test_compare_missing_checkpoint(tmp_path, capsys, digit_png):
    code, out, err = run_compare(capsys, tmp_path / "none.pt", [digit_png, digit_png])
    assert_one_line_error(code, out, err, "checkpoint not found")


def test_compare_checkpoint_without_threshold(tmp_path, capsys, digit_png):
    checkpoint = tmp_path / "bare.pt"
    save_checkpoint(checkpoint, EmbeddingNet(), TrainConfig(), {"mean": 0.13, "std": 0.31})
    code, out, err = run_compare(capsys, checkpoint, [digit_png, digit_png])
    assert_one_line_error(code, out, err, f"{checkpoint}: the checkpoint has no threshold")
