"""Turn an arbitrary digit image into the 28x28 input the embedding network expects.

The MNIST database page by LeCun, Cortes and Burges describes how its digits
were made from black-and-white NIST scans. Each digit was scaled to fit a 20x20
box keeping its aspect ratio, with anti-aliasing that brings in grey levels.
It was then placed in a 28x28 image with its centre of mass at the centre.
`preprocess` repeats those steps for any image, so that photos, scans and
drawings look to the network like the light-on-black digits it was trained on.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from siamese_mnist.errors import UserError
from siamese_mnist.model import normalize

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
FORMAT_NAMES = "PNG, JPEG, BMP, GIF or WebP"
# 16.7 megapixels (4096 x 4096): a 12-megapixel phone photo fits. At this size
# `preprocess` peaked at 192 MiB for a grey or RGB image and 384 MiB for RGBA
# (tracemalloc, numpy 2.4). Pillow's own decompression-bomb guard (89
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
    """Return the luminance of `image` as float64 ``(height, width)`` in 0..255.

    Transparent pixels are laid on a background that contrasts with the opaque
    ones, so a dark digit on a transparent canvas lands on white and a light
    digit on black: either way the digit stays visible.
    """
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 257.0
    if image.mode in ("I", "F"):
        # NOTE: 32-bit integer and float images have no fixed white level; values
        # above 255 are taken to be 16-bit.
        values = np.asarray(image, dtype=np.float32)
        return values / 257.0 if values.max() > 255 else values
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32)
    grey_alpha = np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32)
    grey, alpha = grey_alpha[..., 0], grey_alpha[..., 1] / 255.0
    if alpha.sum() == 0:
        return np.zeros_like(grey)
    ink_mean = (grey * alpha).sum() / alpha.sum()
    backdrop = 255.0 if ink_mean < 127.5 else 0.0
    return grey * alpha + backdrop * (1.0 - alpha)


def preprocess(image, normalization, name="image"):
    """Turn one digit image into an MNIST-style 28x28 input, normalized as in training.

    The steps: convert to greyscale, and invert when the median of the border
    pixels is light. Stretch the levels so that the background is 0 and the
    brightest ink 255, then crop to the digit's bounding box. Scale the longer
    side to 20 pixels keeping the aspect ratio (Lanczos, which anti-aliases
    when shrinking). Paste the result into 28x28 with its centre of mass at
    (14, 14), and apply the checkpoint's mean and std.

    Parameters
    ----------
    image : PIL.Image.Image
        Any size and mode: grey, RGB, RGBA, palette or 16-bit grey.
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
        border = 255.0 - border

    # Grey paper, pencil and dim photos: map the background to 0 and the
    # brightest ink to 1, as in the MNIST digits.
    background = np.median(border)
    peak = grey.max()
    if peak - background < MIN_CONTRAST:
        raise UserError(f"{name}: blank image, no digit found; draw or photograph a digit")
    ink = np.clip((grey - background) / (peak - background), 0.0, 1.0)

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
