"""Embed images once and score pairs from the embedding matrix."""

import numpy as np
import torch

from siamese_mnist.model import normalize

# Small batches keep each layer's activations in the CPU cache: on the 2-core
# machine of docs/benchmarks.md, embedding the 10,000 test images took 0.9 s
# in batches of 128 and 1.2 s in batches of 2048.
EMBED_BATCH = 128
SCORE_CHUNK = 262_144


@torch.inference_mode()
def embed_images(model, images_uint8, mean, std, device="cpu", batch_size=EMBED_BATCH):
    """Return the embeddings of uint8 images ``(n, 28, 28)`` as float32 ``(n, embedding_dim)``.

    The model is switched to eval mode so that BatchNorm uses its running
    statistics and every image gets the same embedding whatever its batch.
    """
    model.eval()
    images = torch.from_numpy(np.array(images_uint8, copy=True))
    parts = []
    for start in range(0, len(images), batch_size):
        batch = normalize(images[start:start + batch_size], mean, std)
        batch = batch.to(device, memory_format=torch.channels_last)
        parts.append(model(batch).float().cpu())
    return torch.cat(parts).numpy()


def pair_distances_from_embeddings(embeddings, index_a, index_b, chunk=SCORE_CHUNK):
    """Return float64 Euclidean distances ``(n_pairs,)``, computed in chunks to bound memory."""
    distances = np.empty(len(index_a), dtype=np.float64)
    for start in range(0, len(index_a), chunk):
        stop = start + chunk
        difference = embeddings[index_a[start:stop]] - embeddings[index_b[start:stop]]
        distances[start:stop] = np.sqrt(np.einsum("ij,ij->i", difference, difference))
    return distances
