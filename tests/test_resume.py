"""Interrupted training: checkpoint on SIGINT/SIGTERM, exact resume, divergence, run folders."""

import csv
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from siamese_mnist import pipeline
from siamese_mnist import train as train_module
from siamese_mnist.checkpoint import load_checkpoint, load_training_state
from siamese_mnist.cli import main
from siamese_mnist.interrupt import StopOnSignal
from tests.conftest import make_fake_dataset

REPO = Path(__file__).resolve().parents[1]
# 8 steps per epoch, two epochs, with augmentation: every generator is exercised.
TINY_REAL = ["--epochs", "2", "--images-per-epoch", "2048", "--images-per-batch", "256",
             "--batch-size", "512", "--val-size", "1000", "--val-pairs", "900", "--seed", "0",
             "--device", "cpu"]
TINY_FAKE = ["--no-verify", "--val-size", "100", "--val-pairs", "180", "--images-per-batch", "40",
             "--batch-size", "40", "--images-per-epoch", "400", "--epochs", "2", "--device", "cpu"]


def signal_at(monkeypatch, signum, epoch, step=None):
    """Make training send `signum` to this process after `step` of `epoch` (or after the epoch)."""
    real_train = train_module.train

    def train_with_signal(*args, **kwargs):
        def on_step(current_epoch, current_step):
            if (current_epoch, current_step) == (epoch, step):
                os.kill(os.getpid(), signum)

        after_epoch = kwargs.pop("on_epoch")

        def on_epoch(model, record):
            after_epoch(model, record)
            if step is None and record.epoch == epoch:
                os.kill(os.getpid(), signum)

        return real_train(*args, on_step=on_step, on_epoch=on_epoch, **kwargs)

    monkeypatch.setattr(pipeline, "train", train_with_signal)


def log_rows(run_dir):
    """Return train_log.csv without the timing column, which differs between runs."""
    with open(run_dir / "train_log.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, real_mnist):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["train", "--data-dir", str(real_mnist), "--out", str(out), *TINY_REAL]) == 0
    return out


@pytest.fixture
def fake_data(tmp_path):
    return make_fake_dataset(tmp_path / "data", n_train=1000, n_test=100)


@pytest.mark.parametrize("epoch, step", [(1, 3), (2, 5), (1, None)],
                         ids=["mid-epoch-1", "mid-epoch-2", "end-of-epoch-1"])
def test_interrupt_then_resume_is_exact(tmp_path, monkeypatch, capsys, real_mnist, reference_run,
                                        epoch, step):
    out = tmp_path / "run"
    signal_at(monkeypatch, signal.SIGINT, epoch, step)
    status = main(["train", "--data-dir", str(real_mnist), "--out", str(out), *TINY_REAL])
    _, err = capsys.readouterr()
    assert status == 130
    where = f"epoch {epoch}, step {step if step else 8} of 8"
    assert f"stopped by SIGINT at {where}" in err
    assert f"saved in {out / 'checkpoint.pt'}" in err
    assert f"continue with: siamese-mnist train --resume {out}" in err
    assert not (out / "model.pt").exists()
    _, state = load_training_state(out / "checkpoint.pt")
    assert (state["epochs_done"], state["steps_done"]) == ((epoch - 1, step) if step else (epoch, 0))

    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--data-dir", str(real_mnist)]) == 0
    resumed, resumed_state = load_checkpoint(out / "model.pt")
    reference, reference_state = load_checkpoint(reference_run / "model.pt")
    for key, value in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    assert resumed_state["threshold"] == reference_state["threshold"]
    assert log_rows(out) == log_rows(reference_run)


def test_run_interrupt_then_resume_matches(tmp_path, monkeypatch, capsys, real_mnist):
    """The one-command path resumes too, then evaluates as an uninterrupted run does."""
    reference = tmp_path / "reference"
    assert main(["run", "--data-dir", str(real_mnist), "--out", str(reference), *TINY_REAL]) == 0
    out = tmp_path / "run"
    signal_at(monkeypatch, signal.SIGINT, 2, 2)
    status = main(["run", "--data-dir", str(real_mnist), "--out", str(out), *TINY_REAL,
                   "--lang", "zh"])
    _, err = capsys.readouterr()
    assert status == 130
    printed = err.split("continue with: ")[1].strip()
    assert printed == (f"siamese-mnist run --resume {out} --data-dir {real_mnist} --device cpu "
                       "--lang zh")
    assert not (out / "metrics.json").exists()

    monkeypatch.undo()
    assert main(shlex.split(printed)[1:]) == 0
    summary = capsys.readouterr().out
    resumed = json.loads((out / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert resumed["threshold"] == expected["threshold"]
    assert resumed["test_accuracy"] == expected["test_accuracy"]
    assert resumed["pair_type_accuracy"] == expected["pair_type_accuracy"]
    assert (out / "test_pairs.csv").read_bytes() == (reference / "test_pairs.csv").read_bytes()
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# MNIST 数字对孪生网络")
    assert f"test accuracy: {expected['test_accuracy']:.4f}" in summary


def test_sigterm_saves_and_exits_143(tmp_path, fake_data):
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from siamese_mnist import pipeline, train

        def train_with_sigterm(*args, **kwargs):
            def on_step(epoch, step):
                if (epoch, step) == (2, 4):
                    os.kill(os.getpid(), signal.SIGTERM)
            return train.train(*args, on_step=on_step, **kwargs)

        pipeline.train = train_with_sigterm
        from siamese_mnist.cli import main
        sys.exit(main({["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE]!r}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert "stopped by SIGTERM at epoch 2, step 4 of 10" in result.stderr
    assert "--resume" in result.stderr
    assert "Traceback" not in result.stderr
    _, state = load_training_state(out / "checkpoint.pt")
    assert (state["epochs_done"], state["steps_done"]) == (1, 4)
    assert len(state["history"]) == 1


def test_checkpoint_after_every_epoch(tmp_path, monkeypatch, fake_data):
    out = tmp_path / "run"
    seen = []
    real_save = train_module.save_training_state

    def recording_save(path, state):
        seen.append((state["epochs_done"], state["steps_done"]))
        real_save(path, state)

    monkeypatch.setattr(train_module, "save_training_state", recording_save)
    assert main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE]) == 0
    assert seen == [(1, 0), (2, 0)]
    assert (out / "checkpoint.pt").is_file()


def test_nan_loss_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys, fake_data):
    out = tmp_path / "run"
    real_loss = train_module.contrastive_loss
    calls = []

    def loss_turning_nan(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * math.nan if len(calls) == 13 else loss  # epoch 2, step 3

    monkeypatch.setattr(train_module, "contrastive_loss", loss_turning_nan)
    status = main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1
    assert "loss became nan at epoch 2, step 3" in err
    assert f"the last good training state (end of epoch 1) stays in {out / 'checkpoint.pt'}" in err
    assert not (out / "model.pt").exists()
    _, state = load_training_state(out / "checkpoint.pt")
    assert (state["epochs_done"], state["steps_done"]) == (1, 0)
    assert all(torch.isfinite(value).all() for value in state["model_state"].values())


def test_nan_loss_in_first_epoch(tmp_path, monkeypatch, capsys, fake_data):
    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "contrastive_loss",
                        lambda distances, is_same, margin: distances.sum() * math.inf)
    status = main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE])
    _, err = capsys.readouterr()
    assert status == 2
    assert "loss became inf at epoch 1, step 1" in err
    assert "no checkpoint was saved before it" in err
    assert not (out / "checkpoint.pt").exists()


def test_resume_rejects_changed_setting(tmp_path, monkeypatch, capsys, fake_data):
    out = tmp_path / "run"
    signal_at(monkeypatch, signal.SIGINT, 1, 2)
    assert main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    common = ["train", "--resume", str(out), "--data-dir", str(fake_data), "--no-verify"]

    assert main([*common, "--epochs", "5"]) == 2
    _, err = capsys.readouterr()
    assert "--epochs 5 differs from the 2" in err
    assert main([*common, "--preset", "fast"]) == 2
    _, err = capsys.readouterr()
    assert "--preset cannot be combined with --resume" in err
    assert main([*common, "--out", str(tmp_path / "elsewhere")]) == 2
    _, err = capsys.readouterr()
    assert "drop --out" in err

    # The stored value given again is accepted, and so is another device.
    assert main([*common, "--epochs", "2", "--device", "cpu"]) == 0
    assert (out / "model.pt").is_file()


def test_resume_with_other_data_rejected(tmp_path, monkeypatch, capsys, fake_data):
    out = tmp_path / "run"
    signal_at(monkeypatch, signal.SIGINT, 1, 2)
    assert main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE]) == 130
    monkeypatch.undo()
    other = make_fake_dataset(tmp_path / "other", n_train=1000, n_test=100, seed=1)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--data-dir", str(other), "--no-verify"]) == 2
    _, err = capsys.readouterr()
    assert "the training images differ from the interrupted run's" in err


def test_resume_without_checkpoint(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    _, err = capsys.readouterr()
    assert f"{tmp_path / 'checkpoint.pt'} not found" in err


def test_resume_finished_run_keeps_weights(tmp_path, fake_data, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE]) == 0
    lines = capsys.readouterr().out.splitlines()
    before, state = load_checkpoint(out / "model.pt")
    assert lines[-2] == (f"threshold: {state['threshold']:.6f} (pr-breakeven, chosen on "
                         "validation pairs)")
    assert lines[-1] == f"model: {out / 'model.pt'}"
    assert main(["train", "--resume", str(out), "--data-dir", str(fake_data), "--no-verify"]) == 0
    resumed = capsys.readouterr().out.splitlines()
    assert resumed[0] == f"training of {out} already finished (2 epochs); writing model.pt again"
    after, _ = load_checkpoint(out / "model.pt")
    for key, value in before.state_dict().items():
        assert torch.equal(after.state_dict()[key], value), key


def test_non_empty_out_needs_force(tmp_path, capsys, fake_data):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["train", "--data-dir", str(fake_data), "--out", str(out), *TINY_FAKE]) == 2
    _, err = capsys.readouterr()
    assert f"--out {out} already contains files" in err
    assert "--force" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    assert main(["train", "--data-dir", str(fake_data), "--out", str(out), "--force", *TINY_FAKE]) == 0
    assert (out / "model.pt").is_file()
    assert (out / "notes.txt").read_text() == "keep me"


def test_out_under_a_file_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "run"
    # The data folder does not exist: the --out error must come first.
    status = main(["train", "--data-dir", str(tmp_path / "no-data"), "--out", str(out), *TINY_FAKE])
    _, err = capsys.readouterr()
    assert status == 2
    assert f"cannot create --out {out}" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "no-data").exists()


def test_read_only_out_fails_before_training(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder, so chmod cannot make one here")
    out = tmp_path / "run"
    out.mkdir()
    out.chmod(0o555)
    try:
        status = main(["train", "--data-dir", str(tmp_path / "no-data"), "--out", str(out), *TINY_FAKE])
    finally:
        out.chmod(0o755)
    _, err = capsys.readouterr()
    assert status == 2
    assert f"--out {out} is not writable" in err


def test_unwritable_out_fails_before_training(tmp_path, capsys, monkeypatch):
    """An unwritable --out, made by a stand-in for the probe file so that the test also runs as root."""
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pipeline.tempfile, "TemporaryFile", denied)
    out = tmp_path / "run"
    status = main(["train", "--data-dir", str(tmp_path / "no-data"), "--out", str(out), *TINY_FAKE])
    _, err = capsys.readouterr()
    assert status == 2
    assert err == f"error: --out {out} is not writable (Permission denied); choose another folder\n"
    assert not out.exists()


def test_second_signal_stops_at_once():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    for signum, handler in before.items():
        assert signal.getsignal(signum) == handler
