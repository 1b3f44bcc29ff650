"""The run report: ``report.md`` and a self-contained ``report.html``, in English or Chinese.

Both files are rendered from one list of blocks (headings, paragraphs,
tables, preformatted text, figures), so they always carry the same numbers.
Metrics are read from ``metrics.json``; nothing is recomputed here.
"""

import base64
import csv
import html
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamese_mnist import __version__
from siamese_mnist.checkpoint import load_checkpoint
from siamese_mnist.data import get_splits, load_dataset
from siamese_mnist.embed import embed_images, pair_distances_from_embeddings
from siamese_mnist.errors import UserError
from siamese_mnist.fileio import write_text
from siamese_mnist.metrics import format_value, worst_pair_types
from siamese_mnist.pairs import build_pair_set, format_counts
from siamese_mnist.plots import FIGURES, FigureInputs, write_figures
from siamese_mnist.report_text import LANGUAGES, TEXT
from siamese_mnist.train import resolve_device

# The files that `rebuild_report` writes into its output folder.
REPORT_FILES = (*FIGURES, "report.md", "report.html")
REPORT_KEYS = ("threshold_methods", "pair_type_accuracy", "errors", "eer", "split_sizes")


def rate(value):
    """Format an accuracy-like value as the report prints it."""
    return "none" if value is None or math.isnan(value) else f"{value:.4f}"


def distance(value):
    return f"{value:.6f}"


@dataclass(frozen=True)
class ReportContext:
    """Everything a report shows; `metrics` is the content of ``metrics.json``."""

    run_dir: Path
    metrics: dict
    train_config: dict
    model_config: dict
    count_table: str
    training_log: list  # rows of train_log.csv as dicts of strings, header order kept
    run_config: dict | None  # config.json, or None when the folder has none


def read_training_log(run_dir, state):
    """Return the rows of ``train_log.csv``, or rows formatted from the checkpoint's history."""
    path = Path(run_dir) / "train_log.csv"
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    return [{"epoch": str(row["epoch"]), "loss": f"{row['loss']:.6f}",
             "val_accuracy": f"{row['val_accuracy']:.6f}", "threshold": repr(row["threshold"]),
             "seconds": f"{row['seconds']:.2f}"} for row in state.get("history") or []]


def read_config_if_present(run_dir):
    path = Path(run_dir) / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def rerun_command(command):
    """Return the recorded `command` with ``--out DIR`` changed to a new folder, ``DIR-rerun``.

    Run as recorded, the command would stop at the run folder it already
    filled.
    """
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "--out" and i + 1 < len(words):
            words[i + 1] += "-rerun"
        elif word.startswith("--out="):
            words[i] += "-rerun"
    return shlex.join(words)


def build_blocks(context, lang):
    """Return the report as a list of blocks, each a tuple whose first item names its kind."""
    text = TEXT[lang]
    metrics = context.metrics
    config = context.train_config
    model = context.model_config
    confusion = metrics["confusion"]
    correct = confusion["tp"] + confusion["tn"]
    blocks = [
        ("h1", text["title"]),
        ("p", text["intro"].format(run_dir=context.run_dir, version=__version__)),
        ("h2", text["summary"]),
        ("p", text["summary_text"].format(
            accuracy=rate(metrics["test_accuracy"]), correct=correct, pairs=metrics["n_test_pairs"],
            threshold=distance(metrics["threshold"]), method=metrics["threshold_method"],
            val_pairs=metrics["n_val_pairs"])),
    ]

    # Setup
    sizes = metrics["split_sizes"]
    data_dir = (context.run_config or {}).get("data_dir", "?")
    augment = text["augment_on"] if config["augment"] else text["augment_off"]
    setup = [
        (text["data"], text["data_value"].format(data_dir=data_dir)),
        (text["splits"], text["splits_value"].format(**sizes)),
        (text["pair_sets"], text["pair_sets_value"].format(val_pairs=metrics["n_val_pairs"],
                                                           test_pairs=metrics["n_test_pairs"])),
        (text["network"], text["network_value"].format(
            channels=", ".join(str(c) for c in model["channels"]), hidden=model["hidden"],
            embedding_dim=model["embedding_dim"])),
        (text["loss"], text["loss_value"].format(margin=config["margin"])),
        (text["training"], text["training_value"].format(
            epochs=metrics["epochs"], images_per_epoch=config["images_per_epoch"],
            batch_size=config["batch_size"], images_per_batch=config["images_per_batch"],
            lr=config["lr"], weight_decay=config["weight_decay"], augment=augment)),
        (text["seed"], str(metrics["seed"])),
        (text["device"], text["device_value"].format(device=metrics["device"],
                                                     setting=config["device"])),
        (text["time"], text["time_value"].format(seconds=f"{metrics['train_seconds']:.2f}")),
    ]
    blocks += [("h2", text["setup"]), ("table", (text["item"], text["value"]), setup)]

    # Count table and training log
    blocks += [("h2", text["counts"]), ("p", text["counts_text"]), ("pre", context.count_table)]
    log = context.training_log
    if log:
        columns = tuple(log[0])
        header = tuple(text["log_columns"].get(name, name) for name in columns)
        blocks += [("h2", text["log"]), ("p", text["log_text"]),
                   ("table", header, [tuple(row[name] for name in columns) for row in log]),
                   ("figure", "training_curves.png", text["fig_training"])]

    # Threshold choice
    methods = [(name, distance(row["threshold"]), rate(row["val_accuracy"]),
                rate(row["test_accuracy"]), text["yes"] if row["in_use"] else text["no"])
               for name, row in metrics["threshold_methods"].items()]
    blocks += [
        ("h2", text["threshold"]),
        ("p", text["threshold_text"].format(method=metrics["threshold_method"])),
        ("table", (text["method"], text["threshold_value"], text["val_accuracy"], text["test_accuracy"],
                   text["in_use"]), methods),
        ("figure", "pr_curve.png", text["fig_pr"]),
        ("figure", "roc_curve.png", text["fig_roc"]),
        ("figure", "distance_histogram.png", text["fig_hist"]),
    ]

    # Metrics
    values = [(text["accuracy"], rate(metrics["test_accuracy"]))]
    values += [(text[key], format_value(metrics[key], text["undefined"])) for key in (
        "precision", "recall", "f1", "balanced_accuracy", "roc_auc", "average_precision", "pr_auc",
        "eer")]
    blocks += [
        ("h2", text["metrics"]),
        ("p", text["metrics_text"].format(pairs=metrics["n_test_pairs"],
                                          threshold=distance(metrics["threshold"]))),
        ("table", (text["metric"], text["value"]), values),
        ("p", text["confusion"]),
        ("table", (text["actual"], text["predicted_same"], text["predicted_different"]),
         [(text["same"], str(confusion["tp"]), str(confusion["fn"])),
          (text["different"], str(confusion["fp"]), str(confusion["tn"]))]),
    ]

    # Per-type accuracy
    types = metrics["pair_type_accuracy"]
    worst_types, tied = worst_pair_types(types)
    worst = ", ".join(f"{row['type']} {rate(row['accuracy'])}" for row in worst_types)
    if tied:
        worst += text["more_tied"].format(count=tied, accuracy=rate(worst_types[-1]["accuracy"]))
    type_rows = [(row["type"], text["positive"] if row["is_same"] else text["negative"],
                  str(row["pairs"]), str(row["correct"]),
                  text["none"] if row["accuracy"] is None else rate(row["accuracy"]))
                 for row in types]
    blocks += [
        ("h2", text["types"]),
        ("p", text["types_text"].format(n_types=len(types), worst=worst or text["none"])),
        ("figure", "pair_type_accuracy.png", text["fig_types"]),
        ("table", (text["type"], text["kind"], text["pairs"], text["correct"], text["accuracy"]),
         type_rows),
        ("h2", text["embedding"]),
        ("figure", "embedding_map.png", text["fig_embedding"]),
    ]

    # Error gallery
    errors = metrics["errors"]
    error_rows = [(text[kind], f"{entry['label_a']} / {entry['label_b']}",
                   f"{entry['index_a']}, {entry['index_b']}", distance(entry["distance"]))
                  for kind in ("false_same", "false_different") for entry in errors[kind]]
    blocks += [
        ("h2", text["errors"]),
        ("p", text["errors_text"].format(false_same=confusion["fp"], false_different=confusion["fn"])),
        ("figure", "error_gallery.png", text["fig_errors"]),
    ]
    if error_rows:
        blocks.append(("table", (text["error_kind"], text["digits"], text["indices"],
                                 text["distance"]), error_rows))

    # Reproduce
    blocks.append(("h2", text["reproduce"]))
    command = (context.run_config or {}).get("command")
    if command:
        blocks += [("p", text["reproduce_text"]), ("pre", rerun_command(command) + "\n")]
    else:
        blocks.append(("p", text["no_command"]))
    return blocks


def markdown_cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks):
    lines = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "pre":
            lines += ["```", block[1].rstrip("\n"), "```", ""]
        elif kind == "figure":
            lines += [f"![{block[2]}]({block[1]})", "", f"*{block[2]}*", ""]
        elif kind == "table":
            _, header, rows = block
            lines.append("| " + " | ".join(markdown_cell(c) for c in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


STYLE = """
body { font-family: "Noto Sans", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC",
       Arial, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1a1a1a; }
h1 { font-size: 1.7rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #eee; }
pre { background: #f5f5f5; padding: 0.6rem; overflow-x: auto; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #444; }
@media print { h2 { break-after: avoid; } figure, table { break-inside: avoid; } }
"""


def render_html(blocks, lang, image_folder):
    """Return the report as one HTML page; the figures are embedded as base64 data URIs."""
    parts = ["<!DOCTYPE html>", f'<html lang="{TEXT[lang]["html_lang"]}">', "<head>",
             '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(TEXT[lang]['title'])}</title>",
             f"<style>{STYLE}</style>", "</head>", "<body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "figure":
            data = base64.b64encode((Path(image_folder) / block[1]).read_bytes()).decode("ascii")
            caption = html.escape(block[2])
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                         f"<figcaption>{caption}</figcaption></figure>")
        elif kind == "table":
            _, header, rows = block
            parts.append("<table><thead><tr>"
                         + "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
                         + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                      for row in rows]
            parts.append("</tbody></table>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_report(out_dir, context, lang="en"):
    """Write ``report.md`` and ``report.html`` into `out_dir`, which must hold the figures.

    Returns
    -------
    (Path, Path)
        The Markdown and the HTML file.
    """
    if lang not in LANGUAGES:
        raise UserError(f"report language {lang!r} is unknown; use one of {', '.join(LANGUAGES)}")
    out_dir = Path(out_dir)
    blocks = build_blocks(context, lang)
    write_text(out_dir / "report.md", render_markdown(blocks))
    write_text(out_dir / "report.html", render_html(blocks, lang, out_dir))
    return out_dir / "report.md", out_dir / "report.html"


def read_scored_pairs(path, n_images):
    """Read ``test_distances.csv``; return index_a, index_b, is_same and distances as arrays."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        index_a = np.array([int(row["index_a"]) for row in rows], dtype=np.int64)
        index_b = np.array([int(row["index_b"]) for row in rows], dtype=np.int64)
        is_same = np.array([int(row["is_same"]) for row in rows], dtype=np.int64)
        distances = np.array([float(row["distance"]) for row in rows], dtype=np.float64)
    except FileNotFoundError:
        raise UserError(f"{path} not found; run 'siamese-mnist evaluate --run RUN_DIR' first") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); run 'siamese-mnist evaluate --run RUN_DIR' "
                        "to write it again") from None
    if len(rows) == 0 or index_a.min() < 0 or index_b.min() < 0 \
            or max(index_a.max(), index_b.max()) >= n_images:
        raise UserError(f"{path}: no pairs, or indices outside the {n_images} test images; "
                        "run 'siamese-mnist evaluate --run RUN_DIR' to write it again")
    return index_a, index_b, is_same, distances


def rebuild_report(run_dir, out_dir=None, lang="en", data_dir=None, mirror=None, verify=True,
                   device="auto", force=False):
    """Draw the figures and write the report of a run folder again, into `out_dir`.

    Metrics and test distances come from the run folder's ``metrics.json``
    and ``test_distances.csv``. The images and the embeddings need the data
    and the checkpoint, so the test images are embedded again with
    ``model.pt``, and the validation pairs are rebuilt and scored for the curves.
    An `out_dir` other than `run_dir` may already contain an earlier report,
    but other files there need `force`, so that another run's folder is not
    given a report that its own files contradict.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir
    if lang not in LANGUAGES:
        raise UserError(f"--lang {lang} is unknown; use one of {', '.join(LANGUAGES)}")
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} not found; pass a folder written by 'siamese-mnist run'")
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise UserError(f"{metrics_path} not found; run 'siamese-mnist evaluate --run {run_dir}' first")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    missing = [key for key in REPORT_KEYS if key not in metrics]
    if missing:
        raise UserError(f"{metrics_path} lacks {', '.join(missing)} (written by an older version); "
                        f"run 'siamese-mnist evaluate --run {run_dir}' to update it")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a folder; choose another path")
    if out_dir.is_dir() and not force and out_dir.resolve() != run_dir.resolve():
        others = sorted(path.name for path in out_dir.iterdir() if path.name not in REPORT_FILES)
        if others:
            raise UserError(f"--out {out_dir} already contains files other than a report "
                            f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
                            "choose a new folder or pass --force")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out_dir}: {exc.strerror}; choose another folder") from None

    model, state = load_checkpoint(run_dir / "model.pt")
    config = state["train_config"]
    splits = get_splits(load_dataset(data_dir, mirror=mirror, verify=verify), config["val_size"],
                        config["seed"])
    device = resolve_device(device)
    model.to(device)

    val_split, test_split = splits["val"], splits["test"]
    val_pairs = build_pair_set(val_split.labels, config["val_pairs"], config["seed"])
    val_embeddings = embed_images(model, val_split.images, device=device, **state["normalization"])
    val_distances = pair_distances_from_embeddings(val_embeddings, val_pairs.index_a,
                                                   val_pairs.index_b)
    test_embeddings = embed_images(model, test_split.images, device=device, **state["normalization"])
    index_a, index_b, is_same, test_distances = read_scored_pairs(run_dir / "test_distances.csv",
                                                                  len(test_split.labels))

    training_log = read_training_log(run_dir, state)
    inputs = FigureInputs(val_distances, val_pairs.is_same, test_distances, is_same,
                          test_split.images, test_split.labels, test_embeddings, training_log)
    write_figures(out_dir, inputs, metrics, lang)
    labels = test_split.labels
    context = ReportContext(
        run_dir=run_dir, metrics=metrics, train_config=config, model_config=state["model_config"],
        count_table=format_counts(labels[index_a], labels[index_b], np.unique(labels)),
        training_log=training_log, run_config=read_config_if_present(run_dir),
    )
    return write_report(out_dir, context, lang)
