"""Check a pair file against the dataset: indices, labels, self-pairs, repeats and balance.

`audit_pair_file` finds every violation with whole-array numpy operations and
formats only the messages that are shown. `check_pair_file` is the strict gate for scoring a file that need
not be balanced: it raises at the first index or label that does not fit.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from siamese_mnist.errors import UserError
from siamese_mnist.pairs import format_counts, pair_keys, type_counts

MAX_LISTED = 20


def resolve_split(pair_file, requested=None):
    """Return the split a pair file indexes: `requested` (``--split``), else its split column, else test."""
    if requested and pair_file.split and requested != pair_file.split:
        raise UserError(
            f"{pair_file.path}: row {int(pair_file.row_numbers[0])}: the split column is "
            f"{pair_file.split!r} but --split {requested} was given; drop one of them"
        )
    return requested or pair_file.split or "test"


@dataclass(frozen=True)
class RowProblem:
    """One kind of row violation: the positions of the failing pairs and how to describe one."""

    kind: str  # index_a, index_b, self-pair, repeat, label_a, label_b or is_same
    positions: np.ndarray  # (m,) int64, positions in the pair file
    describe: Callable[[int], str]


def out_of_range_rows(pair_file, split):
    n_images = len(split.labels)
    problems = []
    for column, values in (("index_a", pair_file.pairs.index_a), ("index_b", pair_file.pairs.index_b)):
        bad = np.flatnonzero((values < 0) | (values >= n_images))
        problems.append(RowProblem(column, bad, lambda p, column=column, values=values: (
            f"{column} {int(values[p])} is out of range for the {split.name} split of "
            f"{n_images} images (0 to {n_images - 1})")))
    return problems


def label_rows(pair_file, split, inside):
    """Rows among `inside` whose label_a, label_b or is_same disagree with the split's labels."""
    pairs, labels = pair_file.pairs, split.labels
    index_a, index_b = np.where(inside, pairs.index_a, 0), np.where(inside, pairs.index_b, 0)
    true_a, true_b = labels[index_a], labels[index_b]
    true_same = (true_a == true_b).astype(np.int64)
    problems = []
    for column, stated, truth, index in (("label_a", pairs.label_a, true_a, pairs.index_a),
                                         ("label_b", pairs.label_b, true_b, pairs.index_b)):
        bad = np.flatnonzero(inside & (stated != truth))
        problems.append(RowProblem(column, bad, lambda p, column=column, stated=stated,
                                   truth=truth, index=index: (
            f"{column} is {int(stated[p])}, but image {int(index[p])} of the {split.name} "
            f"split is labelled {int(truth[p])}")))
    bad = np.flatnonzero(inside & (pair_file.is_same != true_same))
    problems.append(RowProblem("is_same", bad, lambda p: (
        f"is_same is {int(pair_file.is_same[p])}, expected {int(true_same[p])}: images "
        f"{int(pairs.index_a[p])} and {int(pairs.index_b[p])} are labelled "
        f"{int(true_a[p])} and {int(true_b[p])}")))
    return problems


def first_row_error(pair_file, problems, advice):
    """Raise a UserError naming the earliest failing row of `problems`, if any."""
    found = [(int(pair_file.row_numbers[p.positions[0]]), p) for p in problems if len(p.positions)]
    if not found:
        return
    row, problem = min(found, key=lambda item: item[0])
    total = len(np.unique(np.concatenate([p.positions for p in problems])))
    others = f" ({total - 1} more row(s) fail too)" if total > 1 else ""
    raise UserError(f"{pair_file.path}: row {row}: {problem.describe(int(problem.positions[0]))}"
                    f"{others}; {advice}")


def check_pair_file(pair_file, split):
    """Raise a UserError unless every index fits `split` and every label agrees with it.

    Balance, self-pairs and repeats are not checked: any such pair file can
    still be scored. `pairs verify` checks those.
    """
    if pair_file.split and pair_file.split != split.name:
        raise UserError(f"{pair_file.path}: row {int(pair_file.row_numbers[0])}: the pairs are over "
                        f"the {pair_file.split} split, not the {split.name} split")
    advice = f"fix the file, or rebuild it with 'siamese-mnist pairs build --split {split.name}'"
    first_row_error(pair_file, out_of_range_rows(pair_file, split), advice)
    inside = np.ones(len(pair_file), dtype=bool)
    first_row_error(pair_file, label_rows(pair_file, split, inside), advice)


def count_table(pair_file, split):
    """Return the count table of `pair_file`, with each pair's types from the split's own labels."""
    advice = f"is the file over the {split.name} split? Pass --split to name another"
    first_row_error(pair_file, out_of_range_rows(pair_file, split), advice)
    labels = split.labels
    return format_counts(labels[pair_file.pairs.index_a], labels[pair_file.pairs.index_b],
                         np.unique(labels))


@dataclass(frozen=True)
class Audit:
    """The result of `audit_pair_file`: counts, whole-file violations and row violations."""

    pair_file: object
    split_name: str
    positive: dict  # {(c, c): count}, types from the split's labels
    negative: dict  # {(a, b): count} for a < b
    file_problems: tuple  # of str
    row_problems: tuple  # of RowProblem

    @property
    def count(self):
        return len(self.file_problems) + sum(len(p.positions) for p in self.row_problems)

    @property
    def ok(self):
        return self.count == 0

    def messages(self, limit=None):
        """Return up to `limit` violations: whole-file ones first, then rows in file order."""
        lines = list(self.file_problems[:limit])
        room = None if limit is None else limit - len(lines)
        if room is not None and room <= 0:
            return lines
        if not self.row_problems:
            return lines
        positions = np.concatenate([p.positions for p in self.row_problems])
        kinds = np.concatenate([np.full(len(p.positions), k) for k, p in enumerate(self.row_problems)])
        rows = self.pair_file.row_numbers[positions]
        for i in np.lexsort((kinds, rows))[:room]:
            problem = self.row_problems[kinds[i]]
            lines.append(f"row {int(rows[i])}: {problem.describe(int(positions[i]))}")
        return lines

    def report(self, limit=MAX_LISTED):
        """Return the text `pairs verify` prints: one OK line, or the violations."""
        path, n = self.pair_file.path, len(self.pair_file)
        if self.ok:
            return (f"{path}: OK: {n} pairs over the {self.split_name} split, "
                    f"{describe_types(self.positive, 'positive')} and "
                    f"{describe_types(self.negative, 'negative')}; no self-pairs, no repeated "
                    f"pairs, every index and label agrees with the dataset")
        lines = [f"{path}: INVALID: {self.count} violation(s) in {n} pairs over the "
                 f"{self.split_name} split"]
        lines += [f"  {line}" for line in self.messages(limit)]
        if self.count > limit:
            lines.append(f"  ... and {self.count - limit} more violation(s)")
        return "\n".join(lines)


def describe_types(counts, kind):
    total = sum(counts.values())
    per_type = next(iter(counts.values()), 0)
    return f"{total} {kind} ({len(counts)} types of {per_type})"


def unequal_types(counts, kind):
    """Describe each type whose count differs from the most common count."""
    values, frequency = np.unique(list(counts.values()), return_counts=True)
    if len(values) <= 1:
        return []
    usual, how_many = int(values[np.argmax(frequency)]), int(frequency.max())
    return [f"{kind} type ({a},{b}) has {n} pair{'' if n == 1 else 's'}, but {how_many} of the "
            f"{len(counts)} {kind} types have {usual}" for (a, b), n in counts.items() if n != usual]


def repeated_rows(pair_file, inside, n_images):
    """Positions of pairs whose unordered pair already occurs on an earlier row, and that row."""
    pairs = pair_file.pairs
    candidates = np.flatnonzero(inside)
    keys = pair_keys(pairs.index_a[candidates], pairs.index_b[candidates], n_images)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first = candidates[order[starts]][np.cumsum(starts) - 1]
    repeats = candidates[order[~starts]]
    first_of = dict(zip(repeats.tolist(), first[~starts].tolist()))
    return RowProblem("repeat", np.sort(repeats), lambda p: (
        f"repeats the pair of row {int(pair_file.row_numbers[first_of[p]])} (images "
        f"{int(pairs.index_a[p])} and {int(pairs.index_b[p])})"))


def audit_pair_file(pair_file, split):
    """Check `pair_file` against `split` and return every violation.

    The checks, with K the number of classes in the split:

    - every index is in range;
    - label_a, label_b and is_same agree with the split's labels;
    - no image is paired with itself and no unordered pair occurs twice;
    - there are as many positive as negative pairs;
    - each of the K positive types and each of the K(K-1)/2 negative types
      occurs equally often.

    Parameters
    ----------
    pair_file : PairFile
        From `siamese_mnist.pairs.read_pair_file`.
    split : Split
        The split the file's indices point into.

    Returns
    -------
    Audit
    """
    pairs, labels = pair_file.pairs, split.labels
    file_problems = []
    if pair_file.split and pair_file.split != split.name:
        file_problems.append(f"the split column names {pair_file.split}, but the pairs are "
                             f"checked against the {split.name} split")
    if len(pair_file) == 0:
        file_problems.append("the file holds no pairs")

    row_problems = out_of_range_rows(pair_file, split)
    outside = np.zeros(len(pair_file), dtype=bool)
    for problem in row_problems:
        outside[problem.positions] = True
    inside = ~outside
    self_pairs = np.flatnonzero(inside & (pairs.index_a == pairs.index_b))
    row_problems.append(RowProblem("self-pair", self_pairs, lambda p: (
        f"pairs image {int(pairs.index_a[p])} with itself")))
    row_problems.append(repeated_rows(pair_file, inside, len(labels)))
    row_problems += label_rows(pair_file, split, inside)

    true_a, true_b = labels[pairs.index_a[inside]], labels[pairs.index_b[inside]]
    positive, negative = type_counts(true_a, true_b, np.unique(labels))
    n_pos, n_neg = sum(positive.values()), sum(negative.values())
    if n_pos != n_neg:
        file_problems.append(f"{n_pos} positive and {n_neg} negative pairs, not 1:1")
    file_problems += unequal_types(positive, "positive")
    file_problems += unequal_types(negative, "negative")
    return Audit(pair_file, split.name, positive, negative, tuple(file_problems),
                 tuple(p for p in row_problems if len(p.positions)))
