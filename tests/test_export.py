"""GGUF export end to end on CPU: a real SFT run on the tiny model, merged with PEFT, converted with
llama.cpp's converter, quantized through llama-cpp-python's binding, loaded back by llama.cpp
(embedded and server) and scored by the evaluator; the Ollama template checked against the chat
templates of the toolkit, Qwen 2.5 and Mistral; and the bad input a user can give."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from Trainers.shared.export.templates import detect_format
from Trainers.shared.tiny_model import CHAT_TEMPLATE

ROOT = Path(__file__).resolve().parents[1]


def export(*args, env=None, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "Trainers.shared.export", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def sft_export(tiny_sft_run, tiny_gguf, tmp_path_factory):
    """The whole job as a user runs it (tiny_gguf: the converter and llama-cpp-python are present)."""
    out = tmp_path_factory.mktemp("export") / "gguf"
    run = export(
        "gguf",
        tiny_sft_run.run_dir,
        "--quantizations",
        "Q8_0,q4_k_m",
        "--outdir",
        out,
        "--roundtrip",
        "plumbing",
        "--no-progress",
    )
    return run, out


def test_gguf_export_writes_f16_quantizations_modelfile_and_a_passing_round_trip(sft_export, tiny_sft_run):
    run, out = sft_export
    assert run.returncode == 0, run.stderr[-3000:]
    stem = f"sft-{tiny_sft_run.run_dir.name}"
    manifest = json.loads((out / "export.json").read_text())
    files = {f["type"]: f for f in manifest["files"]}
    assert set(files) == {"F16", "Q8_0", "Q4_K_M"} and all((out / f["file"]).is_file() for f in files.values())
    assert files["Q8_0"]["file"] == f"{stem}-Q8_0.gguf"
    # Q8_0 works on 32-blocks; the tiny model's 64-wide rows cannot hold 256-blocks, so k-quants fall back
    assert files["Q8_0"]["fallback_tensors"] == 0 and files["Q4_K_M"]["fallback_tensors"] > 0
    assert files["Q4_K_M"]["bytes"] < files["Q8_0"]["bytes"] < files["F16"]["bytes"]
    assert "Q4_K_M: " in run.stdout and "fallback type" in run.stdout
    assert not list(out.parent.glob(".gguf-*"))  # the work directory is gone
    trip = manifest["roundtrip"]
    assert trip["ok"] and trip["template_present"] and trip["template_renders"] and trip["gguf"] == f"{stem}-Q8_0.gguf"
    assert [b["backend"] for b in trip["backends"]] == ["llamacpp", "llama.cpp server"]
    for backend in trip["backends"]:
        assert backend["answers"] == 3 and not backend["errors"] and backend["control_parsed"]
        assert all(s["failed_stage"] for s in backend["samples"])  # random weights: scored, and honestly failing
    assert "positive control parsed" in run.stdout and "done: 3 GGUF file(s)" in run.stdout


def manifest_problems(out):
    manifest = json.loads((out / "export.json").read_text())
    assert not any("not checked" in w for w in manifest["warnings"]), manifest["warnings"]
    return manifest["modelfile_problems"]


def test_the_gguf_carries_the_training_chat_template_and_the_modelfile_matches_it(sft_export, tiny_sft_run):
    from llama_cpp import Llama

    run, out = sft_export
    llm = Llama(model_path=str(next(out.glob("*-Q8_0.gguf"))), vocab_only=True, verbose=False)
    embedded = llm.metadata["tokenizer.chat_template"]
    llm.close()
    assert embedded == CHAT_TEMPLATE
    modelfile = (out / "Modelfile").read_text()
    assert f"FROM ./sft-{tiny_sft_run.run_dir.name}-Q8_0.gguf\n" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and 'PARAMETER stop "<|im_start|>"' in modelfile
    assert "PARAMETER temperature 0\nPARAMETER repeat_penalty 1.0\n" in modelfile  # greedy, as evaluated
    assert manifest_problems(out) == []  # checked with Go's text/template (tests/test_export_ollama.py)
    note = (out / "LMSTUDIO.md").read_text()
    assert "lms import" in note and "<tool_call>" in note and f"sft-{tiny_sft_run.run_dir.name}-f16.gguf" in note


def test_merge_applies_the_adapter(tiny_sft_run, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from Trainers.shared.export.merge import merge_adapter
    from Trainers.shared.export.source import resolve_source

    source = resolve_source(tiny_sft_run.run_dir)
    assert source.kind == "adapter" and source.base_model == tiny_model_dir and source.lineage["method"] == "sft"
    merged = merge_adapter(source, tmp_path / "merged")
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        reference = PeftModel.from_pretrained(base, str(source.model_dir))(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)(ids).logits
    assert (reference - plain).abs().max() > 1e-2  # the adapter changes the model ...
    assert (got - reference).abs().max() < 2e-2  # ... and the 16-bit merge carries that change
    assert "<tool_call>" in (merged / "tokenizer_config.json").read_text() + "".join(
        p.read_text() for p in merged.glob("chat_template.jinja")
    )


def test_strict_round_trip_fails_loudly_when_no_answer_holds_a_call(tiny_model_dir, tiny_gguf, tmp_path):
    """A full model directory (as an MLX fused_model/ is) needs no merge; the random tiny model writes
    no tool call, which strict mode must report with exit 1 while keeping the files."""
    model = tmp_path / "fused_model"
    shutil.copytree(tiny_model_dir, model)
    run = export("gguf", model, "--quantizations", "none", "--roundtrip", "strict", "--no-server", "--no-progress")
    assert run.returncode == 1, run.stderr[-2000:]
    assert "no tool call parsed in 3 answers" in run.stdout and "the checks above FAILED" in run.stdout
    manifest = json.loads((tmp_path / "gguf" / "export.json").read_text())
    assert manifest["source"]["kind"] == "full" and [f["type"] for f in manifest["files"]] == ["F16"]
    assert (
        tmp_path / "gguf" / f"{tmp_path.name}-f16.gguf"
    ).is_file()  # named after the run folder holding fused_model/


# -- chat formats and the Ollama template --------------------------------------------------------


def test_unsupported_chat_templates_are_refused():
    from Tools.cli_common import UsageError

    with pytest.raises(UsageError, match="no chat template"):
        detect_format(None)
    llama3 = "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    with pytest.raises(UsageError, match="none of the families the toolkit knows"):
        detect_format(llama3)


# -- bad input ---------------------------------------------------------------------------------
def _one_line_error(run, message):
    assert run.returncode == 2, (run.stdout, run.stderr[-2000:])
    assert message in run.stderr and run.stderr.startswith("error: ")
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_missing_run_directory(tmp_path):
    _one_line_error(export("gguf", tmp_path / "nope"), "no such run or model directory")
    (tmp_path / "unfinished").mkdir()
    _one_line_error(export("gguf", tmp_path / "unfinished"), "holds no final_model/ or fused_model/")


def test_adapter_whose_base_model_is_gone(tiny_sft_run, tmp_path):
    adapter = tmp_path / "final_model"
    shutil.copytree(tiny_sft_run.final_dir, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "deleted_base")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    _one_line_error(export("gguf", adapter), f"base model {tmp_path / 'deleted_base'} is missing")


def test_unknown_quantization_is_refused_before_any_work(tiny_sft_run, tmp_path):
    _one_line_error(
        export("gguf", tiny_sft_run.run_dir, "--quantizations", "Q8_0,Q9_X", "--outdir", tmp_path / "out"),
        "unknown quantization Q9_X",
    )
    assert not (tmp_path / "out").exists()


def test_not_enough_disk_space_is_refused_from_the_estimate(tiny_sft_run, tmp_path):
    run = export("gguf", tiny_sft_run.run_dir, "--outdir", tmp_path / "out", env={"TOOLKIT_EXPORT_FREE_BYTES": "1000"})
    _one_line_error(run, "not enough disk space")
    assert "is free" in run.stderr and not (tmp_path / "out").exists()


def test_an_earlier_export_is_not_overwritten_by_accident(tiny_sft_run, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model-Q8_0.gguf").write_bytes(b"earlier export")
    _one_line_error(export("gguf", tiny_sft_run.run_dir, "--outdir", tmp_path / "out"), "pass --overwrite")
    assert (tmp_path / "out" / "model-Q8_0.gguf").read_bytes() == b"earlier export"


def test_an_adapter_trained_on_a_4bit_build_merges_into_its_16bit_build(tiny_sft_run, tmp_path):
    from Trainers.shared.export.source import resolve_source

    adapter = tmp_path / "final_model"
    shutil.copytree(tiny_sft_run.final_dir, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "unsloth/mistral-7b-v0.3-bnb-4bit"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    source = resolve_source(adapter)
    assert source.base_model == "unsloth/mistral-7b-v0.3" and "16-bit build" in source.base_note
    assert resolve_source(adapter, base_model="my/own-base").base_model == "my/own-base"  # --base-model wins
