"""python -m claudesidian: one command table, the listing, each command's own help, a one-line
error for an unknown command, and commands run end to end through it and through their seed paths."""

import ast
import subprocess
import sys

import pytest

from claudesidian.commands import COMMANDS
from conftest import ROOT, run_tool


def front_door(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "claudesidian", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [(), ("--help",), ("-h",)])
def test_the_listing_names_every_command_with_its_description(args):
    result = front_door(*args)
    assert result.returncode == 0 and result.stderr == ""
    for command in COMMANDS:
        assert f"  {command.name} " in result.stdout and command.summary in result.stdout


def test_listing_imports_no_command():
    code = (
        "import sys; from claudesidian.__main__ import main; main([]); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'SelfPlay', 'Trainers', 'Evaluator', 'torch', 'typer'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_a_command_help_is_the_command_own_help():
    result = front_door("validate", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: validate_syngen.py")
    result = front_door("interleave", "--help")
    assert result.returncode == 0 and "--balance" in result.stdout


def test_an_unknown_command_is_one_error_line_and_exit_2():
    result = front_door("valdate", "x.jsonl")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: unknown command 'valdate'")
    assert "did you mean validate" in result.stderr and "Traceback" not in result.stderr


def test_validate_runs_end_to_end_through_the_front_door():
    result = front_door("validate", "Datasets/sample/sample_sft.jsonl")
    assert result.returncode == 0, result.stderr
    assert "Validated 8 record(s) in 1 file(s): 0 failed" in result.stdout
    broken = front_door("validate", "no/such/file.jsonl")
    assert broken.returncode == 2 and broken.stderr.startswith("error: ") and "Traceback" not in broken.stderr


def test_tiny_model_builds_a_model_that_loads_and_refuses_bad_input_in_one_line(tmp_path):
    out = tmp_path / "tiny"
    made = front_door("tiny-model", out, "qwen2.5", "--hidden", 32, "--heads", 2)
    assert made.returncode == 0, made.stderr
    from transformers import AutoConfig, AutoTokenizer

    config, tokenizer = AutoConfig.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    for args, says in (
        ((out,), "is not an empty folder"),  # never writes over a model
        ((tmp_path / "b", "gpt-9"), "invalid choice: 'gpt-9'"),
        ((tmp_path / "c", "--hidden", 30, "--heads", 4), "heads dividing hidden"),
        ((out / "config.json" / "x",), "cannot write the model to"),  # a path through a file
    ):
        bad = front_door("tiny-model", *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and says in bad.stderr, bad.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_a_seed_shim_run_by_path_reaches_its_command(tmp_path):
    """Tools/sample_data.py is five lines that hand over to `sample-data`; run by path, no package installed."""
    result = run_tool("Tools/sample_data.py", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("sample_sft.jsonl", "sample_kto.jsonl"):
        assert (tmp_path / name).read_text() == (ROOT / "Datasets" / "sample" / name).read_text()


def _function(module: str, name: str):
    parts = module.split(".")
    path = ROOT.joinpath(*parts).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_each_row_names_a_function_of_argv_and_seed_paths_that_exist(command):
    module, name = command.target.split(":")
    function = _function(module, name)
    assert function is not None, f"{command.target}: no such function"
    assert function.args.args and function.args.args[0].arg == "argv", f"{command.target} must take argv first"
    for seed in command.seeds:
        if not seed.startswith(("python -m", "make ")) and "/" in seed:
            assert (ROOT / seed).is_file(), f"{command.name}: seed path {seed} is missing"


def test_names_are_unique_and_the_console_script_points_at_the_front_door():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    assert 'claudesidian = "claudesidian.__main__:main"' in (ROOT / "pyproject.toml").read_text()
