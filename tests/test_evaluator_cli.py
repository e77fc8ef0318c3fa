"""The commands, end to end against an OpenAI-compatible protocol double."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from Evaluator import cli, compare
from factories import hermes_answer
from Evaluator.protocol_doubles import OpenAIDouble, free_port

ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("backend", ["lmstudio", "vllm", "openai"])
def test_run_writes_json_and_markdown(tmp_path, capsys, backend):
    with OpenAIDouble(hermes_answer) as double:
        code, out, err = run_cli(
            [
                "--backend",
                backend,
                "--model",
                "double-model",
                "--base-url",
                double.url,
                "--prompt-set",
                "tool_prompts",
                "--tags",
                "vaultManager",
                "--output",
                str(tmp_path / "r.json"),
                "--markdown",
                str(tmp_path / "r.md"),
                "--concurrency",
                "4",
                "--repeats",
                "2",
            ],
            capsys,
        )
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    meta, summary, cases = report["metadata"], report["summary"], report["cases"]
    assert (
        meta["backend"] == backend and meta["prompt_set"]["name"] == "tool_prompts" and len(meta["schema_hash"]) == 64
    )
    assert meta["settings"]["repeats"] == 2 and meta["toolkit_version"]
    assert summary["cases"] == 9 and summary["attempts"] == 18 and len(cases) == 18
    # only the listDirectory case is answered right, in both attempts
    assert summary["per_tool"]["vaultManager_listDirectory"]["rate"] == 1.0
    assert summary["pass_at_1"] == pytest.approx(2 / 18, abs=1e-3) and summary["pass_hat_2"] == pytest.approx(
        1 / 9, abs=1e-3
    )
    assert summary["failure_codes"]["E_WRONG_TOOL"]["count"] == 16 and summary["formats"] == {"hermes": 18}
    assert cases[0]["raw"]["choices"][0]["message"]["content"].startswith("<tool_call>")
    markdown = (tmp_path / "r.md").read_text()
    assert "## Per tool" in markdown and "`E_WRONG_TOOL`" in markdown and "## Slowest cases" in markdown
    assert "pass@1 11.1%" in out
    assert "tools" not in double.requests[0]


def test_tools_in_request_flag(tmp_path, capsys):
    with OpenAIDouble(hermes_answer) as double:
        code, _, err = run_cli(
            [
                "--backend",
                "vllm",
                "--model",
                "double-model",
                "--base-url",
                double.url,
                "--prompt-set",
                "baseline",
                "--limit",
                "1",
                "--output",
                str(tmp_path / "r.json"),
                "--tools-in-request",
            ],
            capsys,
        )
    assert code == 0, err
    assert double.requests[0]["tools"][0]["function"]["name"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--backend", "nope"], "invalid choice"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--prompt-set", "missing.json", "--backend", "vllm"], "no such prompt set"),
        (["--backend", "lmstudio", "--base-url", "http://127.0.0.1:{port}"], "LM Studio is not answering"),
        (["--backend", "llamacpp", "--model", "nothing.gguf"], "no such GGUF file"),
        (
            ["--model", "not-a-path", "--base-url", "http://127.0.0.1:{port}"],
            "Ollama is not answering",
        ),  # the seed's default
        (
            ["--execute-mcp", "--vault-path", "no/such/vault", "--dry-run", "--backend", "vllm"],
            "--vault-path no/such/vault: no such folder",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    base = {"--model": "m", "--prompt-set": "tool_prompts", "--output": str(tmp_path / "r.json")}
    argv = [a.format(port=free_port()) for a in argv]
    for flag, value in base.items():
        if flag not in argv:
            argv += [flag, value]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_dry_run_sends_nothing(tmp_path, capsys):
    reference = ROOT / ".." / "shared" / "reference" / "prompts" / "behavior_prompts.json"
    prompt_set = str(reference) if reference.is_file() else "behavior_prompts"
    with OpenAIDouble(hermes_answer) as double:
        code, out, _ = run_cli(
            [
                "--backend",
                "lmstudio",
                "--base-url",
                double.url,
                "--model",
                "m",
                "--prompt-set",
                prompt_set,
                "--output",
                str(tmp_path / "r.json"),
                "--dry-run",
            ],
            capsys,
        )
    assert code == 0 and "dry run: nothing sent" in out and not double.requests
    assert not (tmp_path / "r.json").exists()
    if reference.is_file():  # the reference set names a tool the plugin no longer has
        assert "IH_verify_session_memory expects tools the schema file does not define" in out


def test_every_request_failing_exits_1_with_a_report(tmp_path, capsys):
    with OpenAIDouble(hermes_answer) as double:
        double.fail_next(*["500"] * 10)
        code, out, _ = run_cli(
            [
                "--backend",
                "vllm",
                "--base-url",
                double.url,
                "--model",
                "m",
                "--prompt-set",
                "baseline",
                "--limit",
                "2",
                "--retries",
                "0",
                "--output",
                str(tmp_path / "r.json"),
            ],
            capsys,
        )
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 1 and "every request failed" in out
    assert report["summary"]["requests_failed"] == 2 and report["cases"][0]["error"].startswith("HTTP 500")


def test_ctrl_c_writes_the_partial_report(tmp_path):
    with OpenAIDouble(hermes_answer, delay=0.2) as double:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "Evaluator.cli",
                "--backend",
                "vllm",
                "--base-url",
                double.url,
                "--model",
                "m",
                "--prompt-set",
                "tool_prompts",
                "--output",
                str(tmp_path / "r.json"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 30
        while len(double.requests) < 4 and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["metadata"]["interrupted"] is True and 3 <= len(report["cases"]) < 45
    # every case is accounted for: finished (in cases) or not run
    assert len(report["cases"]) + len(report["not_run"]) == report["metadata"]["prompt_set"]["cases"]
    assert report["summary"]["not_run"] == len(report["not_run"]) > 0
    assert {r["id"] for r in report["cases"]}.isdisjoint(r["id"] for r in report["not_run"])
    assert "partial report" in out and "Traceback" not in err


def test_ctrl_c_does_not_wait_for_requests_in_flight(tmp_path):
    """A server that takes 30 s per answer, --timeout 60: Ctrl-C cuts the requests in flight, the
    report lists every case as not run, and the command ends within seconds."""
    with OpenAIDouble(hermes_answer, delay=30) as double:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "Evaluator.cli",
                "--backend",
                "vllm",
                "--base-url",
                double.url,
                "--model",
                "m",
                "--prompt-set",
                "baseline",
                "--concurrency",
                "4",
                "--timeout",
                "60",
                "--output",
                str(tmp_path / "r.json"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 30
        while len(double.requests) < 4 and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    assert process.returncode == 130 and "Traceback" not in err, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cases"] == [] and len(report["not_run"]) == report["metadata"]["prompt_set"]["cases"]
    assert elapsed < 5


def test_compare(tmp_path, capsys):
    paths = []
    for name, answer in (("a", hermes_answer), ("b", lambda body: {"role": "assistant", "content": "Sorry, no."})):
        with OpenAIDouble(answer) as double:
            code, _, err = run_cli(
                [
                    "--backend",
                    "vllm",
                    "--base-url",
                    double.url,
                    "--model",
                    name,
                    "--prompt-set",
                    "tool_prompts",
                    "--tags",
                    "vaultManager",
                    "--output",
                    str(tmp_path / f"{name}.json"),
                ],
                capsys,
            )
            assert code == 0, err
        paths.append(str(tmp_path / f"{name}.json"))
    assert compare.main(paths + ["--json", str(tmp_path / "diff.json")]) == 0
    out = capsys.readouterr().out
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert diff["regressed"] == ["vaultManager_listDirectory"] and diff["fixed"] == []
    assert diff["failure_codes"]["E_NO_TOOL_CALL"] == {"a": 0, "b": 9}
    assert "E_NO_TOOL_CALL" in out and "vaultManager_listDirectory" in out and "-100.0" in out
    with pytest.raises(SystemExit) as info:
        compare.main([paths[0], str(tmp_path / "missing.json")])
    assert info.value.code == 2


def test_lmstudio_cli(tmp_path, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with OpenAIDouble(hermes_answer, models=["qwen/qwen3-8b"]) as double:
        listed = subprocess.run(
            [sys.executable, "-m", "Evaluator.lmstudio_cli", "list-models", "--base-url", double.url],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "Evaluator.lmstudio_cli",
                "run",
                "--model",
                "qwen/qwen3-8b",
                "--base-url",
                double.url,
                "--prompt-set",
                "baseline",
                "--limit",
                "2",
                "--output-dir",
                str(tmp_path / "out"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert listed.returncode == 0 and listed.stdout.strip() == "qwen/qwen3-8b"
    assert ran.returncode == 0, ran.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert (
        len(files) == 2
        and files[0].startswith("qwen3-8b_baseline_")
        and files[0].endswith(".json")
        and files[1].endswith(".md")
    )
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "Evaluator.lmstudio_cli",
            "list-models",
            "--base-url",
            f"http://127.0.0.1:{free_port()}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 2 and "not answering" in down.stderr and "Traceback" not in down.stderr


def test_interactive_picker(tmp_path, monkeypatch, capsys):
    from Evaluator import __main__ as picker
    from Evaluator import lmstudio_cli

    with OpenAIDouble(hermes_answer, models=["model-a", "model-b"]) as double:
        monkeypatch.setenv("LMSTUDIO_HOST", double.url)
        answers = iter(["1", "2", "3"])  # lmstudio, model-b, the third built-in set
        monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
        monkeypatch.setattr(lmstudio_cli, "result_paths", lambda model, ps: (tmp_path / "p.json", tmp_path / "p.md"))
        code = picker.main()
    report = json.loads((tmp_path / "p.json").read_text())
    assert code == 0 and report["metadata"]["model"] == "model-b" and double.requests[0]["model"] == "model-b"
    assert report["metadata"]["prompt_set"]["name"] == "tool_combos"


def test_execute_mcp_runs_calls_in_a_fresh_vault_sandbox(tmp_path, capsys):
    import shutil

    with_thesis = tmp_path / "with_thesis"
    shutil.copytree(ROOT / "Datasets" / "vault_template", with_thesis)
    (with_thesis / "Thesis").mkdir()
    (with_thesis / "Thesis" / "Outline.md").write_text("# Outline\n")
    outcomes = {}
    for name, vault in (("present", with_thesis), ("missing", ROOT / "Datasets" / "vault_template")):
        with OpenAIDouble(hermes_answer) as double:
            code, _, err = run_cli(
                [
                    "--backend",
                    "vllm",
                    "--model",
                    "m",
                    "--base-url",
                    double.url,
                    "--prompt-set",
                    "tool_prompts",
                    "--tags",
                    "vaultManager",
                    "--output",
                    str(tmp_path / "r.json"),
                    "--execute-mcp",
                    "--vault-path",
                    str(vault),
                ],
                capsys,
            )
        assert code in (0, 1), err
        summary = json.loads((tmp_path / "r.json").read_text())["summary"]
        outcomes[name] = (
            summary["per_tool"]["vaultManager_listDirectory"]["rate"],
            summary["failure_codes"].get("E_EXEC_FAILED"),
        )
    assert outcomes["present"][0] == 1.0
    rate, failed = outcomes["missing"]
    assert rate == 0.0 and failed["count"] >= 1
    assert not (ROOT / "Datasets" / "vault_template" / "Thesis").exists()  # sandboxes never touch the template


def test_labels_become_file_names_safe_on_every_os(tmp_path):
    """One helper (Tools.cli_common.file_stem) turns model / set / repo labels into file names."""
    from Evaluator.lmstudio_cli import result_paths
    from Tools.cli_common import file_stem

    assert [file_stem(x) for x in ("qwen/qwen3-8b", "user/My Model", "C:\\m\\w.gguf", "llama3:8b", "a/b/", "..")] == [
        "qwen3-8b",
        "My-Model",
        "w.gguf",
        "llama3-8b",
        "b",
        "model",
    ]
    json_path, md_path = result_paths("lmstudio-community/Qwen 3:8B", "sets/my set.json", tmp_path)
    assert json_path.parent == tmp_path and json_path.name.startswith("Qwen-3-8B_my-set_") and md_path.suffix == ".md"
