"""Training loop for the Siamese embedding network with the contrastive loss."""

import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from siamese_mnist.augment import random_affine
from siamese_mnist.checkpoint import save_training_state
from siamese_mnist.embed import embed_images, pair_distances_from_embeddings
from siamese_mnist.errors import UserError
from siamese_mnist.interrupt import TrainingInterrupted, signal_name
from siamese_mnist.loss import contrastive_loss, pair_distances
from siamese_mnist.model import EmbeddingNet, normalize
from siamese_mnist.sampling import BalancedPairSampler
from siamese_mnist.threshold import choose_threshold

log = logging.getLogger(__name__)


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


def training_state(model, optimizer, scheduler, rng, generator, config, normalization, history,
                   position):
    """Collect everything that a resumed run needs to continue exactly where this one is.

    `position` contains ``epochs_done`` (complete epochs), ``steps_done`` (steps
    of the next epoch already taken), the loss sum of those steps and the
    seconds they took.
    """
    state = {
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": scheduler.state_dict(),
        "numpy_rng": rng.bit_generator.state,  # the pair sampler's generator
        "augment_rng": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "train_config": config.to_dict(),
        "normalization": dict(normalization),
        "history": [asdict(record) for record in history],
        **position,
    }
    # NOTE: the tests run on the CPU only, so this CUDA branch and its restore are unexercised,
    # and on a GPU resumed weights are not claimed to be bit-identical.
    if next(model.parameters()).is_cuda:
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_training_state(state, path, model, optimizer, scheduler, rng, generator):
    """Load a saved training state into freshly built objects of the same run."""
    try:
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        scheduler.load_state_dict(state["scheduler_state"])
        rng.bit_generator.state = state["numpy_rng"]
        generator.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and next(model.parameters()).is_cuda:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        history = [EpochRecord(**row) for row in state["history"]]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(
            f"{path}: the training state does not fit this run ({type(exc).__name__}: {exc}); "
            "the file is damaged, start a new run"
        ) from None
    return history


def train(splits, val_pairs, config, on_epoch=None, on_step=None, checkpoint_path=None,
          resume=None, stop=None):
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
    on_step : callable or None
        Called as ``on_step(epoch, step)`` after every optimizer step, with
        `step` counted from 1 within the epoch.
    checkpoint_path : path-like or None
        Where to write the full training state after every epoch and when
        `stop` requests a stop. None writes nothing.
    resume : dict or None
        A training state from `siamese_mnist.checkpoint.load_training_state`.
        Training continues from its position; on the CPU the result is
        bit-identical to a run that was never interrupted.
    stop : object or None
        Polled after every step and every epoch; when its ``signum``
        attribute is set (see `siamese_mnist.interrupt.StopOnSignal`), the
        state is saved and TrainingInterrupted is raised.

    Returns
    -------
    model : EmbeddingNet (in eval mode)
    history : list of EpochRecord
    normalization : dict with the float ``mean`` and ``std`` of the training pixels

    Raises
    ------
    TrainingDiverged
        When the loss becomes NaN or infinite. The last checkpoint written
        before, if any, is kept.
    TrainingInterrupted
        When `stop` asked to stop, after the state was saved.
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
    model = EmbeddingNet(config.model_config())
    model = model.to(device, memory_format=torch.channels_last)
    sampler = BalancedPairSampler(train_split.labels, config.batch_size, config.images_per_batch, rng)
    steps_per_epoch = max(1, config.images_per_epoch // config.images_per_batch)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # One-cycle: a short warm-up, then cosine decay to zero by the last step.
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.15,
    )

    # Resume: every generator, the optimizer and the schedule continue from the
    # saved step, so the remaining steps draw the same batches and augmentations.
    history, start_epoch, start_step = [], 1, 0
    loss_sum, seconds_before, loop_seconds_before = 0.0, 0.0, 0.0
    saved_at = None
    if resume is not None:
        mean, std = check_same_data(resume, checkpoint_path, mean, std)
        history = restore_training_state(resume, checkpoint_path, model, optimizer, scheduler, rng,
                                         generator)
        start_epoch, start_step = resume["epochs_done"] + 1, resume["steps_done"]
        loss_sum = resume["loss_sum"]
        seconds_before, loop_seconds_before = resume["epoch_seconds"], resume["loop_seconds"]
        check_position(resume, checkpoint_path, config, steps_per_epoch, scheduler)
        saved_at = describe_position(resume["epochs_done"], start_step, steps_per_epoch)
    normalization = {"mean": mean, "std": std}

    def save(epochs_done, steps_done, position_extra):
        nonlocal saved_at
        if checkpoint_path is None:
            return
        position = {"epochs_done": epochs_done, "steps_done": steps_done, **position_extra}
        save_training_state(checkpoint_path, training_state(
            model, optimizer, scheduler, rng, generator, config, normalization, history, position))
        saved_at = describe_position(epochs_done, steps_done, steps_per_epoch)

    def interrupted(epoch, step):
        where = f"at epoch {epoch}, step {step} of {steps_per_epoch}"
        if checkpoint_path is None:
            message = f"stopped by {signal_name(stop.signum)} {where}; nothing was saved"
        else:
            message = (f"stopped by {signal_name(stop.signum)} {where}; "
                       f"the training state is saved in {checkpoint_path}")
        return TrainingInterrupted(stop.signum, message)

    for epoch in range(start_epoch, config.epochs + 1):
        if epoch > start_epoch:
            start_step, loss_sum, seconds_before, loop_seconds_before = 0, 0.0, 0.0, 0.0
        started = time.perf_counter()
        model.train()
        bar = tqdm(range(start_step, steps_per_epoch), initial=start_step, total=steps_per_epoch,
                   desc=f"epoch {epoch}/{config.epochs}", leave=False, disable=None, unit="step")
        for step in bar:
            image_index, position_a, position_b, is_same = sampler.sample()

            # Each image is embedded once, so both images of every pair share one
            # batch and BatchNorm normalizes them with the same statistics.
            batch = normalize(images[image_index], mean, std)
            if config.augment:
                batch = random_affine(batch, generator)
            batch = batch.to(device, memory_format=torch.channels_last)
            embeddings = model(batch)  # (images_per_batch, embedding_dim)
            # On the CPU with several threads, the backward pass of embeddings[positions]
            # adds gradients in a varying order; index_select's backward does not.
            distances = pair_distances(
                embeddings.index_select(0, torch.from_numpy(position_a).to(device)),
                embeddings.index_select(0, torch.from_numpy(position_b).to(device)),
            )  # (batch_size,)
            loss = contrastive_loss(distances, torch.from_numpy(is_same).to(device), config.margin)

            # Checked before the update, so the weights and the saved checkpoint stay finite.
            if not torch.isfinite(loss):
                kept_state = (f"the last good training state ({saved_at}) stays in {checkpoint_path}"
                        if saved_at else "no checkpoint was saved before it")
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch}, step {step + 1}; "
                    f"lower --lr in a new run or check the input data; {kept_state}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")

            if on_step is not None:
                on_step(epoch, step + 1)
            if stop is not None and stop.signum is not None:
                bar.close()
                elapsed = time.perf_counter() - started
                save(epoch - 1, step + 1, {"loss_sum": loss_sum,
                                           "epoch_seconds": seconds_before + elapsed,
                                           "loop_seconds": loop_seconds_before + elapsed})
                raise interrupted(epoch, step + 1)

        loop_seconds = loop_seconds_before + time.perf_counter() - started
        choice = validation_score(model, splits["val"].images, val_pairs, mean, std, device,
                                  config.threshold_method)
        record = EpochRecord(epoch, loss_sum / steps_per_epoch, choice.accuracy, choice.threshold,
                             seconds_before + time.perf_counter() - started, loop_seconds)
        history.append(record)
        log.info("epoch %d: loss %.4f, val accuracy %.4f, %.1fs",
                 epoch, record.loss, record.val_accuracy, record.seconds)
        save(epoch, 0, {"loss_sum": 0.0, "epoch_seconds": 0.0, "loop_seconds": 0.0})
        if on_epoch is not None:
            on_epoch(model, record)
        if stop is not None and stop.signum is not None:
            raise interrupted(epoch, steps_per_epoch)
    model.eval()
    return model, history, normalization


def describe_position(epochs_done, steps_done, steps_per_epoch):
    if steps_done == 0:
        return f"end of epoch {epochs_done}" if epochs_done else "start of training"
    return f"epoch {epochs_done + 1}, step {steps_done} of {steps_per_epoch}"


def check_same_data(state, path, mean, std):
    """Return the saved pixel statistics after checking that this run's data give the same ones.

    The saved values are used, rather than recomputed ones, because a float
    reduction over the training pixels can differ in its last bits with the
    number of threads, and resuming must be exact.
    """
    saved_mean, saved_std = state["normalization"]["mean"], state["normalization"]["std"]
    if not (math.isclose(mean, saved_mean, rel_tol=1e-5) and math.isclose(std, saved_std, rel_tol=1e-5)):
        raise UserError(
            f"{path}: the training images differ from the interrupted run's (pixel mean {mean:.6f}, "
            f"saved {saved_mean:.6f}); resume with the same data folder"
        )
    return saved_mean, saved_std


def check_position(state, path, config, steps_per_epoch, scheduler):
    """Raise UserError unless the saved position fits the run's settings and schedule."""
    epochs_done, steps_done = state["epochs_done"], state["steps_done"]
    step_count = epochs_done * steps_per_epoch + steps_done
    if not (0 <= epochs_done <= config.epochs and 0 <= steps_done <= steps_per_epoch
            and (epochs_done < config.epochs or steps_done == 0)
            and scheduler.last_epoch == step_count):
        raise UserError(
            f"{path}: the saved position (epoch {epochs_done + 1}, step {steps_done}, schedule "
            f"step {scheduler.last_epoch}) does not fit {config.epochs} epochs of "
            f"{steps_per_epoch} steps; the file is damaged, start a new run"
        )
