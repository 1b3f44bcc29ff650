"""Figure labels in both languages, and the fallback when no Chinese font is installed."""

import logging
import warnings

import matplotlib.pyplot as plt
import pytest

from siamese_mnist import figure_text
from siamese_mnist.figure_text import FIGURE_TEXT, figure_style
from siamese_mnist.plots import FIGURES, write_figures
from tests.test_plots import synthetic_inputs


def test_languages_have_same_figure_keys():
    assert set(FIGURE_TEXT["zh"]) == set(FIGURE_TEXT["en"])


def test_english_needs_no_font_search(monkeypatch):
    monkeypatch.setattr(figure_text, "find_cjk_font", lambda: pytest.fail("font search ran"))
    text, _ = figure_style("en")
    assert text is FIGURE_TEXT["en"]


def test_chinese_without_font_falls_back_to_english(monkeypatch, caplog):
    monkeypatch.setattr(figure_text, "find_cjk_font", lambda: None)
    text, _ = figure_style("zh")
    assert text is FIGURE_TEXT["en"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert "fonts-noto-cjk" in warned[0]


def test_chinese_figures_draw_every_glyph(tmp_path):
    if figure_text.find_cjk_font() is None:
        pytest.skip("no font with Chinese characters is installed (Debian: fonts-wqy-microhei)")
    inputs, metrics = synthetic_inputs(6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = write_figures(tmp_path, inputs, metrics, lang="zh")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert [path.name for path in paths] == list(FIGURES)


def test_chinese_labels_on_figures(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figure_text, "find_cjk_font", lambda: "DejaVu Sans")
    monkeypatch.setattr("siamese_mnist.plots.save_figure",
                        lambda figure, path: drawn.append(figure))
    inputs, metrics = synthetic_inputs(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DejaVu Sans has no Chinese glyphs
        write_figures(tmp_path, inputs, metrics, lang="zh")
    assert len(drawn) == len(FIGURES)
    pr_axes = drawn[0].axes[0]
    assert pr_axes.get_title() == FIGURE_TEXT["zh"]["pr_title"]
    assert pr_axes.get_xlabel() == FIGURE_TEXT["zh"]["pr_x"]
    legend = [entry.get_text() for entry in pr_axes.get_legend().get_texts()]
    assert "工作点，验证对（P=" in legend[2]
    assert drawn[4].axes[0].get_xlabel() == "嵌入值 1"
    for figure in drawn:
        plt.close(figure)
