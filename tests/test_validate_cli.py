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
        "line": 2,
        "message_index": 2,
        "tool": "vaultManager_createFolder",
        "code": "E_UNEXPECTED_ARG",
        "severity": "error",
    }


def test_directories_globs_and_label_filter(tmp_path, run):
    write(tmp_path / "a.jsonl", [record(call())])
    write(tmp_path / "sub_b.jsonl", [record(call(colour="x", path="y"), label=False)])
    result = run(VALIDATOR, tmp_path, "--format", "json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and len(report["files"]) == 2
    assert report["totals"]["negatives"] == {
        "judged": 1,
        "passing_every_check": 0,
        "structural_failures": 0,
        "codes": {"E_UNEXPECTED_ARG": 1},
    }
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
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PRE_COMMIT_HOME": str(tmp_path / "pc"),
    }

    def git(*a):
        return subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, env=env)

    git("init", "-q")
    git("add", ".")

    def hook(name):
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--files", f"Datasets/{name}"],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
        )

    assert hook("good.jsonl").returncode == 0
    blocked = hook("bad.jsonl")
    assert blocked.returncode == 1 and "E_UNEXPECTED_ARG" in blocked.stdout

    # the same hooks run ruff (the dev extra's, on PATH beside this Python) with the project's settings
    if shutil.which("ruff", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("ruff is not installed (the dev extra)")
    shutil.copy(ROOT / "pyproject.toml", repo)
    (repo / "Datasets" / "tidy.py").write_text("import os\n\nprint(os.sep)\n")
    (repo / "Datasets" / "unused.py").write_text("import os\n\nprint(1)\n")
    (repo / "Datasets" / "messy.py").write_text("print( 1 )\n")
    git("add", ".")
    assert hook("tidy.py").returncode == 0
    unused, messy = hook("unused.py"), hook("messy.py")
    assert unused.returncode == 1 and "F401" in unused.stdout
    assert messy.returncode == 1 and "1 file would be reformatted" in messy.stdout


def test_deep_nesting_surrogates_and_nan_are_one_finding_each_and_the_run_goes_on(tmp_path, run):
    good = json.dumps(record(call()))
    lines = [
        good,
        '{"conversations": [], "x": ' + "[" * 1100 + "]" * 1100 + "}",  # deeper than either decoder goes
        good.replace('"role": "user"', '"role": "\\ud800"', 1),
        good.replace('"abc123def"', '"\\udc00"', 1),
        '{"conversations": [], "label": NaN}',
        '{"conversations": [], "x": 1e400}',
        good,
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    other = write(tmp_path / "other.jsonl", [record(call())])
    result = run(VALIDATOR, path, other, "--format", "json")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    hostile, clean = json.loads(result.stdout)["files"]
    assert [(f["line"], f["code"]) for f in hostile["findings"]] == [
        (2, "E_NESTING_TOO_DEEP"),
        (3, "E_ENCODING"),
        (4, "E_ENCODING"),
        (5, "E_INVALID_JSON"),
        (6, "E_INVALID_JSON"),
    ]
    assert (hostile["records"], hostile["passed"], clean["passed"]) == (7, 2, 1)
    text = run(VALIDATOR, path)  # the text report prints too
    assert text.returncode == 1 and "E_NESTING_TOO_DEEP" in text.stdout and "Traceback" not in text.stderr


def test_a_tool_name_with_a_lone_surrogate_is_reported_not_a_crash(tmp_path, run):
    content = '<tool_call>{"name": "\\ud800x", "arguments": {}}</tool_call>'
    path = write(tmp_path / "s.jsonl", [record(content=content)])
    result = run(VALIDATOR, path, "--format", "json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["files"][0]["codes"] == {"E_MALFORMED_CALL": 1}


def test_output_is_written_whole_or_not_at_all(tmp_path, run):
    good = write(tmp_path / "g.jsonl", [record(call())] * 2)
    out = tmp_path / "reports" / "report.json"
    result = run(VALIDATOR, good, "--format", "json", "--output", out)
    assert result.returncode == 0 and result.stdout == ""
    assert json.loads(out.read_text())["totals"]["judged"] == 2
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]  # no temporary file left beside it
    result = run(VALIDATOR, tmp_path / "missing.jsonl", "--format", "json", "--output", out)
    assert result.returncode == 2 and json.loads(out.read_text())["totals"]["judged"] == 2  # the old report stays


def test_output_survives_a_kill_midway(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    big = write(tmp_path / "big.jsonl", [record(call())] * 20000)
    out = tmp_path / "report.json"
    out.write_text('{"previous": true}\n')
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / VALIDATOR), big, "--format", "json", "--output", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # well into reading, before the report is written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    report = json.loads(out.read_text())  # never empty, never cut off
    if proc.returncode == -signal.SIGKILL:
        assert report == {"previous": True}
    else:  # a fast machine finished first
        assert report["totals"]["judged"] == 20000


def test_an_empty_file_is_a_finding(tmp_path, run):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n \n")
    good = write(tmp_path / "g.jsonl", [record(call())])
    result = run(VALIDATOR, empty, good, "--format", "json")
    assert result.returncode == 1
    files = json.loads(result.stdout)["files"]
    assert files[0]["codes"] == {"E_EMPTY_FILE": 1} and files[1]["codes"] == {}
    assert "E_EMPTY_FILE" in run(VALIDATOR, empty).stdout
