"""How the command line reports failures: exit status, one line on stderr, --debug."""

import errno

import pytest

from siamese_mnist import cli, pair_commands
from siamese_mnist.cli import main
from siamese_mnist.errors import UserError


def fail_with(exc):
    def load_splits(*args, **kwargs):
        raise exc

    return load_splits


def test_user_error_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(pair_commands, "load_splits", fail_with(UserError("the value is wrong; fix it")))
    assert main(["data"]) == 2
    out, err = capsys.readouterr()
    assert err == "error: the value is wrong; fix it\n"
    assert out == ""


def test_system_error_exit_1(monkeypatch, capsys):
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pair_commands, "load_splits", fail_with(disk_full))
    assert main(["data"]) == 1
    _, err = capsys.readouterr()
    assert err == "error: [Errno 28] No space left on device\n"


@pytest.mark.parametrize("argv", [["--debug", "data"], ["data", "--debug"]])
def test_debug_reraises(monkeypatch, argv):
    monkeypatch.setattr(pair_commands, "load_splits", fail_with(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError):
        main(argv)


def test_debug_before_command_not_reset(monkeypatch):
    """A --debug before the command survives the command's own --debug default."""
    args = cli.build_parser().parse_args(["--debug", "train"])
    assert args.debug is True
    args = cli.build_parser().parse_args(["train"])
    assert args.debug is False


def test_ctrl_c_outside_training_exit_130(monkeypatch, capsys):
    monkeypatch.setattr(pair_commands, "load_splits", fail_with(KeyboardInterrupt()))
    assert main(["data"]) == 130
    _, err = capsys.readouterr()
    assert err == "interrupted\n"


def test_evaluate_needs_a_model(capsys):
    assert main(["evaluate"]) == 2
    _, err = capsys.readouterr()
    assert "evaluate needs --run RUN_DIR or --checkpoint model.pt" in err


def test_rejected_size_leaves_no_folder(tmp_path, capsys, real_mnist):
    out = tmp_path / "run"
    assert main(["run", "--data-dir", str(real_mnist), "--out", str(out), "--test-pairs", "9001"]) == 2
    _, err = capsys.readouterr()
    assert "pair set size 9001 is invalid" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["pairs", "build", "--size", "abc", "-o", "x.csv"],
     "error: argument --size: invalid int value: 'abc'; see 'siamese-mnist pairs build --help'\n"),
    (["runn"], "error: argument COMMAND: invalid choice: 'runn' (choose from 'run', 'data', "
               "'train', 'evaluate', 'report', 'compare', 'serve', 'pairs'); "
               "see 'siamese-mnist --help'\n"),
])
def test_usage_error_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == message
