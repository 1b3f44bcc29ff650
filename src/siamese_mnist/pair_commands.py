"""Handlers of the commands that need no model: data and pairs build/stats/verify.

They import no torch, so they start quickly.
"""

import sys

from siamese_mnist.data import describe, load_splits
from siamese_mnist.errors import UserError
from siamese_mnist.pair_audit import audit_pair_file, count_table, resolve_split
from siamese_mnist.pairs import (
    STDIO, build_pair_set, minimum_size, pairs_csv_bytes, read_pair_file, write_pairs_csv,
)


def command_data(args):
    dataset, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    print(describe(dataset, splits))


def command_pairs_build(args):
    _, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    pairs = build_pair_set(splits[args.split].labels, args.size, args.seed,
                           minimum=minimum_size(args.split))
    # With -o -, the CSV goes to standard output and the messages to standard error.
    to_stdout = args.out == STDIO
    messages = sys.stderr if to_stdout else sys.stdout
    if to_stdout:
        sys.stdout.buffer.write(pairs_csv_bytes(pairs))
        sys.stdout.flush()
    else:
        try:
            write_pairs_csv(args.out, pairs)
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror}; choose another path") from None
    target = "standard output" if to_stdout else args.out
    print(f"wrote {target}: {len(pairs)} pairs over the {args.split} split (seed {args.seed})",
          file=messages)
    if args.split != "test":
        # The file has no split column, and the validation split itself depends on the seed.
        print(f"check it with: siamese-mnist pairs verify {args.out} --split {args.split} "
              f"--seed {args.seed} --val-size {args.val_size}", file=messages)


def load_pair_file_and_split(args):
    """Read FILE first, so that a bad file fails before the dataset is loaded."""
    pair_file = read_pair_file(args.file)
    split_name = resolve_split(pair_file, args.split)
    _, splits = load_splits(args.data_dir, args.mirror, not args.no_verify, args.val_size, args.seed)
    return pair_file, splits[split_name]


def command_pairs_stats(args):
    print(count_table(*load_pair_file_and_split(args)), end="")


def command_pairs_verify(args):
    pair_file, split = load_pair_file_and_split(args)
    audit = audit_pair_file(pair_file, split)
    print(audit.report())
    label_mismatch = any(problem.kind in ("label_a", "label_b") and len(problem.positions)
                         for problem in audit.row_problems)
    if label_mismatch and args.split is None and pair_file.split is None:
        print("hint: the file has no split column, so it was checked against the test split; "
              "for a file built over another split, pass the --split, --seed and --val-size "
              "it was built with", file=sys.stderr)
    return 0 if audit.ok else 1
