"""Test accuracy, time and memory of full `siamese-mnist run` jobs over several seeds.

Each seed runs as its own process, so wall time and peak RSS are those of a
user's run, data loading and evaluation included.

    python benchmarks/bench_accuracy.py --data-dir ../shared/data/mnist --seeds 0 1 2
    python benchmarks/bench_accuracy.py --data-dir ../shared/data/mnist -- --preset fast
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402


def run_once(seed, data_dir, extra, out_dir):
    command = [sys.executable, "-m", "siamese_mnist", "run", "--seed", str(seed),
               "--out", str(out_dir), "--device", "cpu", *extra]
    if data_dir:
        command += ["--data-dir", data_dir]
    started = time.perf_counter()
    with open(out_dir.parent / f"{out_dir.name}.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.PIPE)
        # wait4 gives this child's own resource usage; ru_maxrss is in KiB on Linux.
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"seed {seed} failed:\n{stderr}")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    return {"seed": seed, "test_accuracy": metrics["test_accuracy"],
            "train_seconds": metrics["train_seconds"], "wall_seconds": wall,
            "peak_rss_mib": usage.ru_maxrss / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST folder (default: $SIAMESE_MNIST_DATA or the cache)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the run folders and their console output (seedN.log) in DIR "
                             "(default: a temporary folder, removed at the end)")
    parser.add_argument("extra", nargs="*", help="extra options for 'siamese-mnist run', after --")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            rows.append(run_once(seed, args.data_dir, args.extra, folder / f"seed{seed}"))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    print(f"Machine: {describe()}\n")
    options = " ".join(args.extra) or "(defaults)"
    print(f"Options: `{options}`\n")
    print("| seed | test accuracy | train seconds | wall seconds | peak RSS (MiB) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['seed']} | {row['test_accuracy']:.4f} | {row['train_seconds']:.1f} | "
              f"{row['wall_seconds']:.1f} | {row['peak_rss_mib']:.0f} |")
    accuracies = [row["test_accuracy"] for row in rows]
    print(f"\nTest accuracy: mean {statistics.mean(accuracies):.4f}, min {min(accuracies):.4f}, "
          f"max {max(accuracies):.4f}; max wall {max(r['wall_seconds'] for r in rows):.1f} s; "
          f"max peak RSS {max(r['peak_rss_mib'] for r in rows):.0f} MiB")


if __name__ == "__main__":
    main()
