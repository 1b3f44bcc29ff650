import re

import numpy as np
import pytest

from siamese_mnist.data import Split
from siamese_mnist.errors import UserError
from siamese_mnist.pair_audit import (
    MAX_LISTED, audit_pair_file, check_pair_file, count_table, resolve_split,
)
from siamese_mnist.pairs import (
    CSV_HEADER, MIN_TEST_PAIRS, build_pair_set, format_counts, read_pair_file, write_pairs_csv,
)

# Four classes: sizes must be multiples of 2 * lcm(4, 6) = 24.
LABELS = np.repeat(np.arange(4), [13, 11, 12, 10])
SPLIT = Split("val", np.zeros((len(LABELS), 28, 28), dtype=np.uint8), LABELS)


def built_rows(size=48, seed=0):
    pairs = build_pair_set(LABELS, size, seed)
    return [list(row) for row in zip(pairs.index_a.tolist(), pairs.index_b.tolist(),
                                     pairs.label_a.tolist(), pairs.label_b.tolist(),
                                     pairs.is_same.tolist())]


def pair_file_of(tmp_path, rows, header=CSV_HEADER, name="pairs.csv"):
    path = tmp_path / name
    lines = [",".join(header)] + [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return read_pair_file(path)


def row_kinds(audit):
    """Return the set of (row, kind) of every row violation the audit found."""
    rows = audit.pair_file.row_numbers
    return {(int(rows[p]), problem.kind) for problem in audit.row_problems
            for p in problem.positions}


def brute_force_row_kinds(rows, labels):
    """Check every row in a plain loop, as a reference for the vectorized audit."""
    found, first_row = set(), {}
    for row_number, (a, b, label_a, label_b, is_same) in enumerate(rows, start=2):
        outside = [(row_number, column) for column, index in (("index_a", a), ("index_b", b))
                   if not 0 <= index < len(labels)]
        found.update(outside)
        if outside:
            continue
        if a == b:
            found.add((row_number, "self-pair"))
        key = (min(a, b), max(a, b))
        if key in first_row:
            found.add((row_number, "repeat"))
        else:
            first_row[key] = row_number
        if label_a != labels[a]:
            found.add((row_number, "label_a"))
        if label_b != labels[b]:
            found.add((row_number, "label_b"))
        if is_same != int(labels[a] == labels[b]):
            found.add((row_number, "is_same"))
    return found


def test_built_file_passes(tmp_path):
    pair_file = pair_file_of(tmp_path, built_rows())
    audit = audit_pair_file(pair_file, SPLIT)
    assert audit.ok
    assert audit.count == 0
    assert audit.messages() == []
    assert audit.report() == (
        f"{pair_file.path}: OK: 48 pairs over the val split, 24 positive (4 types of 6) and "
        "24 negative (6 types of 4); no self-pairs, no repeated pairs, every index and label "
        "agrees with the dataset")


def test_repeated_row_rejected(tmp_path):
    rows = built_rows()
    a, b = rows[4][0], rows[4][1]
    pair_file = pair_file_of(tmp_path, rows + [rows[4]])
    audit = audit_pair_file(pair_file, SPLIT)
    positive_type = LABELS[a]
    assert audit.messages() == [
        "25 positive and 24 negative pairs, not 1:1",
        f"positive type ({positive_type},{positive_type}) has 7 pairs, but 3 of the 4 "
        "positive types have 6",
        f"row 50: repeats the pair of row 6 (images {a} and {b})",
    ]
    assert audit.count == 3
    assert not audit.ok


def test_reversed_pair_counts_as_repeat(tmp_path):
    rows = built_rows()
    a, b, label_a, label_b, is_same = rows[30]
    pair_file = pair_file_of(tmp_path, rows[:-1] + [[b, a, label_b, label_a, is_same]])
    audit = audit_pair_file(pair_file, SPLIT)
    assert row_kinds(audit) == {(49, "repeat")}
    assert audit.messages()[-1] == f"row 49: repeats the pair of row 32 (images {b} and {a})"


def test_wrong_label_rejected(tmp_path):
    rows = built_rows()
    index = rows[7][0]
    rows[7][2] = (LABELS[index] + 1) % 4
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    assert audit.messages() == [
        f"row 9: label_a is {rows[7][2]}, but image {index} of the val split is labelled "
        f"{LABELS[index]}"]


def test_wrong_is_same_rejected(tmp_path):
    rows = built_rows()
    a, b = rows[40][0], rows[40][1]
    rows[40][4] = 2
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    assert audit.messages() == [
        f"row 42: is_same is 2, expected 0: images {a} and {b} are labelled {LABELS[a]} and "
        f"{LABELS[b]}"]


def test_self_pair_rejected(tmp_path):
    rows = built_rows()
    rows[3][1] = rows[3][0]
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    assert f"row 5: pairs image {rows[3][0]} with itself" in audit.messages()


def test_out_of_range_row_skips_label_checks(tmp_path):
    rows = built_rows()
    rows[0][1] = len(LABELS)
    rows[1][0] = -1
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    assert row_kinds(audit) == {(2, "index_b"), (3, "index_a")}
    assert audit.messages()[-2:] == [
        "row 2: index_b 46 is out of range for the val split of 46 images (0 to 45)",
        "row 3: index_a -1 is out of range for the val split of 46 images (0 to 45)"]


def test_unequal_negative_types_listed(tmp_path):
    rows = [row for row in built_rows() if (row[2], row[3]) not in ((0, 1), (1, 0))]
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    assert audit.messages() == [
        "24 positive and 20 negative pairs, not 1:1",
        "negative type (0,1) has 0 pairs, but 5 of the 6 negative types have 4"]


def test_empty_file_rejected(tmp_path):
    audit = audit_pair_file(pair_file_of(tmp_path, []), SPLIT)
    assert audit.messages() == ["the file holds no pairs"]


def test_report_lists_twenty_then_count(tmp_path):
    rows = built_rows()
    for row in rows[:25]:
        row[4] = 1 - row[4]
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    lines = audit.report().splitlines()
    assert audit.count == 25
    assert lines[0] == f"{audit.pair_file.path}: INVALID: 25 violation(s) in 48 pairs over the val split"
    assert len(lines) == 1 + MAX_LISTED + 1
    assert [int(re.match(r"  row (\d+):", line).group(1)) for line in lines[1:-1]] == list(range(2, 22))
    assert lines[-1] == "  ... and 5 more violation(s)"


def test_file_problems_listed_before_rows(tmp_path):
    rows = built_rows()
    rows.append(rows[0])
    rows[1][2] = 9
    messages = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT).messages()
    assert messages[0].endswith("not 1:1")
    assert messages[-2].startswith("row 3: label_a is 9")
    assert messages[-1].startswith("row 50: repeats the pair of row 2")


@pytest.mark.parametrize("seed", range(30))
def test_audit_matches_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rows = built_rows(seed=seed)
    for _ in range(rng.integers(1, 8)):
        row = rows[rng.integers(len(rows))]
        change = rng.integers(7)
        if change == 0:
            row[rng.integers(2)] = int(rng.choice([-1, len(LABELS), len(LABELS) + 5]))
        elif change == 1:
            rows.append(list(row))
        elif change == 2:
            rows.append([row[1], row[0], row[3], row[2], row[4]])
        elif change == 3:
            row[1] = row[0]
        elif change in (4, 5):
            row[change - 2] = int(rng.integers(4))
        else:
            row[4] = int(rng.integers(3))
    audit = audit_pair_file(pair_file_of(tmp_path, rows), SPLIT)
    assert row_kinds(audit) == brute_force_row_kinds(rows, LABELS)


def test_check_pair_file_accepts_unbalanced(tmp_path):
    rows = built_rows()[:30]
    check_pair_file(pair_file_of(tmp_path, rows), SPLIT)


def test_check_pair_file_names_first_wrong_label(tmp_path):
    rows = built_rows()
    rows[10][3] = 7
    rows[20][4] = 5
    with pytest.raises(UserError, match=r"pairs.csv: row 12: label_b is 7, but image \d+ of the "
                                        r"val split is labelled \d \(1 more row\(s\) fail too\); "
                                        r"fix the file, or rebuild it"):
        check_pair_file(pair_file_of(tmp_path, rows), SPLIT)


def test_check_pair_file_rejects_out_of_range(tmp_path):
    rows = built_rows()
    rows[5][0] = 100
    with pytest.raises(UserError, match="row 7: index_a 100 is out of range for the val split"):
        check_pair_file(pair_file_of(tmp_path, rows), SPLIT)


def test_check_pair_file_rejects_other_split(tmp_path):
    rows = [row + ["test"] for row in built_rows()]
    pair_file = pair_file_of(tmp_path, rows, header=CSV_HEADER + ("split",))
    with pytest.raises(UserError, match="row 2: the pairs are over the test split, not the val split"):
        check_pair_file(pair_file, SPLIT)


def test_count_table_uses_dataset_labels(tmp_path):
    rows = built_rows()
    for row in rows:
        row[2] = row[3] = 0
    pairs = build_pair_set(LABELS, 48, 0)
    expected = format_counts(pairs.label_a, pairs.label_b, range(4))
    assert count_table(pair_file_of(tmp_path, rows), SPLIT) == expected


def test_count_table_rejects_out_of_range(tmp_path):
    rows = built_rows()
    rows[2][1] = 46
    with pytest.raises(UserError, match="row 4: index_b 46 is out of range .*Pass --split"):
        count_table(pair_file_of(tmp_path, rows), SPLIT)


def test_resolve_split(tmp_path):
    plain = pair_file_of(tmp_path, built_rows(), name="plain.csv")
    tagged = pair_file_of(tmp_path, [row + ["val"] for row in built_rows()],
                          header=CSV_HEADER + ("split",), name="tagged.csv")
    assert resolve_split(plain) == "test"
    assert resolve_split(plain, "train") == "train"
    assert resolve_split(tagged) == "val"
    assert resolve_split(tagged, "val") == "val"
    with pytest.raises(UserError, match="tagged.csv: row 2: the split column is 'val' but "
                                        "--split test was given"):
        resolve_split(tagged, "test")


def test_large_file_passes(tmp_path):
    labels = np.repeat(np.arange(10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    split = Split("test", np.zeros((len(labels), 1, 1), dtype=np.uint8), labels)
    path = tmp_path / "large.csv"
    write_pairs_csv(path, build_pair_set(labels, 900_000, 0, minimum=MIN_TEST_PAIRS))
    audit = audit_pair_file(read_pair_file(path), split)
    assert audit.ok
    assert set(audit.positive.values()) == {45_000}
    assert set(audit.negative.values()) == {10_000}
