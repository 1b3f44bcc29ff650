"""Figures for a run folder, written as PNG files."""

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402

from siamese_mnist.fileio import atomic_path  # noqa: E402


def save_figure(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    plt.close(figure)


def plot_pr_curve(path, val_sweep, test_sweep, threshold, method, operating_points):
    """Precision against recall, and the threshold against recall on a second axis.

    The validation curve is the one the threshold was chosen on; the test
    curve is drawn for comparison. `operating_points` maps a split name to
    the ``(recall, precision)`` that the threshold gives on it.
    """
    figure, ax = plt.subplots(figsize=(7, 5))
    ax.plot(val_sweep.recall, val_sweep.precision, color="C0", label="precision (validation)")
    ax.plot(test_sweep.recall, test_sweep.precision, color="C2", linestyle="--",
            label="precision (test)")
    threshold_axis = ax.twinx()
    threshold_axis.plot(val_sweep.recall, val_sweep.thresholds, color="C1",
                        label="threshold (validation)")
    threshold_axis.set_ylabel("distance threshold")

    for (name, (recall, precision)), marker in zip(operating_points.items(), "os"):
        ax.plot(recall, precision, marker=marker, color="C3", markersize=8, linestyle="none",
                label=f"operating point, {name} (P={precision:.4f}, R={recall:.4f})")
    threshold_axis.axhline(threshold, color="C3", linewidth=0.8, linestyle=":",
                           label=f"threshold = {threshold:.4f} ({method})")

    ax.set_xlabel("recall (same-digit pairs found)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title("Precision-recall curve, positive class = same digit")
    handles = ax.get_legend_handles_labels()
    more = threshold_axis.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="lower left", fontsize=8)
    save_figure(figure, path)
