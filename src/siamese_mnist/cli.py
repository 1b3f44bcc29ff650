"""Command-line interface: ``siamese-mnist run|data|train|evaluate``."""

import argparse
from dataclasses import replace
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from siamese_mnist import __version__
from siamese_mnist.checkpoint import CHECKPOINT_NAME, build_model, load_checkpoint, load_training_state
from siamese_mnist.data import DEFAULT_VAL_SIZE, SPLITS, describe
from siamese_mnist.errors import UserError
from siamese_mnist.pair_audit import audit_pair_file, count_table, resolve_split
from siamese_mnist.pairs import build_pair_set, minimum_size, read_pair_file, write_pairs_csv
from siamese_mnist.pipeline import (
    evaluate_stage, load_pair_file, load_splits, prepare_out_dir, print_summary, run_config,
    save_test_pairs, train_stage,
)
from siamese_mnist.fileio import write_json
from siamese_mnist.interrupt import TrainingInterrupted
from siamese_mnist.report_text import LANGUAGES
from siamese_mnist.threshold import METHODS
from siamese_mnist.train import PRESETS, TrainConfig

log = logging.getLogger("siamese_mnist")
DEFAULTS = TrainConfig()


def add_data_options(parser, split_options=True):
    group = parser.add_argument_group("data")
    group.add_argument("--data-dir", help="folder with the four MNIST IDX files (.gz or raw); "
                       "default: $SIAMESE_MNIST_DATA, else ~/.cache/siamese-mnist/mnist")
    group.add_argument("--mirror", help="base URL to download missing files from, instead of the "
                       "public mirrors; several URLs separated by commas are tried in order "
                       "(default: $SIAMESE_MNIST_MIRROR)")
    group.add_argument("--no-verify", action="store_true",
                       help="skip the MD5 check, for datasets without published checksums")
    if not split_options:
        return
    group.add_argument("--val-size", type=int, default=DEFAULT_VAL_SIZE,
                       help=f"training images held out for validation (default: {DEFAULT_VAL_SIZE})")
    group.add_argument("--seed", type=int, default=0,
                       help="seed for the validation split, the pair sets and training (default: 0)")


def preset_default(name):
    """Return the help text for an option's default under each preset."""
    values = {preset: getattr(TrainConfig.preset(preset), name) for preset in PRESETS}
    if len(set(map(str, values.values()))) == 1:
        return f"default: {values['default']}"
    return "default: " + ", ".join(f"{value} with --preset {preset}" for preset, value in values.items())


def add_train_options(parser):
    group = parser.add_argument_group("training (unset options take the --preset value)")
    group.add_argument("--preset", choices=tuple(PRESETS), default="default",
                       help="'default' aims at the best accuracy in a few minutes on a laptop CPU; "
                            "'fast' trains a smaller network for about 20 seconds (default: default)")
    group.add_argument("--epochs", type=int,
                       help=f"passes of --images-per-epoch images ({preset_default('epochs')})")
    group.add_argument("--batch-size", type=int,
                       help="pairs per step, half same and half different "
                            f"({preset_default('batch_size')})")
    group.add_argument("--images-per-batch", type=int,
                       help="distinct images embedded per step; the pairs are formed among them "
                            f"({preset_default('images_per_batch')})")
    group.add_argument("--images-per-epoch", type=int,
                       help=f"images embedded per epoch ({preset_default('images_per_epoch')})")
    group.add_argument("--lr", type=float,
                       help=f"peak learning rate of the one-cycle schedule ({preset_default('lr')})")
    group.add_argument("--margin", type=float,
                       help="contrastive loss margin, in embedding distance units "
                            f"({preset_default('margin')})")
    group.add_argument("--embedding-dim", type=int,
                       help=f"size of the embedding vector ({preset_default('embedding_dim')})")
    group.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                       help="train without random rotation, scaling and shifts")
    group.add_argument("--val-pairs", type=int,
                       help=f"balanced validation pairs for the threshold ({preset_default('val_pairs')})")
    group.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                       help="where to train; auto picks a GPU when present (default: auto)")


def add_threshold_option(parser, default):
    parser.add_argument("--threshold-method", choices=METHODS, default=default,
                        help="how the threshold is chosen on validation pairs "
                             f"(default: {default or 'the checkpoint method'})")


def train_config_from(args):
    """Start from the preset and apply every training option given on the command line."""
    config = TrainConfig.preset(args.preset)
    given = {name: getattr(args, name, None) for name in (
        "epochs", "batch_size", "images_per_batch", "images_per_epoch", "lr", "margin",
        "embedding_dim", "augment", "val_pairs", "test_pairs", "threshold_method")}
    given.update(val_size=args.val_size, seed=args.seed, device=args.device)
    return replace(config, **{name: value for name, value in given.items() if value is not None})


def default_out_dir():
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def command_data(args):
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    print(describe(dataset, splits))


def given_options(args):
    """Return the names of the options whose value differs from the command's default."""
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
    given = given_options(args) - {"resume", "out", "force", "device", "debug", "data_dir",
                                   "mirror", "no_verify", "lang"}
    if "preset" in given:
        raise UserError("--preset cannot be combined with --resume, which continues with the "
                        f"settings stored in {path}; drop --preset")
    stored = config.to_dict()
    for name in sorted(given):
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
    return shlex.join(words)


def command_train(args, evaluate_after=False):
    if args.resume:
        out_dir, config, resume = resume_run(args)
    else:
        config = train_config_from(args)
        config.validate()
        out_dir = prepare_out_dir(args.out or default_out_dir(), args.force)
        resume = None
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, config.val_size,
                                  config.seed)
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
        print(f"checkpoint: {out_dir / 'model.pt'}")


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
    metrics = evaluate_stage(out_dir, model, state, splits, test_pairs,
                             threshold_method=args.threshold_method, device=args.device,
                             lang=args.lang)
    print_summary(metrics, out_dir)


def command_pairs_build(args):
    _, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    pairs = build_pair_set(splits[args.split].labels, args.size, args.seed,
                           minimum=minimum_size(args.split))
    try:
        write_pairs_csv(args.out, pairs)
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror}; choose another path") from None
    print(f"wrote {args.out}: {len(pairs)} pairs over the {args.split} split (seed {args.seed})")


def load_pair_file_and_split(args):
    """Read FILE first, so that a bad file fails before the dataset is loaded."""
    pair_file = read_pair_file(args.file)
    split_name = resolve_split(pair_file, args.split)
    _, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    return pair_file, splits[split_name]


def command_pairs_stats(args):
    print(count_table(*load_pair_file_and_split(args)), end="")


def command_pairs_verify(args):
    audit = audit_pair_file(*load_pair_file_and_split(args))
    print(audit.report())
    return 0 if audit.ok else 1


def add_pairs_commands(commands):
    pairs = commands.add_parser("pairs", help="build, count and verify pair set files",
                                description="Write a balanced pair set to a CSV file, print the "
                                            "count table of a pair file, or check one against the "
                                            "dataset.")
    actions = pairs.add_subparsers(dest="pairs_command", metavar="ACTION", required=True)

    build = actions.add_parser("build", help="write a balanced pair set to a CSV file",
                               description="Write an exactly balanced pair set over one split; the "
                                           "same options always give the same bytes.")
    add_data_options(build)
    build.add_argument("--split", choices=SPLITS, default="test",
                       help="split the pair indices point into (default: test)")
    build.add_argument("--size", type=int, default=DEFAULTS.test_pairs,
                       help="number of pairs N: with K classes, N/2 must be divisible by K and by "
                            "K(K-1)/2, and the test split needs at least 9000 "
                            f"(default: {DEFAULTS.test_pairs})")
    build.add_argument("-o", "--out", required=True, metavar="FILE",
                       help="CSV file to write; an existing file is replaced")
    build.set_defaults(handler=command_pairs_build)

    stats = actions.add_parser("stats", help="print the count table of a pair file",
                               description="Print the count table of a pair file, with each "
                                           "pair's type taken from the dataset's labels.")
    verify = actions.add_parser("verify", help="check a pair file against the dataset",
                                description="Check a pair file against the dataset: indices, "
                                            "labels, self-pairs, repeats and balance. Exit 0 with "
                                            "one OK line, or exit 1 and list the violations.")
    for action, handler in ((stats, command_pairs_stats), (verify, command_pairs_verify)):
        add_data_options(action)
        action.add_argument("file", metavar="FILE",
                            help="pair CSV with the columns index_a,index_b,label_a,label_b,is_same")
        action.add_argument("--split", choices=SPLITS,
                            help="split the indices point into (default: the file's split "
                                 "column, else test)")
        action.set_defaults(handler=handler)


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


def add_lang_option(parser):
    parser.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="language of report.md and report.html: en (English) or zh "
                             "(Simplified Chinese) (default: en)")


def command_report(args):
    from siamese_mnist.report import rebuild_report

    markdown, page = rebuild_report(args.run_dir, args.out, args.lang, data_dir=args.data_dir,
                                    mirror=args.mirror, verify=not args.no_verify, device=args.device)
    print(f"report: {page}")
    print(f"markdown: {markdown}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="siamese-mnist",
        description="Train a Siamese network on MNIST digit pairs and evaluate it on an "
                    "exactly balanced test pair set.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="data, test pairs, training and evaluation in one go",
                              description="Download MNIST if needed, build the balanced test pairs, "
                                          "train, choose the threshold on validation pairs and "
                                          "score the test pairs.")
    add_data_options(run)
    add_train_options(run)
    add_threshold_option(run, DEFAULTS.threshold_method)
    run.add_argument("--test-pairs", type=int, default=DEFAULTS.test_pairs,
                     help=f"size of the balanced test pair set, at least 9000 (default: {DEFAULTS.test_pairs})")
    run.add_argument("--out", help="run folder (default: runs/<timestamp>)")
    run.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    add_resume_option(run)
    add_lang_option(run)
    run.set_defaults(handler=lambda args: command_train(args, evaluate_after=True))

    data = commands.add_parser("data", help="check the MNIST files and print split sizes",
                               description="Locate (or download) and verify the MNIST files, then "
                                           "print counts per split and digit.")
    add_data_options(data)
    data.set_defaults(handler=command_data)

    train = commands.add_parser("train", help="train a model and choose its threshold",
                                description="Train the embedding network and store it, with the "
                                            "threshold chosen on validation pairs, in OUT/model.pt.")
    add_data_options(train)
    add_train_options(train)
    add_threshold_option(train, DEFAULTS.threshold_method)
    train.add_argument("--out", help="run folder (default: runs/<timestamp>)")
    train.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    add_resume_option(train)
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser("evaluate", help="score test pairs with a trained model",
                                   description="Score the balanced test pairs (or --pairs FILE) with "
                                               "a checkpoint and write metrics and curves.")
    add_data_options(evaluate)
    evaluate.add_argument("--run", help="run folder with model.pt; results are written there")
    evaluate.add_argument("--checkpoint", help="model.pt to evaluate")
    evaluate.add_argument("--pairs", help="pair CSV over the test split (default: build the balanced set)")
    evaluate.add_argument("--test-pairs", type=int, help="size of the balanced test pair set "
                          "(default: the checkpoint's)")
    evaluate.add_argument("--out", help="folder for the results (default: the checkpoint's folder)")
    evaluate.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                          help="where to compute embeddings (default: auto)")
    add_threshold_option(evaluate, None)
    add_lang_option(evaluate)
    evaluate.set_defaults(handler=command_evaluate)

    report = commands.add_parser("report", help="draw the figures and write the report of a run again",
                                 description="Rebuild the figures, report.md and report.html of a run "
                                             "folder from its metrics.json, test_distances.csv and "
                                             "model.pt; the data is read again for the images.")
    report.add_argument("run_dir", metavar="RUN_DIR", help="folder written by 'siamese-mnist run'")
    report.add_argument("--out", help="folder for the figures and the report (default: RUN_DIR)")
    report.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to compute embeddings (default: auto)")
    add_lang_option(report)
    add_data_options(report, split_options=False)
    report.set_defaults(handler=command_report)

    compare = commands.add_parser("compare", help="say whether image files show the same digit",
                                  description="Compare image files two at a time (A with B, C with D, "
                                              "...): print the distance, the threshold and the "
                                              "verdict 'same' or 'different' for each pair.")
    compare.add_argument("--checkpoint", required=True, help="model.pt with the threshold to use")
    compare.add_argument("--json", action="store_true", help="print the results as JSON")
    compare.add_argument("images", nargs="+", metavar="IMAGE",
                         help="PNG, JPEG, BMP, GIF or WebP files, in pairs; any size, grey or colour, "
                              "dark digit on light paper or light on dark")
    compare.set_defaults(handler=command_compare)

    serve = commands.add_parser("serve", help="open a local web page to draw and compare two digits",
                                description="Serve a web page with two drawing areas (or uploads) "
                                            "that shows the preprocessed inputs, the distance, the "
                                            "verdict and the nearest MNIST test digits.")
    serve.add_argument("--checkpoint", required=True, help="model.pt with the threshold to use")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; 0.0.0.0 exposes the page to the network "
                            "(default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default: 8000)")
    serve.add_argument("--neighbours", type=int, default=5,
                       help="nearest test digits shown for each input (default: 5)")
    add_data_options(serve, split_options=False)
    serve.set_defaults(handler=command_serve)

    add_pairs_commands(commands)
    add_debug_option_to_commands(commands)
    return parser


def add_resume_option(parser):
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help=f"continue an interrupted run from RUN_DIR/{CHECKPOINT_NAME}, with the "
                             "settings stored there (written after every epoch and on Ctrl-C)")


def add_debug_option_to_commands(commands):
    """Accept --debug after the command name as well as before it."""
    for command in commands.choices.values():
        # SUPPRESS keeps an absent sub-command flag from resetting a --debug given before the command.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks and debug logs")
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                add_debug_option_to_commands(action)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        status = args.handler(args)
    except TrainingInterrupted as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Failures of the system rather than of the input: disk full, a folder
        # removed while the run writes into it.
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status or 0
