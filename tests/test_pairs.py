import csv
import io
import re
from itertools import combinations

import numpy as np
import pytest

from siamese_mnist import pairs as pairs_module
from siamese_mnist.errors import UserError
from siamese_mnist.pairs import (
    CSV_HEADER, MIN_TEST_PAIRS, build_pair_set, check_size, format_counts, minimum_size, pair_keys,
    pair_unit, read_pair_file, read_pairs_csv, type_counts, write_pairs_csv,
)

MNIST_LIKE = np.repeat(np.arange(10), [98, 113, 103, 101, 98, 89, 96, 103, 97, 101])


def test_pair_unit_for_ten_classes():
    assert pair_unit(10) == 180
    assert pair_unit(3) == 6
    assert pair_unit(2) == 4


def test_default_size_counts_exact():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=0)
    positive, negative = type_counts(pairs.label_a, pairs.label_b, range(10))
    assert set(positive.values()) == {450}
    assert len(positive) == 10
    assert set(negative.values()) == {100}
    assert len(negative) == 45
    assert int(pairs.is_same.sum()) == 4500
    assert len(pairs) == 9000


def test_no_self_or_repeated_pairs():
    pairs = build_pair_set(MNIST_LIKE, 18000, seed=1)
    assert np.all(pairs.index_a != pairs.index_b)
    keys = {tuple(sorted(p)) for p in zip(pairs.index_a.tolist(), pairs.index_b.tolist())}
    assert len(keys) == 18000


def test_labels_match_indices():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=2)
    assert np.array_equal(pairs.label_a, MNIST_LIKE[pairs.index_a])
    assert np.array_equal(pairs.label_b, MNIST_LIKE[pairs.index_b])


def test_image_usage_even_within_class():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=3)
    uses = np.bincount(np.concatenate([pairs.index_a, pairs.index_b]), minlength=len(MNIST_LIKE))
    for digit in range(10):
        members = uses[MNIST_LIKE == digit]
        assert members.max() - members.min() <= 1, digit


def test_same_seed_same_pairs_other_seed_differs():
    first = build_pair_set(MNIST_LIKE, 9000, seed=7)
    second = build_pair_set(MNIST_LIKE, 9000, seed=7)
    third = build_pair_set(MNIST_LIKE, 9000, seed=8)
    assert np.array_equal(first.index_a, second.index_a)
    assert np.array_equal(first.index_b, second.index_b)
    assert not np.array_equal(first.index_a, third.index_a)


@pytest.mark.parametrize("size, nearest", [(9001, "9000 and 9180"), (100, "9000 and 9180"),
                                           (9100, "9000 and 9180"), (9359, "9180 and 9360")])
def test_invalid_test_size_names_nearest(size, nearest):
    with pytest.raises(UserError, match=f"size {size} is invalid.*nearest valid sizes are {nearest}"):
        check_size(size, 10, minimum=9000)


def test_too_many_pairs_for_class_rejected():
    labels = np.repeat(np.arange(3), 4)  # 6 distinct positive pairs per class
    build_pair_set(labels, 36, seed=0)  # 6 positives per class: every distinct pair
    with pytest.raises(UserError, match="too few for 7 distinct positive pairs"):
        build_pair_set(labels, 42, seed=0)


def test_dense_request_uses_every_distinct_pair():
    labels = np.repeat(np.arange(3), 4)
    pairs = build_pair_set(labels, 36, seed=5)
    keys = {tuple(sorted(p)) for p in zip(pairs.index_a.tolist(), pairs.index_b.tolist())}
    assert len(keys) == 36


def test_count_table_format():
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=0)
    lines = format_counts(pairs.label_a, pairs.label_b, range(10)).splitlines()
    expected = [f"Positive ({d},{d}): 450" for d in range(10)] + ["Pos Total: 4500"]
    expected += [f"Negative ({a},{b}): 100" for a, b in combinations(range(10), 2)]
    expected += ["Neg Total: 4500", "Total: 9000"]
    assert lines == expected


def test_count_table_recounts_rows():
    table = format_counts(np.array([0, 1, 1]), np.array([0, 0, 1]), [0, 1])
    assert table == ("Positive (0,0): 1\nPositive (1,1): 1\nPos Total: 2\n"
                     "Negative (0,1): 1\nNeg Total: 1\nTotal: 3\n")


def test_csv_round_trip(tmp_path):
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=0)
    path = tmp_path / "pairs.csv"
    write_pairs_csv(path, pairs)
    assert path.read_text().splitlines()[0] == "index_a,index_b,label_a,label_b,is_same"
    loaded, is_same = read_pairs_csv(path)
    assert np.array_equal(loaded.index_a, pairs.index_a)
    assert np.array_equal(loaded.index_b, pairs.index_b)
    assert np.array_equal(is_same, pairs.is_same)


# Class sizes of the 10,000 MNIST test images.
TEST_LIKE = np.repeat(np.arange(10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


def image_usage_spread(pairs, labels):
    """Return the largest difference in usage between two images of the same class."""
    uses = np.bincount(np.concatenate([pairs.index_a, pairs.index_b]), minlength=len(labels))
    return max(int(np.ptp(uses[labels == c])) for c in np.unique(labels))


@pytest.mark.parametrize("size", [90_000, 900_000])
def test_large_sizes_exact(size):
    pairs = build_pair_set(TEST_LIKE, size, seed=0, minimum=MIN_TEST_PAIRS)
    positive, negative = type_counts(pairs.label_a, pairs.label_b, range(10))
    assert set(positive.values()) == {size // 2 // 10}
    assert set(negative.values()) == {size // 2 // 45}
    assert len(pairs) == size
    assert not np.any(pairs.index_a == pairs.index_b)
    keys = np.unique(pair_keys(pairs.index_a, pairs.index_b, len(TEST_LIKE)))
    assert len(keys) == size
    assert np.array_equal(pairs.label_a, TEST_LIKE[pairs.index_a])
    assert np.array_equal(pairs.label_b, TEST_LIKE[pairs.index_b])


@pytest.mark.parametrize("size", [9000, 90_000, 900_000])
def test_image_usage_spread_at_most_one(size):
    pairs = build_pair_set(TEST_LIKE, size, seed=4, minimum=MIN_TEST_PAIRS)
    assert image_usage_spread(pairs, TEST_LIKE) <= 1


@pytest.mark.parametrize("k, size, nearest", [(3, 7, "6 and 12"), (3, 1, "6 and 12"),
                                              (4, 25, "24 and 48"), (2, 10, "8 and 12")])
def test_invalid_size_names_nearest_for_k_classes(k, size, nearest):
    with pytest.raises(UserError, match=f"{k} classes.*nearest valid sizes are {nearest}"):
        check_size(size, k)


def test_minimum_size_only_for_test_split():
    assert minimum_size("test") == 9000
    assert minimum_size("val") == 0
    assert minimum_size("train") == 0


def test_csv_bytes_match_csv_module(tmp_path):
    pairs = build_pair_set(MNIST_LIKE, 9000, seed=3)
    path = tmp_path / "pairs.csv"
    write_pairs_csv(path, pairs)
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(zip(pairs.index_a.tolist(), pairs.index_b.tolist(), pairs.label_a.tolist(),
                         pairs.label_b.tolist(), pairs.is_same.tolist()))
    assert path.read_bytes() == expected.getvalue().encode("ascii")


def write_text_file(tmp_path, text, name="pairs.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_reader_columns_in_any_order(tmp_path):
    path = write_text_file(tmp_path, "is_same,label_b,label_a,index_b,index_a,note\n"
                                     "1,3,3,20,10,x\n0,4,3,22,11,y\n")
    pair_file = read_pair_file(path)
    assert pair_file.pairs.index_a.tolist() == [10, 11]
    assert pair_file.pairs.index_b.tolist() == [20, 22]
    assert pair_file.pairs.label_a.tolist() == [3, 3]
    assert pair_file.pairs.label_b.tolist() == [3, 4]
    assert pair_file.is_same.tolist() == [1, 0]
    assert pair_file.row_numbers.tolist() == [2, 3]
    assert pair_file.split is None


def test_reader_accepts_crlf_and_bom(tmp_path):
    path = write_text_file(tmp_path, "\ufeffindex_a,index_b,label_a,label_b,is_same\r\n"
                                     "1,2,0,0,1\r\n3,4,0,1,0\r\n")
    pair_file = read_pair_file(path)
    assert pair_file.pairs.index_a.tolist() == [1, 3]
    assert pair_file.is_same.tolist() == [1, 0]


def test_reader_keeps_row_numbers_across_blank_lines(tmp_path):
    path = write_text_file(tmp_path, 'index_a,index_b,label_a,label_b,is_same\n1,2,0,0,1\n\n'
                                     '"3",4,0,1,0\n\n')
    pair_file = read_pair_file(path)
    assert pair_file.pairs.index_a.tolist() == [1, 3]
    assert pair_file.row_numbers.tolist() == [2, 4]


def test_reader_header_only_gives_no_pairs(tmp_path):
    pair_file = read_pair_file(write_text_file(tmp_path, ",".join(CSV_HEADER) + "\n"))
    assert len(pair_file) == 0
    assert pair_file.is_same.dtype == np.int64


def test_reader_split_column(tmp_path):
    path = write_text_file(tmp_path, "index_a,index_b,label_a,label_b,is_same,split\n"
                                     "1,2,0,0,1,val\n3,4,0,1,0, val\n")
    pair_file = read_pair_file(path)
    assert pair_file.split == "val"
    assert pair_file.pairs.index_b.tolist() == [2, 4]


def test_reader_split_column_fast_path(tmp_path, monkeypatch):
    pairs = build_pair_set(np.repeat(np.arange(3), 30), 1800, seed=4)
    plain = tmp_path / "plain.csv"
    write_pairs_csv(plain, pairs)
    lines = plain.read_text().splitlines()
    tagged = write_text_file(tmp_path, "split," + lines[0] + "\n" +
                             "".join(f"test ,{line}\n" for line in lines[1:]))
    monkeypatch.setattr(pairs_module, "parse_rows_carefully",
                        lambda *args: pytest.fail("careful reader used"))
    fast = read_pair_file(tagged)
    assert fast.split == "test"
    for column in ("index_a", "index_b", "label_a", "label_b"):
        assert np.array_equal(getattr(fast.pairs, column), getattr(pairs, column)), column
    assert np.array_equal(fast.is_same, pairs.is_same)
    assert np.array_equal(fast.row_numbers, np.arange(2, 1802))


@pytest.mark.parametrize("text, message", [
    ("", "empty file; expected a CSV with header index_a,index_b"),
    ("\n\n", "empty file; expected a CSV with header index_a,index_b"),
    (",,\n1,2\n", "row 1: empty header"),
    ("a,b,c\n1,2,3\n", "row 1: missing column\\(s\\) index_a, index_b, label_a, label_b, is_same"),
    ("index_a,index_b,label_a,is_same\n1,2,3,1\n", "row 1: missing column\\(s\\) label_b;"),
    ("index_a;index_b;label_a;label_b;is_same\n", "row 1: missing column"),
    ("index_a,index_b,label_a,label_b,is_same\n1,2,3,3,1\n5,x,1,1,1\n",
     "row 3: index_b is 'x', not an integer"),
    ("index_a,index_b,label_a,label_b,is_same\n1,2,3,3,1\n1,2,3,3,1.0\n",
     "row 3: is_same is '1.0', not an integer"),
    ("index_a,index_b,label_a,label_b,is_same\n1,2,3,3,1\n\n1,2,3\n",
     "row 4: no value for label_b; the row has 3 field"),
    ("index_a,index_b,label_a,label_b,is_same\n1,2,3,3,1\n99999999999999999999,2,3,3,1\n",
     "row 3: index_a 99999999999999999999 is too large"),
    ("index_a,index_b,label_a,label_b,is_same,split\n1,2,3,3,1,test\n1,3,3,3,1,tset\n",
     "row 3: split 'tset' is not a split of the dataset; use one of train, val, test"),
    ("index_a,index_b,label_a,label_b,is_same,split\n1,2,3,3,1,test\n1,3,3,3,1,val\n",
     "row 3: split 'val' differs from 'test' in row 2"),
    ("index_a,index_b,label_a,label_b,is_same\n1,2,3,3,1\n\"1,2,3,3,1\n",
     "row 3: not valid CSV \\(unexpected end of data\\)"),
])
def test_reader_rejects_bad_file(tmp_path, text, message):
    path = write_text_file(tmp_path, text)
    with pytest.raises(UserError, match=f"^{re.escape(str(path))}: {message}") as info:
        read_pair_file(path)
    assert "\n" not in str(info.value)


def test_reader_rejects_binary_file(tmp_path):
    path = write_text_file(tmp_path, b"index_a,index_b,label_a,label_b,is_same\n1,2,3,3,1\n\x89PNG\x00")
    with pytest.raises(UserError, match="pairs.csv: row 3: not a CSV text file .*NUL bytes"):
        read_pair_file(path)
    path = write_text_file(tmp_path, b"index_a,index_b,label_a,label_b,is_same\n\xff\xfe,1\n")
    with pytest.raises(UserError, match="pairs.csv: row 2: not a CSV text file .*0xff"):
        read_pair_file(path)


def test_reader_missing_file(tmp_path):
    with pytest.raises(UserError, match="pair file not found: .*absent.csv"):
        read_pair_file(tmp_path / "absent.csv")


def test_large_file_round_trip(tmp_path):
    pairs = build_pair_set(TEST_LIKE, 900_000, seed=1, minimum=MIN_TEST_PAIRS)
    path = tmp_path / "pairs.csv"
    write_pairs_csv(path, pairs)
    pair_file = read_pair_file(path)
    assert np.array_equal(pair_file.pairs.index_a, pairs.index_a)
    assert np.array_equal(pair_file.pairs.index_b, pairs.index_b)
    assert np.array_equal(pair_file.pairs.label_b, pairs.label_b)
    assert np.array_equal(pair_file.is_same, pairs.is_same)
    assert pair_file.row_numbers[-1] == 900_001


def test_usage_spread_when_types_compete_for_images():
    # Two classes of 3 images and 4 pairs: each class serves 4 endpoints, so one image is
    # used twice. A repair within one pair type can leave a negative type with one distinct
    # pair only, so the builder moves endpoints across types and keeps usage at 1 or 2.
    labels = np.repeat([0, 1], 3)
    for seed in range(40):
        pairs = build_pair_set(labels, 4, seed)
        assert len(np.unique(pair_keys(pairs.index_a, pairs.index_b, 6))) == 4, seed
        assert image_usage_spread(pairs, labels) <= 1, seed
