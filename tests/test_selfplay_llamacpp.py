"""Self-play end to end against a real model: the tiny GGUF behind llama.cpp's OpenAI-compatible
server (the `llama_server` fixture). Random weights: almost every label is false, which is the
point: failures are judged, counted and written, never fatal."""

import json

from conftest import run_tool
from Tools.schema.interleave import check_kto_ready


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def test_prompt_set_answers_from_llama_cpp_are_labelled(llama_server, tmp_path):
    prompts = tmp_path / "prompts.json"
    assert run_tool("SelfPlay/teacher.py", "prompts", "--output", prompts, "--size", "3", "--seed", "8").returncode == 0
    out = tmp_path / "kto.jsonl"
    result = run_tool(
        "Tools/selfplay_generator.py",
        "--no-progress",
        "--backend",
        "openai",
        "--base-url",
        llama_server,
        "--model",
        "tiny",
        "--prompt-set",
        prompts,
        "--num-examples",
        "6",
        "--num-variations",
        "2",
        "--max-tokens",
        "24",
        "--timeout",
        "60",
        "--concurrency",
        "2",
        "--reference-positives",
        "--output",
        out,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    answers = [r for r in lines(tmp_path / "kto_invalid.jsonl") if r["metadata"]["provenance"]["source"] == "model"]
    assert answers and all(r["metadata"]["codes"] for r in answers)
    for record in answers:
        provenance = record["metadata"]["provenance"]
        assert provenance["backend"] == "openai" and provenance["model"] == "tiny"
        assert provenance["finish_reason"] in ("stop", "length") and record["conversations"][-1]["role"] == "assistant"
    truncated = [r for r in answers if r["metadata"]["provenance"]["finish_reason"] == "length"]
    assert all("E_TRUNCATED" in r["metadata"]["codes"] for r in truncated)
    assert check_kto_ready(out).ready  # the teacher's reference answers are the positives


def test_three_prompt_run_counts_unusable_answers_and_says_so(llama_server, tmp_path):
    out = tmp_path / "sp.jsonl"
    result = run_tool(
        "SelfPlay/run_generation.py",
        "--no-progress",
        "--backend",
        "llamacpp",
        "--base-url",
        llama_server,
        "--model",
        "tiny",
        "--num-examples",
        "2",
        "--timeout",
        "60",
        "--retries",
        "0",
        "--output",
        out,
        timeout=300,
    )
    summary = json.loads((tmp_path / "sp_summary.json").read_text())
    # a random model never writes the workspace JSON prompt 1 asks for: each example fails, is logged, the run ends
    assert result.returncode == 1 and "every example failed" in result.stderr and "Traceback" not in result.stderr
    assert summary["failures"] == {"environment unusable": 2} and summary["backend"] == "llamacpp"
    assert result.stderr.count("failed: environment unusable") == 2
