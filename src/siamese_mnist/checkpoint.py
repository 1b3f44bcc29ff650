"""Save and load checkpoints: weights plus everything needed to use them.

Two kinds of file, distinguished by their ``format`` tag:
- ``model.pt``, the final model: weights, architecture, training settings,
  input normalization and threshold.
- ``checkpoint.pt``, the training state, written after every epoch and when
  training stops on a signal: the above plus optimizer, scheduler, random
  generator states and the position in the run, for ``--resume``.

Both are read with ``torch.load(weights_only=True)``, which only rebuilds
tensors and plain containers and never runs code from the file.
"""

import pickle
import re

import torch

from siamese_mnist.errors import UserError
from siamese_mnist.config import CHECKPOINT_NAME, MODEL_NAME
from siamese_mnist.fileio import atomic_path
from siamese_mnist.model import EmbeddingNet, ModelConfig

FORMAT = "siamese-mnist-checkpoint/1"
TRAINING_FORMAT = "siamese-mnist-training-state/1"

TRAINING_KEYS = ("model_config", "model_state", "train_config", "normalization", "history",
                 "optimizer_state", "scheduler_state", "numpy_rng", "augment_rng", "torch_rng",
                 "epochs_done", "steps_done", "loss_sum", "epoch_seconds", "loop_seconds")


def save_checkpoint(path, model, train_config, normalization, threshold=None, threshold_method=None,
                    history=None):
    """Write `model` and its settings to `path` atomically."""
    state = {
        "format": FORMAT,
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train_config": train_config.to_dict(),
        "normalization": dict(normalization),
        "threshold": threshold,
        "threshold_method": threshold_method,
        "history": list(history or []),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_training_state(path, state):
    """Write a training state (the dict built by `siamese_mnist.train`) to `path` atomically.

    An interrupted write leaves the previous file in place.
    """
    with atomic_path(path) as tmp:
        torch.save({"format": TRAINING_FORMAT, **state}, tmp)


def read_state(path):
    """Load the dict in a checkpoint file without running any code from it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except pickle.UnpicklingError as exc:
        # torch's message suggests weights_only=False, which is exactly what must
        # not be done with an untrusted file; keep only the name of what was found.
        found = re.search(r"WeightsUnpickler error: (.*?\.)(?:\s|$)", str(exc))
        detail = found.group(1) if found else type(exc).__name__
        raise UserError(
            f"{path}: rejected, the file contains objects other than tensors and plain data "
            f"({detail}); loading it could run code, so use a checkpoint written by siamese-mnist"
        ) from None
    except Exception as exc:  # noqa: BLE001
        # Garbage input makes the unpickler fail in many ways (KeyError,
        # EOFError, RuntimeError from the zip reader, ...); all mean the same here.
        raise UserError(
            f"{path}: not a checkpoint file, or a damaged one (torch.load failed with "
            f"{type(exc).__name__}); pass the model.pt written by 'siamese-mnist train' or 'run'"
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a siamese-mnist checkpoint (it contains a {type(state).__name__})")
    return state


def check_format(state, path, expected):
    """Raise UserError unless the file's format tag is `expected`."""
    tag = state.get("format")
    if tag == expected:
        return
    if tag == TRAINING_FORMAT:
        hint = f"this is a training state for --resume; pass the run's {MODEL_NAME} instead"
    elif tag == FORMAT:
        hint = f"this is a final model, not a training state; --resume needs the run's {CHECKPOINT_NAME}"
    else:
        hint = "use a file written by siamese-mnist"
    raise UserError(f"{path}: format tag is {tag!r}, expected {expected!r}; {hint}")


def weight_dim(weights, key, axis):
    tensor = weights.get(key)
    if isinstance(tensor, torch.Tensor) and tensor.dim() > axis:
        return int(tensor.shape[axis])
    return None


def describe_mismatch(config, weights, found_in, source):
    """Return phrases naming each architecture setting on which `config` and `weights` disagree.

    `found_in` names where the weights came from and `source` where `config`
    came from, as in "embedding size 16 in the weights, 32 in the stored model config".
    """
    found = {
        "embedding size": (weight_dim(weights, "head.3.weight", 0), config.embedding_dim),
        "hidden units": (weight_dim(weights, "head.1.weight", 0), config.hidden),
        "channels of the first convolution": (weight_dim(weights, "features.0.0.weight", 0),
                                              config.channels[0]),
        "channels of the second convolution": (weight_dim(weights, "features.1.0.weight", 0),
                                               config.channels[1]),
    }
    return [f"{what} {actual} {found_in}, {wanted} {source}"
            for what, (actual, wanted) in found.items() if actual is not None and actual != wanted]


def build_model(state, path, expected=None):
    """Rebuild the network from a checkpoint state and load its weights.

    The architecture is the one stored in the checkpoint. With `expected`
    (a ModelConfig), it must also equal that one.
    """
    weights = state.get("model_state")
    if not isinstance(weights, dict):
        raise UserError(f"{path}: the checkpoint contains no weights; use a file written by siamese-mnist")
    try:
        config = ModelConfig.from_dict(state["model_config"])
        model = EmbeddingNet(config)
    except (KeyError, TypeError, ValueError, UserError) as exc:
        raise UserError(
            f"{path}: the stored model config is missing or invalid ({exc!r}); "
            "use a file written by siamese-mnist"
        ) from None
    if expected is not None and config != expected:
        differences = describe_mismatch(expected, weights, "in the checkpoint", "expected") or [
            f"{name} {getattr(config, name)!r} in the checkpoint, {getattr(expected, name)!r} expected"
            for name in ("embedding_dim", "channels", "hidden")
            if getattr(config, name) != getattr(expected, name)
        ]
        raise UserError(f"{path}: different architecture: {', '.join(differences)}")
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        differences = describe_mismatch(config, weights, "in the weights", "in the stored model config")
        if differences:
            detail = ", ".join(differences)
        else:
            lines = str(exc).splitlines()
            detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise UserError(
            f"{path}: the weights do not match the architecture stored in the checkpoint "
            f"({detail}); the file was altered or comes from another program, train again"
        ) from None
    return model


def load_checkpoint(path, device="cpu"):
    """Load a final model written by `save_checkpoint`.

    Returns
    -------
    model : EmbeddingNet in eval mode on `device`
    state : dict with ``train_config``, ``normalization``, ``threshold`` and ``threshold_method``

    Raises
    ------
    UserError
        When the file is missing, unreadable, contains anything but tensors and
        plain data, has another format tag, or its weights do not fit its
        stored architecture.
    """
    state = read_state(path)
    check_format(state, path, FORMAT)
    for key in ("train_config", "normalization"):
        if not isinstance(state.get(key), dict):
            raise UserError(f"{path}: the checkpoint has no {key}; use a file written by siamese-mnist")
    model = build_model(state, path)
    model.to(device).eval()
    return model, state


def load_training_state(path, expected=None):
    """Load a training state written by `save_training_state`.

    Returns
    -------
    model : EmbeddingNet with the saved weights, on the CPU
    state : dict with the keys listed in ``TRAINING_KEYS``
    """
    state = read_state(path)
    check_format(state, path, TRAINING_FORMAT)
    missing = [key for key in TRAINING_KEYS if key not in state]
    if missing:
        raise UserError(
            f"{path}: the training state lacks {', '.join(missing)}; "
            "the file is damaged, start the run again"
        )
    return build_model(state, path, expected), state
