"""Smoke runs of every benchmark script at tiny sizes, so that none of them rots."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_pairs_smoke(real_mnist):
    out = run_script("bench_pairs.py", "--data-dir", str(real_mnist), "--repeats", "1",
                     "--sizes", "9000")
    assert "9,000" in out or "9000" in out
    assert "Machine:" in out


def test_bench_scoring_smoke(real_mnist):
    out = run_script("bench_scoring.py", "--data-dir", str(real_mnist), "--repeats", "1",
                     "--sizes", "1000")
    assert "| embed test images | 10,000 |" in out
    assert "| score pairs | 1,000 |" in out


def test_bench_throughput_smoke(real_mnist):
    out = run_script("bench_throughput.py", "--data-dir", str(real_mnist), "--steps", "2",
                     "--repeats", "1")
    # Two steps give an unstable ratio. The test checks only that the printed
    # efficiency is the ratio of the two printed medians.
    rows = re.findall(r"^\| [^|]+ \| ([\d,]+) \|", out, flags=re.MULTILINE)
    bare, real = (float(row.replace(",", "")) for row in rows)
    efficiency = float(out.split("Pipeline efficiency:")[1].split()[0])
    assert bare > 0
    assert real > 0
    assert efficiency == pytest.approx(real / bare, rel=0.01)


@pytest.mark.parametrize("preset", ["fast"])
def test_bench_accuracy_smoke(real_mnist, tmp_path, preset):
    out = run_script("bench_accuracy.py", "--data-dir", str(real_mnist), "--seeds", "3",
                     "--keep", str(tmp_path), "--", "--preset", preset, "--epochs", "1",
                     "--images-per-epoch", "2048", "--val-pairs", "180")
    assert "| 3 |" in out
    assert (tmp_path / "seed3" / "metrics.json").is_file()
    assert "Test accuracy: mean" in out
