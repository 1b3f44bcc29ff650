"""The stages of a run (data, pairs, training, evaluation) and the files each writes."""

import json
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from siamese_mnist.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from siamese_mnist.embed import embed_images, pair_distances_from_embeddings
from siamese_mnist.errors import UserError
from siamese_mnist.fileio import write_csv, write_json, write_text
from siamese_mnist.interrupt import StopOnSignal
from siamese_mnist.metrics import (
    equal_error_rate, error_examples, format_value, pair_metrics, pair_type_accuracy,
    summary_lines, threshold_methods_table,
)
from siamese_mnist.pair_audit import check_pair_file
from siamese_mnist.pairs import (
    MIN_TEST_PAIRS, build_pair_set, format_counts, read_pair_file, write_pairs_csv,
)
from siamese_mnist.plots import FigureInputs, write_figures
from siamese_mnist.report import (
    ReportContext, read_config_if_present, read_training_log, write_report,
)
from siamese_mnist.threshold import choose_threshold
from siamese_mnist.train import resolve_device, train

log = logging.getLogger(__name__)

TRAIN_LOG_HEADER = ("epoch", "loss", "val_accuracy", "threshold", "seconds")
DISTANCES_HEADER = ("index_a", "index_b", "is_same", "distance", "predicted_same")


def prepare_out_dir(path, force=False):
    """Create the run folder, or raise before any work if it is unusable.

    A non-empty folder is only reused with `force`; its files are then
    replaced one by one as the new run writes them.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path} is a file, not a folder; choose another path")
    if path.is_dir() and any(path.iterdir()) and not force:
        if (path / CHECKPOINT_NAME).is_file():
            raise UserError(f"--out {path} already contains a run; continue it with --resume {path}, "
                            "or choose a new folder, or pass --force to start over")
        raise UserError(f"--out {path} already contains files; choose a new folder or pass --force")
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {path}: {exc.strerror}; choose another folder") from None
    # Writing a probe file also catches read-only mounts and ACLs, which os.access can miss.
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        if created:
            path.rmdir()
        raise UserError(f"--out {path} is not writable ({exc.strerror}); choose another folder") from None
    return path


def save_test_pairs(out_dir, split, n_pairs, seed):
    """Build the balanced test pair set, print its count table and write both files."""
    pairs = build_pair_set(split.labels, n_pairs, seed, minimum=MIN_TEST_PAIRS)
    table = format_counts(pairs.label_a, pairs.label_b, np.unique(split.labels))
    write_pairs_csv(out_dir / "test_pairs.csv", pairs)
    write_text(out_dir / "pair_counts.txt", table)
    print(table, end="")
    return pairs


def run_config(train_config, data_dir, argv=None):
    """Return the content of ``config.json``; `argv` is the command line after the program name."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The seed and the data folder can come from defaults and $SIAMESE_MNIST_DATA;
    # naming them makes the command reproduce the run on another shell too.
    if not any(word == "--seed" or word.startswith("--seed=") for word in arguments):
        arguments += ["--seed", str(train_config.seed)]
    if not any(word == "--data-dir" or word.startswith("--data-dir=") for word in arguments):
        arguments += ["--data-dir", str(data_dir)]
    return {
        "train": train_config.to_dict(),
        "data_dir": str(data_dir),
        # Quoted for a POSIX shell, so that the line can be pasted back as it is.
        "command": shlex.join(["siamese-mnist", *arguments]),
    }


def train_stage(out_dir, splits, config, resume=None):
    """Train, write ``model.pt``, ``train_log.csv`` and ``config.json``; return the checkpoint state.

    The training state goes to ``checkpoint.pt`` after every epoch and when
    SIGINT or SIGTERM stops training (TrainingInterrupted is then raised).
    `resume` is a training state loaded from such a file to continue from.
    """
    val_pairs = build_pair_set(splits["val"].labels, config.val_pairs, config.seed)
    rows = []
    for row in (resume or {}).get("history", []):
        rows.append((row["epoch"], f"{row['loss']:.6f}", f"{row['val_accuracy']:.6f}",
                     repr(row["threshold"]), f"{row['seconds']:.2f}"))

    def after_epoch(model, record):
        rows.append((record.epoch, f"{record.loss:.6f}", f"{record.val_accuracy:.6f}",
                     repr(record.threshold), f"{record.seconds:.2f}"))
        write_csv(out_dir / "train_log.csv", TRAIN_LOG_HEADER, rows)
        print(f"epoch {record.epoch}: loss {record.loss:.4f}, val accuracy "
              f"{record.val_accuracy:.4f}, {record.seconds:.1f}s", flush=True)

    with StopOnSignal() as stop:
        model, history, normalization = train(splits, val_pairs, config, on_epoch=after_epoch,
                                              checkpoint_path=out_dir / CHECKPOINT_NAME,
                                              resume=resume, stop=stop)
    final = history[-1]
    history_rows = [vars(record) for record in history]
    save_checkpoint(out_dir / "model.pt", model, config, normalization, final.threshold,
                    config.threshold_method, history=history_rows)
    return load_checkpoint(out_dir / "model.pt")


def evaluate_stage(out_dir, model, state, splits, test_pairs, test_is_same=None,
                   threshold_method=None, device="cpu", lang="en"):
    """Score `test_pairs` with the threshold chosen on validation pairs; write the results.

    The threshold is the checkpoint's, unless `threshold_method` names another
    method, which is then applied to the validation pairs again. Besides
    ``metrics.json`` and ``test_distances.csv``, the figures and the report
    (in language `lang`) are written into `out_dir`.

    Returns
    -------
    dict
        The content of ``metrics.json``.
    """
    config = state["train_config"]
    normalization = state["normalization"]
    device = resolve_device(device)
    model.to(device)
    method = threshold_method or state["threshold_method"]

    val_split = splits["val"]
    val_pairs = build_pair_set(val_split.labels, config["val_pairs"], config["seed"])
    val_embeddings = embed_images(model, val_split.images, device=device, **normalization)
    val_distances = pair_distances_from_embeddings(val_embeddings, val_pairs.index_a, val_pairs.index_b)
    choice = choose_threshold(val_distances, val_pairs.is_same, method)
    threshold = state["threshold"] if method == state["threshold_method"] else choice.threshold

    test_split = splits["test"]
    test_embeddings = embed_images(model, test_split.images, device=device, **normalization)
    test_distances = pair_distances_from_embeddings(test_embeddings, test_pairs.index_a,
                                                    test_pairs.index_b)
    is_same = test_pairs.is_same
    predicted = test_distances < threshold
    write_csv(out_dir / "test_distances.csv", DISTANCES_HEADER,
              zip(test_pairs.index_a.tolist(), test_pairs.index_b.tolist(), is_same.tolist(),
                  map(repr, test_distances.tolist()), predicted.astype(int).tolist()))

    test = pair_metrics(test_distances, is_same, threshold)
    val = pair_metrics(val_distances, val_pairs.is_same, threshold)
    history = state.get("history") or []
    metrics = {
        "test_accuracy": test["accuracy"],
        "threshold": threshold,
        "threshold_method": method,
        "threshold_split": "validation",
        "val_accuracy": val["accuracy"],
        "pr_auc": test["pr_auc"],
        "roc_auc": test["roc_auc"],
        "average_precision": test["average_precision"],
        "precision": test["precision"],
        "recall": test["recall"],
        "f1": test["f1"],
        "balanced_accuracy": test["balanced_accuracy"],
        "confusion": test["confusion"],
        "n_test_pairs": int(len(test_pairs)),
        "n_val_pairs": int(len(val_pairs)),
        "epochs": len(history),
        "train_seconds": round(sum(row["seconds"] for row in history), 2),
        "seed": config["seed"],
        "eer": equal_error_rate(test_distances, is_same)[0],
        "device": str(device),
        "split_sizes": {name: int(len(split.labels)) for name, split in splits.items()},
        "threshold_methods": threshold_methods_table(val_distances, val_pairs.is_same,
                                                     test_distances, is_same, method, threshold),
        "pair_type_accuracy": pair_type_accuracy(test_pairs.label_a, test_pairs.label_b,
                                                 predicted == is_same.astype(bool),
                                                 np.unique(test_split.labels)),
        "errors": error_examples(test_pairs, test_distances, threshold),
    }
    write_json(out_dir / "metrics.json", metrics)

    training_log = read_training_log(out_dir, state)
    write_figures(out_dir, FigureInputs(val_distances, val_pairs.is_same, test_distances, is_same,
                                        test_split.images, test_split.labels, test_embeddings,
                                        training_log), metrics, lang)
    count_table = format_counts(test_pairs.label_a, test_pairs.label_b, np.unique(test_split.labels))
    write_report(out_dir, ReportContext(out_dir, metrics, config, state["model_config"], count_table,
                                        training_log, read_config_if_present(out_dir)), lang)
    return metrics


def print_summary(metrics, out_dir):
    for line in summary_lines(metrics):
        print(line)
    print(f"report: {Path(out_dir) / 'report.html'}")
    print(f"test accuracy: {metrics['test_accuracy']:.4f} on {metrics['n_test_pairs']} pairs")
    confusion = metrics["confusion"]
    n_pos, n_neg = confusion["tp"] + confusion["fn"], confusion["fp"] + confusion["tn"]
    if n_pos != n_neg:
        # Plain accuracy rewards guessing the majority class when the pairs are not 1:1.
        print(f"balanced accuracy: {format_value(metrics['balanced_accuracy'])} "
              f"({n_pos} positive, {n_neg} negative pairs)")
    print(f"threshold: {metrics['threshold']:.6f} ({metrics['threshold_method']}, "
          f"chosen on validation pairs)")
    print(f"run folder: {out_dir}")


def read_run_config(run_dir):
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found; pass the folder written by 'siamese-mnist run' or 'train'") from None


def load_pair_file(path, split):
    """Read a pair CSV over `split`; refuse indices outside it and labels that disagree with it.

    Returns ``(pairs, is_same)`` as `read_pairs_csv` does.
    """
    pair_file = read_pair_file(path)
    check_pair_file(pair_file, split)
    return pair_file.pairs, pair_file.is_same
