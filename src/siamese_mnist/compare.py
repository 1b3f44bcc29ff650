"""Compare image files pairwise with a trained checkpoint: distance, threshold, verdict."""

import json
from dataclasses import asdict, dataclass

import torch

from siamese_mnist.errors import UserError
from siamese_mnist.preprocess import load_digit


@dataclass(frozen=True)
class PairResult:
    """The verdict on one pair of images; ``distance < threshold`` means the same digit."""

    image_a: str
    image_b: str
    distance: float
    threshold: float

    @property
    def same(self):
        return self.distance < self.threshold

    @property
    def verdict(self):
        return "same" if self.same else "different"


def checkpoint_threshold(state, checkpoint):
    threshold = state.get("threshold")
    if threshold is None:
        raise UserError(f"{checkpoint}: the checkpoint has no threshold; train it with siamese-mnist train")
    return float(threshold)


@torch.no_grad()
def embed_tensors(model, tensors):
    """Return the embeddings ``(n, embedding_dim)`` of normalized inputs, each ``(1, 28, 28)``."""
    model.eval()
    device = next(model.parameters()).device
    return model(torch.stack(tensors).to(device)).float().cpu()


def compare_files(model, state, paths, checkpoint="model.pt"):
    """Score image files taken two at a time: ``paths[0]`` with ``paths[1]``, and so on.

    Parameters
    ----------
    model : EmbeddingNet
    state : dict
        The checkpoint state, for ``normalization`` and ``threshold``.
    paths : sequence of str
        An even number of image files.
    checkpoint : str
        How error messages refer to the checkpoint.

    Returns
    -------
    list of PairResult, one per pair, in order.

    Raises
    ------
    UserError
        For an odd number of files or any file that `load_digit` rejects; the
        message names the file.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise UserError("no images given; pass image files in pairs: A B [C D ...]")
    if len(paths) % 2:
        raise UserError(f"{paths[-1]}: has no partner, the number of images ({len(paths)}) is odd; "
                        "pass image files in pairs")
    threshold = checkpoint_threshold(state, checkpoint)
    inputs = [load_digit(path, state["normalization"], path) for path in paths]
    embeddings = embed_tensors(model, [item.tensor for item in inputs])
    results = []
    for i in range(0, len(paths), 2):
        distance = torch.linalg.vector_norm(embeddings[i] - embeddings[i + 1]).item()
        results.append(PairResult(paths[i], paths[i + 1], distance, threshold))
    return results


def format_results(results):
    """Return one line per pair: both files, distance, threshold and verdict."""
    return "\n".join(
        f"{r.image_a}  {r.image_b}  distance {r.distance:.4f}  threshold {r.threshold:.4f}  {r.verdict}"
        for r in results
    )


def results_json(results, checkpoint):
    """Return `results` as a JSON document (a string)."""
    pairs = [{**asdict(r), "same": r.same, "verdict": r.verdict} for r in results]
    return json.dumps({"checkpoint": str(checkpoint), "pairs": pairs}, indent=2)
