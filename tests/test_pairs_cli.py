import json
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest

from siamese_mnist.cli import main
from siamese_mnist.data import get_splits, load_dataset
from siamese_mnist.pipeline import save_test_pairs
from tests.conftest import make_fake_dataset


def expected_table(n_pairs, n_classes=10):
    n_pos = n_pairs // 2 // n_classes
    n_neg = n_pairs // 2 // (n_classes * (n_classes - 1) // 2)
    lines = [f"Positive ({d},{d}): {n_pos}" for d in range(n_classes)]
    lines.append(f"Pos Total: {n_pos * n_classes}")
    lines += [f"Negative ({a},{b}): {n_neg}" for a, b in combinations(range(n_classes), 2)]
    lines.append(f"Neg Total: {n_pairs // 2}")
    lines.append(f"Total: {n_pairs}")
    return "\n".join(lines) + "\n"


def run_cli(capsys, *argv):
    """Run the command line; return (exit status, stdout, stderr)."""
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def build(capsys, data_dir, out, *options):
    status, stdout, stderr = run_cli(capsys, "pairs", "build", "--data-dir", data_dir, "-o", out,
                                     *options)
    assert status == 0, stderr
    return stdout


@pytest.fixture(scope="module")
def built_9000(tmp_path_factory, real_mnist):
    path = tmp_path_factory.mktemp("pairs") / "test_9000.csv"
    assert main(["pairs", "build", "--data-dir", str(real_mnist), "--split", "test", "--size", "9000",
                 "--seed", "0", "-o", str(path)]) == 0
    return path


def test_build_twice_same_bytes(capsys, tmp_path, real_mnist, built_9000):
    again = tmp_path / "again.csv"
    stdout = build(capsys, real_mnist, again, "--split", "test", "--size", "9000", "--seed", "0")
    assert stdout == f"wrote {again}: 9000 pairs over the test split (seed 0)\n"
    assert again.read_bytes() == built_9000.read_bytes()


def test_build_to_stdout_then_verify_stdin(tmp_path, real_mnist, built_9000):
    command = [sys.executable, "-m", "siamese_mnist", "pairs"]
    data = ["--data-dir", str(real_mnist)]
    built = subprocess.run([*command, "build", *data, "--size", "9000", "--seed", "0", "-o", "-"],
                           capture_output=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert built.stdout == built_9000.read_bytes()
    assert built.stderr == b"wrote standard output: 9000 pairs over the test split (seed 0)\n"
    assert list(tmp_path.iterdir()) == []
    checked = subprocess.run([*command, "verify", "-", *data], input=built.stdout,
                             capture_output=True, timeout=300)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.decode().startswith("<stdin>: OK: 9000 pairs over the test split")


def test_build_other_seed_differs(capsys, tmp_path, real_mnist, built_9000):
    other = tmp_path / "other.csv"
    build(capsys, real_mnist, other, "--size", "9000", "--seed", "1")
    assert other.read_bytes() != built_9000.read_bytes()


def test_build_equals_run_test_pairs(tmp_path, real_mnist, built_9000):
    splits = get_splits(load_dataset(real_mnist), 5000, 0)
    save_test_pairs(tmp_path, splits["test"], 9000, 0)
    assert (tmp_path / "test_pairs.csv").read_bytes() == built_9000.read_bytes()


def test_build_equals_run_output(short_run, built_9000):
    assert (short_run / "test_pairs.csv").read_bytes() == built_9000.read_bytes()


def test_stats_table_9000(capsys, real_mnist, built_9000):
    status, stdout, stderr = run_cli(capsys, "pairs", "stats", "--data-dir", real_mnist, built_9000)
    assert status == 0, stderr
    assert stdout == expected_table(9000)


def test_stats_table_18000(capsys, tmp_path, real_mnist):
    path = tmp_path / "test_18000.csv"
    build(capsys, real_mnist, path, "--size", "18000", "--seed", "3")
    status, stdout, stderr = run_cli(capsys, "pairs", "stats", "--data-dir", real_mnist, path)
    assert status == 0, stderr
    assert stdout == expected_table(18000)


def test_verify_passes_built_file(capsys, real_mnist, built_9000):
    status, stdout, stderr = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, built_9000)
    assert status == 0, stderr
    assert stdout == (f"{built_9000}: OK: 9000 pairs over the test split, 4500 positive (10 types "
                      "of 450) and 4500 negative (45 types of 100); no self-pairs, no repeated "
                      "pairs, every index and label agrees with the dataset\n")


def test_verify_rejects_repeated_row(capsys, tmp_path, real_mnist, built_9000):
    lines = built_9000.read_text().splitlines()
    copy = tmp_path / "repeated.csv"
    copy.write_text("\n".join(lines + [lines[100]]) + "\n")
    a, b, label, _, _ = lines[100].split(",")
    status, stdout, _ = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, copy)
    assert status == 1
    assert stdout.splitlines() == [
        f"{copy}: INVALID: 3 violation(s) in 9001 pairs over the test split",
        "  4501 positive and 4500 negative pairs, not 1:1",
        f"  positive type ({label},{label}) has 451 pairs, but 9 of the 10 positive types have 450",
        f"  row 9002: repeats the pair of row 101 (images {a} and {b})",
    ]


def test_verify_rejects_wrong_label(capsys, tmp_path, real_mnist, built_9000):
    lines = built_9000.read_text().splitlines()
    a, b, label_a, label_b, is_same = lines[5000].split(",")
    wrong = (int(label_b) + 1) % 10
    lines[5000] = ",".join([a, b, label_a, str(wrong), is_same])
    copy = tmp_path / "wrong_label.csv"
    copy.write_text("\n".join(lines) + "\n")
    status, stdout, _ = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, copy)
    assert status == 1
    assert stdout.splitlines() == [
        f"{copy}: INVALID: 1 violation(s) in 9000 pairs over the test split",
        f"  row 5001: label_b is {wrong}, but image {b} of the test split is labelled {label_b}",
    ]


def test_verify_lists_twenty_then_count(capsys, tmp_path, real_mnist, built_9000):
    lines = built_9000.read_text().splitlines()
    for i in range(1, 31):
        fields = lines[i].split(",")
        fields[4] = str(1 - int(fields[4]))
        lines[i] = ",".join(fields)
    copy = tmp_path / "flipped.csv"
    copy.write_text("\n".join(lines) + "\n")
    status, stdout, _ = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, copy)
    output = stdout.splitlines()
    assert status == 1
    assert output[0] == f"{copy}: INVALID: 30 violation(s) in 9000 pairs over the test split"
    assert len(output) == 22
    assert output[1].startswith("  row 2: is_same is 0, expected 1")
    assert output[-1] == "  ... and 10 more violation(s)"


@pytest.mark.parametrize("size, nearest", [("9001", "9000 and 9180"), ("100", "9000 and 9180")])
def test_build_invalid_size_leaves_no_file(capsys, tmp_path, real_mnist, size, nearest):
    out = tmp_path / "refused.csv"
    status, stdout, stderr = run_cli(capsys, "pairs", "build", "--data-dir", real_mnist,
                                     "--size", size, "-o", out)
    assert status == 2
    assert stdout == ""
    assert stderr == (f"error: pair set size {size} is invalid: with 10 classes it must be at least "
                      f"9000 and a multiple of 180 so that every pair type gets the same count; "
                      f"the nearest valid sizes are {nearest}\n")
    assert list(tmp_path.iterdir()) == []


def test_build_invalid_size_keeps_existing_file(capsys, tmp_path, real_mnist):
    out = tmp_path / "kept.csv"
    out.write_text("keep me\n")
    status, _, _ = run_cli(capsys, "pairs", "build", "--data-dir", real_mnist, "--size", "9001",
                           "-o", out)
    assert status == 2
    assert out.read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.csv"]


def test_build_into_missing_folder(capsys, tmp_path, real_mnist):
    out = tmp_path / "absent" / "pairs.csv"
    status, _, stderr = run_cli(capsys, "pairs", "build", "--data-dir", real_mnist, "-o", out)
    assert status == 2
    assert stderr == f"error: cannot write {out}: No such file or directory; choose another path\n"


def test_val_split_has_no_minimum(capsys, tmp_path, real_mnist):
    path = tmp_path / "val.csv"
    build(capsys, real_mnist, path, "--split", "val", "--size", "180", "--val-size", "1000")
    status, stdout, _ = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist,
                                "--val-size", "1000", "--split", "val", path)
    assert status == 0
    assert stdout.startswith(f"{path}: OK: 180 pairs over the val split")
    status, stdout, _ = run_cli(capsys, "pairs", "stats", "--data-dir", real_mnist,
                                "--val-size", "1000", "--split", "val", path)
    assert stdout == expected_table(180)
    # The same indices read as test images have other labels.
    status, stdout, _ = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, path)
    assert status == 1


def test_val_build_equals_run_validation_pairs(capsys, tmp_path, real_mnist):
    from siamese_mnist.pairs import build_pair_set, write_pairs_csv

    path = tmp_path / "val.csv"
    build(capsys, real_mnist, path, "--split", "val", "--size", "9000", "--seed", "2")
    splits = get_splits(load_dataset(real_mnist), 5000, 2)
    write_pairs_csv(tmp_path / "expected.csv", build_pair_set(splits["val"].labels, 9000, 2))
    assert path.read_bytes() == (tmp_path / "expected.csv").read_bytes()


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    return make_fake_dataset(tmp_path_factory.mktemp("k3") / "data", n_train=600, n_test=3000,
                             n_classes=3)


def test_three_classes_build_stats_verify(capsys, tmp_path, three_classes):
    data = ["--data-dir", three_classes, "--no-verify", "--val-size", "60"]
    path = tmp_path / "k3.csv"
    status, _, stderr = run_cli(capsys, "pairs", "build", *data, "--size", "9000", "-o", path)
    assert status == 0, stderr
    status, stdout, _ = run_cli(capsys, "pairs", "stats", *data, path)
    assert stdout == expected_table(9000, n_classes=3)
    status, stdout, _ = run_cli(capsys, "pairs", "verify", *data, path)
    assert status == 0
    assert "4500 positive (3 types of 1500) and 4500 negative (3 types of 1500)" in stdout


def test_three_classes_train_split_size_rejected(capsys, tmp_path, three_classes):
    out = tmp_path / "k3.csv"
    status, _, stderr = run_cli(capsys, "pairs", "build", "--data-dir", three_classes, "--no-verify",
                                "--split", "train", "--val-size", "60", "--size", "20", "-o", out)
    assert status == 2
    assert "with 3 classes it must be a multiple of 6" in stderr
    assert "the nearest valid sizes are 18 and 24" in stderr
    assert not out.exists()


def test_three_classes_too_many_pairs_rejected(capsys, tmp_path, three_classes):
    out = tmp_path / "k3.csv"
    status, _, stderr = run_cli(capsys, "pairs", "build", "--data-dir", three_classes, "--no-verify",
                                "--split", "val", "--val-size", "30", "--size", "276", "-o", out)
    assert status == 2
    assert stderr == ("error: class 0 has 10 images, too few for 46 distinct positive pairs; "
                      "use a smaller pair set size\n")
    assert not out.exists()


BAD_FILES = [
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00", "row 3: not a CSV text file (it contains NUL bytes)"),
    ("columns.csv", b"index_a,index_b,label_a,is_same\n1,2,3,1\n",
     "row 1: missing column(s) label_b; the header must name index_a,index_b,label_a,label_b,"
     "is_same, it is 'index_a,index_b,label_a,is_same'"),
    ("text.csv", b"index_a,index_b,label_a,label_b,is_same\n1,2,2,1,0\n3,four,1,4,0\n",
     "row 3: index_b is 'four', not an integer"),
    ("range.csv", b"index_a,index_b,label_a,label_b,is_same\n1,2,2,1,0\n3,10000,1,4,0\n",
     "row 3: index_b 10000 is out of range for the test split of 10000 images (0 to 9999); "
     "is the file over the test split? Pass --split to name another"),
    ("split.csv", b"index_a,index_b,label_a,label_b,is_same,split\n1,2,2,1,0,test\n3,4,1,4,0,dev\n",
     "row 3: split 'dev' is not a split of the dataset; use one of train, val, test"),
]


# verify lists an index out of range as a violation instead, see below.
@pytest.mark.parametrize("action, name, content, problem", [
    (action, *bad) for action in ("stats", "verify") for bad in BAD_FILES
    if (action, bad[0]) != ("verify", "range.csv")])
def test_bad_pair_file_one_line_error(capsys, tmp_path, real_mnist, action, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    status, stdout, stderr = run_cli(capsys, "pairs", action, "--data-dir", real_mnist, path)
    assert status == 2
    assert stdout == ""
    assert stderr == f"error: {path}: {problem}\n"


def test_verify_lists_index_out_of_range(capsys, tmp_path, real_mnist, built_9000):
    lines = built_9000.read_text().splitlines()
    fields = lines[9000].split(",")
    lines[9000] = ",".join([fields[0], "10000"] + fields[2:])
    path = tmp_path / "range.csv"
    path.write_text("\n".join(lines) + "\n")
    status, stdout, stderr = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, path)
    assert status == 1
    assert stderr == ""
    output = stdout.splitlines()
    assert output[0] == f"{path}: INVALID: 3 violation(s) in 9000 pairs over the test split"
    assert output[1] == "  4500 positive and 4499 negative pairs, not 1:1"
    assert output[-1] == ("  row 9001: index_b 10000 is out of range for the test split of 10000 "
                          "images (0 to 9999)")


def test_split_option_conflicts_with_column(capsys, tmp_path, real_mnist):
    path = tmp_path / "tagged.csv"
    path.write_text("index_a,index_b,label_a,label_b,is_same,split\n1,2,2,1,0,val\n")
    status, _, stderr = run_cli(capsys, "pairs", "stats", "--data-dir", real_mnist, "--split",
                                "test", path)
    assert status == 2
    assert stderr == (f"error: {path}: row 2: the split column is 'val' but --split test was "
                      "given; drop one of them\n")


def test_missing_pair_file(capsys, tmp_path, real_mnist):
    status, _, stderr = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist,
                                tmp_path / "absent.csv")
    assert status == 2
    assert stderr == f"error: pair file not found: {tmp_path / 'absent.csv'}\n"


def unbalanced_rows(path):
    """Return the header and the first 3000 rows, which are all positive pairs."""
    lines = path.read_text().splitlines()
    return lines[:3001]


def test_evaluate_unbalanced_file(capsys, tmp_path, real_mnist, short_run, built_9000):
    pairs_file = tmp_path / "unbalanced.csv"
    pairs_file.write_text("\n".join(unbalanced_rows(built_9000)) + "\n")
    out = tmp_path / "scored"
    status, stdout, stderr = run_cli(capsys, "evaluate", "--data-dir", real_mnist, "--checkpoint",
                                     short_run / "model.pt", "--pairs", pairs_file, "--out", out,
                                     "--device", "cpu")
    assert status == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test_pairs"] == 3000
    confusion = metrics["confusion"]
    assert confusion["tp"] + confusion["fn"] == 3000
    assert confusion["fp"] + confusion["tn"] == 0
    assert metrics["balanced_accuracy"] is None  # undefined without negative pairs
    assert "balanced accuracy: undefined (3000 positive, 0 negative pairs)" in stdout
    table = (out / "pair_counts.txt").read_text()
    assert stdout.startswith(table)
    assert "Pos Total: 3000\n" in table
    assert "Neg Total: 0\n" in table
    assert "ROC AUC undefined" in stdout
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| ROC AUC | undefined (the pairs lack one class) |" in report
    distances = (out / "test_distances.csv").read_text().splitlines()
    assert len(distances) == 3001
    first = unbalanced_rows(built_9000)[1].split(",")
    assert distances[1].split(",")[:3] == [first[0], first[1], first[4]]


def test_evaluate_mixed_file_reports_balanced_accuracy(capsys, tmp_path, real_mnist, short_run,
                                                       built_9000):
    lines = built_9000.read_text().splitlines()
    pairs_file = tmp_path / "mixed.csv"
    pairs_file.write_text("\n".join(lines[:1] + lines[1:1001] + lines[-500:]) + "\n")
    out = tmp_path / "scored"
    status, stdout, _ = run_cli(capsys, "evaluate", "--data-dir", real_mnist, "--checkpoint",
                                short_run / "model.pt", "--pairs", pairs_file, "--out", out,
                                "--device", "cpu")
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    tp, fn = metrics["confusion"]["tp"], metrics["confusion"]["fn"]
    fp, tn = metrics["confusion"]["fp"], metrics["confusion"]["tn"]
    assert (tp + fn, fp + tn) == (1000, 500)
    assert metrics["balanced_accuracy"] == pytest.approx((tp / 1000 + tn / 500) / 2)
    assert "(1000 positive, 500 negative pairs)" in stdout


def test_evaluate_rejects_wrong_label(capsys, tmp_path, real_mnist, short_run, built_9000):
    lines = built_9000.read_text().splitlines()
    a, b, label_a, label_b, is_same = lines[3].split(",")
    wrong = (int(label_a) + 3) % 10
    lines[3] = ",".join([a, b, str(wrong), label_b, is_same])
    pairs_file = tmp_path / "wrong.csv"
    pairs_file.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scored"
    status, stdout, stderr = run_cli(capsys, "evaluate", "--data-dir", real_mnist, "--checkpoint",
                                     short_run / "model.pt", "--pairs", pairs_file, "--out", out)
    assert status == 2
    assert stderr == (f"error: {pairs_file}: row 4: label_a is {wrong}, but image {a} of the test "
                      f"split is labelled {label_a}; fix the file, or rebuild it with "
                      "'siamese-mnist pairs build --split test'\n")
    assert not out.exists()


def test_balanced_evaluate_prints_no_balanced_accuracy(capsys, tmp_path, real_mnist, short_run,
                                                       built_9000):
    out = tmp_path / "scored"
    status, stdout, _ = run_cli(capsys, "evaluate", "--data-dir", real_mnist, "--checkpoint",
                                short_run / "model.pt", "--pairs", built_9000, "--out", out,
                                "--device", "cpu")
    assert status == 0
    assert "balanced accuracy" not in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    run_metrics = json.loads((short_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] == run_metrics["test_accuracy"]
    assert np.isclose(metrics["balanced_accuracy"], metrics["test_accuracy"])


def test_verify_val_file_hints_split(capsys, tmp_path, real_mnist):
    path = tmp_path / "val.csv"
    status, stdout, _ = run_cli(capsys, "pairs", "build", "--data-dir", real_mnist, "--split", "val",
                                "--size", "900", "--seed", "3", "-o", path)
    assert status == 0
    assert f"pairs verify {path} --split val --seed 3 --val-size 5000" in stdout
    status, _, stderr = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, path)
    assert status == 1
    assert stderr.startswith("hint: the file has no split column")
    status, _, _ = run_cli(capsys, "pairs", "verify", "--data-dir", real_mnist, path,
                           "--split", "val", "--seed", "3")
    assert status == 0
