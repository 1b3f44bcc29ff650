"""Settings of the model and of a training run: plain dataclasses, no torch.

Kept apart from the modules that use them so that the command line can list
its options without importing torch.
"""

from dataclasses import asdict, dataclass, fields

from siamese_mnist.errors import UserError

MODEL_NAME = "model.pt"  # the trained model with its threshold
CHECKPOINT_NAME = "checkpoint.pt"  # the full training state, for --resume


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings, stored in every checkpoint."""

    embedding_dim: int = 32
    channels: tuple = (32, 64)
    hidden: int = 256

    def to_dict(self):
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, values):
        return cls(**{**values, "channels": tuple(values["channels"])})


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved in config.json and the checkpoint."""

    epochs: int = 15
    batch_size: int = 2048  # pairs per step, half positive and half negative
    images_per_batch: int = 512  # distinct images embedded per step; pairs are formed among them
    lr: float = 3e-3
    weight_decay: float = 1e-4
    margin: float = 1.0
    embedding_dim: int = 32
    channels: tuple = (32, 64)  # output channels of the two convolution blocks
    hidden: int = 256
    images_per_epoch: int = 55_000
    val_size: int = 5000
    val_pairs: int = 9000
    test_pairs: int = 9000
    threshold_method: str = "pr-breakeven"
    augment: bool = True
    seed: int = 0
    device: str = "auto"

    @classmethod
    def preset(cls, name):
        return cls(**PRESETS[name])

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self):
        return {**asdict(self), "channels": list(self.channels)}

    def model_config(self):
        return ModelConfig(embedding_dim=self.embedding_dim, channels=tuple(self.channels),
                           hidden=self.hidden)

    def validate(self):
        for name in ("epochs", "images_per_epoch", "val_pairs"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if not self.lr > 0:
            raise UserError(f"--lr {self.lr} must be positive")
        if not self.margin > 0:
            raise UserError(f"--margin {self.margin} must be positive")


# Settings that differ from the TrainConfig defaults, per --preset.
PRESETS = {
    "default": {},
    "fast": {"epochs": 3, "images_per_epoch": 55_296, "images_per_batch": 256, "lr": 5e-3,
             "channels": (16, 32), "hidden": 128, "augment": False},
}
