"""Balanced training batches: half positive, half negative pairs, types spread evenly."""

from itertools import combinations

import numpy as np

from siamese_mnist.errors import UserError


def spread(total, n_types, rng):
    """Split `total` over `n_types` types as evenly as possible; the extras go to random types."""
    counts = np.full(n_types, total // n_types)
    counts[rng.choice(n_types, size=total % n_types, replace=False)] += 1
    return counts


class BalancedPairSampler:
    """Draw batches of training pairs from one split's labels.

    A batch first draws `images_per_batch` distinct images, spread evenly
    over the K classes, and then forms `batch_size` pairs among them. Half
    are positive pairs spread over the K positive types, half are negative
    pairs spread over the K*(K-1)/2 negative types, and each type gets floor
    or ceil of its share. Every image is thus
    embedded once per batch but takes part in several pairs, which gives more
    loss terms per forward pass. Positive pairs never pair an image with itself.
    """

    def __init__(self, labels, batch_size, images_per_batch, rng):
        if batch_size < 2 or batch_size % 2:
            raise UserError(f"--batch-size {batch_size} must be an even number of pairs, at least 2")
        labels = np.asarray(labels)
        self.classes = np.unique(labels)
        k = len(self.classes)
        if k < 2:
            raise UserError(f"training needs at least 2 classes, the labels have {k}")
        if images_per_batch < 2 * k:
            raise UserError(
                f"--images-per-batch {images_per_batch} must be at least {2 * k} "
                f"(two images of each of the {k} classes)"
            )
        self.members = [np.flatnonzero(labels == c) for c in self.classes]
        smallest = min(len(m) for m in self.members)
        if smallest * k < images_per_batch:
            raise UserError(
                f"--images-per-batch {images_per_batch} is more than the training split can fill "
                f"evenly ({smallest} images in its smallest class); lower it"
            )
        self.batch_size = batch_size
        self.images_per_batch = images_per_batch
        self.rng = rng
        self.negative_types = np.array(list(combinations(range(k), 2)))

    def sample(self):
        """Draw one batch.

        Returns
        -------
        images : ndarray of int64, shape (images_per_batch,)
            Indices into the split of the images to embed.
        position_a, position_b : ndarray of int64, shape (batch_size,)
            Each pair's two images, as positions into `images`.
        is_same : ndarray of int64, shape (batch_size,)
            1 for the first ``batch_size / 2`` pairs (positive), 0 for the rest.
        """
        k = len(self.classes)
        rng = self.rng
        per_class = spread(self.images_per_batch, k, rng)
        images = np.concatenate([
            rng.choice(members, size=count, replace=False)
            for members, count in zip(self.members, per_class)
        ])
        starts = np.concatenate([[0], np.cumsum(per_class)[:-1]])

        half = self.batch_size // 2
        positive_class = np.repeat(np.arange(k), spread(half, k, rng))
        size = per_class[positive_class]
        first = np.floor(rng.random(half) * size).astype(np.int64)
        # Adding 1..size-1 modulo size gives a second image that always differs from the first.
        second = (first + 1 + np.floor(rng.random(half) * (size - 1)).astype(np.int64)) % size
        positive_a = starts[positive_class] + first
        positive_b = starts[positive_class] + second

        negative = self.negative_types[
            np.repeat(np.arange(len(self.negative_types)), spread(half, len(self.negative_types), rng))
        ]
        class_a, class_b = negative[:, 0], negative[:, 1]
        negative_a = starts[class_a] + np.floor(rng.random(half) * per_class[class_a]).astype(np.int64)
        negative_b = starts[class_b] + np.floor(rng.random(half) * per_class[class_b]).astype(np.int64)

        position_a = np.concatenate([positive_a, negative_a])
        position_b = np.concatenate([positive_b, negative_b])
        is_same = np.concatenate([np.ones(half, dtype=np.int64), np.zeros(half, dtype=np.int64)])
        return images, position_a, position_b, is_same
