"""Exactly balanced pair sets: building, counting and reading/writing them.

A pair set is four parallel int64 arrays: ``index_a``, ``index_b`` (indices into
one split), ``label_a``, ``label_b``, plus ``is_same`` (1 when both images show
the same class, else 0). With K classes there are K positive types (c, c) and
K*(K-1)/2 negative types (a, b) with a < b. A balanced set of N pairs has N/2
positives split equally over the positive types and N/2 negatives split
equally over the negative types.
"""

import codecs
import csv
import io
import re
import sys
import warnings
from dataclasses import dataclass
from itertools import combinations
from math import comb
from pathlib import Path

import numpy as np

from siamese_mnist.data import SPLITS
from siamese_mnist.errors import UserError
from siamese_mnist.fileio import atomic_path

STDIO = "-"  # the file name that stands for standard input or output
CSV_HEADER = ("index_a", "index_b", "label_a", "label_b", "is_same")
SPLIT_COLUMN = "split"
MIN_TEST_PAIRS = 9000
NEWLINE = b"\n"
INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
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


def minimum_size(split_name):
    """Return the smallest pair set size accepted for a split: 9000 for test, else no minimum."""
    return MIN_TEST_PAIRS if split_name == "test" else 0


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


def colliding_pairs(first, second, keys):
    """Return the positions of self-pairs and of each repeat of an earlier pair with the same key."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    duplicate = np.zeros(len(keys), dtype=bool)
    duplicate[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]
    return np.flatnonzero(duplicate | (first == second))


def fix_collisions(first, second, keys_fn, rng):
    """Shuffle entries of `second` among colliding pairs until all keys are unique.

    Swapping partners within one pair type keeps every image's usage count, so
    the repair keeps usage balanced. Returns the repaired `second`, or None
    when it does not converge.
    """
    second = second.copy()
    for _ in range(MAX_REPAIR_ROUNDS):
        bad = colliding_pairs(first, second, keys_fn(first, second))
        if len(bad) == 0:
            return second
        # Permuting a set of distinct positions keeps the multiset of partners.
        positions = np.union1d(bad, rng.integers(0, len(second), size=len(bad)))
        second[positions] = second[rng.permutation(positions)]
    return None


def repair_across_types(index_a, index_b, labels, rng):
    """Move pair endpoints among all pairs until none collides, or give up after some rounds.

    An endpoint only trades places with an endpoint of the same class, so every
    pair keeps its type and every image its usage count. Unlike
    `fix_collisions`, usage can move between the positive and the negative
    types of a class, which resolves dense requests that one type alone cannot.
    Returns the new ``(index_a, index_b)``, which may still hold collisions.
    """
    n_pairs = len(index_a)
    slots = np.concatenate([index_a, index_b])
    slot_class = labels[slots]
    by_class = np.argsort(slot_class, kind="stable")
    classes, starts, counts = np.unique(slot_class[by_class], return_index=True, return_counts=True)
    class_position = np.searchsorted(classes, slot_class)
    for _ in range(MAX_REPAIR_ROUNDS):
        first, second = slots[:n_pairs], slots[n_pairs:]
        bad = colliding_pairs(first, second, pair_keys(first, second, len(labels)))
        if len(bad) == 0:
            break
        bad_slots = np.concatenate([bad, bad + n_pairs])
        group = class_position[bad_slots]
        partners = by_class[starts[group] + rng.integers(0, counts[group])]
        chosen = np.union1d(bad_slots, partners)
        # Both orders sort by class, so matching positions permute endpoints within a class.
        group = class_position[chosen]
        ordered = chosen[np.argsort(group, kind="stable")]
        shuffled = chosen[np.lexsort((rng.random(len(chosen)), group))]
        slots[ordered] = slots[shuffled]
    return slots[:n_pairs], slots[n_pairs:]


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
        No image is paired with itself, and no unordered pair occurs twice.
        Within each class every image is used floor or ceil of the mean number
        of times, unless a type needs nearly all the distinct pairs its
        classes allow (see `draw_distinct_pairs`).

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
    # Enough positives imply enough negatives. With m the smaller class size of
    # a negative type, n_neg = 2 * n_pos / (k - 1) <= m * (m - 1) < m * m.

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

    # One block per pair type, positives first: (first, second, members, count, same).
    blocks = []
    for c in classes:
        drawn = take(c, 2 * n_pos)
        blocks.append((drawn[0::2], drawn[1::2], members[c], n_pos, True))
    for a, b in combinations(classes, 2):
        blocks.append((take(a, n_neg), take(b, n_neg), (members[a], members[b]), n_neg, False))

    parts_a, parts_b, converged = [], [], True
    for first, second, *_ in blocks:
        fixed = fix_collisions(first, second, keys, rng)
        converged &= fixed is not None
        parts_a.append(first)
        parts_b.append(second if fixed is None else fixed)
    index_a = np.concatenate(parts_a)
    index_b = np.concatenate(parts_b)
    if not converged:
        index_a, index_b = repair_across_types(index_a, index_b, labels, rng)
        redraw_colliding_types(index_a, index_b, blocks, keys, rng)
    return PairSet(index_a, index_b, labels[index_a], labels[index_b])


def redraw_colliding_types(index_a, index_b, blocks, keys, rng):
    """Replace, in place, the pairs of every type that still contains a collision."""
    start = 0
    for _, _, members, count, same in blocks:
        stop = start + count
        first, second = index_a[start:stop], index_b[start:stop]
        if len(colliding_pairs(first, second, keys(first, second))):
            index_a[start:stop], index_b[start:stop] = draw_distinct_pairs(members, count, same, rng)
        start = stop


def draw_distinct_pairs(members, count, same, rng):
    """Draw `count` pairs of one type without replacement from all its distinct pairs.

    NOTE: this last resort, for requests close to the number of distinct pairs
    a type allows, balances image usage only on average.
    """
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


def pairs_csv_bytes(pairs):
    """Return the CSV file of `pairs`; the same pairs always give the same bytes."""
    table = np.column_stack([pairs.index_a, pairs.index_b, pairs.label_a, pairs.label_b,
                             pairs.is_same])
    # One %-format over every row is about twice as fast as csv.writer at 900,000 rows.
    body = ("%d,%d,%d,%d,%d\n" * len(table)) % tuple(table.ravel().tolist())
    return (",".join(CSV_HEADER) + "\n" + body).encode("ascii")


def write_pairs_csv(path, pairs):
    """Write `pairs` to `path` atomically, as `pairs_csv_bytes` gives them."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(pairs_csv_bytes(pairs))


@dataclass(frozen=True)
class PairFile:
    """A pair CSV as read, before any check against the dataset."""

    path: Path
    pairs: PairSet  # with the file's own label_a and label_b columns
    is_same: np.ndarray  # (n,) int64, the file's is_same column
    row_numbers: np.ndarray  # (n,) int64, file row of each pair; the header is row 1
    split: str | None  # the value of the optional split column, None without one

    def __len__(self):
        return len(self.pairs)


def read_pairs_csv(path):
    """Read a pair CSV; return ``(pairs, is_same)`` with the file's own columns."""
    pair_file = read_pair_file(path)
    return pair_file.pairs, pair_file.is_same


def read_pair_file(path):
    """Read a pair CSV with the columns ``index_a,index_b,label_a,label_b,is_same``.

    The columns may come in any order, among others. An optional ``split``
    column names the split the indices point into (train, val or test); it
    must be the same on every row. Errors name the file and the row, counting
    the header as row 1 as a spreadsheet does.

    A `path` of ``-`` reads standard input, which errors call ``<stdin>``.

    Returns
    -------
    PairFile
    """
    if str(path) == STDIO:
        path, data = Path("<stdin>"), sys.stdin.buffer.read()
    else:
        path = Path(path)
        data = read_bytes(path)
    text = decode_text(path, data)
    if not text.strip():
        raise UserError(f"{path}: empty {'input' if str(path) == '<stdin>' else 'file'}; "
                        f"expected a CSV with header {','.join(CSV_HEADER)}")
    header_line, _, body = text.partition("\n")
    header = [name.strip() for name in next(csv.reader([header_line]), [])]
    if not any(header):
        raise UserError(f"{path}: row 1: empty header; expected a CSV with header "
                        f"{','.join(CSV_HEADER)}")
    missing = [name for name in CSV_HEADER if name not in header]
    if missing:
        raise UserError(
            f"{path}: row 1: missing column(s) {', '.join(missing)}; the header must name "
            f"{','.join(CSV_HEADER)}, it is {header_line.strip()[:100]!r}"
        )
    columns = [header.index(name) for name in CSV_HEADER]
    split_column = header.index(SPLIT_COLUMN) if SPLIT_COLUMN in header else None
    parsed = parse_plain_rows(body, columns, split_column)
    if parsed is not None:
        table, split = parsed
        row_numbers = np.arange(2, len(table) + 2)
    else:
        table, row_numbers, split = parse_rows_carefully(path, text, columns, split_column)
    pairs = PairSet(*(np.ascontiguousarray(table[:, i]) for i in range(4)))
    return PairFile(path, pairs, np.ascontiguousarray(table[:, 4]), row_numbers, split)


def read_bytes(path):
    """Return the content of the pair file `path`, or raise a UserError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"pair file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the pair file ({exc.strerror})") from None


def decode_text(path, data):
    """Return `data` as text, or raise a UserError naming the row of `path` that is not text."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    nul = data.find(b"\0")
    if nul >= 0:
        raise UserError(f"{path}: row {data.count(NEWLINE, 0, nul) + 1}: not a CSV text file "
                        "(it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: row {data.count(NEWLINE, 0, exc.start) + 1}: not a CSV text file "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8)"
        ) from None


def parse_plain_rows(body, columns, split_column=None):
    """Parse the rows under the header in one vectorized pass.

    Returns the ``(n, 5)`` int64 table and the split named in `split_column`
    (None without that column). Returns None instead when any row is not a
    plain line of integers, such as a blank line, a quoted field or a bad
    value, or when the split column contains anything but one split name. The
    careful reader then parses the file again and names the row at fault.
    """
    if not body.strip():
        return np.zeros((0, len(CSV_HEADER)), dtype=np.int64), None
    if body[0] in "\r\n" or "\n\n" in body or "\n\r\n" in body:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.int64, comments=None,
                               usecols=columns, ndmin=2)
            names = None if split_column is None else np.unique(np.char.strip(np.loadtxt(
                io.StringIO(body), delimiter=",", dtype=str, comments=None,
                usecols=[split_column], ndmin=1)))
    except (ValueError, Warning):
        return None
    n_lines = body.count("\n") + (not body.endswith("\n"))
    if len(table) != n_lines:
        return None
    if names is None:
        return table, None
    if len(names) != 1 or names[0] not in SPLITS:
        return None
    return table, str(names[0])


def parse_rows_carefully(path, text, columns, split_column):
    """Parse the rows one by one with the csv module; raise a UserError at the first bad one.

    Returns
    -------
    table : (n, 5) int64
    row_numbers : (n,) int64, the file row of each pair (blank rows are skipped)
    split : str or None
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    values, row_numbers, split, split_row = [], [], None, None
    try:
        next(reader)
        for row in reader:
            row_number = reader.line_num
            if not any(field.strip() for field in row):
                continue
            values.append([parse_integer(path, row_number, row, name, i)
                           for name, i in zip(CSV_HEADER, columns)])
            row_numbers.append(row_number)
            if split_column is None:
                continue
            name = row[split_column].strip() if split_column < len(row) else ""
            if name not in SPLITS:
                raise UserError(f"{path}: row {row_number}: split {name!r} is not a split of the "
                                f"dataset; use one of {', '.join(SPLITS)}")
            if split is None:
                split, split_row = name, row_number
            elif name != split:
                raise UserError(f"{path}: row {row_number}: split {name!r} differs from {split!r} "
                                f"in row {split_row}; one pair file covers one split")
    except csv.Error as exc:
        raise UserError(f"{path}: row {reader.line_num}: not valid CSV ({exc})") from None
    table = np.array(values, dtype=np.int64).reshape(-1, len(CSV_HEADER))
    return table, np.array(row_numbers, dtype=np.int64), split


def parse_integer(path, row_number, row, name, position):
    if position >= len(row):
        raise UserError(f"{path}: row {row_number}: no value for {name}; the row has {len(row)} "
                        f"field(s), fewer than the header")
    field = row[position]
    if not INTEGER.fullmatch(field):
        raise UserError(f"{path}: row {row_number}: {name} is {field.strip()[:40]!r}, "
                        "not an integer")
    value = int(field)
    if not -2**63 <= value < 2**63:
        raise UserError(f"{path}: row {row_number}: {name} {field.strip()} is too large")
    return value
