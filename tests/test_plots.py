import matplotlib.image
import numpy as np
import pytest

from siamese_mnist.metrics import error_examples, pair_type_accuracy
from siamese_mnist.pairs import build_pair_set
from siamese_mnist import plots
from siamese_mnist.plots import (
    FIGURES, FigureInputs, operating_point, plot_error_gallery, plot_pr_curve, plot_roc_curve,
    project_2d, write_figures,
)
from siamese_mnist.threshold import sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_inputs(embedding_dim, seed=0):
    """Tiny scored pair sets over 3 classes, with a few errors on both sides."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 20)
    pairs = build_pair_set(labels, 36, seed=seed)
    is_same = pairs.is_same
    distances = np.where(is_same == 1, rng.uniform(0.0, 0.6, len(pairs)),
                         rng.uniform(0.4, 1.2, len(pairs)))
    val_distances = np.where(is_same == 1, rng.uniform(0.0, 0.6, len(pairs)),
                             rng.uniform(0.4, 1.2, len(pairs)))
    images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
    embeddings = rng.normal(size=(len(labels), embedding_dim)) + labels[:, None]
    history = [{"epoch": "1", "loss": "0.100000", "val_accuracy": "0.900000"},
               {"epoch": "2", "loss": "0.050000", "val_accuracy": "0.950000"}]
    inputs = FigureInputs(val_distances, is_same, distances, is_same, images, labels, embeddings,
                          history)
    threshold = 0.5
    correct = (distances < threshold) == is_same.astype(bool)
    metrics = {
        "threshold": threshold, "threshold_method": "pr-breakeven", "roc_auc": 0.9,
        "pair_type_accuracy": pair_type_accuracy(pairs.label_a, pairs.label_b, correct, range(3)),
        "errors": error_examples(pairs, distances, threshold, count=4),
    }
    return inputs, metrics


@pytest.mark.parametrize("embedding_dim", [2, 6])
def test_write_figures_all_seven(tmp_path, embedding_dim):
    inputs, metrics = synthetic_inputs(embedding_dim)
    paths = write_figures(tmp_path, inputs, metrics)
    assert [path.name for path in paths] == list(FIGURES)
    assert len(FIGURES) == 7
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE, path.name
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] > 300, path.name
        assert pixels.shape[1] > 300, path.name
        assert pixels.std() > 0.01, f"{path.name} looks blank"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURES)


def test_project_2d_keeps_2d_embedding():
    embeddings = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    points, labels = project_2d(embeddings)
    assert np.array_equal(points, embeddings)
    assert labels == ("embedding value 1", "embedding value 2")


def test_project_2d_pca_for_larger_embedding():
    rng = np.random.default_rng(1)
    # Almost all variance lies along the first axis, so PCA component 1 follows it.
    embeddings = np.c_[rng.normal(0, 10, 200), rng.normal(0, 1, 200), rng.normal(0, 0.1, 200)]
    points, labels = project_2d(embeddings)
    assert points.shape == (200, 2)
    assert abs(np.corrcoef(points[:, 0], embeddings[:, 0])[0, 1]) > 0.99
    assert labels[0].startswith("principal component 1 (")


def test_operating_point_by_hand():
    # Below 0.35: 0.1 (S), 0.2 (D), 0.3 (S) -> recall 2/3, precision 2/3, FPR 1/3.
    recall, precision, fpr = operating_point([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [1, 0, 1, 0, 1, 0], 0.35)
    assert (recall, precision, fpr) == (pytest.approx(2 / 3), pytest.approx(2 / 3),
                                        pytest.approx(1 / 3))


def test_error_gallery_without_errors(tmp_path):
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    plot_error_gallery(tmp_path / "gallery.png", images, [], [], 0.5)
    assert (tmp_path / "gallery.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.fixture
def drawn(monkeypatch):
    """Collect the figures the plot functions draw, in place of saving them."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: figures.append(figure))
    yield figures
    for figure in figures:
        plots.plt.close(figure)


def zoom_limits(figure):
    (zoom,) = figure.axes[0].child_axes
    return zoom.get_xlim(), zoom.get_ylim()


def test_pr_zoom_default_corner(drawn):
    scores = sweep([0.1, 0.2, 0.3, 0.9], [1, 1, 0, 0])
    plot_pr_curve("unused.png", scores, scores, 0.25, "pr-breakeven",
                  {"validation": (0.99, 0.98), "test": (1.0, 0.97)})
    (recall_low, recall_high), (precision_low, _) = zoom_limits(drawn[0])
    assert (recall_low, recall_high) == (0.95, 1.0)
    assert precision_low == 0.95


def test_pr_zoom_widens_to_operating_point(drawn):
    scores = sweep([0.1, 0.2, 0.3, 0.9], [1, 1, 0, 0])
    plot_pr_curve("unused.png", scores, scores, 0.25, "pr-breakeven",
                  {"validation": (0.80, 0.90), "test": (0.85, 0.70)})
    (recall_low, _), (precision_low, _) = zoom_limits(drawn[0])
    assert recall_low == pytest.approx(0.79)
    assert precision_low == pytest.approx(0.69)


def test_roc_zoom_widens_to_operating_point(drawn):
    scores = sweep([0.1, 0.2, 0.3, 0.9], [1, 1, 0, 0])
    plot_roc_curve("unused.png", scores, scores, 0.9,
                   {"validation": (0.10, 0.80), "test": (0.02, 0.99)})
    (fpr_low, fpr_high), (tpr_low, tpr_high) = zoom_limits(drawn[0])
    assert (fpr_low, tpr_high) == (0, 1.0)
    assert fpr_high == pytest.approx(0.11)
    assert tpr_low == pytest.approx(0.79)


def test_roc_one_class_test_pairs_undefined(drawn):
    val_scores = sweep([0.1, 0.2, 0.3, 0.9], [1, 1, 0, 0])
    test_scores = sweep([0.1, 0.2, 0.8], [1, 1, 1])
    recall, _, fpr = operating_point([0.1, 0.2, 0.8], [1, 1, 1], 0.5)
    assert np.isnan(fpr)
    plot_roc_curve("unused.png", val_scores, test_scores, float("nan"),
                   {"validation": (0.0, 1.0), "test": (fpr, recall)})
    ax = drawn[0].axes[0]
    test_line = next(line for line in ax.get_lines() if line.get_label().startswith("test"))
    assert test_line.get_label() == "test (AUC = undefined)"
    assert len(test_line.get_xdata()) == 0
    labels = [line.get_label() for line in ax.get_lines()]
    assert "operating point, test (FPR=undefined, TPR=0.6667)" in labels
