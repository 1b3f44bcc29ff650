"""Random affine jitter of normalized image batches, applied on the fly during training."""

import math

import torch
import torch.nn.functional as F


def random_affine(images, generator, max_degrees=10.0, max_shift=2.0, max_scale=0.1):
    """Rotate, scale and shift each image of ``(n, 1, h, w)`` by its own random amount.

    Rotation is uniform in +-`max_degrees`, scale in 1 +- `max_scale`, shift in
    +-`max_shift` pixels. Areas that move in from outside take the value of the
    image background, which after normalization is the minimum of the batch.
    """
    n, _, height, width = images.shape

    def uniform(limit):
        return (torch.rand(n, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(max_degrees))
    scale = 1 + uniform(max_scale)
    # affine_grid works in [-1, 1] coordinates, so a shift of one pixel is 2/size.
    shift_x = uniform(max_shift) * 2 / width
    shift_y = uniform(max_shift) * 2 / height
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin, shift_x], dim=1),
        torch.stack([sin, cos, shift_y], dim=1),
    ], dim=1)  # (n, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    background = images.amin()
    shifted = F.grid_sample(images - background, grid, align_corners=False, padding_mode="zeros")
    return shifted + background
