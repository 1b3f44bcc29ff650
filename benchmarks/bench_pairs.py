"""Time building and verifying balanced pair sets over the MNIST test split.

For each size: building the pairs, writing the CSV, reading it back and
auditing it against the dataset, each the median of --repeats runs. The
"build" column is build + write and the "verify" column is read + audit, the
work behind `siamese-mnist pairs build` and `pairs verify` once the dataset is
in memory. With --cli it also times both commands as fresh processes, which
adds the Python and torch start-up and loading MNIST.

    python benchmarks/bench_pairs.py --data-dir ../shared/data/mnist
    python benchmarks/bench_pairs.py --data-dir ../shared/data/mnist --repeats 1 --sizes 9000
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from siamese_mnist.data import get_splits, load_dataset  # noqa: E402
from siamese_mnist.pair_audit import audit_pair_file  # noqa: E402
from siamese_mnist.pairs import (  # noqa: E402
    MIN_TEST_PAIRS, build_pair_set, read_pair_file, write_pairs_csv,
)


def median_seconds(task, repeats):
    """Run `task` `repeats` times; return the median wall time and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = task()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def command_seconds(argv, repeats):
    def run():
        completed = subprocess.run([sys.executable, "-m", "siamese_mnist", *argv],
                                   capture_output=True, text=True)
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{completed.stderr}")
    return median_seconds(run, repeats)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST folder (default: $SIAMESE_MNIST_DATA or the cache)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, median reported (default: 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[9000, 90_000, 900_000],
                        help="pair set sizes over the test split (default: 9000 90000 900000)")
    parser.add_argument("--seed", type=int, default=0, help="pair set seed (default: 0)")
    parser.add_argument("--cli", action="store_true",
                        help="also time 'siamese-mnist pairs build' and 'pairs verify' as processes")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.data_dir, download=False)
    split = get_splits(dataset, seed=args.seed)["test"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            path = Path(folder) / f"pairs_{size}.csv"
            build, pairs = median_seconds(
                lambda: build_pair_set(split.labels, size, args.seed, minimum=MIN_TEST_PAIRS),
                args.repeats)
            write, _ = median_seconds(lambda: write_pairs_csv(path, pairs), args.repeats)
            read, pair_file = median_seconds(lambda: read_pair_file(path), args.repeats)
            audit_time, audit = median_seconds(lambda: audit_pair_file(pair_file, split), args.repeats)
            if not audit.ok:
                raise SystemExit(audit.report())
            row = [f"{size:,}", f"{build:.3f}", f"{write:.3f}", f"{read:.3f}", f"{audit_time:.3f}",
                   f"{build + write:.3f}", f"{read + audit_time:.3f}"]
            if args.cli:
                data = ["--data-dir", str(dataset.folder), "--seed", str(args.seed)]
                row.append(f"{command_seconds(['pairs', 'build', *data, '--size', str(size), '-o', str(path)], args.repeats):.2f}")
                row.append(f"{command_seconds(['pairs', 'verify', *data, str(path)], args.repeats):.2f}")
            rows.append(row)

    header = ["pairs", "build_pair_set", "write CSV", "read CSV", "audit", "build", "verify"]
    if args.cli:
        header += ["`pairs build` process", "`pairs verify` process"]
    print(f"Machine: {describe()}")
    print(f"Median seconds of {args.repeats} repeat(s), test split, seed {args.seed}.\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
