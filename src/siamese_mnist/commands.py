"""Handlers of the commands that train or use a model: run, train, evaluate, report, compare, serve.

Each handler takes the parsed arguments and returns an exit status or None.
"""

import shlex
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from siamese_mnist.checkpoint import build_model, load_checkpoint, load_training_state
from siamese_mnist.config import CHECKPOINT_NAME, MODEL_NAME, TrainConfig
from siamese_mnist.data import load_splits
from siamese_mnist.errors import UserError
from siamese_mnist.fileio import write_json, write_text
from siamese_mnist.interrupt import TrainingInterrupted
from siamese_mnist.pairs import MIN_TEST_PAIRS, check_size, format_counts
from siamese_mnist.pipeline import (
    evaluate_stage, load_pair_file, prepare_out_dir, print_summary, run_config, save_test_pairs,
    train_stage,
)


def train_config_from(args):
    """Start from the preset and apply every training option given on the command line."""
    config = TrainConfig.preset(args.preset)
    from_command_line = {name: getattr(args, name, None) for name in (
        "epochs", "batch_size", "images_per_batch", "images_per_epoch", "lr", "margin",
        "embedding_dim", "augment", "val_pairs", "test_pairs", "threshold_method")}
    from_command_line.update(val_size=args.val_size, seed=args.seed, device=args.device)
    return replace(config, **{name: value for name, value in from_command_line.items()
                              if value is not None})


def default_out_dir():
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def given_options(args):
    """Return the names of the options whose value differs from the command's default."""
    from siamese_mnist.cli import build_parser

    defaults = vars(build_parser().parse_args([args.command]))
    return {name for name, value in vars(args).items()
            if name in defaults and name != "handler" and value != defaults[name]}


def resume_run(args):
    """Load the training state of ``--resume RUN_DIR``; return the folder, settings and state.

    The run continues with the settings stored in its checkpoint. A training
    option given together with --resume must equal the stored value, except
    --device, which may change.
    """
    run_dir = Path(args.resume)
    path = run_dir / CHECKPOINT_NAME
    if args.out is not None and Path(args.out) != run_dir:
        raise UserError(f"--resume continues in {run_dir} itself; drop --out {args.out}")
    if not path.is_file():
        raise UserError(
            f"--resume {run_dir}: {path} not found; pass a run folder written by 'siamese-mnist "
            "train' or 'run' that completed an epoch or was stopped with Ctrl-C"
        )
    _, state = load_training_state(path)
    config = TrainConfig.from_dict(state["train_config"])
    build_model(state, path, expected=config.model_config())
    changed = given_options(args) - {"resume", "out", "force", "device", "debug", "data_dir",
                                   "mirror", "no_verify", "lang"}
    if "preset" in changed:
        raise UserError("--preset cannot be combined with --resume, which continues with the "
                        f"settings stored in {path}; drop --preset")
    stored = config.to_dict()
    for name in sorted(changed):
        if name in stored and getattr(args, name) != stored[name]:
            flag = "--no-augment" if name == "augment" else f"--{name.replace('_', '-')}"
            raise UserError(
                f"{flag} {getattr(args, name)} differs from the {stored[name]} that {run_dir} was "
                f"started with; --resume continues with the stored settings, so drop {flag}"
            )
    if args.device != "auto":
        config = replace(config, device=args.device)
    prepare_out_dir(run_dir, force=True)
    return run_dir, config, state


def resume_command(args, out_dir):
    """Return the command line that continues an interrupted run in `out_dir`."""
    words = ["siamese-mnist", args.command, "--resume", str(out_dir)]
    if args.data_dir:
        words += ["--data-dir", args.data_dir]
    if args.mirror:
        words += ["--mirror", args.mirror]
    if args.no_verify:
        words.append("--no-verify")
    if args.device != "auto":
        words += ["--device", args.device]
    if getattr(args, "lang", "en") != "en":
        words += ["--lang", args.lang]
    return shlex.join(words)


def command_run(args):
    return command_train(args, evaluate_after=True)


def command_train(args, evaluate_after=False):
    if args.resume:
        out_dir, config, resume = resume_run(args)
        if resume["epochs_done"] >= config.epochs:
            print(f"training of {out_dir} already finished ({config.epochs} epochs); "
                  f"{'evaluating' if evaluate_after else 'writing model.pt'} again")
    else:
        config = train_config_from(args)
        config.validate()
        out_dir = Path(args.out or default_out_dir())
        created = not out_dir.exists()
        # The folder is checked first so that an unusable --out fails before any data is read.
        prepare_out_dir(out_dir, args.force)
        resume = None
    try:
        dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify,
                                      config.val_size, config.seed)
        if resume is None:
            check_size(config.val_pairs, len(np.unique(splits["val"].labels)))
            if evaluate_after:
                check_size(config.test_pairs, len(np.unique(splits["test"].labels)), MIN_TEST_PAIRS)
    except UserError:
        # A run rejected before writing anything leaves no empty folder behind.
        if resume is None and created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    test_pairs = save_test_pairs(out_dir, splits["test"], config.test_pairs, config.seed) \
        if evaluate_after else None
    if resume is None:
        write_json(out_dir / "config.json", run_config(config, dataset.folder, args.argv))
    try:
        model, state = train_stage(out_dir, splits, config, resume)
    except TrainingInterrupted as exc:
        raise TrainingInterrupted(
            exc.signum, f"{exc}; continue with: {resume_command(args, out_dir)}"
        ) from None
    if evaluate_after:
        metrics = evaluate_stage(out_dir, model, state, splits, test_pairs, device=config.device,
                                 lang=args.lang)
        print_summary(metrics, out_dir)
    else:
        print(f"threshold: {state['threshold']:.6f} ({state['threshold_method']}, "
              "chosen on validation pairs)")
        print(f"model: {out_dir / MODEL_NAME}")


def command_evaluate(args):
    if not args.checkpoint and not args.run:
        raise UserError("evaluate needs --run RUN_DIR or --checkpoint model.pt")
    checkpoint = Path(args.checkpoint) if args.checkpoint else Path(args.run) / "model.pt"
    out_dir = Path(args.out) if args.out else checkpoint.parent
    model, state = load_checkpoint(checkpoint)
    config = state["train_config"]
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, config["val_size"],
                                  config["seed"])
    # The pair file is checked before --out is created, so a bad file leaves no folder behind.
    test_pairs = load_pair_file(args.pairs, splits["test"])[0] if args.pairs else None
    if args.out:
        prepare_out_dir(out_dir, args.force)
    if test_pairs is None:
        test_pairs = save_test_pairs(out_dir, splits["test"], args.test_pairs or config["test_pairs"],
                                     config["seed"])
    else:
        # The file's pairs get the same count table as a built set, in the console and on disk.
        table = format_counts(test_pairs.label_a, test_pairs.label_b,
                              np.unique(splits["test"].labels))
        write_text(out_dir / "pair_counts.txt", table)
        print(table, end="")
    metrics = evaluate_stage(out_dir, model, state, splits, test_pairs,
                             threshold_method=args.threshold_method, device=args.device,
                             lang=args.lang)
    print_summary(metrics, out_dir)


def command_report(args):
    from siamese_mnist.report import rebuild_report

    markdown, page = rebuild_report(args.run_dir, args.out, args.lang, data_dir=args.data_dir,
                                    mirror=args.mirror, verify=not args.no_verify, device=args.device,
                                    force=args.force)
    print(f"report: {page}")
    print(f"markdown: {markdown}")


def command_compare(args):
    from siamese_mnist.compare import compare_files, format_results, results_json

    model, state = load_checkpoint(args.checkpoint)
    results = compare_files(model, state, args.images, checkpoint=args.checkpoint)
    print(results_json(results, args.checkpoint) if args.json else format_results(results))


def command_serve(args):
    from siamese_mnist.compare import checkpoint_threshold
    from siamese_mnist.data import load_dataset
    from siamese_mnist.serve import create_app, run_server

    if args.neighbours < 1:
        raise UserError(f"--neighbours {args.neighbours} must be at least 1")
    model, state = load_checkpoint(args.checkpoint)
    checkpoint_threshold(state, args.checkpoint)
    dataset = load_dataset(args.data_dir, mirror=args.mirror, verify=not args.no_verify)
    app = create_app(model, state, dataset.test_images, dataset.test_labels, neighbours=args.neighbours)
    run_server(app, args.host, args.port)
