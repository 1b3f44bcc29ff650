"""Command-line interface: the argument parser and ``main``.

The handlers live in `commands` (run, train, evaluate, report, compare,
serve) and `pair_commands` (data, pairs); they are imported only once the
command is known.
"""

import argparse
import importlib
import logging
import sys

from siamese_mnist import __version__
from siamese_mnist.config import CHECKPOINT_NAME, PRESETS, TrainConfig
from siamese_mnist.data import DEFAULT_VAL_SIZE, SPLITS
from siamese_mnist.errors import UserError
from siamese_mnist.interrupt import TrainingInterrupted
from siamese_mnist.report_text import LANGUAGES
from siamese_mnist.threshold import METHODS

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
                       help="'default' trains the full network for 15 epochs with augmentation; "
                            "'fast' trains a network with half the channels for 3 shorter epochs "
                            "without augmentation (default: default)")
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
    add_device_option(group, "where to train")


def add_device_option(parser, purpose):
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help=f"{purpose}; auto picks a GPU when present (default: auto)")


def add_threshold_option(parser, default):
    parser.add_argument("--threshold-method", choices=METHODS, default=default,
                        help="how the threshold is chosen on validation pairs "
                             f"(default: {default or 'the checkpoint method'})")


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
                       help="CSV file to write, or - for standard output; an existing file "
                            "is replaced")
    build.set_defaults(handler="pair_commands:command_pairs_build")

    stats = actions.add_parser("stats", help="print the count table of a pair file",
                               description="Print the count table of a pair file, with each "
                                           "pair's type taken from the dataset's labels.")
    verify = actions.add_parser("verify", help="check a pair file against the dataset",
                                description="Check a pair file against the dataset: indices, "
                                            "labels, self-pairs, repeats and balance. Exit 0 with "
                                            "one OK line, or exit 1 and list the violations.")
    for action, handler in ((stats, "pair_commands:command_pairs_stats"),
                            (verify, "pair_commands:command_pairs_verify")):
        add_data_options(action)
        action.add_argument("file", metavar="FILE",
                            help="pair CSV with the columns index_a,index_b,label_a,label_b,is_same, "
                                 "or - for standard input")
        action.add_argument("--split", choices=SPLITS,
                            help="split the indices point into (default: the file's split "
                                 "column, else test)")
        action.set_defaults(handler=handler)


def add_lang_option(parser):
    parser.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="language of report.md and report.html: en (English) or zh "
                             "(Simplified Chinese) (default: en)")


class Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors are one line, like the tool's other errors."""

    def error(self, message):
        self.exit(2, f"error: {message}; see '{self.prog} --help'\n")


def build_parser():
    parser = Parser(
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
    run.set_defaults(handler="commands:command_run")

    data = commands.add_parser("data", help="check the MNIST files and print split sizes",
                               description="Locate (or download) and verify the MNIST files, then "
                                           "print counts per split and digit.")
    add_data_options(data)
    data.set_defaults(handler="pair_commands:command_data")

    train = commands.add_parser("train", help="train a model and choose its threshold",
                                description="Train the embedding network and store it, with the "
                                            "threshold chosen on validation pairs, in OUT/model.pt.")
    add_data_options(train)
    add_train_options(train)
    add_threshold_option(train, DEFAULTS.threshold_method)
    train.add_argument("--out", help="run folder (default: runs/<timestamp>)")
    train.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    add_resume_option(train)
    train.set_defaults(handler="commands:command_train")

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
    add_device_option(evaluate, "where to compute embeddings")
    add_threshold_option(evaluate, None)
    add_lang_option(evaluate)
    evaluate.set_defaults(handler="commands:command_evaluate")

    report = commands.add_parser("report", help="draw the figures and write the report of a run again",
                                 description="Rebuild the figures, report.md and report.html of a run "
                                             "folder from its metrics.json, test_distances.csv and "
                                             "model.pt; the data is read again for the images.")
    report.add_argument("run_dir", metavar="RUN_DIR", help="folder written by 'siamese-mnist run'")
    report.add_argument("--out", help="folder for the figures and the report (default: RUN_DIR)")
    report.add_argument("--force", action="store_true",
                        help="write into an --out folder that contains other files")
    add_device_option(report, "where to compute embeddings")
    add_lang_option(report)
    add_data_options(report, split_options=False)
    report.set_defaults(handler="commands:command_report")

    compare = commands.add_parser("compare", help="say whether image files show the same digit",
                                  description="Compare image files two at a time (A with B, C with D, "
                                              "...): print the distance, the threshold and the "
                                              "verdict 'same' or 'different' for each pair.")
    compare.add_argument("--checkpoint", required=True, help="model.pt with the threshold to use")
    compare.add_argument("--json", action="store_true", help="print the results as JSON")
    compare.add_argument("images", nargs="+", metavar="IMAGE",
                         help="PNG, JPEG, BMP, GIF or WebP files, in pairs; any size, grey or colour, "
                              "dark digit on light paper or light on dark")
    compare.set_defaults(handler="commands:command_compare")

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
    serve.set_defaults(handler="commands:command_serve")

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


def resolve_handler(reference):
    """Import the handler named ``module:function`` only now, so that a command
    that needs no model does not pay for importing torch."""
    module_name, function_name = reference.split(":")
    return getattr(importlib.import_module(f"siamese_mnist.{module_name}"), function_name)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        status = resolve_handler(args.handler)(args)
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
