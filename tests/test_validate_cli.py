import json
import shutil
from pathlib import Path

from factories import call, record

VALIDATOR = "Tools/validate_syngen.py"


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_exit_codes_and_json_report_shape(tmp_path, run):
    good = write(tmp_path / "good.jsonl", [record(call())] * 3)
    result = run(VALIDATOR, good)
    assert result.returncode == 0 and "3 record(s)" in result.stdout and "0 failed" in result.stdout
    bad = write(tmp_path / "bad.jsonl", [record(call()), record(call(colour="x", path="y"))])
    result = run(VALIDATOR, bad, "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["report"] == "validate_syngen" and len(report["schema_hash"]) == 64
    (file_report,) = report["files"]
    assert (file_report["judged"], file_report["failed"], file_report["codes"]) == (2, 1, {"E_UNEXPECTED_ARG": 1})
    finding = file_report["findings"][0]
    assert {k: finding[k] for k in ("line", "message_index", "tool", "code", "severity")} == {
        "line": 2, "message_index": 2, "tool": "vaultManager_createFolder", "code": "E_UNEXPECTED_ARG", "severity": "error"}


def test_directories_globs_and_label_filter(tmp_path, run):
    write(tmp_path / "a.jsonl", [record(call())])
    write(tmp_path / "sub_b.jsonl", [record(call(colour="x", path="y"), label=False)])
    result = run(VALIDATOR, tmp_path, "--format", "json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and len(report["files"]) == 2
    assert report["totals"]["negatives"] == {"judged": 1, "passing_every_check": 0, "structural_failures": 0,
                                            "codes": {"E_UNEXPECTED_ARG": 1}}
    result = run(VALIDATOR, str(tmp_path / "*.jsonl"), "--labels", "true", "--format", "json")
    assert json.loads(result.stdout)["totals"]["judged"] == 1


def test_strict_max_issues_and_summary_only(tmp_path, run):
    from Tools.schema.toolcalls import ToolCall
    from factories import context

    warn = ToolCall("vaultManager_createFolder", {"context": context(subgoal=""), "path": "x"})
    path = write(tmp_path / "w.jsonl", [record(warn)] * 5)
    assert run(VALIDATOR, path).returncode == 0
    strict = run(VALIDATOR, path, "--strict", "--max-issues", "2")
    assert strict.returncode == 1 and "3 more findings not shown" in strict.stdout
    assert "W_CONTEXT_FIELD_EMPTY" not in run(VALIDATOR, path, "--summary-only").stdout.split("\n\n")[0]


def test_bad_input_gives_one_line_and_exit_2(tmp_path, run):
    for args in (["missing.jsonl"], [tmp_path], ["--format", "xml", "x"], ["--max-issues", "-3", "x"], []):
        result = run(VALIDATOR, *args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
    schemas = write(tmp_path / "schemas.json", [])
    good = write(tmp_path / "g.jsonl", [record(call())])
    result = run(VALIDATOR, good, "--schemas", tmp_path / "nope.json")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    schemas.write_text("{}")
    assert run(VALIDATOR, good, "--schemas", schemas).returncode == 2


def test_invalid_lines_are_reported_and_reading_goes_on(tmp_path, run):
    path = tmp_path / "mixed.jsonl"
    path.write_text("{oops\n" + json.dumps(record(call())) + "\n")
    report = json.loads(run(VALIDATOR, path, "--format", "json").stdout)
    assert report["files"][0]["judged"] == 2 and report["files"][0]["codes"] == {"E_INVALID_JSON": 1}


def test_reference_datasets_never_crash_and_report_parses(reference_dir, run):
    result = run(VALIDATOR, reference_dir / "datasets", "--format", "json", "--max-issues", "5")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    by_name = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert len(by_name) == 6
    sft = by_name["tools_sft_v1.5_11.29.25.jsonl"]
    assert sft["records"] == 6794 and sft["labels"] == {"true": 4808, "false": 0, "unlabeled": 1986}
    assert sft["codes"]["E_UNKNOWN_TOOL"] == 42  # the 8 non-plugin names, 25 positive + 17 unlabeled calls
    recovery = by_name["behavior_error_recovery_pairs_v1.5.jsonl"]
    assert recovery["codes"]["E_NO_ASSISTANT"] == 2  # the two user-only records
    assert by_name["behavior_merged_kto_v1.5_balanced.jsonl"]["negatives"]["judged"] == 2286


def test_pre_commit_hook_blocks_an_invalid_dataset(tmp_path):
    import subprocess
    import sys

    import pytest
    from conftest import ROOT

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    pytest.importorskip("pre_commit")
    repo = tmp_path / "repo"
    (repo / "Datasets").mkdir(parents=True)
    shutil.copy(ROOT / ".pre-commit-config.yaml", repo)
    (repo / "Tools").symlink_to(ROOT / "Tools")
    write(repo / "Datasets" / "good.jsonl", [record(call())])
    write(repo / "Datasets" / "bad.jsonl", [record(call(colour="x", path="y"))])
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "PRE_COMMIT_HOME": str(tmp_path / "pc")}
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, env=env)
    git("init", "-q")
    git("add", ".")

    def hook(name):
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--files", f"Datasets/{name}"], cwd=repo,
                              capture_output=True, text=True, env=env)

    assert hook("good.jsonl").returncode == 0
    blocked = hook("bad.jsonl")
    assert blocked.returncode == 1 and "E_UNEXPECTED_ARG" in blocked.stdout
