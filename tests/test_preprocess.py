import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, PngImagePlugin
from scipy import ndimage

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


# Photos and scans built from real MNIST test digits: each digit is enlarged
# 10 times to 280x280 and drawn dark on white, as a user would photograph it.

PAGE = 280


def mnist_page(digit, margin=0):
    """A real digit enlarged to a dark-on-white float64 page, `margin` white pixels around it."""
    enlarged = Image.fromarray(digit).resize((PAGE, PAGE), Image.Resampling.BILINEAR)
    page = 255.0 - np.asarray(enlarged, dtype=np.float64)
    return np.pad(page, margin, constant_values=255.0)


def photo(page):
    return Image.fromarray(np.clip(np.rint(page), 0, 255).astype(np.uint8))


def global_level_preprocess(page):
    """Slow reference: the pipeline with one background level for the whole page and no speck check.

    It inverts, stretches the border median to 0 and the darkest ink to 1,
    crops to every pixel above the 5 % ink floor, and scales and centres as
    `preprocess` does. On a clean page `preprocess` must agree with it.
    """
    grey = 255.0 - np.clip(np.rint(page), 0, 255)
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    background = np.median(border)
    ink = np.clip((grey - background) / (grey.max() - background), 0.0, 1.0)
    rows = np.flatnonzero((ink > 0.05).any(axis=1))
    cols = np.flatnonzero((ink > 0.05).any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = 20 / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    digit = np.clip(np.asarray(Image.fromarray(ink.astype(np.float32)).resize(
        size, Image.Resampling.LANCZOS), dtype=np.float64), 0.0, 1.0)
    row, col = centre_of_mass(digit)
    top = int(np.clip(round(CENTRE - row), 0, 28 - digit.shape[0]))
    left = int(np.clip(round(CENTRE - col), 0, 28 - digit.shape[1]))
    canvas = np.zeros((28, 28))
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.rint(canvas * 255.0).astype(np.uint8)


def mean_difference(a, b):
    return np.abs(a.astype(int) - b.astype(int)).mean()


def box_shift(a, b):
    return np.abs(np.subtract(bounding_box(a), bounding_box(b))).max()


@pytest.fixture(scope="module")
def mnist_test_set(real_mnist):
    dataset = load_dataset(real_mnist, download=False)
    return dataset.test_images, dataset.test_labels


def test_clean_page_matches_global_level(mnist_test_set):
    images, _ = mnist_test_set
    differences, within_one_level = [], 0
    for index in range(40):
        page = mnist_page(images[index])
        digit = preprocess(photo(page), NORMALIZATION).digit
        expected = global_level_preprocess(page)
        assert box_shift(digit, expected) == 0, index
        assert np.hypot(*np.subtract(centre_of_mass(digit), centre_of_mass(expected))) < 0.1, index
        differences.append(mean_difference(digit, expected))
        within_one_level += np.abs(digit.astype(int) - expected).max() <= 1
    # A fitted background a fraction of a grey level above 0 near the strokes
    # can move the crop by a pixel of the 280x280 page, which shifts the
    # Lanczos resampling a little.
    assert max(differences) < 1.0
    assert np.mean(differences) < 0.05
    assert within_one_level >= 36


def test_far_speck_dropped(mnist_test_set):
    images, _ = mnist_test_set
    for index in range(20):
        clean = mnist_page(images[index], margin=60)
        speckled = clean.copy()
        speckled[385:393, 8:16] = 0  # an 8x8 pen dot, 46 % of the digit's size or more from it
        digit = preprocess(photo(speckled), NORMALIZATION).digit
        clean_digit = preprocess(photo(clean), NORMALIZATION).digit
        assert box_shift(digit, clean_digit) == 0, index
        assert mean_difference(digit, clean_digit) < 0.5, index
        # Kept in the box, the dot would shrink and move the digit.
        assert box_shift(global_level_preprocess(speckled), digit) >= 3, index


def test_speck_darker_than_pencil_sets_no_level(mnist_test_set):
    images, _ = mnist_test_set
    pencil = 255.0 - (255.0 - mnist_page(images[0], margin=60)) * 0.4  # grey 153 at most
    speckled = pencil.copy()
    speckled[385:393, 8:16] = 0
    digit = preprocess(photo(speckled), NORMALIZATION).digit
    clean = preprocess(photo(pencil), NORMALIZATION).digit
    assert digit.max() == 255
    # The placement may round to the next whole pixel, so compare the digits
    # inside their boxes.
    top, bottom, left, right = bounding_box(digit)
    clean_top, clean_bottom, clean_left, clean_right = bounding_box(clean)
    assert (bottom - top, right - left) == (clean_bottom - clean_top, clean_right - clean_left)
    inside = digit[top:bottom + 1, left:right + 1]
    clean_inside = clean[clean_top:clean_bottom + 1, clean_left:clean_right + 1]
    # A pixel at the ink floor can round either way and move the crop by one
    # pixel of the page, which shifts the resampling: a few grey levels.
    assert mean_difference(inside, clean_inside) < 5.0
    assert abs(int(digit.sum()) / int(clean.sum()) - 1.0) < 0.03


def detach_top(page, share_of_height, gap):
    """Move the top `share_of_height` of the digit up by `gap` pixels, leaving white between."""
    rows = np.flatnonzero((page < 128).any(axis=1))
    cut = rows[0] + round(share_of_height * (rows[-1] - rows[0] + 1))
    detached = np.full_like(page, 255.0)
    detached[cut:] = page[cut:]
    detached[rows[0] - gap:cut - gap] = page[rows[0]:cut]
    return detached


@pytest.mark.parametrize("label", [5, 7])
def test_detached_top_bar_kept(mnist_test_set, label):
    images, labels = mnist_test_set
    for index in np.flatnonzero(labels == label)[:10]:
        page = detach_top(mnist_page(images[index], margin=60), 0.25, gap=30)
        _, count = ndimage.label(page < 243, structure=np.ones((3, 3)))
        assert count >= 2, index  # the bar really is detached
        digit = preprocess(photo(page), NORMALIZATION).digit
        # The reference keeps every piece, so agreeing with it means nothing was dropped.
        assert np.abs(digit.astype(int) - global_level_preprocess(page)).max() <= 1, index


def test_broken_pencil_strokes_kept(mnist_test_set):
    images, _ = mnist_test_set
    for index in range(20):
        page = mnist_page(images[index], margin=60)
        faint = 255.0 - (255.0 - page) * 0.35  # light pencil, grey 166 at most
        rows = np.arange(page.shape[0])
        faint[(rows // 8) % 4 == 0] = 255.0  # 8-pixel breaks across every stroke
        _, count = ndimage.label(faint < 230, structure=np.ones((3, 3)))
        assert count >= 3, index
        digit = preprocess(photo(faint), NORMALIZATION).digit
        assert np.abs(digit.astype(int) - global_level_preprocess(faint)).max() <= 1, index


LIGHTING = {
    # Light falling off to 45 % across the page, as under a lamp to one side.
    "gradient": lambda rows, cols: 1.0 - 0.55 * cols,
    "diagonal": lambda rows, cols: 1.0 - 0.3 * cols - 0.3 * rows,
    "vignette": lambda rows, cols: 1.0 - ((rows - 0.5) ** 2 + (cols - 0.5) ** 2),
}


@pytest.mark.parametrize("lighting", sorted(LIGHTING))
def test_uneven_lighting_removed(mnist_test_set, lighting):
    images, _ = mnist_test_set
    rows, cols = np.mgrid[:PAGE, :PAGE] / (PAGE - 1)
    differences, old_differences = [], []
    for index in range(30):
        page = mnist_page(images[index])
        clean = preprocess(photo(page), NORMALIZATION).digit
        lit = page * LIGHTING[lighting](rows, cols)
        digit = preprocess(photo(lit), NORMALIZATION).digit
        assert box_shift(digit, clean) <= 1, index
        assert np.hypot(*np.subtract(centre_of_mass(digit), centre_of_mass(clean))) <= 0.6, index
        differences.append(mean_difference(digit, clean))
        old_differences.append(mean_difference(global_level_preprocess(lit), clean))
    assert np.mean(differences) < 1.0
    assert max(differences) < 8.0
    # One background level for the whole page fails on the same photos.
    assert np.mean(old_differences) > 15.0


def test_soft_shadow_removed(mnist_test_set):
    images, _ = mnist_test_set
    rows, cols = np.mgrid[:PAGE, :PAGE] / (PAGE - 1)
    # A shadow over the right third that darkens the page by 45 %. Its edge
    # goes from 10 % to 90 % of that over a quarter of the page.
    shade = 1.0 - 0.45 / (1.0 + np.exp(-(cols - 0.65) / 0.06))
    differences, shifted = [], 0
    for index in range(30):
        page = mnist_page(images[index])
        clean = preprocess(photo(page), NORMALIZATION).digit
        digit = preprocess(photo(page * shade), NORMALIZATION).digit
        differences.append(mean_difference(digit, clean))
        shifted += box_shift(digit, clean) > 1
    assert np.mean(differences) < 6.0
    assert shifted <= 3


def test_blank_page_with_uneven_lighting_rejected():
    rows, cols = np.mgrid[:PAGE, :PAGE] / (PAGE - 1)
    noise = np.random.default_rng(0).normal(0.0, 3.0, (PAGE, PAGE))
    page = 240.0 * (1.0 - 0.5 * cols - 0.2 * rows) + noise
    with pytest.raises(UserError, match="page.jpg: blank image"):
        preprocess(photo(page), NORMALIZATION, name="page.jpg")


def test_thirty_two_bit_scaled_by_range():
    grey = np.asarray(seven())
    reference = preprocess(Image.fromarray(grey), NORMALIZATION).digit
    for image in (Image.fromarray(grey.astype(np.float32) / 255.0),
                  Image.fromarray(grey.astype(np.float32) * 1000.0 - 7.5),
                  Image.fromarray(grey.astype(np.int32) * 70_000 - 300_000)):
        assert image.mode in ("I", "F")
        assert np.array_equal(preprocess(image, NORMALIZATION).digit, reference), image.mode


def test_thirty_two_bit_constant_rejected():
    with pytest.raises(UserError, match="blank image"):
        preprocess(Image.fromarray(np.full((40, 40), 0.7, np.float32)), NORMALIZATION)


def test_old_pillow_sixteen_bit_png(tmp_path, monkeypatch):
    # Older Pillow releases decode 16-bit grey PNG files to 32-bit "I".
    grey = np.asarray(seven())
    path = save(Image.fromarray(grey.astype(np.uint16) * 257), tmp_path / "seven16.png")
    monkeypatch.setitem(PngImagePlugin._MODES, (16, 0), ("I", "I;16B"))
    with Image.open(path) as raw:
        assert raw.mode == "I"
    opened = open_image(path, "seven16.png")
    assert opened.mode == "I;16"
    assert np.array_equal(preprocess(opened, NORMALIZATION).digit,
                          preprocess(Image.fromarray(grey), NORMALIZATION).digit)


def test_sixteen_bit_transparent_value(tmp_path):
    reference = preprocess(Image.fromarray(disk(90, 70, (40, 30), 18)), NORMALIZATION).digit
    # Ink at grey 10 on a canvas whose value 0 is marked transparent.
    values = np.where(disk(90, 70, (40, 30), 18) > 0, 2570, 0).astype(np.uint16)
    path = save(Image.fromarray(values), tmp_path / "ink16.png", transparency=0)
    opened = open_image(path, "ink16.png")
    assert opened.mode == "I;16"
    assert opened.info["transparency"] == 0
    assert np.array_equal(preprocess(opened, NORMALIZATION).digit, reference)


def test_tight_bold_crop_keeps_border_level():
    # A thick ring cropped so tight that ink covers 63 % of the image: too
    # little page for a background fit, so the border median is the level.
    ring = Image.new("L", (120, 160), 255)
    ImageDraw.Draw(ring).ellipse([5, 5, 115, 155], outline=0, width=45)
    page = np.asarray(ring, dtype=np.float64)
    assert (page < 128).mean() > 0.6
    digit = preprocess(ring, NORMALIZATION).digit
    assert np.abs(digit.astype(int) - global_level_preprocess(page)).max() <= 1
