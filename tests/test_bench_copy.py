"""benchmarks/bench_copy.py: the teacher-forced copy probe finds the tokens of each call value that
the request spells, and scores a value right only when every one of its tokens is predicted."""

import importlib.util
import sys

from conftest import ROOT, tool_record, write_jsonl


def probe_module():
    spec = importlib.util.spec_from_file_location("bench_copy", ROOT / "benchmarks" / "bench_copy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_finds_the_tokens_of_a_value_the_request_spells_and_nothing_else(tiny_model_dir):
    from transformers import AutoTokenizer

    from Trainers.shared.data import chat_messages

    probe = probe_module()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    spelt = chat_messages(tool_record("Projects/Kavomi", "make the folder projects/kavomi please"))
    ids, values = probe.copied_values(tokenizer, spelt)
    assert [(v.tool, v.argument) for v in values] == [("vaultManager_createFolder", "path")]
    assert tokenizer.decode([ids[t] for t in values[0].tokens]) == "Projects/Kavomi"

    unspelt = chat_messages(tool_record("Projects/Kavomi", "a folder for the new codename please"))
    assert probe.copied_values(tokenizer, unspelt)[1] == []


def test_a_value_counts_as_copied_only_when_every_token_is_predicted():
    probe = probe_module()
    ids = [1, 10, 11, 12, 13]
    value = probe.CopiedValue("t", "a", [2, 3, 4])
    perfect = ids[1:] + [0]  # predicted[i] guesses ids[i + 1]
    assert probe.score(perfect, ids, value) == (True, True)
    first_wrong = perfect[:1] + [99] + perfect[2:]
    assert probe.score(first_wrong, ids, value) == (False, False)
    last_wrong = perfect[:3] + [99] + perfect[4:]
    assert probe.score(last_wrong, ids, value) == (True, False)


def test_the_command_prints_a_row_per_argument_and_refuses_bad_input(tiny_model_dir, tmp_path, run):
    data = write_jsonl(
        tmp_path / "records.jsonl",
        [tool_record(f"Projects/{name}", f"create Projects/{name}") for name in ("Alpha", "Beta", "Gamma")],
    )
    done = run("benchmarks/bench_copy.py", tiny_model_dir, data)
    assert done.returncode == 0, done.stderr
    assert "| vaultManager_createFolder | path | 3 |" in done.stdout
    assert "| all | | 3 |" in done.stdout

    nothing = write_jsonl(
        tmp_path / "nothing.jsonl",
        [tool_record("Projects/Alpha", "a folder please"), {"conversations": "not a list"}, {"label": True}],
    )
    refused = run("benchmarks/bench_copy.py", tiny_model_dir, nothing)
    assert refused.returncode == 2 and "has a call value that its request spells" in refused.stderr
    assert "Traceback" not in refused.stderr

    not_a_model = run("benchmarks/bench_copy.py", tmp_path, data)
    assert not_a_model.returncode == 2 and "not a model directory" in not_a_model.stderr
