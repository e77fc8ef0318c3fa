"""BFCL's categories through the evaluator: the data and the AST checker are bfcl-eval's own.

A protocol double of the OpenAI API answers each case with BFCL's ground truth (or a broken copy of
it), which only a double can do on demand: it checks that a correct answer scores as correct through
BFCL's checker and a wrong one fails, per category. The real llama.cpp server serving the tiny GGUF
checks the whole path end to end (random weights score about 0; the report's shape is asserted)."""

import importlib.util
import json
import subprocess
import sys

import pytest

from Evaluator import cli, compare
from Evaluator.bfcl import load_bfcl_set
from Evaluator.protocol_doubles import OllamaDouble, OpenAIDouble

needs_bfcl = pytest.mark.skipif(
    importlib.util.find_spec("bfcl_eval") is None,
    reason="bfcl-eval is not installed (make test installs it; docs/evaluate.md)",
)

CATEGORIES = ["simple_python", "multiple", "parallel", "irrelevance"]
SPEC = "bfcl:" + ",".join(CATEGORIES)
LIMIT = 3


def _answers():
    """The first user message of each case -> (BFCL's ground truth or None, the first function's name)."""
    return {
        case.messages[-1]["content"]: (case.ground_truth, case.tools[0]["function"]["name"])
        for case in load_bfcl_set(SPEC, LIMIT).cases
    }


def _call(name: str, arguments: dict, i: int) -> dict:
    return {"id": f"call{i}", "type": "function", "function": {"name": name.replace(".", "_"), "arguments": arguments}}


def _wrong(value):
    return value + 1000 if isinstance(value, (int, float)) and not isinstance(value, bool) else f"{value}-wrong"


def ground_truth_answer(wrong: bool = False):
    """A model that answers with BFCL's ground truth (the first allowed value of each argument,
    optional ones left out), or a broken copy: one argument changed, a call to an irrelevant function."""
    answers = _answers()

    def answer(body):
        truth, first_tool = answers[body["messages"][-1]["content"]]
        assert body["tools"] and all(t["type"] == "function" for t in body["tools"])  # the case's own functions
        if truth is None:  # irrelevance: the right answer calls nothing
            if wrong:
                return {"role": "assistant", "content": None, "tool_calls": [_call(first_tool, {}, 0)]}
            return {"role": "assistant", "content": "None of the functions given can answer that."}
        calls = []
        for i, item in enumerate(truth):
            ((name, params),) = item.items()
            args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
            if wrong and i == 0:
                key = next(iter(args))
                args[key] = _wrong(args[key])
            calls.append(_call(name, args, i))
        return {"role": "assistant", "content": None, "tool_calls": calls}

    return answer


def run_cli(tmp_path, capsys, name, *args):
    out = tmp_path / f"{name}.json"
    code = cli.main(
        [
            "--prompt-set",
            SPEC,
            "--limit",
            str(LIMIT),
            "--output",
            str(out),
            "--no-progress",
            "--markdown",
            str(tmp_path / f"{name}.md"),
            *args,
        ]
    )
    printed = capsys.readouterr()
    return code, json.loads(out.read_text()) if out.exists() else None, printed


@needs_bfcl
def test_a_correct_answer_passes_bfcls_checker_and_a_wrong_one_fails(tmp_path, capsys):
    with OpenAIDouble(ground_truth_answer()) as right, OpenAIDouble(ground_truth_answer(wrong=True)) as wrong:
        code, good, printed = run_cli(
            tmp_path,
            capsys,
            "good",
            "--backend",
            "openai",
            "--model",
            "double-model",
            "--base-url",
            right.url,
            "--concurrency",
            "2",
        )
        assert code == 0, printed.err
        code, bad, printed = run_cli(
            tmp_path, capsys, "bad", "--backend", "openai", "--model", "double-model", "--base-url", wrong.url
        )
        assert code == 0, printed.err
    assert "overall (mean of categories): 100.0%" not in printed.out
    assert good["metadata"]["kind"] == "bfcl" and good["metadata"]["prompt_set"]["categories"] == CATEGORIES
    for category in CATEGORIES:
        assert good["summary"]["per_category"][category] == {"attempts": LIMIT, "passed": LIMIT, "rate": 1.0}
        assert bad["summary"]["per_category"][category] == {"attempts": LIMIT, "passed": 0, "rate": 0.0}
    assert good["summary"]["accuracy"] == 1.0 and bad["summary"]["accuracy"] == 0.0
    # the failures carry BFCL's own error types
    codes = bad["summary"]["failure_codes"]
    assert codes["irrelevance_error:decoder_success"]["count"] == LIMIT
    assert any(
        c.startswith(
            ("value_error", "parallel_function_checker", "simple_function_checker", "multiple_function_checker")
        )
        for c in codes
    ), codes
    parallel = [c for c in good["cases"] if c["category"] == "parallel"]
    assert all(len(c["calls"]) >= 2 for c in parallel)  # every call of a parallel answer reached the checker
    assert "| parallel | 3 | 3 | 100.0% |" in (tmp_path / "good.md").read_text()

    # base vs fine-tuned in one command: per category, with the change in points
    code = compare.main([str(tmp_path / "bad.json"), str(tmp_path / "good.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "BFCL overall (mean of categories): 0.0% -> 100.0%" in out
    assert any(line.split()[:4] == ["parallel", "0.0%", "100.0%", "+100.0"] for line in out.splitlines()), out


@needs_bfcl
def test_a_call_in_the_text_counts_like_a_native_one(tmp_path, capsys):
    """A local model without native tool calling writes the call in its text; the toolkit's parser finds it."""
    answers = _answers()

    def hermes(body):
        truth, _ = answers[body["messages"][-1]["content"]]
        if truth is None:
            return {"role": "assistant", "content": "I can't do that with these tools."}
        calls = [
            {"name": n.replace(".", "_"), "arguments": {k: v[0] for k, v in p.items() if v[0] != ""}}
            for item in truth
            for n, p in item.items()
        ]
        return {"role": "assistant", "content": "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)}

    with OpenAIDouble(hermes) as double:
        code, report, printed = run_cli(
            tmp_path, capsys, "hermes", "--backend", "lmstudio", "--model", "double-model", "--base-url", double.url
        )
    assert code == 0, printed.err
    assert report["summary"]["accuracy"] == 1.0


@needs_bfcl
def test_ollama_object_arguments(tmp_path, capsys):
    """Ollama sends arguments as objects, not JSON strings; BFCL's checker gets the same calls."""
    with OllamaDouble(ground_truth_answer()) as double:
        code, report, printed = run_cli(
            tmp_path, capsys, "ollama", "--backend", "ollama", "--model", "double-model", "--base-url", double.url
        )
    assert code == 0, printed.err
    assert report["summary"]["accuracy"] == 1.0


@needs_bfcl
def test_tiny_model_embedded_in_llama_cpp(tiny_gguf, tmp_path, capsys):
    code, report, printed = run_cli(
        tmp_path, capsys, "embedded", "--model", str(tiny_gguf), "--max-tokens", "8", "--limit", "1"
    )
    assert code == 0, printed.err
    assert report["metadata"]["backend"] == "llamacpp" and report["summary"]["attempts"] == 4
    assert all(c["error"] is None and (c["passed"] or c["error_type"]) for c in report["cases"])


@needs_bfcl
def test_tiny_model_through_llama_cpp_server(llama_server, tmp_path, capsys):
    code, report, printed = run_cli(
        tmp_path,
        capsys,
        "tiny",
        "--backend",
        "llamacpp",
        "--model",
        "tiny",
        "--base-url",
        llama_server,
        "--max-tokens",
        "16",
        "--limit",
        "2",
    )
    assert code == 0, printed.err
    s = report["summary"]
    assert report["metadata"]["backend"] == "llamacpp" and report["metadata"]["bfcl_eval_version"]
    assert list(s["per_category"]) == CATEGORIES and s["cases"] == 8 and s["requests_failed"] == 0
    assert all(v["attempts"] == 2 and 0 <= v["rate"] <= 1 for v in s["per_category"].values())
    for case in report["cases"]:
        assert case["raw"]["object"] == "chat.completion" and case["latency_s"] > 0
        assert case["passed"] or case["error_type"]  # a failure carries BFCL's error type
    assert all(f"{c}:" in printed.out for c in CATEGORIES)


@needs_bfcl
@pytest.mark.parametrize(
    "spec, message",
    [
        ("bfcl:simple_python,nope", "bfcl:nope: not a single-turn BFCL category"),
        ("bfcl:multi_turn_base", "not a single-turn BFCL category"),
        ("bfcl:", "name BFCL categories"),
    ],
)
def test_bad_categories_are_one_line_errors(tmp_path, capsys, spec, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(
            [
                "--prompt-set",
                spec,
                "--backend",
                "openai",
                "--model",
                "m",
                "--output",
                str(tmp_path / "r.json"),
                "--dry-run",
            ]
        )
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err


@needs_bfcl
def test_dry_run_counts_cases_and_collections_expand(capsys, tmp_path):
    code = cli.main(
        [
            "--prompt-set",
            "bfcl:non_live",
            "--limit",
            "1",
            "--backend",
            "openai",
            "--model",
            "m",
            "--output",
            str(tmp_path / "r.json"),
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "7 cases" in out and "simple_java" in out and "nothing sent" in out


def test_without_bfcl_eval_the_error_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['bfcl_eval'] = None; from Evaluator import cli; "
        f"cli.main(['--prompt-set', 'bfcl:simple_python', '--backend', 'openai', '--model', 'm', "
        f"'--output', {str(tmp_path / 'r.json')!r}, '--dry-run'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        out.stderr.startswith("error: the bfcl: prompt sets need bfcl-eval") and "--no-deps bfcl-eval==" in out.stderr
    )
