import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from siamese_mnist.data import load_dataset
from siamese_mnist.errors import UserError
from siamese_mnist.preprocess import CENTRE, open_image, preprocess

NORMALIZATION = {"mean": 0.13, "std": 0.31}


def centre_of_mass(digit):
    digit = digit.astype(np.float64)
    mass = digit.sum()
    rows, cols = np.arange(digit.shape[0]), np.arange(digit.shape[1])
    return (digit.sum(axis=1) * rows).sum() / mass, (digit.sum(axis=0) * cols).sum() / mass


def bounding_box(digit):
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def disk(height, width, centre, radius):
    """White disk (255) on black, hard-edged, as uint8 ``(height, width)``."""
    rows, cols = np.mgrid[:height, :width]
    inside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2
    return np.where(inside, 255, 0).astype(np.uint8)


def seven(width=160, height=220, offset=(0, 0)):
    """A white hand-drawn-like 7 on black: asymmetric, with its mass away from its box centre."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    x, y = offset
    draw.line([(x + 30, y + 40), (x + 130, y + 40), (x + 70, y + 190)], fill=255, width=14)
    return image


def test_centred_blob_stays_centred():
    digit = preprocess(Image.fromarray(disk(101, 101, (50, 50), 20)), NORMALIZATION).digit
    row, col = centre_of_mass(digit)
    assert abs(row - CENTRE) <= 0.5
    assert abs(col - CENTRE) <= 0.5
    top, bottom, left, right = bounding_box(digit)
    assert bottom - top + 1 == 20
    assert right - left + 1 == 20
    blob = digit[top:bottom + 1, left:right + 1]
    assert np.array_equal(blob, blob[::-1, :])
    assert np.array_equal(blob, blob[:, ::-1])


def test_inverted_image_gives_same_tensor():
    original = seven()
    inverted = Image.fromarray(255 - np.asarray(original))
    a = preprocess(original, NORMALIZATION)
    b = preprocess(inverted, NORMALIZATION)
    assert np.array_equal(a.digit, b.digit)
    assert torch.equal(a.tensor, b.tensor)


def test_off_centre_digit_centred_by_mass():
    image = seven(width=600, height=400, offset=(400, 150))
    digit = preprocess(image, NORMALIZATION).digit
    row, col = centre_of_mass(digit)
    assert abs(row - CENTRE) <= 0.5
    assert abs(col - CENTRE) <= 0.5
    # The 7's mass sits up and to the right of its box, so centring the box
    # instead of the mass would leave the centre of mass off by a pixel or more.
    top, bottom, left, right = bounding_box(digit)
    assert abs((top + bottom) / 2 - row) >= 1.0


def test_shift_matches_position_independence():
    a = preprocess(seven(width=400, height=400, offset=(0, 0)), NORMALIZATION).digit
    b = preprocess(seven(width=400, height=400, offset=(230, 170)), NORMALIZATION).digit
    assert np.array_equal(a, b)


def test_aspect_ratio_kept():
    bar = np.zeros((120, 120), np.uint8)
    bar[20:100, 54:66] = 255  # 80 tall, 12 wide
    digit = preprocess(Image.fromarray(bar), NORMALIZATION).digit
    top, bottom, left, right = bounding_box(digit)
    assert bottom - top + 1 == 20
    assert right - left + 1 == 3


def test_small_digit_enlarged_to_box():
    digit = preprocess(Image.fromarray(disk(40, 40, (20, 20), 4)), NORMALIZATION).digit
    top, bottom, left, right = bounding_box(digit > 0)
    assert bottom - top + 1 >= 20


def test_rgba_transparent_background():
    reference = preprocess(Image.fromarray(disk(90, 70, (40, 30), 18)), NORMALIZATION)
    alpha = disk(90, 70, (40, 30), 18)
    dark_on_clear = np.zeros((90, 70, 4), np.uint8)
    dark_on_clear[..., 3] = alpha  # black ink, transparent elsewhere
    light_on_clear = dark_on_clear.copy()
    light_on_clear[..., :3] = 255  # white ink, transparent elsewhere
    for pixels in (dark_on_clear, light_on_clear):
        result = preprocess(Image.fromarray(pixels, "RGBA"), NORMALIZATION)
        assert np.array_equal(result.digit, reference.digit)


def test_rgb_same_as_grey():
    grey = np.asarray(seven())
    rgb = np.stack([grey] * 3, axis=-1)
    a = preprocess(Image.fromarray(grey), NORMALIZATION).digit
    b = preprocess(Image.fromarray(rgb), NORMALIZATION).digit
    assert np.array_equal(a, b)


def test_sixteen_bit_grey_same_as_eight_bit():
    grey = np.asarray(seven())
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    assert wide.mode.startswith("I;16")
    a = preprocess(Image.fromarray(grey), NORMALIZATION).digit
    b = preprocess(wide, NORMALIZATION).digit
    assert np.array_equal(a, b)


def test_grey_paper_stretched_to_black():
    grey = np.asarray(seven()).astype(np.float64)
    # Pencil at grey level 90 on paper at 200.
    photo = Image.fromarray(np.rint(200 - grey / 255 * 110).astype(np.uint8))
    a = preprocess(seven(), NORMALIZATION).digit
    b = preprocess(photo, NORMALIZATION).digit
    assert b.max() == 255
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_tensor_is_normalized_digit():
    result = preprocess(seven(), NORMALIZATION)
    expected = (torch.from_numpy(result.digit).float() / 255 - 0.13) / 0.31
    assert result.tensor.shape == (1, 28, 28)
    assert result.tensor.dtype == torch.float32
    assert torch.allclose(result.tensor[0], expected)


def test_digit_stays_inside_frame():
    # A drop shape with nearly all its mass in one corner of its box.
    wedge = np.zeros((200, 200), np.uint8)
    wedge[10:190, 10:30] = 255
    wedge[10:30, 10:190] = 255
    wedge[10:60, 10:60] = 255
    digit = preprocess(Image.fromarray(wedge), NORMALIZATION).digit
    top, bottom, left, right = bounding_box(digit)
    assert (bottom - top + 1, right - left + 1) == (20, 20)
    assert top >= 0
    assert left >= 0
    assert bottom <= 27
    assert right <= 27


@pytest.mark.parametrize("pixels", [
    np.full((50, 60), 255, np.uint8),
    np.zeros((50, 60), np.uint8),
    np.full((50, 60), 128, np.uint8),
    np.random.default_rng(0).integers(120, 140, size=(50, 60)).astype(np.uint8),
], ids=["white", "black", "grey", "faint-noise"])
def test_blank_image_rejected(pixels):
    with pytest.raises(UserError, match="drawing.png: blank image"):
        preprocess(Image.fromarray(pixels), NORMALIZATION, name="drawing.png")


def test_fully_transparent_rejected():
    pixels = np.zeros((40, 40, 4), np.uint8)
    with pytest.raises(UserError, match="blank image"):
        preprocess(Image.fromarray(pixels, "RGBA"), NORMALIZATION)


def test_mnist_digits_nearly_unchanged(real_mnist):
    dataset = load_dataset(real_mnist, download=False)
    digits = dataset.test_images[:200]
    differences = [np.abs(preprocess(Image.fromarray(d), NORMALIZATION).digit.astype(int) - d).mean()
                   for d in digits]
    assert np.mean(differences) < 0.1
    assert np.mean([d == 0 for d in differences]) > 0.7


def save(image, path, **options):
    image.save(path, **options)
    return path


def test_open_image_formats(tmp_path):
    image = seven().convert("RGB")
    reference = preprocess(image, NORMALIZATION).digit
    for suffix in ("png", "bmp", "gif", "webp"):
        path = save(image, tmp_path / f"seven.{suffix}", **({"lossless": True} if suffix == "webp" else {}))
        opened = open_image(path, f"seven.{suffix}")
        assert np.array_equal(preprocess(opened, NORMALIZATION).digit, reference), suffix
    jpeg = open_image(save(image, tmp_path / "seven.jpg", quality=90), "seven.jpg")
    assert np.abs(preprocess(jpeg, NORMALIZATION).digit.astype(int) - reference).mean() < 3


def test_open_image_from_bytes():
    buffer = io.BytesIO()
    seven().save(buffer, format="PNG")
    image = open_image(io.BytesIO(buffer.getvalue()), "image A")
    assert image.size == (160, 220)


def test_open_image_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.png: file not found"):
        open_image(tmp_path / "nope.png", "nope.png")


def test_open_image_folder(tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        open_image(tmp_path, str(tmp_path))


def test_open_image_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not pixels")
    with pytest.raises(UserError, match="notes.png: not a PNG, JPEG, BMP, GIF or WebP image"):
        open_image(path, "notes.png")


def test_open_image_other_format_rejected(tmp_path):
    path = save(seven(), tmp_path / "seven.tiff")
    with pytest.raises(UserError, match="seven.tiff: not a PNG"):
        open_image(path, "seven.tiff")


def test_open_image_truncated(tmp_path):
    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)).save(
        data, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data.getvalue()[:len(data.getvalue()) // 2])
    with pytest.raises(UserError, match="cut.png: damaged or truncated image"):
        open_image(path, "cut.png")


def test_open_image_over_pixel_limit(tmp_path):
    path = save(seven(), tmp_path / "seven.png")
    with pytest.raises(UserError, match=r"seven.png: 160x220 pixels is over the limit of 30,000"):
        open_image(path, "seven.png", max_pixels=30_000)
    assert open_image(path, "seven.png", max_pixels=160 * 220).size == (160, 220)


@pytest.mark.parametrize("pillow_limit", [20_000, 10_000], ids=["warning", "error"])
def test_open_image_decompression_bomb(tmp_path, monkeypatch, pillow_limit):
    # 35,200 pixels: over Pillow's limit (a warning) or over twice it (an error).
    path = save(seven(), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with pytest.raises(UserError, match="bomb.png: rejected by Pillow's decompression-bomb guard"):
        open_image(path, "bomb.png")
