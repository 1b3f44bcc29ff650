"""The words on the figures, in English and Simplified Chinese, and the font that draws them.

Each entry is a format string, so both languages print exactly the same
values. Chinese labels need a font with CJK glyphs, which matplotlib does not
ship. `figure_style` looks for one among the installed fonts and falls back
to English labels when there is none.
"""

import contextlib
import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)

FIGURE_TEXT = {
    "en": {
        "validation": "validation",
        "test": "test",
        "pr_title": "Precision-recall curve, positive class = same digit",
        "pr_x": "recall (same-digit pairs found)",
        "pr_y": "precision",
        "pr_val": "precision (validation)",
        "pr_test": "precision (test)",
        "pr_point": "operating point, {split} (P={precision}, R={recall})",
        "pr_zoom": "zoom: recall {recall_low:.2f}-1, precision {precision_low:.2f}-1",
        "threshold_axis": "distance threshold",
        "threshold_curve": "threshold (validation)",
        "threshold_line": "threshold = {threshold:.4f} ({method})",
        "roc_title": "ROC curve, positive class = same digit",
        "roc_x": "false positive rate (different-digit pairs predicted same)",
        "roc_y": "true positive rate (same-digit pairs found)",
        "roc_test": "test (AUC = {auc})",
        "roc_point": "operating point, {split} (FPR={fpr}, TPR={tpr})",
        "roc_zoom": "zoom: FPR 0-{fpr_high:.2f}, TPR {tpr_low:.2f}-1",
        "chance": "chance",
        "hist_title": "Distances of test pairs; below the threshold means same",
        "hist_x": "Euclidean distance between the two embeddings",
        "hist_y": "test pairs per bin (log scale)",
        "hist_same": "same digit ({count} pairs)",
        "hist_different": "different digits ({count} pairs)",
        "threshold": "threshold = {threshold:.4f}",
        "types_title": "Test accuracy (%) per pair type; diagonal = same-digit types",
        "types_x": "larger digit of the pair",
        "types_y": "smaller digit of the pair",
        "types_bar": "accuracy (%)",
        "map_title": "Test embeddings in 2-D ({method}, {count} images)",
        "map_embedding": "embedding",
        "map_pca": "PCA",
        "map_value": "embedding value",
        "map_value_n": "embedding value {number}",
        "map_component": "principal component {number} ({share:.1f}% of variance)",
        "map_legend": "digit",
        "loss_title": "Training loss",
        "loss_y": "loss",
        "loss_curve": "mean contrastive loss",
        "val_title": "Validation accuracy (threshold chosen each epoch)",
        "val_y": "accuracy",
        "val_curve": "validation accuracy",
        "epoch": "epoch",
        "errors_title": "Worst test errors at threshold {threshold:.4f} "
                        "(digits, then the embedding distance d)",
        "false_same": "False same: different digits predicted same ({count} worst, "
                      "smallest distance first)",
        "false_different": "False different: same digit predicted different ({count} worst, "
                           "largest distance first)",
        "error_pair": "{label_a} vs {label_b}, d = {distance:.3f}",
        "none": "none",
        "undefined": "undefined",
    },
    "zh": {
        "validation": "验证对",
        "test": "测试对",
        "pr_title": "精确率-召回率曲线（正类 = 同一数字）",
        "pr_x": "召回率（找出的同一数字对比例）",
        "pr_y": "精确率",
        "pr_val": "精确率（验证对）",
        "pr_test": "精确率（测试对）",
        "pr_point": "工作点，{split}（P={precision}，R={recall}）",
        "pr_zoom": "放大：召回率 {recall_low:.2f}-1，精确率 {precision_low:.2f}-1",
        "threshold_axis": "距离阈值",
        "threshold_curve": "阈值（验证对）",
        "threshold_line": "阈值 = {threshold:.4f}（{method}）",
        "roc_title": "ROC 曲线（正类 = 同一数字）",
        "roc_x": "假正率（被判为同一数字的不同数字对比例）",
        "roc_y": "真正率（找出的同一数字对比例）",
        "roc_test": "测试对（AUC = {auc}）",
        "roc_point": "工作点，{split}（FPR={fpr}，TPR={tpr}）",
        "roc_zoom": "放大：FPR 0-{fpr_high:.2f}，TPR {tpr_low:.2f}-1",
        "chance": "随机猜测",
        "hist_title": "测试对的距离；小于阈值即判为同一数字",
        "hist_x": "两个嵌入向量之间的欧氏距离",
        "hist_y": "每个区间的测试对数（对数坐标）",
        "hist_same": "同一数字（{count} 对）",
        "hist_different": "不同数字（{count} 对）",
        "threshold": "阈值 = {threshold:.4f}",
        "types_title": "各数字对类型的测试准确率（%）；对角线为同一数字的类型",
        "types_x": "数字对中较大的数字",
        "types_y": "数字对中较小的数字",
        "types_bar": "准确率（%）",
        "map_title": "测试图像嵌入的二维分布（{method}，{count} 张图像）",
        "map_embedding": "嵌入本身",
        "map_pca": "PCA",
        "map_value": "嵌入值",
        "map_value_n": "嵌入值 {number}",
        "map_component": "主成分 {number}（占方差的 {share:.1f}%）",
        "map_legend": "数字",
        "loss_title": "训练损失",
        "loss_y": "损失",
        "loss_curve": "对比损失的平均值",
        "val_title": "验证准确率（每轮重新选择阈值）",
        "val_y": "准确率",
        "val_curve": "验证准确率",
        "epoch": "轮次",
        "errors_title": "阈值 {threshold:.4f} 下最严重的测试错误（数字，然后是嵌入距离 d）",
        "false_same": "误判为同一数字：不同数字被判为同一数字（最严重的 {count} 个，距离从小到大）",
        "false_different": "误判为不同数字：同一数字被判为不同数字（最严重的 {count} 个，距离从大到小）",
        "error_pair": "{label_a} 与 {label_b}，d = {distance:.3f}",
        "none": "无",
        "undefined": "无定义",
    },
}

# Font families with Simplified Chinese glyphs, as fontconfig and matplotlib
# name them: free fonts packaged by Linux distributions first, then the fonts
# that come with Windows and macOS.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN",
    "Microsoft YaHei", "SimHei", "DengXian", "PingFang SC", "Hiragino Sans GB", "Heiti SC",
    "STHeiti", "Arial Unicode MS",
)
# File names of those fonts, for fonts installed after matplotlib built its
# font cache, which the cache does not list.
CJK_FILE_NAMES = (
    "notosanscjk", "notosanssc", "sourcehansans", "wqy-microhei", "wqy-zenhei",
    "droidsansfallback", "uming", "msyh", "simhei", "deng", "pingfang", "hiragino sans gb",
    "stheiti", "arial unicode",
)


@functools.cache
def find_cjk_font():
    """Return the family name of an installed font with Chinese glyphs, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family
    paths = sorted(font_manager.findSystemFonts())
    for stem in CJK_FILE_NAMES:
        for path in paths:
            if stem not in Path(path).name.lower():
                continue
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError) as exc:
                log.debug("cannot use font file %s: %s", path, exc)
    return None


def figure_style(lang):
    """Return the figure words for `lang` and a context manager that selects a suitable font.

    For Chinese without an installed CJK font, it returns the English words
    and logs a warning on how to get Chinese labels.
    """
    if lang == "en":
        return FIGURE_TEXT["en"], contextlib.nullcontext()
    family = find_cjk_font()
    if family is None:
        log.warning("no font with Chinese characters found, so the figures keep English labels; "
                    "install one (for example the fonts-noto-cjk package) to get Chinese labels")
        return FIGURE_TEXT["en"], contextlib.nullcontext()
    import matplotlib

    style = {"font.family": "sans-serif",
             "font.sans-serif": [family, *matplotlib.rcParams["font.sans-serif"]],
             "axes.unicode_minus": False}
    return FIGURE_TEXT[lang], matplotlib.rc_context(style)
