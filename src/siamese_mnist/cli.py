"""Command-line interface: ``siamese-mnist run|data|train|evaluate``."""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from siamese_mnist import __version__
from siamese_mnist.checkpoint import load_checkpoint
from siamese_mnist.data import DEFAULT_VAL_SIZE, describe
from siamese_mnist.errors import UserError
from siamese_mnist.pairs import PairSet
from siamese_mnist.pipeline import (
    evaluate_stage, load_pair_file, load_splits, prepare_out_dir, print_summary, run_config,
    save_test_pairs, train_stage,
)
from siamese_mnist.fileio import write_json
from siamese_mnist.report_text import LANGUAGES
from siamese_mnist.threshold import METHODS
from siamese_mnist.train import TrainConfig

log = logging.getLogger("siamese_mnist")
DEFAULTS = TrainConfig()


def add_data_options(parser, split_options=True):
    group = parser.add_argument_group("data")
    group.add_argument("--data-dir", help="folder with the four MNIST IDX files (.gz or raw); "
                       "default: $SIAMESE_MNIST_DATA, else ~/.cache/siamese-mnist/mnist")
    group.add_argument("--mirror", help="base URL to download missing files from, instead of the "
                       "public mirrors (default: $SIAMESE_MNIST_MIRROR)")
    group.add_argument("--no-verify", action="store_true",
                       help="skip the MD5 check, for datasets without published checksums")
    if not split_options:
        return
    group.add_argument("--val-size", type=int, default=DEFAULT_VAL_SIZE,
                       help=f"training images held out for validation (default: {DEFAULT_VAL_SIZE})")
    group.add_argument("--seed", type=int, default=0,
                       help="seed for the validation split, the pair sets and training (default: 0)")


def add_train_options(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                       help=f"passes of --pairs-per-epoch pairs (default: {DEFAULTS.epochs})")
    group.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                       help=f"pairs per step, half same and half different (default: {DEFAULTS.batch_size})")
    group.add_argument("--images-per-batch", type=int, default=DEFAULTS.images_per_batch,
                       help="distinct images embedded per step; the pairs are formed among them "
                            f"(default: {DEFAULTS.images_per_batch})")
    group.add_argument("--images-per-epoch", type=int, default=DEFAULTS.images_per_epoch,
                       help=f"images embedded per epoch (default: {DEFAULTS.images_per_epoch})")
    group.add_argument("--lr", type=float, default=DEFAULTS.lr,
                       help=f"peak learning rate of the one-cycle schedule (default: {DEFAULTS.lr})")
    group.add_argument("--margin", type=float, default=DEFAULTS.margin,
                       help=f"contrastive loss margin, in embedding distance units (default: {DEFAULTS.margin})")
    group.add_argument("--embedding-dim", type=int, default=DEFAULTS.embedding_dim,
                       help=f"size of the embedding vector (default: {DEFAULTS.embedding_dim})")
    group.add_argument("--no-augment", action="store_true",
                       help="train without random rotation, scaling and shifts")
    group.add_argument("--val-pairs", type=int, default=DEFAULTS.val_pairs,
                       help=f"balanced validation pairs for the threshold (default: {DEFAULTS.val_pairs})")
    group.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                       help="where to train; auto picks a GPU when present (default: auto)")


def add_threshold_option(parser, default):
    parser.add_argument("--threshold-method", choices=METHODS, default=default,
                        help="how the threshold is chosen on validation pairs "
                             f"(default: {default or 'the checkpoint method'})")


def train_config_from(args):
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, margin=args.margin,
        embedding_dim=args.embedding_dim, images_per_batch=args.images_per_batch,
        images_per_epoch=args.images_per_epoch,
        val_size=args.val_size, val_pairs=args.val_pairs,
        test_pairs=getattr(args, "test_pairs", DEFAULTS.test_pairs),
        threshold_method=args.threshold_method or DEFAULTS.threshold_method,
        augment=not args.no_augment, seed=args.seed, device=args.device,
    )


def default_out_dir():
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def command_data(args):
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    print(describe(dataset, splits))


def command_train(args, evaluate_after=False):
    config = train_config_from(args)
    config.validate()
    out_dir = prepare_out_dir(args.out or default_out_dir(), args.force)
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, config.val_size,
                                  config.seed)
    test_pairs = save_test_pairs(out_dir, splits["test"], config.test_pairs, config.seed) \
        if evaluate_after else None
    write_json(out_dir / "config.json", run_config(config, dataset.folder, args.argv))
    model, state = train_stage(out_dir, splits, config)
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
    if args.out:
        prepare_out_dir(out_dir, args.force)
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, config["val_size"],
                                  config["seed"])
    if args.pairs:
        pairs, _ = load_pair_file(args.pairs, splits["test"])
        labels = splits["test"].labels
        test_pairs = PairSet(pairs.index_a, pairs.index_b, labels[pairs.index_a], labels[pairs.index_b])
    else:
        test_pairs = save_test_pairs(out_dir, splits["test"], args.test_pairs or config["test_pairs"],
                                     config["seed"])
    metrics = evaluate_stage(out_dir, model, state, splits, test_pairs,
                             threshold_method=args.threshold_method, device=args.device,
                             lang=args.lang)
    print_summary(metrics, out_dir)


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

    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        args.handler(args)
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
