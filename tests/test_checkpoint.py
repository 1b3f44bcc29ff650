"""Checkpoints from untrusted or foreign sources: never run code, name every mismatch."""

import pickle

import pytest
import torch

from siamese_mnist import checkpoint
from siamese_mnist.checkpoint import (
    FORMAT, TRAINING_FORMAT, build_model, load_checkpoint, load_training_state, save_checkpoint,
    save_training_state,
)
from siamese_mnist.cli import main
from siamese_mnist.errors import UserError
from siamese_mnist.model import EmbeddingNet, ModelConfig
from siamese_mnist.config import TrainConfig


class CreatesMarker:
    """Pickles as a call to open(marker, "w"): unpickling it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def save_model(path, embedding_dim=16):
    torch.manual_seed(0)
    model = EmbeddingNet(ModelConfig(embedding_dim=embedding_dim))
    save_checkpoint(path, model, TrainConfig(embedding_dim=embedding_dim), {"mean": 0.1, "std": 0.3},
                    threshold=0.5, threshold_method="pr-breakeven")
    return model


def edit_checkpoint(path, **changes):
    state = torch.load(path, weights_only=True)
    state.update(changes)
    torch.save(state, path)


def test_round_trip(tmp_path):
    model = save_model(tmp_path / "model.pt")
    loaded, state = load_checkpoint(tmp_path / "model.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert state["threshold"] == 0.5
    assert loaded.config == ModelConfig(embedding_dim=16)


@pytest.mark.parametrize("container", ["torch", "plain pickle"])
def test_malicious_pickle_rejected(tmp_path, container):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    payload = {"format": FORMAT, "model_state": CreatesMarker(marker)}
    if container == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))

    with pytest.raises(UserError, match="rejected") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)
    assert "open" in str(caught.value)  # names what was found
    assert not marker.exists()

    # The payload is real: an unrestricted load does run it.
    if container == "torch":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_malicious_checkpoint_through_cli(tmp_path, capsys):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    torch.save({"format": FORMAT, "payload": CreatesMarker(marker)}, path)
    status = main(["evaluate", "--checkpoint", str(path), "--data-dir", str(tmp_path / "none")])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1
    assert "rejected" in err
    assert "weights_only=False" not in err  # torch's advice to load it unsafely is dropped
    assert not marker.exists()


def test_weights_disagree_with_stored_config(tmp_path, capsys):
    path = tmp_path / "model.pt"
    save_model(path, embedding_dim=16)
    edit_checkpoint(path, model_config=ModelConfig(embedding_dim=32).to_dict())
    with pytest.raises(UserError, match="embedding size 16 in the weights, 32 in the stored model config"):
        load_checkpoint(path)
    status = main(["evaluate", "--checkpoint", str(path)])
    _, err = capsys.readouterr()
    assert status == 2
    assert "embedding size 16 in the weights, 32 in the stored model config" in err


def test_other_architecture_channels(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path)
    edit_checkpoint(path, model_config=ModelConfig(embedding_dim=16, channels=(8, 64), hidden=128).to_dict())
    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "channels of the first convolution 32 in the weights, 8 in the stored model config" in message
    assert "hidden units 256 in the weights, 128 in the stored model config" in message


def test_unknown_weights_named(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path)
    weights = torch.load(path, weights_only=True)["model_state"]
    weights["head.5.weight"] = torch.zeros(3)
    edit_checkpoint(path, model_state=weights)
    with pytest.raises(UserError, match='Unexpected key.*"head.5.weight"'):
        load_checkpoint(path)


def test_expected_architecture(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, embedding_dim=16)
    state = torch.load(path, weights_only=True)
    with pytest.raises(UserError, match="embedding size 16 in the checkpoint, 32 expected"):
        build_model(state, path, expected=ModelConfig(embedding_dim=32))
    assert build_model(state, path, expected=ModelConfig(embedding_dim=16)).config.embedding_dim == 16


@pytest.mark.parametrize("tag", ["siamese-mnist-checkpoint/2", None, "other-tool/1"])
def test_wrong_format_tag(tmp_path, tag):
    path = tmp_path / "model.pt"
    save_model(path)
    edit_checkpoint(path, format=tag)
    with pytest.raises(UserError, match=f"format tag is {tag!r}, expected '{FORMAT}'"):
        load_checkpoint(path)


def test_training_state_given_as_model(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_model(path)
    edit_checkpoint(path, format=TRAINING_FORMAT)
    with pytest.raises(UserError, match="training state for --resume; pass the run's model.pt"):
        load_checkpoint(path)


def test_model_given_as_training_state(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path)
    with pytest.raises(UserError, match="final model, not a training state"):
        load_training_state(path)


def test_training_state_missing_keys(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_training_state(path, {"model_config": ModelConfig().to_dict()})
    with pytest.raises(UserError, match="lacks model_state, train_config"):
        load_training_state(path)


@pytest.mark.parametrize("content, reason", [
    (b"", "not a checkpoint file, or a damaged one"),
    (b"hello, this is text", "not a checkpoint file, or a damaged one"),
])
def test_not_a_checkpoint(tmp_path, content, reason):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=reason):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a checkpoint file, or a damaged one"):
        load_checkpoint(path)


def test_non_dict_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(UserError, match="contains a list"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "model.pt")


def test_interrupted_save_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_training_state(path, {"marker": torch.ones(3)})
    before = path.read_bytes()

    def save_then_interrupt(obj, file):
        with open(file, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_training_state(path, {"marker": torch.zeros(3)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
