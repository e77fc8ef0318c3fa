import json
from collections import Counter

import pytest

from Tools.schema.interleave import check_kto_ready, interleave

INTERLEAVE = "Tools/interleave_dataset.py"


def recs(label, n, tag):
    return [{"conversations": [{"role": "user", "content": f"{tag}{i}"}], "label": label} for i in range(n)]


def labels(path):
    return [json.loads(line)["label"] for line in path.read_text().splitlines()]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_balance_modes():
    pos, neg = recs(True, 5, "p"), recs(False, 3, "n")
    kept = interleave(pos, neg, "none")
    assert [r["label"] for r in kept.records] == [True, False] * 3
    assert len(kept.leftover) == 2 and kept.surplus == 2 and kept.dropped == 0
    assert interleave(pos, neg, "truncate").dropped == 2
    over = interleave(pos, neg, "oversample", seed=1)
    assert [r["label"] for r in over.records] == [True, False] * 5 and over.oversampled == 2
    assert Counter(r["conversations"][0]["content"] for r in over.records if not r["label"]).most_common(1)[0][1] == 2
    shuffled = interleave(pos, neg, shuffle=True, seed=3)
    assert shuffled.records == interleave(pos, neg, shuffle=True, seed=3).records != kept.records
    with pytest.raises(ValueError, match="both labels"):
        interleave(pos, [], "none")


def test_check_reports_the_304_run_of_the_reference_merge(reference_dir, run):
    merged = reference_dir / "datasets" / "behavior_merged_kto_v1.5_11.29.25.jsonl"
    report = check_kto_ready(merged)
    assert (report.true, report.false, report.same_label_neighbours) == (2286, 1982, 303)
    assert (report.longest_run, report.longest_run_label) == (304, True) and not report.ready
    result = run(INTERLEAVE, "--check", merged)
    assert result.returncode == 1 and "304" in result.stdout
    assert (
        run(INTERLEAVE, "--check", reference_dir / "datasets" / "behavior_merged_kto_v1.5_balanced.jsonl").returncode
        == 0
    )


def test_repairing_the_reference_merge_loses_no_record(reference_dir, tmp_path, run):
    merged = reference_dir / "datasets" / "behavior_merged_kto_v1.5_11.29.25.jsonl"
    out = tmp_path / "fixed.jsonl"
    result = run(INTERLEAVE, "--input", merged, "--output", out, "--balance", "none", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["out"]["records"] == 3964 and summary["leftover"]["surplus"] == 304 and summary["verified_kto_ready"]
    original = Counter(json.dumps(json.loads(l), sort_keys=True) for l in merged.read_text().splitlines() if l.strip())
    written = Counter(
        json.dumps(json.loads(l), sort_keys=True)
        for f in (out, tmp_path / "fixed.leftover.jsonl")
        for l in f.read_text().splitlines()
    )
    assert written == original
    assert check_kto_ready(out).ready


def test_two_file_mode_and_alias(tmp_path, run):
    pos = write(tmp_path / "pos.jsonl", [{k: v for k, v in r.items() if k != "label"} for r in recs(True, 3, "p")])
    neg = write(tmp_path / "neg.jsonl", recs(False, 3, "n"))
    out = tmp_path / "out.jsonl"
    result = run("Tools/shuffle_and_interleave.py", pos, neg, "-o", out, "--shuffle", "--seed", "9")
    assert result.returncode == 0, result.stderr
    assert labels(out) == [True, False] * 3 and not (tmp_path / "out.leftover.jsonl").exists()


def test_bad_input_writes_nothing_and_says_one_line(tmp_path, run):
    out = tmp_path / "out.jsonl"
    mixed = write(tmp_path / "mixed.jsonl", recs(True, 2, "p") + recs(False, 2, "n"))
    mixed.write_text(mixed.read_text() + "{broken\n")
    contradicting = write(tmp_path / "neg.jsonl", recs(True, 1, "x"))
    one_sided = write(tmp_path / "pos.jsonl", recs(True, 4, "p"))
    cases = [
        ["--input", mixed, "-o", out],
        [one_sided, contradicting, "-o", out],
        ["--input", one_sided, "-o", out],
        ["--input", tmp_path / "none.jsonl", "-o", out],
        ["--input", one_sided],
        ["--input", one_sided, "-o", one_sided],
        ["--check", tmp_path / "none.jsonl"],
        ["--balance", "maybe", "--input", one_sided, "-o", out],
    ]
    for args in cases:
        result = run(INTERLEAVE, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
    assert not out.exists()
    assert one_sided.read_text().count("\n") == 4  # inputs untouched


def test_nan_and_infinity_never_reach_the_output(tmp_path, run):
    mixed = write(tmp_path / "mixed.jsonl", recs(True, 2, "p") + recs(False, 2, "n"))
    mixed.write_text(
        mixed.read_text() + '{"conversations": [], "label": true, "score": NaN}\n'
        '{"conversations": [], "label": false, "score": -Infinity}\n'
    )
    out = tmp_path / "out.jsonl"
    result = run(INTERLEAVE, "--input", mixed, "-o", out)
    assert result.returncode == 2 and "2 unreadable line(s)" in result.stderr and not out.exists()
    check = run(INTERLEAVE, "--check", mixed, "--json")
    assert check.returncode == 1 and json.loads(check.stdout)["unreadable"] == 2


def test_a_stale_leftover_file_is_removed(tmp_path, run):
    out = tmp_path / "out.jsonl"
    stale = tmp_path / "out.leftover.jsonl"
    uneven = write(tmp_path / "uneven.jsonl", recs(True, 3, "p") + recs(False, 2, "n"))
    assert run(INTERLEAVE, "--input", uneven, "-o", out).returncode == 0
    assert labels(stale) == [True]  # this run's surplus
    even = write(tmp_path / "even.jsonl", recs(True, 2, "q") + recs(False, 2, "m"))
    assert run(INTERLEAVE, "--input", even, "-o", out).returncode == 0
    assert labels(out) == [True, False] * 2 and not stale.exists()  # no leftover from the earlier run beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["even.jsonl", "out.jsonl", "uneven.jsonl"]


def test_an_empty_file_is_not_kto_ready(tmp_path, run):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run(INTERLEAVE, "--check", empty, "--json")
    assert result.returncode == 1 and json.loads(result.stdout)["problems"] == ["the file holds no record"]
    assert run(INTERLEAVE, "--input", empty, "-o", tmp_path / "out.jsonl").returncode == 2


def test_a_record_too_deep_to_write_is_one_line_and_nothing_written(tmp_path, run):
    # orjson reads 1,020 levels; json.dumps cannot write them back
    mixed = write(tmp_path / "mixed.jsonl", recs(True, 1, "p") + recs(False, 1, "n"))
    mixed.write_text(mixed.read_text() + '{"conversations": [], "label": true, "x": ' + "[" * 1020 + "]" * 1020 + "}\n")
    out = tmp_path / "out.jsonl"
    result = run(INTERLEAVE, "--input", mixed, "-o", out)
    assert result.returncode == 2 and "nested too deeply" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.jsonl"]
