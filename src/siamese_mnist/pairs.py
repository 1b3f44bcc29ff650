"""Exactly balanced pair sets: building, counting and reading/writing them.

A pair set is four parallel int64 arrays: ``index_a``, ``index_b`` (indices into
one split), ``label_a``, ``label_b``, plus ``is_same`` (1 when both images show
the same class, else 0). With K classes there are K positive types (c, c) and
K*(K-1)/2 negative types (a, b) with a < b. A balanced set of N pairs has N/2
positives split equally over the positive types and N/2 negatives split
equally over the negative types.
"""

import csv
from dataclasses import dataclass
from itertools import combinations
from math import comb
from pathlib import Path

import numpy as np

from siamese_mnist.errors import UserError
from siamese_mnist.fileio import write_csv

CSV_HEADER = ("index_a", "index_b", "label_a", "label_b", "is_same")
MIN_TEST_PAIRS = 9000
MAX_REPAIR_ROUNDS = 200


@dataclass(frozen=True)
class PairSet:
    index_a: np.ndarray  # (n,) int64
    index_b: np.ndarray  # (n,) int64
    label_a: np.ndarray  # (n,) int64
    label_b: np.ndarray  # (n,) int64

    @property
    def is_same(self):
        return (self.label_a == self.label_b).astype(np.int64)

    def __len__(self):
        return len(self.index_a)


def pair_unit(n_classes):
    """Return the smallest balanced size for `n_classes`: N/2 divisible by K and K(K-1)/2."""
    n_neg_types = n_classes * (n_classes - 1) // 2
    return 2 * int(np.lcm(n_classes, max(n_neg_types, 1)))


def check_size(n_pairs, n_classes, minimum=0):
    """Raise UserError unless `n_pairs` gives exactly equal counts for `n_classes` classes."""
    unit = pair_unit(n_classes)
    smallest = max(unit, -(-minimum // unit) * unit)
    if n_pairs >= smallest and n_pairs % unit == 0:
        return
    above = max(smallest, (n_pairs // unit + 1) * unit)
    below = (n_pairs - 1) // unit * unit
    nearest = (below, above) if below >= smallest else (above, above + unit)
    floor = f"at least {minimum} and " if minimum > unit else ""
    raise UserError(
        f"pair set size {n_pairs} is invalid: with {n_classes} classes it must be {floor}a "
        f"multiple of {unit} so that every pair type gets the same count; "
        f"the nearest valid sizes are {nearest[0]} and {nearest[1]}"
    )


def usage_stream(members, length, rng):
    """Return `length` draws from `members`, each used floor or ceil of length/len(members) times."""
    rounds = -(-length // len(members))
    return np.concatenate([rng.permutation(members) for _ in range(rounds)])[:length]


def fix_collisions(first, second, keys_fn, rng):
    """Shuffle entries of `second` among colliding pairs until all keys are unique.

    Swapping partners within one pair type keeps every image's usage count, so
    the repair keeps usage balanced. Returns the repaired `second`.
    """
    second = second.copy()
    for _ in range(MAX_REPAIR_ROUNDS):
        keys = keys_fn(first, second)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        duplicate = np.zeros(len(keys), dtype=bool)
        duplicate[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]
        bad = np.flatnonzero(duplicate | (first == second))
        if len(bad) == 0:
            return second
        # Permuting a set of distinct positions keeps the multiset of partners.
        positions = np.union1d(bad, rng.integers(0, len(second), size=len(bad)))
        second[positions] = second[rng.permutation(positions)]
    return None


def pair_keys(index_a, index_b, n_images):
    low, high = np.minimum(index_a, index_b), np.maximum(index_a, index_b)
    return low * n_images + high


def build_pair_set(labels, n_pairs, seed, minimum=0):
    """Build an exactly balanced pair set over the images with the given labels.

    Parameters
    ----------
    labels : array of int, shape (n_images,)
        Class of each image in the split; the classes found here define the types.
    n_pairs : int
        Total pairs N. N/2 must be divisible by K and by K*(K-1)/2.
    seed : int
        Same seed, labels and N give the same pairs in the same order.
    minimum : int
        Smallest N accepted (9000 for the test set).

    Returns
    -------
    PairSet
        Positives first (by class), then negatives in lexicographic type order.
        No image is paired with itself, no unordered pair occurs twice, and
        within each class every image is used floor or ceil of the mean number
        of times.

    Examples
    --------
    >>> labels = np.repeat(np.arange(3), 4)
    >>> pairs = build_pair_set(labels, 12, seed=0)
    >>> int(pairs.is_same.sum()), len(pairs)
    (6, 12)
    """
    labels = np.asarray(labels, dtype=np.int64)
    classes = np.unique(labels)
    k = len(classes)
    if k < 2:
        raise UserError(f"a pair set needs at least 2 classes, the labels have {k}")
    check_size(n_pairs, k, minimum)
    n_pos = n_pairs // 2 // k
    n_neg = n_pairs // 2 // (k * (k - 1) // 2)
    members = {c: np.flatnonzero(labels == c) for c in classes}
    for c in classes:
        if comb(len(members[c]), 2) < n_pos:
            raise UserError(
                f"class {c} has {len(members[c])} images, too few for {n_pos} distinct "
                f"positive pairs; use a smaller pair set size"
            )
    for a, b in combinations(classes, 2):
        if len(members[a]) * len(members[b]) < n_neg:
            raise UserError(
                f"classes {a} and {b} allow only {len(members[a]) * len(members[b])} distinct "
                f"negative pairs, fewer than {n_neg}; use a smaller pair set size"
            )

    rng = np.random.default_rng(seed)
    n_images = len(labels)
    # Each class hands out one usage stream, cut into the slices its pair types use.
    streams = {c: usage_stream(members[c], 2 * n_pos + (k - 1) * n_neg, rng) for c in classes}
    cursor = {c: 0 for c in classes}

    def take(c, count):
        start = cursor[c]
        cursor[c] += count
        return streams[c][start:start + count]

    def keys(first, second):
        return pair_keys(first, second, n_images)

    parts_a, parts_b = [], []
    for c in classes:
        drawn = take(c, 2 * n_pos)
        first, second = drawn[0::2], drawn[1::2]
        first, second = repair(first, second, keys, rng, members[c], n_pos, same=True)
        parts_a.append(first)
        parts_b.append(second)
    for a, b in combinations(classes, 2):
        first, second = take(a, n_neg), take(b, n_neg)
        first, second = repair(first, second, keys, rng, (members[a], members[b]), n_neg,
                               same=False)
        parts_a.append(first)
        parts_b.append(second)
    index_a = np.concatenate(parts_a)
    index_b = np.concatenate(parts_b)
    return PairSet(index_a, index_b, labels[index_a], labels[index_b])


def repair(first, second, keys, rng, members, count, same):
    """Return `(first, second)` for one pair type with no self-pairs and no repeats."""
    fixed = fix_collisions(first, second, keys, rng)
    if fixed is not None:
        return first, fixed
    # NOTE: close to the number of distinct pairs a type allows, partner swaps
    # stop converging. Then the pairs are drawn without replacement from all
    # distinct pairs of the type, and image usage is balanced only on average.
    if same:
        rows, cols = np.triu_indices(len(members), k=1)
        codes = rng.choice(len(rows), size=count, replace=False)
        return members[rows[codes]], members[cols[codes]]
    group_a, group_b = members
    codes = rng.choice(len(group_a) * len(group_b), size=count, replace=False)
    return group_a[codes // len(group_b)], group_b[codes % len(group_b)]


def type_counts(label_a, label_b, classes):
    """Count pairs per type.

    Returns
    -------
    positive : dict {(c, c): count} for every class c
    negative : dict {(a, b): count} for every a < b
    """
    classes = list(classes)
    k = len(classes)
    position = {c: i for i, c in enumerate(classes)}
    low, high = np.minimum(label_a, label_b), np.maximum(label_a, label_b)
    lookup = np.full(int(max(classes)) + 1, -1)
    lookup[classes] = np.arange(k)
    grid = np.bincount(lookup[low] * k + lookup[high], minlength=k * k).reshape(k, k)
    positive = {(c, c): int(grid[position[c], position[c]]) for c in classes}
    negative = {(a, b): int(grid[position[a], position[b]]) for a, b in combinations(classes, 2)}
    return positive, negative


def format_counts(label_a, label_b, classes):
    """Return the count table, recounted from the labels of the pairs."""
    positive, negative = type_counts(label_a, label_b, classes)
    lines = [f"Positive ({a},{b}): {n}" for (a, b), n in positive.items()]
    pos_total, neg_total = sum(positive.values()), sum(negative.values())
    lines.append(f"Pos Total: {pos_total}")
    lines += [f"Negative ({a},{b}): {n}" for (a, b), n in negative.items()]
    lines.append(f"Neg Total: {neg_total}")
    lines.append(f"Total: {pos_total + neg_total}")
    return "\n".join(lines) + "\n"


def write_pairs_csv(path, pairs):
    rows = zip(pairs.index_a.tolist(), pairs.index_b.tolist(), pairs.label_a.tolist(),
               pairs.label_b.tolist(), pairs.is_same.tolist())
    write_csv(path, CSV_HEADER, rows)


def read_pairs_csv(path):
    """Read a pair CSV with header ``index_a,index_b,label_a,label_b,is_same``."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: empty file; expected a CSV with header {','.join(CSV_HEADER)}")
            missing = [name for name in CSV_HEADER if name not in header]
            if missing:
                raise UserError(
                    f"{path}: row 1: missing column(s) {', '.join(missing)}; "
                    f"the header must be {','.join(CSV_HEADER)}"
                )
            columns = [header.index(name) for name in CSV_HEADER]
            values = []
            for row_number, row in enumerate(reader, start=2):
                try:
                    values.append([int(row[i]) for i in columns])
                except (ValueError, IndexError):
                    raise UserError(
                        f"{path}: row {row_number}: expected integers in columns "
                        f"{','.join(CSV_HEADER)}, got {row!r}; fix or rebuild the file"
                    ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV file ({exc})") from None
    except FileNotFoundError:
        raise UserError(f"pair file not found: {path}") from None
    table = np.array(values, dtype=np.int64).reshape(-1, len(CSV_HEADER))
    return PairSet(table[:, 0], table[:, 1], table[:, 2], table[:, 3]), table[:, 4]
