"""Siamese network for MNIST digit-pair verification with a contrastive loss."""

__version__ = "0.1.0"
