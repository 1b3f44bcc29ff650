"""Training throughput and pipeline efficiency.

Pipeline efficiency = images per second of the real training loop (pair
sampling, uint8-to-float conversion, augmentation, loss, logging) divided by
images per second of bare forward + backward + optimizer steps of the same
network on random tensors of the same batch size, in the same process.
Validation after each epoch is not part of either figure.

    python benchmarks/bench_throughput.py --data-dir ../shared/data/mnist
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from siamese_mnist.data import get_splits, load_dataset  # noqa: E402
from siamese_mnist.loss import contrastive_loss, pair_distances  # noqa: E402
from siamese_mnist.model import EmbeddingNet  # noqa: E402
from siamese_mnist.pairs import build_pair_set  # noqa: E402
from siamese_mnist.config import TrainConfig  # noqa: E402
from siamese_mnist.train import train  # noqa: E402


def bare_images_per_second(config, steps):
    """Forward, contrastive loss, backward and AdamW step on random input, nothing else."""
    torch.manual_seed(0)
    model = EmbeddingNet(config.model_config())
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch = torch.randn(config.images_per_batch, 1, 28, 28).to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    position_a = torch.from_numpy(rng.integers(0, config.images_per_batch, config.batch_size))
    position_b = torch.from_numpy(rng.integers(0, config.images_per_batch, config.batch_size))
    is_same = torch.arange(config.batch_size) < config.batch_size // 2

    def step():
        embeddings = model(batch)
        loss = contrastive_loss(pair_distances(embeddings[position_a], embeddings[position_b]),
                                is_same, config.margin)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * config.images_per_batch / (time.perf_counter() - started)


def train_images_per_second(splits, val_pairs, config, steps):
    config = TrainConfig.from_dict({**config.to_dict(), "epochs": 1,
                                    "images_per_epoch": steps * config.images_per_batch})
    _, history, _ = train(splits, val_pairs, config)
    return steps * config.images_per_batch / history[0].loop_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST folder (default: $SIAMESE_MNIST_DATA or the cache)")
    parser.add_argument("--steps", type=int, default=60, help="steps per measurement (default: 60)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating measurements of each kind, median reported (default: 3)")
    args = parser.parse_args(argv)

    torch.set_num_threads(torch.get_num_threads())
    config = TrainConfig(device="cpu")
    dataset = load_dataset(args.data_dir, download=False)
    splits = get_splits(dataset, config.val_size, config.seed)
    val_pairs = build_pair_set(splits["val"].labels, 180, config.seed)

    bare, real = [], []
    for _ in range(args.repeats):
        bare.append(bare_images_per_second(config, args.steps))
        real.append(train_images_per_second(splits, val_pairs, config, args.steps))
    bare_median, real_median = statistics.median(bare), statistics.median(real)

    print(f"Machine: {describe()}\n")
    print(f"Batch: {config.images_per_batch} images, {config.batch_size} pairs; "
          f"{args.steps} steps per measurement, {args.repeats} repeats\n")
    print("| loop | images per second (median) | all measurements |")
    print("|---|---:|---|")
    print(f"| bare forward + backward + step | {bare_median:,.0f} | "
          f"{', '.join(f'{x:,.0f}' for x in bare)} |")
    print(f"| `train()` with sampling and augmentation | {real_median:,.0f} | "
          f"{', '.join(f'{x:,.0f}' for x in real)} |")
    print(f"\nPipeline efficiency: {real_median / bare_median:.3f}")


if __name__ == "__main__":
    main()
