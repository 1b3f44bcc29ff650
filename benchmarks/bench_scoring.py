"""Embedding and pair-scoring throughput on the MNIST test split.

Embeds the 10,000 test images once, then scores 10k, 100k and 1M random
pairs from the embedding matrix, reporting the median time over repeats and
the peak extra memory that scoring allocates.

    python benchmarks/bench_scoring.py --data-dir ../shared/data/mnist [--checkpoint model.pt]
"""

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from siamese_mnist.checkpoint import load_checkpoint  # noqa: E402
from siamese_mnist.data import load_dataset  # noqa: E402
from siamese_mnist.embed import embed_images, pair_distances_from_embeddings  # noqa: E402
from siamese_mnist.model import EmbeddingNet  # noqa: E402


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST folder (default: $SIAMESE_MNIST_DATA or the cache)")
    parser.add_argument("--checkpoint", help="model.pt to embed with (default: an untrained net; "
                        "the speed is the same)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, median reported (default: 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="pair counts to score (default: 10000 100000 1000000)")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.data_dir, download=False)
    images = dataset.test_images
    if args.checkpoint:
        model, state = load_checkpoint(args.checkpoint)
        normalization = state["normalization"]
    else:
        torch.manual_seed(0)
        model, normalization = EmbeddingNet().eval(), {"mean": 0.13, "std": 0.31}

    embed_images(model, images[:256], **normalization)  # warm-up: first calls allocate
    embed_seconds = median_seconds(lambda: embed_images(model, images, **normalization), args.repeats)
    embeddings = embed_images(model, images, **normalization)

    print(f"Machine: {describe()}\n")
    print("| task | count | median seconds | per second | peak extra memory (MiB) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| embed test images | {len(images):,} | {embed_seconds:.3f} | "
          f"{len(images) / embed_seconds:,.0f} | - |")
    rng = np.random.default_rng(0)
    for size in args.sizes:
        index_a = rng.integers(0, len(images), size=size)
        index_b = rng.integers(0, len(images), size=size)
        seconds = median_seconds(
            lambda: pair_distances_from_embeddings(embeddings, index_a, index_b), args.repeats)
        tracemalloc.start()
        pair_distances_from_embeddings(embeddings, index_a, index_b)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"| score pairs | {size:,} | {seconds:.3f} | {size / seconds:,.0f} | {peak:.1f} |")
    print("\nPeak extra memory includes the float64 result (8 bytes per pair); the rest is "
          "bounded by the scoring chunk.")


if __name__ == "__main__":
    main()
