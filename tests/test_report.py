"""The figures and the report of a run, read back from the short real run."""

import base64
import csv
import json
import re
import shutil
import subprocess

import matplotlib.image
import pytest

from siamese_mnist.cli import main
from siamese_mnist.pipeline import print_summary
from siamese_mnist.report import rerun_command
from siamese_mnist.report_text import TEXT
from siamese_mnist.plots import FIGURES
from siamese_mnist.report_text import TEXT
from siamese_mnist.threshold import METHODS

RATE_TOLERANCE = 0.5e-4 + 1e-12  # rates are printed with 4 decimals
DISTANCE_TOLERANCE = 0.5e-6 + 1e-12  # thresholds and distances with 6


def sections(markdown):
    """Map each ``## heading`` of a Markdown report to the text under it."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def tables(text):
    """Return every Markdown table in `text` as a list of rows of cells, header included."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                current.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif current:
            found.append(current)
            current = []
    return found


def check_numbers(markdown, metrics, lang):
    """Assert that the numbers the report prints equal those of metrics.json."""
    text = TEXT[lang]
    parts = sections(markdown)

    summary = parts[text["summary"]]
    confusion = metrics["confusion"]
    assert f"{metrics['test_accuracy']:.4f}" in summary
    assert str(confusion["tp"] + confusion["tn"]) in summary
    assert f"{metrics['threshold']:.6f}" in summary

    metric_table, confusion_table = tables(parts[text["metrics"]])
    printed = {row[0]: float(row[1]) for row in metric_table[1:]}
    keys = {"accuracy": "test_accuracy", "precision": "precision", "recall": "recall", "f1": "f1",
            "balanced_accuracy": "balanced_accuracy", "roc_auc": "roc_auc",
            "average_precision": "average_precision", "pr_auc": "pr_auc", "eer": "eer"}
    assert len(printed) == len(keys)
    for label_key, metric_key in keys.items():
        assert abs(printed[text[label_key]] - metrics[metric_key]) <= RATE_TOLERANCE, metric_key
    assert confusion_table[1][1:] == [str(confusion["tp"]), str(confusion["fn"])]
    assert confusion_table[2][1:] == [str(confusion["fp"]), str(confusion["tn"])]

    (method_table,) = tables(parts[text["threshold"]])
    assert [row[0] for row in method_table[1:]] == list(METHODS)
    for name, threshold, val_accuracy, test_accuracy, in_use in method_table[1:]:
        expected = metrics["threshold_methods"][name]
        assert abs(float(threshold) - expected["threshold"]) <= DISTANCE_TOLERANCE, name
        assert abs(float(val_accuracy) - expected["val_accuracy"]) <= RATE_TOLERANCE, name
        assert abs(float(test_accuracy) - expected["test_accuracy"]) <= RATE_TOLERANCE, name
        assert (in_use == text["yes"]) == expected["in_use"], name

    (type_table,) = tables(parts[text["types"]])
    assert len(type_table) == 1 + 55
    for row, expected in zip(type_table[1:], metrics["pair_type_accuracy"]):
        assert row[0] == expected["type"]
        assert row[1] == text["positive" if expected["is_same"] else "negative"]
        assert (int(row[2]), int(row[3])) == (expected["pairs"], expected["correct"])
        assert abs(float(row[4]) - expected["accuracy"]) <= RATE_TOLERANCE, row[0]

    (error_table,) = tables(parts[text["errors"]])
    expected_errors = metrics["errors"]["false_same"] + metrics["errors"]["false_different"]
    assert len(error_table) == 1 + len(expected_errors)
    for row, expected in zip(error_table[1:], expected_errors):
        assert row[1] == f"{expected['label_a']} / {expected['label_b']}"
        assert row[2] == f"{expected['index_a']}, {expected['index_b']}"
        assert abs(float(row[3]) - expected["distance"]) <= DISTANCE_TOLERANCE

    setup = dict(tables(parts[text["setup"]])[0][1:])
    assert setup[text["seed"]] == str(metrics["seed"])
    assert f"{metrics['train_seconds']:.2f}" in setup[text["time"]]
    sizes = metrics["split_sizes"]
    assert re.findall(r"\d+", setup[text["splits"]]) == [str(sizes[name]) for name in ("train", "val", "test")]


def test_run_writes_figures_and_report(short_run):
    for name in (*FIGURES, "report.md", "report.html"):
        assert (short_run / name).is_file(), name
    for name in FIGURES:
        assert matplotlib.image.imread(short_run / name).shape[1] > 500, name


def test_metrics_json_threshold_methods(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    methods = metrics["threshold_methods"]
    assert list(methods) == list(METHODS)
    in_use = [name for name, row in methods.items() if row["in_use"]]
    assert in_use == [metrics["threshold_method"]]
    assert methods[in_use[0]]["threshold"] == metrics["threshold"]
    assert methods[in_use[0]]["test_accuracy"] == metrics["test_accuracy"]
    assert methods[in_use[0]]["val_accuracy"] == metrics["val_accuracy"]
    for row in methods.values():
        assert 0.9 < row["test_accuracy"] <= 1
    assert 0 <= metrics["eer"] < 0.1


def test_metrics_json_pair_types(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    rows = metrics["pair_type_accuracy"]
    assert len(rows) == 55
    assert [row["pairs"] for row in rows] == [450] * 10 + [100] * 45
    confusion = metrics["confusion"]
    assert sum(row["correct"] for row in rows) == confusion["tp"] + confusion["tn"]
    assert sum(row["correct"] for row in rows if row["is_same"]) == confusion["tp"]
    assert metrics["split_sizes"] == {"train": 55000, "val": 5000, "test": 10000}


def test_report_numbers_equal_metrics(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    check_numbers((short_run / "report.md").read_text(encoding="utf-8"), metrics, "en")


def test_report_count_table_log_and_command(short_run):
    report = (short_run / "report.md").read_text(encoding="utf-8")
    counts = (short_run / "pair_counts.txt").read_text()
    assert counts in report
    with open(short_run / "train_log.csv", newline="") as f:
        log_rows = list(csv.reader(f))
    log_table = tables(sections(report)["Training log"])[0]
    assert log_table[1:] == log_rows[1:]
    command = json.loads((short_run / "config.json").read_text())["command"]
    assert command.startswith("siamese-mnist run ")
    assert f"--out {short_run} " in command
    rerun = command.replace(f"--out {short_run} ", f"--out {short_run}-rerun ")
    assert f"```\n{rerun}\n```" in sections(report)["Reproduce"]


@pytest.mark.parametrize("command, expected", [
    ("siamese-mnist run --out 'my runs/a' --seed 0", "siamese-mnist run --out 'my runs/a-rerun' --seed 0"),
    ("siamese-mnist run --out=runs/a --seed 0", "siamese-mnist run --out=runs/a-rerun --seed 0"),
    ("siamese-mnist run --seed 0", "siamese-mnist run --seed 0"),
])
def test_rerun_command_uses_new_folder(command, expected):
    assert rerun_command(command) == expected


def test_report_html_self_contained(short_run):
    page = (short_run / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<link" not in page
    assert "@import" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(FIGURES)
    embedded = set()
    for source in sources:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        embedded.add(base64.b64decode(source[len(prefix):]))
    assert embedded == {(short_run / name).read_bytes() for name in FIGURES}
    assert (short_run / "pair_counts.txt").read_text() in page


def test_report_command_chinese(short_run, real_mnist, tmp_path, capsys):
    out = tmp_path / "zh"
    assert main(["report", str(short_run), "--lang", "zh", "--out", str(out),
                 "--data-dir", str(real_mnist), "--device", "cpu"]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    for name in (*FIGURES, "report.md", "report.html"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# MNIST 数字对孪生网络：运行报告\n")
    for heading in ("实验设置", "测试数字对集合", "训练日志", "阈值的选择", "测试指标",
                    "各数字对类型的准确率", "错误样例", "复现"):
        assert f"## {heading}\n" in report
    assert (short_run / "pair_counts.txt").read_text() in report
    check_numbers(report, json.loads((short_run / "metrics.json").read_text()), "zh")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page
    assert "<h2>测试指标</h2>" in page


def test_report_out_with_other_files_rejected(short_run, tmp_path, capsys):
    out = tmp_path / "other-run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    assert main(["report", str(short_run), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: --out {out} already contains files other than a "
                                       "report (metrics.json); choose a new folder or pass --force\n")
    assert sorted(path.name for path in out.iterdir()) == ["metrics.json"]


def test_report_out_with_earlier_report_replaced(short_run, real_mnist, tmp_path):
    out = tmp_path / "report-copy"
    out.mkdir()
    (out / "report.md").write_text("old report")
    (out / "pr_curve.png").write_bytes(b"old figure")
    assert main(["report", str(short_run), "--out", str(out), "--data-dir", str(real_mnist),
                 "--device", "cpu"]) == 0
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# ")
    assert (out / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_command_missing_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "absent not found" in capsys.readouterr().err


def test_report_command_old_metrics(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text(json.dumps({"test_accuracy": 0.99}))
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "lacks threshold_methods" in error
    assert f"siamese-mnist evaluate --run {tmp_path}" in error


def test_report_command_unknown_language(short_run, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(short_run), "--lang", "fr"])
    assert "invalid choice: 'fr'" in capsys.readouterr().err


def test_summary_lists_worst_types_before_final_lines(short_run, capsys):
    metrics = json.loads((short_run / "metrics.json").read_text())
    print_summary(metrics, short_run)
    lines = capsys.readouterr().out.splitlines()
    worst = next(i for i, line in enumerate(lines) if line.startswith("worst pair types: "))
    first_type = min(metrics["pair_type_accuracy"], key=lambda row: row["accuracy"])
    assert lines[worst].startswith(f"worst pair types: {first_type['type']} ")
    assert worst < next(i for i, line in enumerate(lines) if line.startswith("test accuracy: "))
    assert lines[-1] == f"run folder: {short_run}"


# The script writes what the browser decoded into the page, which --dump-dom then prints.
IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(Array.from(document.images).map(function (img) {
    return {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
  }));
  document.body.appendChild(out);
});
</script>"""


def chromium(*arguments, profile):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    command = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_report_html_images_decode_in_chromium(short_run, tmp_path):
    page = (short_run / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")

    result = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(),
                      profile=tmp_path / "profile-dom")
    found = re.search(r'<pre id="image-check">([^<]*)</pre>', result.stdout)
    assert found, f"no image report in the DOM; chromium stderr: {result.stderr[-2000:]}"
    images = json.loads(found.group(1))
    assert len(images) == len(FIGURES)
    for name, image in zip(("training_curves", "pr_curve", "roc_curve", "distance_histogram",
                            "pair_type_accuracy", "embedding_map", "error_gallery"), images):
        assert image["complete"], name
        assert image["width"] > 0, f"{name} did not decode"
        assert image["height"] > 0, f"{name} did not decode"

    screenshot = tmp_path / "report.png"
    result = chromium("--window-size=1280,4000", f"--screenshot={screenshot}",
                      (short_run / "report.html").as_uri(), profile=tmp_path / "profile-shot")
    assert screenshot.is_file(), f"no screenshot; chromium stderr: {result.stderr[-2000:]}"
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (4000, 1280)
    assert pixels.std() > 0.05, "the screenshot is blank"


def test_languages_have_same_text_keys():
    assert set(TEXT["zh"]) == set(TEXT["en"])
