"""Turn an arbitrary digit image into the 28x28 input the embedding network expects.

The MNIST database page by LeCun, Cortes and Burges describes how its digits
were made from black-and-white NIST scans. Each digit was scaled to fit a 20x20
box keeping its aspect ratio, with anti-aliasing that brings in grey levels.
It was then placed in a 28x28 image with its centre of mass at the centre.
`preprocess` repeats those steps for any image, so that photos, scans and
drawings look to the network like the light-on-black digits it was trained on.
Two steps come before them because NIST scans were clean and user images are
not: uneven lighting is removed by fitting a smooth background surface, and
small specks of ink far from the digit are left out of its bounding box.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from siamese_mnist.errors import UserError
from siamese_mnist.model import normalize

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
FORMAT_NAMES = "PNG, JPEG, BMP, GIF or WebP"
# 16.7 megapixels (4096 x 4096): a 12-megapixel phone photo fits. At this size
# `preprocess` peaked at 257 MiB for a grey or RGB image and 384 MiB for RGBA
# (tracemalloc, numpy 2.4, scipy 1.17). Pillow's own decompression-bomb guard (89
# megapixels by default) is turned into an error as well.
MAX_PIXELS = 4096 * 4096

IMAGE_SIZE = 28
DIGIT_BOX = 20
# Measured on the 10,000 MNIST test digits: the centre of mass lies at row and
# column 14.0 (standard deviation 0.29), counting pixel centres from 0.
CENTRE = 14.0
# Fraction of the ink range below which a pixel counts as background when the
# digit's bounding box is found. It keeps JPEG noise from widening the box.
INK_FLOOR = 0.05
# Grey levels between background and the brightest ink below which an image
# counts as blank (a white page, a uniform photo, JPEG noise only).
MIN_CONTRAST = 24

# The background is fitted as a polynomial surface of this degree in x and y.
# Degree 3 follows a brightness gradient and vignetting, and is too smooth to
# follow strokes, which the fit also leaves out as outliers.
BACKGROUND_DEGREE = 3
# The fit runs on the image reduced to at most this many pixels a side, which
# keeps it fast on large photos. Lighting that changes within one of these
# grid cells is not followed.
BACKGROUND_GRID = 64
# Gain limit of the lighting correction: ink contrast on a page darkened to a
# quarter of white or less is raised 4 times, not more, so that noise in a
# nearly black corner is not stretched into ink.
MIN_PAPER_LEVEL = 255 / 4
# Width (Gaussian sigma) of the local correction that the background fit adds
# to the polynomial, as a fraction of the image's longer side. It follows the
# edge of a shadow that the polynomial cannot.
BACKGROUND_SMOOTHING = 1 / 32

# A connected piece of ink is a speck, and is left out of the bounding box,
# when it contains less than SPECK_MAX_SHARE of all the ink and lies further than
# SPECK_MIN_GAP times the longer side of the digit from it. A detached part of
# a digit is either big (the top bar of a 5 or 7) or close to the rest (a 4
# with a gap, a stroke broken in a faint pencil scan). Dust, pen dots and stray
# marks are small and usually away from the digit.
SPECK_MAX_SHARE = 0.1
SPECK_MIN_GAP = 0.2


@dataclass(frozen=True)
class Preprocessed:
    """One digit ready for the network.

    digit : uint8 ndarray (28, 28), light ink on black, as MNIST stores digits
    tensor : float32 tensor (1, 28, 28), `digit` after the checkpoint's normalization
    """

    digit: np.ndarray
    tensor: torch.Tensor


def open_image(source, name, max_pixels=MAX_PIXELS):
    """Decode a PNG, JPEG, BMP, GIF or WebP image and return it as a loaded PIL image.

    Parameters
    ----------
    source : path-like or binary file object
    name : str
        How error messages refer to the image (a file name, "image A").
    max_pixels : int
        Largest width x height accepted, checked before the pixels are decoded.

    Raises
    ------
    UserError
        For a missing file, a file that is not an image in one of `FORMATS`, a
        damaged image, or one with more than `max_pixels` pixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise UserError(
                        f"{name}: {width}x{height} pixels is over the limit of {max_pixels:,} "
                        "pixels; scale the image down"
                    )
                image.load()
                if image.format == "PNG" and image.mode == "I":
                    # Older Pillow releases open 16-bit grey PNG files as 32-bit "I"
                    # (Pillow 13 opens them as "I;16"). PNG stores at most 16 bits,
                    # so "I;16" keeps the fixed white level of 65535.
                    image = image.convert("I;16")
                # Photos from phones store their rotation in EXIF instead of the pixels.
                return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise UserError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{name}: is a folder, not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"{name}: rejected by Pillow's decompression-bomb guard (over "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels); scale the image down"
        ) from None
    except UnidentifiedImageError:
        raise UserError(f"{name}: not a {FORMAT_NAMES} image") from None
    except PermissionError as exc:
        raise UserError(f"{name}: cannot read the file ({exc.strerror})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UserError(f"{name}: damaged or truncated image ({exc})") from None


def grey_levels(image):
    """Return the luminance of `image` as float32 ``(height, width)`` in 0..255.

    8-bit modes keep their levels, and 16-bit grey ("I;16", from 16-bit PNG
    files) is divided by 257. The 32-bit modes "I" and "F" carry no white
    level, so their observed range is mapped to 0..255, and the blank check in
    `preprocess` then rejects only a constant image of these modes.

    Transparent pixels are laid on a background that contrasts with the opaque
    ones, so a dark digit on a transparent canvas lands on white and a light
    digit on black: either way the digit stays visible.
    """
    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = values.min(), values.max()
        if high == low:
            return np.zeros(values.shape, np.float32)
        return ((values - low) * (255.0 / (high - low))).astype(np.float32)
    if image.mode.startswith("I;16"):
        values = np.asarray(image)
        grey = values.astype(np.float32) / 257.0
        if "transparency" not in image.info:
            return grey
        # A 16-bit grey PNG marks one grey value as transparent.
        alpha = (values != image.info["transparency"]).astype(np.float32)
    elif "A" in image.getbands() or "transparency" in image.info:
        grey_alpha = np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32)
        grey, alpha = grey_alpha[..., 0], grey_alpha[..., 1] / 255.0
    else:
        return np.asarray(image.convert("L"), dtype=np.float32)
    if alpha.sum() == 0:
        return np.zeros_like(grey)
    ink_mean = (grey * alpha).sum() / alpha.sum()
    backdrop = 255.0 if ink_mean < 127.5 else 0.0
    return grey * alpha + backdrop * (1.0 - alpha)


def fit_background(grey):
    """Fit the background of `grey`, light ink on a dark page, as a smooth surface.

    The surface is a polynomial of degree `BACKGROUND_DEGREE` in x and y,
    fitted by least squares to the image reduced to `BACKGROUND_GRID` pixels
    a side. A local correction is added to it: the Gaussian-weighted mean of
    what the polynomial leaves, `BACKGROUND_SMOOTHING` of the image wide.
    Points more than 3 robust standard deviations (at least 1 grey level)
    above the surface are ink and are left out, and the fit is repeated until
    the set of background points stops changing.

    NOTE: a shadow edge sharper than the local correction follows is partly
    left in as ink and can widen the crop. On the enlarged MNIST digits of the
    tests, an edge that rises from 10 % to 90 % over an eighth of the page
    already moved most crops.

    Returns
    -------
    float32 ndarray, the shape of `grey`
        The fitted background level of every pixel.
    """
    height, width = grey.shape
    scale = min(1.0, BACKGROUND_GRID / max(height, width))
    grid_width, grid_height = max(1, round(width * scale)), max(1, round(height * scale))
    small = Image.fromarray(grey).resize((grid_width, grid_height), Image.Resampling.BOX)
    levels = np.asarray(small, dtype=np.float64).ravel()

    # Coordinates in -1..1 across the full image keep the powers well scaled.
    def powers(grid_count, size):
        centres = (np.arange(grid_count) + 0.5) * (size / grid_count) - 0.5
        unit = 2.0 * centres / max(size - 1, 1) - 1.0
        return unit[:, None] ** np.arange(BACKGROUND_DEGREE + 1)  # (grid_count, degree + 1)

    row_powers = powers(grid_height, height)
    col_powers = powers(grid_width, width)
    exponents = [(i, j) for i in range(BACKGROUND_DEGREE + 1)
                 for j in range(BACKGROUND_DEGREE + 1 - i)]
    design = np.stack([np.outer(row_powers[:, i], col_powers[:, j]).ravel()
                       for i, j in exponents], axis=1)  # (points, terms)

    # Start from the darker half of the points, which is background while ink
    # covers less than half the image. Add the wide bright regions that touch
    # the border, as a shadow cast from outside the frame does: a grey
    # opening over a quarter of the image keeps them but removes strokes.
    # Wide regions inside the frame are left out, since bold ink looks the same.
    image_levels = levels.reshape(grid_height, grid_width)
    window = max(3, round(max(grid_height, grid_width) / 4))
    opened = ndimage.grey_opening(image_levels, size=(window, window), mode="nearest")
    above_opened = (image_levels - opened).ravel()
    tolerance = max(3.0 * 1.4826 * np.median(above_opened), 1.0)
    regions, _ = ndimage.label(opened > np.median(levels) + tolerance)
    edge_regions = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    shadow = np.isin(regions, edge_regions[edge_regions > 0]).ravel()
    background_points = (levels <= np.median(levels)) | (shadow & (above_opened <= tolerance))
    sigma = BACKGROUND_SMOOTHING * max(grid_height, grid_width)
    for _ in range(20):
        coefficients = np.linalg.lstsq(design[background_points], levels[background_points],
                                       rcond=None)[0]
        trend_residuals = (levels - design @ coefficients).reshape(grid_height, grid_width)
        # A Gaussian-weighted mean of the background points alone, which
        # bridges the ink instead of following it.
        weights = background_points.reshape(grid_height, grid_width).astype(np.float64)
        weight_sums = ndimage.gaussian_filter(weights, sigma, mode="nearest")
        local = np.divide(ndimage.gaussian_filter(trend_residuals * weights, sigma, mode="nearest"),
                          weight_sums, out=np.zeros_like(weight_sums), where=weight_sums > 1e-3)
        residuals = (trend_residuals - local).ravel()
        spread = 1.4826 * np.median(np.abs(residuals[background_points]))
        updated = residuals <= max(3.0 * spread, 1.0)
        if np.array_equal(updated, background_points) or updated.sum() < len(exponents):
            break
        background_points = updated

    # Evaluate the polynomial at every pixel as (rows x terms) @ (terms x
    # cols), and add the local correction interpolated from the grid.
    full_rows = np.linspace(-1.0, 1.0, height) if height > 1 else np.zeros(1)
    full_cols = np.linspace(-1.0, 1.0, width) if width > 1 else np.zeros(1)
    matrix = np.zeros((BACKGROUND_DEGREE + 1, BACKGROUND_DEGREE + 1))
    for (i, j), coefficient in zip(exponents, coefficients):
        matrix[i, j] = coefficient
    left = (full_rows[:, None] ** np.arange(BACKGROUND_DEGREE + 1)).astype(np.float32)
    right = (matrix @ (full_cols[None, :] ** np.arange(BACKGROUND_DEGREE + 1)[:, None]))
    background = left @ right.astype(np.float32)
    background += np.asarray(Image.fromarray(local.astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR))
    # The polynomial can swing outside the data where ink leaves few points.
    return np.clip(background, levels.min(), levels.max(), out=background)


def drop_specks(ink, name):
    """Return `ink` with specks of ink far from the digit set to 0.

    A speck is a connected piece (8-connected, above `INK_FLOOR`) with less
    than `SPECK_MAX_SHARE` of the total ink that lies more than `SPECK_MIN_GAP`
    times the digit's longer side from it. The digit starts as the piece with
    the most ink and grows by every piece that is not a speck, measured from
    the bounding box of the pieces kept so far, so a chain of stroke fragments
    is kept whole.
    """
    labels, count = ndimage.label(ink > INK_FLOOR, structure=np.ones((3, 3), bool))
    if count == 0:
        raise UserError(f"{name}: blank image, no digit found; draw or photograph a digit")
    if count == 1:
        return ink
    masses = ndimage.sum_labels(ink, labels, np.arange(1, count + 1))
    boxes = np.array([(s[0].start, s[0].stop, s[1].start, s[1].stop)
                      for s in ndimage.find_objects(labels)])  # (count, 4): top, bottom, left, right
    in_digit = masses >= SPECK_MAX_SHARE * masses.sum()
    in_digit[np.argmax(masses)] = True
    while True:
        top, left = boxes[in_digit, 0].min(), boxes[in_digit, 2].min()
        bottom, right = boxes[in_digit, 1].max(), boxes[in_digit, 3].max()
        row_gap = np.maximum(0, np.maximum(top - boxes[:, 1], boxes[:, 0] - bottom))
        col_gap = np.maximum(0, np.maximum(left - boxes[:, 3], boxes[:, 2] - right))
        near = np.hypot(row_gap, col_gap) <= SPECK_MIN_GAP * max(bottom - top, right - left)
        if not (near & ~in_digit).any():
            break
        in_digit |= near
    if in_digit.all():
        return ink
    return np.where(np.concatenate([[False], in_digit])[labels], ink, 0.0)


def preprocess(image, normalization, name="image"):
    """Turn one digit image into an MNIST-style 28x28 input, normalized as in training.

    The steps: convert to greyscale, and invert when the median of the border
    pixels is light. Fit a smooth background surface (`fit_background`) and
    measure each pixel as the fraction of the way from its local background to
    white, which removes gradients and soft shadows. Stretch the levels so
    that the background is 0 and the brightest ink 1. Drop specks of ink far
    from the digit (`drop_specks`), then crop to the digit's bounding box.
    Scale the longer side to 20 pixels keeping the aspect ratio (Lanczos,
    which anti-aliases when shrinking). Paste the result into 28x28 with its
    centre of mass at (14, 14), and apply the checkpoint's mean and std.

    Parameters
    ----------
    image : PIL.Image.Image
        Any size and mode: grey, RGB, RGBA, palette, 16-bit grey, or 32-bit
        integer or float grey (see `grey_levels`).
    normalization : dict
        ``{"mean": float, "std": float}`` from the checkpoint.
    name : str
        How the error message refers to the image.

    Returns
    -------
    Preprocessed

    Raises
    ------
    UserError
        When the image is blank: less than `MIN_CONTRAST` grey levels between
        its background and its brightest ink.

    Examples
    --------
    >>> from PIL import Image, ImageDraw
    >>> page = Image.new("L", (300, 200), 255)
    >>> ImageDraw.Draw(page).line([(150, 20), (150, 180)], fill=0, width=12)
    >>> preprocess(page, {"mean": 0.13, "std": 0.31}).digit.shape
    (28, 28)
    """
    grey = grey_levels(image)

    # MNIST has light ink on black, so a dark digit on light paper is inverted.
    # The border is nearly all background unless the digit fills the image.
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    if np.median(border) > 127.5:
        grey = 255.0 - grey

    # Lighting: a photo's page is darker on one side or under a shadow. For a
    # dark digit on paper, light multiplies both, so dividing the height above
    # the local background by the local paper level (255 - background once
    # inverted) gives the same ink level everywhere on the page. The fit needs
    # the page to be mostly background, so an image cropped so tight that ink
    # (nearer the peak than the border level) covers half of it keeps the
    # border median as one background level.
    border_level = np.median(np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]]))
    mostly_ink = np.mean(grey > (border_level + grey.max()) / 2) >= 0.5
    if mostly_ink:
        background = np.full_like(grey, border_level)
    else:
        background = fit_background(grey)
    grey -= background
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    if grey.max() - np.median(border) < MIN_CONTRAST:
        raise UserError(f"{name}: blank image, no digit found; draw or photograph a digit")
    np.subtract(255.0, background, out=background)
    grey /= np.maximum(background, MIN_PAPER_LEVEL, out=background)
    del background

    # Grey paper, pencil and dim photos: map the background to 0 and the
    # brightest ink to 1, as in the MNIST digits. After a fit, the background
    # level is the median of all pixels, most of which are background, and
    # not the border's, where the fit is least exact. A subsample of the
    # pixels is enough for the median.
    if mostly_ink:
        level = np.median(np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]]))
    else:
        level = np.median(grey[::max(1, grey.shape[0] // 512), ::max(1, grey.shape[1] // 512)])
    if grey.max() <= level:
        raise UserError(f"{name}: blank image, no digit found; draw or photograph a digit")
    ink = np.clip((grey - level) / (grey.max() - level), 0.0, 1.0)
    del grey

    # The ink floor that separates the pieces is relative to the brightest
    # ink, so when a dropped speck was the brightest, look again without it.
    while True:
        ink = drop_specks(ink, name)
        peak = ink.max()
        if peak == 1.0:
            break
        ink /= peak

    # Crop to the bounding box of the ink.
    rows = np.flatnonzero((ink > INK_FLOOR).any(axis=1))
    cols = np.flatnonzero((ink > INK_FLOOR).any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    # Scale the longer side to 20 pixels, keeping the aspect ratio.
    height, width = ink.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)  # Lanczos overshoots a little

    # Place the centre of mass at (14, 14), by whole pixels as MNIST did, but
    # never so far that part of the digit leaves the 28x28 frame.
    mass = digit.sum()
    if mass == 0:
        raise UserError(f"{name}: blank image, no digit found; draw or photograph a digit")
    centre_row = (digit.sum(axis=1) * np.arange(digit.shape[0])).sum() / mass
    centre_col = (digit.sum(axis=0) * np.arange(digit.shape[1])).sum() / mass
    top = int(np.clip(round(CENTRE - centre_row), 0, IMAGE_SIZE - digit.shape[0]))
    left = int(np.clip(round(CENTRE - centre_col), 0, IMAGE_SIZE - digit.shape[1]))
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    digit_uint8 = np.rint(canvas * 255.0).astype(np.uint8)

    # The same normalization as the training images.
    tensor = normalize(torch.from_numpy(digit_uint8)[None], normalization["mean"],
                       normalization["std"])[0]  # (1, 28, 28)
    return Preprocessed(digit_uint8, tensor)


def load_digit(source, normalization, name, max_pixels=MAX_PIXELS):
    """Open `source` with `open_image` and return `preprocess` of it."""
    return preprocess(open_image(source, name, max_pixels), normalization, name)
