"""The executor and server CLIs as subprocesses: one clear error line and exit 2 for bad input,
exit 1 when a call fails, labelled datasets written whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from Tools.vault.sandbox import DEFAULT_TEMPLATE

from vault_helpers import call

EXECUTOR = [sys.executable, "Tools/mcp_executor.py"]


def run(*args):
    return subprocess.run([*EXECUTOR, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def vault(tmp_path):
    return shutil.copytree(DEFAULT_TEMPLATE, tmp_path / "vault")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vault", "{vault}", "--call", "{not json"], "--call is not valid JSON"),
        (["--vault", "{vault}", "--call", "[1, 2]"], "--call must be a JSON object"),
        (["--vault", "{vault}/missing", "--call", '{"name": "get_tools"}'], "vault folder not found"),
        (["--call", '{"name": "get_tools"}'], "--call needs --vault"),
        (["--from", "{vault}/none.jsonl"], "no such file"),
        (["--from", "{vault}/Welcome.md", "--label"], "--label needs --out"),
        ([], "one of the arguments --call --from is required"),
    ],
)
def test_usage_errors_are_one_line(vault, args, message):
    result = run(*[a.replace("{vault}", str(vault)) for a in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_call_success_and_failure_exit_codes(vault):
    ok = run("--vault", str(vault), "--call", json.dumps(call("vaultManager_createFolder", path="CLI/made")))
    assert ok.returncode == 0 and json.loads(ok.stdout)["success"] and (vault / "CLI" / "made").is_dir()
    bad = run("--vault", str(vault), "--call", json.dumps(call("contentManager_readContent", filePath="nope.md")))
    assert bad.returncode == 1 and "File not found: nope.md" in json.loads(bad.stdout)["error"]


def test_from_dataset_labels_by_execution(vault, tmp_path):
    def record(*calls):
        return {
            "conversations": [
                {"role": "user", "content": "do it"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                        }
                        for i, c in enumerate(calls)
                    ],
                },
            ],
            "label": True,
        }

    good = record(
        call("contentManager_createContent", filePath="A.md", content="x"),
        call("contentManager_appendContent", filePath="A.md", content="y"),
    )
    # each record runs in a fresh copy, so the same create succeeds again in the next record
    bad = record(
        call("contentManager_createContent", filePath="A.md", content="x"),
        call("contentManager_readContent", filePath="Notes/alpha"),
    )
    source = tmp_path / "data.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in [good, bad, {"conversations": []}]) + "\n{broken\n")
    out, report = tmp_path / "labelled.jsonl", tmp_path / "report.jsonl"
    result = run("--from", str(source), "--vault", str(vault), "--label", "--out", str(out), "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert "line 1: ok" in result.stdout and "line 2: FAILED" in result.stdout and "line 4: skipped" in result.stdout
    labels = [json.loads(line).get("label") for line in out.read_text().splitlines()]
    assert labels == [True, False, None]
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert rows[0]["changes"]["created"] == ["A.md"] and rows[1]["calls"][1]["code"] == "E_EXEC_FAILED"
    assert not (vault / "A.md").exists()  # --from never changes the template vault


def test_server_usage_errors(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "Tools.vault_mcp_server", "--vault", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "vault folder not found" in missing.stderr and missing.stderr.count("\n") == 1
    no_vault = subprocess.run(
        [sys.executable, "-m", "Tools.vault_mcp_server"], capture_output=True, text=True, timeout=60
    )
    assert no_vault.returncode == 2 and "--vault" in no_vault.stderr
