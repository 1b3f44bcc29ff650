"""Figures for a run folder, written as PNG files."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from siamese_mnist.fileio import atomic_path  # noqa: E402
from siamese_mnist.figure_text import FIGURE_TEXT, figure_style  # noqa: E402
from siamese_mnist.metrics import format_value  # noqa: E402
from siamese_mnist.threshold import sweep  # noqa: E402

ENGLISH = FIGURE_TEXT["en"]
FIGURES = ("pr_curve.png", "roc_curve.png", "distance_histogram.png", "pair_type_accuracy.png",
           "embedding_map.png", "training_curves.png", "error_gallery.png")


def save_figure(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    plt.close(figure)


def legend_below(ax, handles=None, labels=None, columns=2):
    """Place the legend under the axes, where it cannot hide a curve."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns,
              fontsize=9, frameon=False)


def plot_operating_points(axes, points, label):
    """Mark the first split's operating point as a ring and the second one's as a dot.

    Both stay visible when the two points coincide. `points` maps a split
    name to an ``(x, y)`` pair, and `label` formats the legend entry from the
    name, x and y.
    """
    styles = ({"marker": "o", "markersize": 11, "markerfacecolor": "none", "markeredgewidth": 1.6},
              {"marker": "o", "markersize": 5})
    for (name, (x, y)), style in zip(points.items(), styles):
        axes.plot(x, y, color="C3", linestyle="none", label=label(name, x, y), **style)


def figure_number(value, text):
    """Format a rate for a figure, or as the word for undefined in `text` when it is NaN."""
    return format_value(value, text["undefined"])


def zoom_edge(default, values, margin):
    """Return `default`, moved to `margin` beyond the furthest finite value in `values`.

    A negative `margin` moves a lower edge down, a positive one an upper edge up.
    """
    edges = [value + margin for value in values if np.isfinite(value)]
    return min(default, *edges) if margin < 0 else max(default, *edges)


def add_zoom(ax, bounds, x_range, y_range, title):
    """Return an inset of `ax` at `bounds` (axes fractions) showing `x_range` by `y_range`."""
    zoom = ax.inset_axes(bounds)
    zoom.set_xlim(*x_range)
    zoom.set_ylim(*y_range)
    zoom.set_title(title, fontsize=8)
    zoom.tick_params(labelsize=7)
    zoom.grid(alpha=0.3)
    return zoom


def plot_pr_curve(path, val_sweep, test_sweep, threshold, method, operating_points,
                  text=ENGLISH):
    """Draw precision against recall, and the threshold against recall on a second axis.

    The validation curve is the one the threshold was chosen on; the test
    curve is drawn for comparison. An inset zooms in on the top-right corner,
    where a good model's curves run. `operating_points` maps a split name to
    the ``(recall, precision)`` that the threshold gives on it. `text` holds
    the words, one language of `FIGURE_TEXT`.
    """
    figure, ax = plt.subplots(figsize=(7, 6))
    threshold_axis = ax.twinx()
    # The precision axes go on top, so that the zoom hides the threshold curve
    # instead of being crossed by it.
    ax.set_zorder(threshold_axis.get_zorder() + 1)
    ax.patch.set_visible(False)
    threshold_axis.plot(val_sweep.recall, val_sweep.thresholds, color="C1",
                        label=text["threshold_curve"])
    threshold_axis.axhline(threshold, color="C3", linewidth=0.8, linestyle=":",
                           label=text["threshold_line"].format(threshold=threshold, method=method))
    threshold_axis.set_ylabel(text["threshold_axis"])

    recalls, precisions = zip(*operating_points.values())
    recall_low = zoom_edge(0.95, recalls, -0.01)
    precision_low = zoom_edge(0.95, precisions, -0.01)
    zoom = add_zoom(ax, [0.3, 0.3, 0.45, 0.42], (recall_low, 1.0), (precision_low, 1.0005),
                    text["pr_zoom"].format(recall_low=recall_low, precision_low=precision_low))
    for axes in (ax, zoom):
        axes.plot(val_sweep.recall, val_sweep.precision, color="C0", label=text["pr_val"])
        axes.plot(test_sweep.recall, test_sweep.precision, color="C2", linestyle="--",
                  label=text["pr_test"])
        plot_operating_points(axes, operating_points, lambda name, recall, precision: (
            text["pr_point"].format(split=text[name], precision=figure_number(precision, text),
                                    recall=figure_number(recall, text))))

    ax.set_xlabel(text["pr_x"])
    ax.set_ylabel(text["pr_y"])
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title(text["pr_title"])
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = threshold_axis.get_legend_handles_labels()
    legend_below(ax, handles + more_handles, labels + more_labels, columns=1)
    save_figure(figure, path)


def plot_roc_curve(path, val_sweep, test_sweep, roc_auc, operating_points, text=ENGLISH):
    """Draw the ROC curve of both splits, with a zoom on the top-left corner where a good model lies.

    `operating_points` maps a split name to the ``(false positive rate,
    true positive rate)`` that the threshold gives on it.
    """
    figure, ax = plt.subplots(figsize=(7, 6))
    fprs, tprs = zip(*operating_points.values())
    fpr_high = zoom_edge(0.05, fprs, 0.01)
    tpr_low = zoom_edge(0.95, tprs, -0.01)
    # Test pairs of one class have no ROC curve, so only their legend entry is drawn.
    if test_sweep.positives and test_sweep.negatives:
        test_fpr, test_tpr = test_sweep.fpr, test_sweep.recall
    else:
        test_fpr, test_tpr = [], []
    zoom = add_zoom(ax, [0.45, 0.12, 0.5, 0.5], (0, fpr_high), (tpr_low, 1.0),
                    text["roc_zoom"].format(fpr_high=fpr_high, tpr_low=tpr_low))
    for axes in (ax, zoom):
        axes.plot(val_sweep.fpr, val_sweep.recall, color="C0", label=text["validation"])
        axes.plot(test_fpr, test_tpr, color="C2", linestyle="--",
                  label=text["roc_test"].format(auc=figure_number(roc_auc, text)))
        plot_operating_points(axes, operating_points, lambda name, fpr, tpr: (
            text["roc_point"].format(split=text[name], fpr=figure_number(fpr, text),
                                     tpr=figure_number(tpr, text))))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label=text["chance"])

    ax.set_xlabel(text["roc_x"])
    ax.set_ylabel(text["roc_y"])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title(text["roc_title"])
    legend_below(ax, columns=1)
    save_figure(figure, path)


def plot_distance_histogram(path, distances, is_same, threshold, text=ENGLISH):
    """Draw histograms of same-digit and different-digit test distances with the threshold line."""
    distances = np.asarray(distances)
    is_same = np.asarray(is_same).astype(bool)
    bins = np.linspace(0, float(distances.max()) * 1.02 + 1e-12, 81)
    figure, ax = plt.subplots(figsize=(7, 5))
    ax.hist(distances[is_same], bins=bins, color="C0", alpha=0.6,
            label=text["hist_same"].format(count=int(is_same.sum())))
    ax.hist(distances[~is_same], bins=bins, color="C1", alpha=0.6,
            label=text["hist_different"].format(count=int((~is_same).sum())))
    ax.axvline(threshold, color="C3", linestyle="--",
               label=text["threshold"].format(threshold=threshold))
    # A log scale keeps the few pairs on the wrong side of the threshold visible.
    ax.set_yscale("log")
    ax.set_xlabel(text["hist_x"])
    ax.set_ylabel(text["hist_y"])
    ax.set_title(text["hist_title"])
    ax.grid(alpha=0.3)
    legend_below(ax, columns=3)
    save_figure(figure, path)


def plot_pair_type_accuracy(path, rows, classes, text=ENGLISH):
    """Draw the accuracy of each pair type as a heatmap whose diagonal is the positive types.

    Each type (a, b) with a <= b is drawn once, in the upper triangle.
    """
    classes = [int(c) for c in classes]
    position = {c: i for i, c in enumerate(classes)}
    grid = np.full((len(classes), len(classes)), np.nan)
    for row in rows:
        if row["accuracy"] is not None:
            grid[position[row["label_a"]], position[row["label_b"]]] = 100 * row["accuracy"]
    lowest = np.nanmin(grid) if np.isfinite(grid).any() else 0.0
    floor = min(lowest, 99.0)

    figure, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=floor, vmax=100)
    middle = (floor + 100) / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] < middle else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel(text["types_x"])
    ax.set_ylabel(text["types_y"])
    ax.set_title(text["types_title"])
    colorbar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label(text["types_bar"])
    save_figure(figure, path)


def project_2d(embeddings, text=ENGLISH):
    """Return 2-D coordinates and their axis labels.

    The coordinates are the embedding itself when it has two values, else its PCA.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.shape[1] == 2:
        return embeddings, tuple(text["map_value_n"].format(number=n) for n in (1, 2))
    if embeddings.shape[1] == 1:
        return np.c_[embeddings[:, 0], np.zeros(len(embeddings))], (text["map_value"], "")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    points = pca.fit_transform(embeddings)
    share = pca.explained_variance_ratio_
    return points, tuple(text["map_component"].format(number=n + 1, share=100 * share[n])
                         for n in (0, 1))


def plot_embedding_map(path, embeddings, labels, text=ENGLISH):
    """Draw the test embeddings in 2-D as a scatter plot, one colour per digit."""
    points, (x_label, y_label) = project_2d(embeddings, text)
    labels = np.asarray(labels)
    figure, ax = plt.subplots(figsize=(7.5, 6.5))
    for i, digit in enumerate(np.unique(labels)):
        members = labels == digit
        ax.scatter(points[members, 0], points[members, 1], s=3, alpha=0.5, color=f"C{i % 10}",
                   label=str(digit), rasterized=True)
    method = text["map_embedding"] if np.asarray(embeddings).shape[1] <= 2 else text["map_pca"]
    ax.set_title(text["map_title"].format(method=method, count=len(labels)))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    ax.legend(title=text["map_legend"], loc="center left", bbox_to_anchor=(1.01, 0.5),
              markerscale=4, fontsize=9, frameon=False)
    save_figure(figure, path)


def plot_training_curves(path, history, text=ENGLISH):
    """Draw training loss and validation accuracy per epoch, from rows of ``train_log.csv``."""
    epochs = [int(row["epoch"]) for row in history]
    figure, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    loss_ax.plot(epochs, [float(row["loss"]) for row in history], marker="o", color="C0",
                 label=text["loss_curve"])
    loss_ax.set_title(text["loss_title"])
    loss_ax.set_ylabel(text["loss_y"])
    accuracy_ax.plot(epochs, [float(row["val_accuracy"]) for row in history], marker="o",
                     color="C2", label=text["val_curve"])
    accuracy_ax.set_title(text["val_title"])
    accuracy_ax.set_ylabel(text["val_y"])
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel(text["epoch"])
        ax.set_xticks(epochs if len(epochs) <= 20 else ax.get_xticks())
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)


def plot_error_gallery(path, images, false_same, false_different, threshold, text=ENGLISH):
    """Draw the worst mistakes on test pairs, each as its two images side by side.

    Parameters
    ----------
    images : uint8 array, shape (n_images, 28, 28)
        The test split.
    false_same, false_different : list of dict
        Entries with ``index_a``, ``index_b``, ``label_a``, ``label_b`` and
        ``distance``, as stored under ``errors`` in ``metrics.json``.
    """
    groups = ((text["false_same"].format(count=len(false_same)), false_same),
              (text["false_different"].format(count=len(false_different)), false_different))
    columns = max(1, len(false_same), len(false_different))
    figure = plt.figure(figsize=(2.0 * columns, 3.4))
    gap = np.full((images.shape[1], 3), 255, dtype=np.uint8)
    for subfigure, (title, entries) in zip(figure.subfigures(2, 1), groups):
        subfigure.suptitle(title, fontsize=11, x=0.01, ha="left")
        row_axes = subfigure.subplots(1, columns, squeeze=False)[0]
        subfigure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.72, wspace=0.08)
        for column, ax in enumerate(row_axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if column >= len(entries):
                ax.set_frame_on(False)
                if column == 0:
                    ax.text(0.5, 0.5, text["none"], ha="center", va="center", transform=ax.transAxes)
                continue
            entry = entries[column]
            # Inverted so that the digits print dark on white paper.
            pair = np.hstack([255 - images[entry["index_a"]], gap, 255 - images[entry["index_b"]]])
            ax.imshow(pair, cmap="gray", vmin=0, vmax=255)
            ax.set_title(text["error_pair"].format(**entry), fontsize=10)
    figure.suptitle(text["errors_title"].format(threshold=threshold), fontsize=12, y=1.08)
    save_figure(figure, path)


@dataclass(frozen=True)
class FigureInputs:
    """Arrays and log rows the figures are drawn from, besides ``metrics.json``."""

    val_distances: np.ndarray  # (n_val_pairs,)
    val_is_same: np.ndarray  # (n_val_pairs,)
    test_distances: np.ndarray  # (n_test_pairs,)
    test_is_same: np.ndarray  # (n_test_pairs,)
    test_images: np.ndarray  # (n_test_images, 28, 28) uint8
    test_labels: np.ndarray  # (n_test_images,)
    test_embeddings: np.ndarray  # (n_test_images, embedding_dim)
    history: list  # train_log.csv rows: epoch, loss, val_accuracy


def operating_point(distances, is_same, threshold):
    """Return recall, precision and false positive rate of the decision rule at `threshold`."""
    is_same = np.asarray(is_same).astype(bool)
    predicted = np.asarray(distances) < threshold
    tp = int(np.sum(predicted & is_same))
    fp = int(np.sum(predicted & ~is_same))
    n_positive, n_negative = int(is_same.sum()), int((~is_same).sum())
    # Without pairs of one class the rate over that class is undefined (NaN).
    recall = tp / n_positive if n_positive else float("nan")
    precision = tp / (tp + fp) if tp + fp else 1.0
    return recall, precision, fp / n_negative if n_negative else float("nan")


def write_figures(out_dir, inputs, metrics, lang="en"):
    """Draw the seven figures of a run into `out_dir`, labelled in `lang`; return their paths.

    Every value printed on a figure comes from `metrics` (the content of
    ``metrics.json``) or from the distances it was computed from. Chinese
    labels need an installed CJK font, without which they stay English.
    """
    out_dir = Path(out_dir)
    threshold = metrics["threshold"]
    val_counts = sweep(inputs.val_distances, inputs.val_is_same)
    test_counts = sweep(inputs.test_distances, inputs.test_is_same)
    val_recall, val_precision, val_fpr = operating_point(inputs.val_distances, inputs.val_is_same,
                                                         threshold)
    test_recall, test_precision, test_fpr = operating_point(inputs.test_distances,
                                                            inputs.test_is_same, threshold)

    text, font = figure_style(lang)
    with font:
        plot_pr_curve(out_dir / "pr_curve.png", val_counts, test_counts, threshold,
                      metrics["threshold_method"],
                      {"validation": (val_recall, val_precision),
                       "test": (test_recall, test_precision)}, text)
        plot_roc_curve(out_dir / "roc_curve.png", val_counts, test_counts, metrics["roc_auc"],
                       {"validation": (val_fpr, val_recall), "test": (test_fpr, test_recall)},
                       text)
        plot_distance_histogram(out_dir / "distance_histogram.png", inputs.test_distances,
                                inputs.test_is_same, threshold, text)
        plot_pair_type_accuracy(out_dir / "pair_type_accuracy.png",
                                metrics["pair_type_accuracy"], np.unique(inputs.test_labels), text)
        plot_embedding_map(out_dir / "embedding_map.png", inputs.test_embeddings,
                           inputs.test_labels, text)
        plot_training_curves(out_dir / "training_curves.png", inputs.history, text)
        plot_error_gallery(out_dir / "error_gallery.png", inputs.test_images,
                           metrics["errors"]["false_same"], metrics["errors"]["false_different"],
                           threshold, text)
    return [out_dir / name for name in FIGURES]
