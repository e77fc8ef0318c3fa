"""Tools/selfplay_generator.py: each prompt answered several times around a temperature, each answer
labelled by the prompt's expectations, the result balanced and strictly interleaved for KTO."""

import json

import pytest

import SelfPlay.prompt_set_cli as cli
from conftest import ROOT, run_tool
from Evaluator.prompt_sets import load_prompt_set
from Evaluator.protocol_doubles import OpenAIDouble
from SelfPlay.prompt_answers import temperatures
from Tools.schema.interleave import check_kto_ready


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def generate(*args):
    return run_tool("Tools/selfplay_generator.py", "--no-progress", *args)


def test_the_default_command_works_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "DEFAULT_OUTPUT_DIR", tmp_path)
    assert cli.main(["--num-examples", "100", "--no-progress"]) == 0
    [output] = [
        p
        for p in tmp_path.glob("syngen_selfplay_*.jsonl")
        if not p.stem.endswith(("_valid", "_invalid")) and not p.name.endswith(".leftover.jsonl")
    ]
    report = check_kto_ready(output)
    assert report.ready and report.true == report.false > 10
    records = lines(output)
    assert all(r["metadata"]["provenance"]["prompt_set"] == "teacher-0" for r in records)
    temps = {r["metadata"]["provenance"]["temperatures"]["assistant"] for r in records}
    assert temps <= {0.5, 0.7, 0.9} and len(temps) > 1
    assert "KTO:" in capsys.readouterr().out


def test_labels_come_from_the_prompts_expectations(tmp_path, registry):
    out = tmp_path / "kto.jsonl"
    result = generate(
        "--num-examples", "90", "--num-variations", "3", "--temperature", "0.8", "--seed", "3", "--output", out
    )
    assert result.returncode == 0, result.stderr
    valid, invalid = lines(tmp_path / "kto_valid.jsonl"), lines(tmp_path / "kto_invalid.jsonl")
    kto, leftover = lines(out), lines(tmp_path / "kto.leftover.jsonl")
    assert len(kto) == 2 * min(len(valid), len(invalid)) and len(kto) + len(leftover) == len(valid) + len(invalid)
    assert [r["label"] for r in kto] == [True, False] * (len(kto) // 2)
    summary = json.loads((tmp_path / "kto_summary.json").read_text())
    assert summary["prompt_set"] == "teacher-3" and summary["requested"] == 90
    # re-judge every record against its prompt: the label and the codes come out the same
    from Evaluator.prompt_sets import parse_cases
    from SelfPlay.labels import judge
    from SelfPlay.teacher import TemplateClient

    cases = {c.id: c for c in parse_cases(TemplateClient(seed=3).prompt_cases(30))}
    for record in valid + invalid:
        meta = record["metadata"]
        verdict = judge(
            cases[meta["provenance"]["prompt_id"]],
            record["conversations"][-1],
            registry,
            echo_of=[cases[meta["provenance"]["prompt_id"]].question],
        )
        assert verdict.passed == record["label"] and verdict.codes == meta.get("codes", [])


def test_a_file_prompt_set_labelled_by_its_expected_tools(tmp_path):
    """A server that always lists a folder: right for the listDirectory prompt, wrong elsewhere."""

    def answer(body):
        system = body["messages"][0]["content"]
        ids = {k: system.split(f'{k}: "')[1].split('"')[0] for k in ("sessionId", "workspaceId")}
        context = {
            **ids,
            "sessionDescription": "d",
            "sessionMemory": "The user asked about a folder.",
            "toolContext": "t",
            "primaryGoal": "g",
            "subgoal": "s",
        }
        call = {"name": "vaultManager_listDirectory", "arguments": {"context": context, "path": "Thesis"}}
        return {"role": "assistant", "content": f"<tool_call>\n{json.dumps(call)}\n</tool_call>"}

    with OpenAIDouble(answer) as double:
        out = tmp_path / "kto.jsonl"
        result = generate(
            "--backend",
            "vllm",
            "--base-url",
            double.url,
            "--model",
            "double-model",
            "--prompt-set",
            "tool_prompts",
            "--num-examples",
            "90",
            "--num-variations",
            "2",
            "--output",
            out,
        )
    assert result.returncode == 0, result.stderr
    valid = lines(tmp_path / "kto_valid.jsonl")
    assert {r["metadata"]["provenance"]["prompt_id"] for r in valid} == {"vaultManager_listDirectory"}
    wrong = lines(tmp_path / "kto_invalid.jsonl")
    assert len(wrong) == 44 and all("E_WRONG_TOOL" in r["metadata"]["codes"] for r in wrong)  # duplicates dropped
    assert len(lines(out)) == 2 and {r["metadata"]["provenance"]["temperatures"]["assistant"] for r in valid} == {0.5}


def test_one_label_only_gives_no_kto_file(tmp_path):
    out = tmp_path / "kto.jsonl"
    result = generate("--prompt-set", "tool_prompts", "--num-examples", "10", "--output", out)
    assert result.returncode == 1 and "no KTO file written: KTO needs both labels: 0 valid" in result.stderr
    assert not out.exists() and len(lines(tmp_path / "kto_invalid.jsonl")) == 4  # 10 answers: teacher asks, 4 prompts


def test_reference_positives_pair_each_failed_prompt_with_its_reference(tmp_path):
    heldout = tmp_path / "prompts.json"
    assert run_tool("SelfPlay/teacher.py", "prompts", "--output", heldout, "--size", "5").returncode == 0
    with OpenAIDouble(lambda body: {"role": "assistant", "content": "No idea."}) as double:
        out = tmp_path / "kto.jsonl"
        result = generate(
            "--backend",
            "openai",
            "--base-url",
            double.url,
            "--model",
            "double-model",
            "--prompt-set",
            heldout,
            "--num-examples",
            "10",
            "--num-variations",
            "2",
            "--reference-positives",
            "--output",
            out,
        )
    assert result.returncode == 0, result.stderr
    positives = lines(tmp_path / "kto_valid.jsonl")
    sources = {r["metadata"]["provenance"]["source"] for r in positives}
    cases = {c.id: c for c in load_prompt_set(heldout).cases}
    assert sources == {"reference"} and len(positives) <= 5
    assert all(
        r["conversations"][-1] == cases[r["metadata"]["provenance"]["prompt_id"]].metadata["reference"]
        for r in positives
    )
    assert check_kto_ready(out).ready


def test_resume_continues_where_the_last_run_stopped(tmp_path):
    out = tmp_path / "kto.jsonl"
    assert generate("--num-examples", "30", "--output", out, "--seed", "2").returncode == 0
    first = len(lines(tmp_path / "kto_valid.jsonl")) + len(lines(tmp_path / "kto_invalid.jsonl"))
    again = generate("--num-examples", "60", "--output", out, "--seed", "2")
    assert again.returncode == 2 and "already exists" in again.stderr
    resumed = generate("--num-examples", "60", "--output", out, "--seed", "2", "--resume")
    assert resumed.returncode == 0 and f"{first} already written before --resume" in resumed.stdout
    summary = json.loads((tmp_path / "kto_summary.json").read_text())
    # answers already kept are not asked again; dropped duplicates are (they are dropped again)
    assert summary["resumed"] == first and summary["requested"] == 60 - first
    records = lines(tmp_path / "kto_valid.jsonl") + lines(tmp_path / "kto_invalid.jsonl")
    indices = [r["metadata"]["provenance"]["index"] for r in records]
    assert len(records) > first and len(indices) == len(set(indices))


def test_execute_mcp_labels_against_a_vault(tmp_path):
    out = tmp_path / "kto.jsonl"
    result = generate(
        "--num-examples",
        "60",
        "--num-variations",
        "1",
        "--temperature",
        "0",
        "--execute-mcp",
        "--vault-path",
        str(ROOT / "Datasets" / "vault_template"),
        "--output",
        out,
    )
    invalid = lines(tmp_path / "kto_invalid.jsonl")
    assert result.returncode == 0, result.stderr
    # at temperature 0 the teacher answers right: only modes that need a model provider fail, and by execution
    assert invalid and {c for r in invalid for c in r["metadata"]["codes"]} == {"E_PROVIDER_REQUIRED"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--num-variations", "0"], "--num-variations and --max-tokens must be at least 1"),
        (["--temperature", "3"], "--temperature must be within 0..2"),
        (["--prompt-set", "no_such_set"], "no such prompt set"),
        (["--retries", "-1"], "--retries must be at least 0"),
        (["--backend", "ollama"], "--model is required with --backend ollama"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = generate(*args, "--output", tmp_path / "o.jsonl")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_temperatures_spread_around_the_centre():
    assert temperatures(0.7, 3, 0.2) == [0.5, 0.7, 0.9]
    assert temperatures(0.7, 1, 0.2) == [0.7]
    assert temperatures(0.1, 3, 0.2) == [0.0, 0.1, 0.3]


def test_structurally_broken_answers_are_failures_not_examples(tmp_path):
    """An answer whose content is not a string would make the whole file fail the validator."""
    with OpenAIDouble(lambda body: {"role": "assistant", "content": ["not", "a", "string"]}) as double:
        result = generate(
            "--backend",
            "openai",
            "--base-url",
            double.url,
            "--model",
            "double-model",
            "--num-examples",
            "3",
            "--output",
            tmp_path / "kto.jsonl",
        )
    summary = json.loads((tmp_path / "kto_summary.json").read_text())
    assert result.returncode == 1 and summary["failures"] == {"answer unusable": 3} and summary["written"] == 0
    assert "structurally broken (E_CONTENT_TYPE" in result.stderr and "Warning" not in result.stderr
