import math

import torch

from siamese_mnist.loss import contrastive_loss, pair_distances


def brute_force_loss(embeddings_a, embeddings_b, is_same, margin):
    total = 0.0
    for a, b, same in zip(embeddings_a.tolist(), embeddings_b.tolist(), is_same.tolist()):
        d = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
        total += 0.5 * d * d if same else 0.5 * max(0.0, margin - d) ** 2
    return total / len(is_same)


def test_loss_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(12, 4, generator=generator, dtype=torch.float64)
    b = torch.randn(12, 4, generator=generator, dtype=torch.float64) * 0.5
    is_same = torch.tensor([1, 0] * 6)
    for margin in (0.5, 1.0, 3.0):
        loss = contrastive_loss(pair_distances(a, b), is_same, margin)
        assert math.isclose(loss.item(), brute_force_loss(a, b, is_same, margin), rel_tol=1e-12)


def test_loss_hand_values():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])  # distances 5, 0.5, 5
    is_same = torch.tensor([1, 0, 0])
    loss = contrastive_loss(pair_distances(a, b), is_same, margin=1.0)
    # same pair: 0.5 * 25; close different pair: 0.5 * 0.5**2; far different pair: 0
    assert math.isclose(loss.item(), (12.5 + 0.125 + 0.0) / 3, rel_tol=1e-6)


def test_gradients_finite_for_identical_inputs():
    a = torch.ones(3, 5, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    for same in (1, 0):
        loss = contrastive_loss(pair_distances(a, b), torch.full((3,), same), margin=1.0)
        loss.backward()
        assert torch.isfinite(a.grad).all()
        assert torch.isfinite(b.grad).all()
        a.grad = b.grad = None


def test_distance_is_euclidean():
    d = pair_distances(torch.tensor([[1.0, 2.0, 2.0]]), torch.zeros(1, 3))
    assert math.isclose(d.item(), 3.0, rel_tol=1e-6)
