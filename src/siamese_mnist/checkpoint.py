"""Save and load checkpoints: weights plus everything needed to use them.

Checkpoints are read with ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain containers and never runs code from the file.
"""

import pickle

import torch

from siamese_mnist.errors import UserError
from siamese_mnist.fileio import atomic_path
from siamese_mnist.model import EmbeddingNet, ModelConfig

FORMAT = "siamese-mnist-checkpoint/1"


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


def load_checkpoint(path, device="cpu"):
    """Load a checkpoint written by `save_checkpoint`.

    Returns
    -------
    model : EmbeddingNet in eval mode on `device`
    state : dict with ``train_config``, ``normalization``, ``threshold`` and ``threshold_method``
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"{path}: rejected, the file contains objects other than weights "
            f"({first_line}); use a checkpoint written by siamese-mnist"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"{path}: not a readable checkpoint ({exc}); train again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a siamese-mnist checkpoint (expected format {FORMAT})")
    config = ModelConfig.from_dict(state["model_config"])
    model = EmbeddingNet(config)
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as exc:
        detail = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise UserError(
            f"{path}: weights do not match the architecture in the checkpoint ({detail})"
        ) from None
    model.to(device).eval()
    return model, state
