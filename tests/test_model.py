import torch

from siamese_mnist.model import EmbeddingNet, ModelConfig


def test_embedding_shape():
    model = EmbeddingNet(ModelConfig(embedding_dim=7)).eval()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 7)


def test_shared_weights_give_equal_embeddings():
    torch.manual_seed(0)
    model = EmbeddingNet().eval()
    image = torch.randn(1, 1, 28, 28)
    pair_batch = torch.cat([image, image])
    embeddings = model(pair_batch)
    assert torch.equal(embeddings[0], embeddings[1])
