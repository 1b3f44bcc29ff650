"""The shared-weight embedding network of the Siamese pair model."""

from torch import nn

from siamese_mnist.config import ModelConfig
from siamese_mnist.errors import UserError


def conv_block(in_channels, out_channels):
    # The bias is redundant in front of BatchNorm, which adds its own shift.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=5, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class EmbeddingNet(nn.Module):
    """Map ``(batch, 1, 28, 28)`` normalized images to ``(batch, embedding_dim)`` embeddings.

    LeNet-5 layout with BatchNorm: two 5x5 convolutions (28 -> 24 -> 12 -> 8 -> 4
    pixels after pooling) and two linear layers. Both images of a pair go
    through this one network, which is what makes the pair model Siamese. Because of BatchNorm, embed both images of every
    pair in one batch during training, and call ``eval()`` before scoring.
    """

    def __init__(self, config=ModelConfig()):
        super().__init__()
        if config.embedding_dim < 1:
            raise UserError(f"--embedding-dim {config.embedding_dim} must be at least 1")
        self.config = config
        c1, c2 = config.channels
        self.features = nn.Sequential(conv_block(1, c1), conv_block(c1, c2))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 4 * 4, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.embedding_dim),
        )

    def forward(self, images):
        return self.head(self.features(images))  # (batch, embedding_dim)


def normalize(images_uint8, mean, std):
    """Turn uint8 images ``(n, 28, 28)`` into float ``(n, 1, 28, 28)`` with the given statistics."""
    images = images_uint8.unsqueeze(1).float().div_(255.0)
    return images.sub_(mean).div_(std)
