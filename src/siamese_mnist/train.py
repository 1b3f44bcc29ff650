"""Training loop for the Siamese embedding network with the contrastive loss."""

import logging
import math
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from tqdm import tqdm

from siamese_mnist.augment import random_affine
from siamese_mnist.embed import embed_images, pair_distances_from_embeddings
from siamese_mnist.errors import UserError
from siamese_mnist.loss import contrastive_loss, pair_distances
from siamese_mnist.model import EmbeddingNet, ModelConfig, normalize
from siamese_mnist.sampling import BalancedPairSampler
from siamese_mnist.threshold import choose_threshold

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in config.json and the checkpoint."""

    epochs: int = 12
    batch_size: int = 2048  # pairs per step, half positive and half negative
    images_per_batch: int = 512  # distinct images embedded per step; pairs are formed among them
    lr: float = 3e-3
    weight_decay: float = 1e-4
    margin: float = 1.0
    embedding_dim: int = 32
    images_per_epoch: int = 55_000
    val_size: int = 5000
    val_pairs: int = 9000
    test_pairs: int = 9000
    threshold_method: str = "pr-breakeven"
    augment: bool = True
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self):
        return asdict(self)

    def validate(self):
        for name in ("epochs", "images_per_epoch", "val_pairs"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if not self.lr > 0:
            raise UserError(f"--lr {self.lr} must be positive")
        if not self.margin > 0:
            raise UserError(f"--margin {self.margin} must be positive")


def resolve_device(name):
    """Map ``auto`` to the best available device and check that a named one exists."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA GPU is available; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps requested but MPS is not available; use --device cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name!r} is unknown; use auto, cpu, cuda or mps")
    return torch.device(name)


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val_accuracy: float
    threshold: float
    seconds: float  # the whole epoch, validation included
    loop_seconds: float  # the training steps alone


def validation_score(model, val_images, val_pairs, mean, std, device, method):
    """Embed the validation images once and choose the threshold on the validation pairs."""
    embeddings = embed_images(model, val_images, mean, std, device)
    distances = pair_distances_from_embeddings(embeddings, val_pairs.index_a, val_pairs.index_b)
    return choose_threshold(distances, val_pairs.is_same, method)


def train(splits, val_pairs, config, on_epoch=None):
    """Train an embedding network on the ``train`` split.

    Parameters
    ----------
    splits : dict of Split
        From `siamese_mnist.data.get_splits`; only ``train`` and ``val`` are read.
    val_pairs : PairSet
        Balanced pairs over the ``val`` split, used for the threshold and the
        per-epoch validation accuracy.
    config : TrainConfig
    on_epoch : callable or None
        Called as ``on_epoch(model, record)`` after every epoch.

    Returns
    -------
    model : EmbeddingNet (in eval mode)
    history : list of EpochRecord
    normalization : dict with the float ``mean`` and ``std`` of the training pixels
    """
    config.validate()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    train_split = splits["train"]
    images = torch.from_numpy(np.ascontiguousarray(train_split.images))  # (n, 28, 28) uint8
    pixels = images.float().div_(255.0)
    mean, std = float(pixels.mean()), float(pixels.std())
    del pixels

    # channels_last makes the CPU convolutions about a third faster here.
    model = EmbeddingNet(ModelConfig(embedding_dim=config.embedding_dim))
    model = model.to(device, memory_format=torch.channels_last)
    sampler = BalancedPairSampler(train_split.labels, config.batch_size, config.images_per_batch, rng)
    steps_per_epoch = max(1, config.images_per_epoch // config.images_per_batch)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # One-cycle: a short warm-up, then cosine decay to zero by the last step.
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.15,
    )

    history = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{config.epochs}", leave=False,
                   disable=None, unit="step")
        for step in bar:
            image_index, position_a, position_b, is_same = sampler.sample()

            # Each image is embedded once, so both images of every pair share one
            # batch and BatchNorm normalizes them with the same statistics.
            batch = normalize(images[image_index], mean, std)
            if config.augment:
                batch = random_affine(batch, generator)
            batch = batch.to(device, memory_format=torch.channels_last)
            embeddings = model(batch)  # (images_per_batch, embedding_dim)
            distances = pair_distances(embeddings[position_a], embeddings[position_b])  # (batch_size,)
            loss = contrastive_loss(distances, torch.from_numpy(is_same).to(device), config.margin)

            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch}, step {step + 1}; "
                    "lower --lr or check the input data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")

        loop_seconds = time.perf_counter() - started
        choice = validation_score(model, splits["val"].images, val_pairs, mean, std, device,
                                  config.threshold_method)
        record = EpochRecord(epoch, loss_sum / steps_per_epoch, choice.accuracy, choice.threshold,
                             time.perf_counter() - started, loop_seconds)
        history.append(record)
        log.info("epoch %d: loss %.4f, val accuracy %.4f, %.1fs",
                 epoch, record.loss, record.val_accuracy, record.seconds)
        if on_epoch is not None:
            on_epoch(model, record)
    model.eval()
    return model, history, {"mean": mean, "std": std}
