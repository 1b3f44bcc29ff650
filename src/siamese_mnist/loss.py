"""Euclidean pair distance and the contrastive loss.

Label convention, used everywhere in this package: ``is_same = 1`` when both
images show the same class (a positive pair), ``is_same = 0`` otherwise.
"""

import torch

# Keeps sqrt differentiable at zero distance: without it, identical embeddings
# give 0/0 = NaN gradients.
DISTANCE_EPS = 1e-12


def pair_distances(embeddings_a, embeddings_b):
    """Return the Euclidean distance between matching rows, shape ``(n,)``."""
    squared = (embeddings_a - embeddings_b).pow(2).sum(dim=1)  # (n,)
    return squared.clamp_min(DISTANCE_EPS).sqrt()


def contrastive_loss(distances, is_same, margin):
    """Mean contrastive loss (Hadsell, Chopra and LeCun, CVPR 2006).

    Positive pairs pay ``d**2 / 2``; negative pairs pay ``max(0, margin - d)**2 / 2``.

    Parameters
    ----------
    distances : tensor, shape (n,)
    is_same : tensor of 0/1, shape (n,)
    margin : float
        Negative pairs farther apart than this cost nothing.
    """
    is_same = is_same.to(distances.dtype)
    positive_term = 0.5 * distances.pow(2)  # (n,)
    negative_term = 0.5 * torch.relu(margin - distances).pow(2)  # (n,)
    return (is_same * positive_term + (1 - is_same) * negative_term).mean()
