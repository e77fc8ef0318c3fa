"""The closed loop end to end at toy scale: every stage runs for real (teacher data, validator,
interleaver, a model built from scratch, SFT, KTO, GGUF export, embedded llama.cpp and its server);
the report compares the stages and the benchmarks section is rewritten in place."""

import json

import pytest

from claudesidian.closed_loop import MARK_END, MARK_START, case_metrics, update_benchmarks

# A shortened loop that still learns: 64 records seen ~37 times each teach the call format, so some
# held-out answers parse after SFT (about 100 s of training on 2 CPU cores); the demo's figures come
# from `make demo`, not from this scale.
TOY = [
    "--sft-size",
    "64",
    "--kto-size",
    "24",
    "--eval-size",
    "12",
    "--sft-steps",
    "300",
    "--kto-steps",
    "2",
    "--hidden",
    "64",
    "--layers",
    "2",
    "--vocab",
    "800",
    "--max-tokens",
    "320",
    "--sft-batch",
    "8",
    "--sft-lr",
    "3e-3",
    "--request-warmup",
    "0",
]


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from Trainers.shared.gguf import ConverterNotFound, find_llama_cpp

    try:
        find_llama_cpp()
    except ConverterNotFound as exc:
        pytest.skip(str(exc))
    from conftest import run_tool

    out = tmp_path_factory.mktemp("loop")
    bench = out / "benchmarks.md"
    bench.write_text(
        f"# Benchmarks\n\nintro\n\n{MARK_START}\nold figures\n{MARK_END}\n\n## Later section\n", encoding="utf-8"
    )
    done = run_tool("Tools/closed_loop.py", "--out", out / "work", "--benchmarks-md", bench, *TOY, timeout=900)
    return out, bench, done


def test_every_stage_runs_and_the_report_compares_the_models(loop_run):
    out, bench, done = loop_run
    assert done.returncode == 0, done.stderr[-3000:]
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert progress[0].startswith("[1/12] teacher data") and any(
        line.startswith("[12/12] report:") for line in progress
    )
    report = json.loads((out / "work" / "report.json").read_text())
    assert list(report["models"]) == ["before training", "after SFT", "after KTO", "after KTO, llama.cpp server"]
    for metrics in report["models"].values():
        assert metrics["cases"] >= 1 and 0 <= metrics["parse_rate"] <= 1
        assert 0 <= metrics["episode_rate"] <= 1  # the multi-turn episodes ran on every model, server included
    # the random model cannot call a tool: before training every rate is 0; training makes calls parse
    before, after = report["models"]["before training"], report["models"]["after SFT"]
    assert before["parse_rate"] == before["valid_rate"] == before["valid_expected_tool_rate"] == 0
    # at this scale the tool is not yet picked from the request, so only the call format is asserted
    assert after["parse_rate"] > 0 and after["argument_accuracy"] is not None
    assert [s["name"] for s in report["stages"]][:4] == ["teacher data", "validate", "interleave", "base model"]
    # the held-out set is unseen: no user request of it is in the training files
    from SelfPlay.teacher import shared_user_requests

    data = out / "work" / "data"
    assert not shared_user_requests(data / "teacher_sft.jsonl", data / "heldout.json")
    assert (out / "work" / "gguf" / "kto" / "Modelfile").is_file()
    text = bench.read_text()
    assert "old figures" not in text and "| schema-valid call to the expected tool |" in text
    assert "| multi-turn episodes passed (built-in set) |" in text
    assert text.startswith("# Benchmarks\n\nintro\n") and text.rstrip().endswith("## Later section")
    assert str(out) not in text and "<out>/gguf/kto" in text  # no path of this machine in a committed file


def test_case_metrics_count_only_cases_that_expect_a_call():
    def case(expected, called=(), **stages):
        return {
            "expected_tools": expected,
            "calls": [{"name": name, "arguments": {}} for name in called],
            "stages": {"call": None, "valid": None, "tools": None, "arguments": None, **stages},
        }

    report = {
        "summary": {"pass_at_1": 0.25},
        "cases": [
            case(["a"], ["a"], call=True, valid=True, tools=True, arguments=True),
            case(["a"], ["a"], call=True, valid=False, tools=True, arguments=False),
            case(["b"], call=False, arguments=True),  # no call: nothing to check, which is not argument accuracy
            # the wrong tool: the evaluator's arguments stage passes (no call to "b" to judge), not right here
            case(["b"], ["a"], call=True, valid=False, tools=False, arguments=True),
            case([], call=None),  # a behaviour case expecting text is not counted
        ],
    }
    m = case_metrics(report)
    assert m["per_tool"] == {"a": [2, 2, 1], "b": [2, 0, 0]} and m["valid_except_ids_rate"] == 0.25
    assert m["cases"] == 4 and m["parse_rate"] == 0.75 and m["valid_rate"] == 0.25
    assert m["expected_tool_rate"] == 0.5 and m["valid_expected_tool_rate"] == 0.25
    assert m["argument_accuracy"] == 0.25 and m["pass_rate"] == 0.25


def test_benchmarks_section_is_appended_when_absent(tmp_path):
    path = tmp_path / "b.md"
    path.write_text("# Benchmarks\n", encoding="utf-8")
    update_benchmarks(path, "table\n")
    update_benchmarks(path, "new table\n")
    text = path.read_text()
    assert text.count(MARK_START) == 1 and "new table" in text and "\ntable" not in text


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sft-steps", "0"], "--sft-steps must be at least 1"),
        (["--kto-batch", "1"], "KTO needs --kto-batch and --kto-size of at least 2"),
        (["--sft-size", "ten"], "invalid int value"),
        (["--request-warmup", "-1"], "--request-warmup must be 0 or more"),
    ],
)
def test_bad_flags_are_one_line(flags, message, run, tmp_path):
    done = run("Tools/closed_loop.py", "--out", tmp_path, *flags)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_valid_except_ids_sets_only_the_ids_aside():
    from claudesidian.closed_loop import valid_except_ids
    from Tools.schema.context import make_context
    from Tools.schema.registry import load_registry

    registry = load_registry()
    context = make_context(
        "session_x",
        "ws_1767225600000_abcdefghi",
        sessionDescription="Making a folder",
        sessionMemory="The user asked for a folder.",
        toolContext="A folder for notes",
        primaryGoal="Making a folder",
        subgoal="Create Projects/Notes",
    )

    def case(arguments):
        return {
            "stages": {"call": True, "valid": False},
            "calls": [{"name": "vaultManager_createFolder", "arguments": arguments}],
        }

    assert valid_except_ids(
        case({"context": context, "path": "Projects/Notes"}), registry
    )  # a malformed sessionId only
    assert not valid_except_ids(case({"context": context}), registry)  # the required path is missing
    assert not valid_except_ids({"stages": {"call": False, "valid": None}, "calls": []}, registry)


def test_sft_batches_are_random_not_length_grouped(tiny_model_dir, tmp_path):
    """An answer's length follows its tool, so length-grouped batches hold one tool each and the
    model learnt the batch's tool instead of reading the request (expected tool 5% against 43%,
    docs/benchmarks.md): SFT draws its batches at random."""
    from datasets import Dataset
    from torch.utils.data import RandomSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from Trainers.shared.methods import get_method

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = Dataset.from_list([{"input_ids": [7, 8, 9] * n, "labels": [7, 8, 9] * n} for n in range(1, 9)])
    args = {"output_dir": str(tmp_path), "per_device_train_batch_size": 2, "report_to": [], "bf16": False}
    trainer = get_method("sft").trainer(None, model, tokenizer, rows, args, [])
    assert type(trainer._get_train_sampler()) is RandomSampler


def test_the_warm_up_reads_the_first_records_without_their_system_turn(tmp_path):
    from claudesidian.closed_loop import LoopSettings, requests_alone
    from Tools.schema.records import iter_jsonl, write_jsonl_atomic

    def record(i):
        turns = [
            {"role": "system", "content": f"ids {i}"},
            {"role": "user", "content": f"request {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
        return {"conversations": turns, "label": True, "metadata": {"index": i}}

    sft = tmp_path / "teacher_sft.jsonl"
    write_jsonl_atomic(sft, [record(i) for i in range(10)])
    out, detail = requests_alone(LoopSettings(request_warmup=2, sft_batch=3), sft)
    records = [line.record for line in iter_jsonl(out)]
    assert detail == "6 SFT records without their system turn" and len(records) == 6
    assert [[m["role"] for m in r["conversations"]] for r in records] == [["user", "assistant"]] * 6
    assert [r["metadata"]["index"] for r in records] == list(range(6))  # the rest of each record is kept
    assert len(list(iter_jsonl(sft))) == 10  # the SFT file itself is untouched
