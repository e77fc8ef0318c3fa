"""The closed loop end to end at toy scale: every stage runs for real (teacher data, validator,
interleaver, a model built from scratch, SFT, KTO, GGUF export, embedded llama.cpp and its server);
the report compares the stages and the benchmarks section is rewritten in place."""

import json

import pytest

from claudesidian.closed_loop import MARK_END, MARK_START, case_metrics, update_benchmarks

# A shortened loop that still learns: the demo's model and stages at about half its SFT steps (3-5 min
# on 2 CPU cores) write parseable calls for most held-out requests; 64 records and a 2-layer model
# did so only by luck, and 400 steps only just (5 of 12 after the ids became realistic). The demo's
# figures come from `make demo`, not from this scale.
TOY = [
    "--sft-size",
    "4800",
    "--kto-size",
    "24",
    "--eval-size",
    "20",
    "--sft-steps",
    "600",
    "--kto-steps",
    "2",
    "--request-warmup",
    "400",
]


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    from conftest import require_llama_cpp, run_tool

    require_llama_cpp()

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
    assert progress[0].startswith("[1/13] teacher data") and any(
        line.startswith("[13/13] report:") for line in progress
    )
    report = json.loads((out / "work" / "report.json").read_text())
    assert list(report["models"]) == ["before training", "after SFT", "after KTO", "after KTO, llama.cpp server"]
    for metrics in report["models"].values():
        assert metrics["cases"] >= 1 and 0 <= metrics["parse_rate"] <= 1
        assert 0 <= metrics["episode_rate"] <= 1  # the multi-turn episodes ran on every model, server included
    # the random model cannot call a tool: before training every rate is 0; training makes calls parse
    before, after = report["models"]["before training"], report["models"]["after SFT"]
    assert before["parse_rate"] == before["valid_rate"] == before["valid_expected_tool_rate"] == 0
    # at this scale (80-85% parse, 50-55% expected tool when measured on 5 Dec) the format is learnt and the
    # tool is picked from the request on some: both rise from 0
    assert after["parse_rate"] >= 0.5 and after["expected_tool_rate"] >= 0.15 and after["argument_accuracy"] is not None
    names = [s["name"] for s in report["stages"]]
    assert names[:4] == ["teacher data", "validate", "interleave", "base model"]
    assert names[5:7] == ["SFT warm-up on the requests alone", "SFT"]
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
    ids = {"context": {"sessionId": "session_x", "workspaceId": "ws_x"}}

    def case(expected, called=(), findings=(), **stages):
        return {
            "expected_tools": expected,
            "calls": [{"name": name, "arguments": ids} for name in called],
            "findings": [{"code": code, "severity": "error"} for code in findings],
            "stages": {"call": None, "valid": None, "tools": None, "arguments": None, **stages},
        }

    report = {
        "summary": {"pass_at_1": 0.25},
        "cases": [
            case(["a"], ["a"], call=True, valid=True, tools=True, arguments=True),
            case(["a"], ["a"], ["E_SESSION_ID_MISMATCH"], call=True, valid=False, tools=True, arguments=False),
            case(["b"], call=False, arguments=True),  # no call: nothing to check, which is not argument accuracy
            # the wrong tool: the evaluator's arguments stage passes (no call to "b" to judge), not right here
            case(["b"], ["a"], ["E_WORKSPACE_ID_FORMAT"], call=True, valid=False, tools=False, arguments=True),
            case([], call=None),  # a behaviour case expecting text is not counted
        ],
    }
    m = case_metrics(report)
    assert m["per_tool"] == {"a": [2, 2, 1], "b": [2, 0, 0]} and m["valid_except_ids_rate"] == 0.25
    assert m["cases"] == 4 and m["parse_rate"] == 0.75 and m["valid_rate"] == 0.25
    assert m["expected_tool_rate"] == 0.5 and m["valid_expected_tool_rate"] == 0.25
    assert m["argument_accuracy"] == 0.25 and m["pass_rate"] == 0.25
    # an id counts as copied where a call holds it and no finding faults it; no call copies nothing
    assert m["session_id_rate"] == 0.5 and m["workspace_id_rate"] == 0.5
    # arguments or a context of the wrong type (a model's answer is hostile input) copy nothing, and raise nothing
    hostile = case(["a"], ["a"], call=True)
    hostile["calls"] += [{"name": "a", "arguments": "[1]"}, {"name": "a", "arguments": {"context": ["sessionId"]}}]
    hostile["calls"].pop(0)
    m = case_metrics({"summary": {"pass_at_1": 0}, "cases": [hostile]})
    assert m["session_id_rate"] == m["workspace_id_rate"] == 0


def test_argument_accuracy_splits_values_spelt_in_the_request_from_values_to_infer():
    from Evaluator.prompt_sets import PromptCase
    from claudesidian.closed_loop import spelt_in_request

    assert (
        spelt_in_request("New workspace: Garden planning, root Recipes", {"t": {"name": "garden Planning", "n": 3}})
        is False
    )
    assert spelt_in_request("New workspace: Garden planning, 3 results", {"t": {"name": "garden Planning", "limit": 3}})
    # a path from a note's name, a list or a rule, a boolean, or nothing expected: to infer, not copy
    assert not spelt_in_request("add a line to the Sourdough note", {"t": {"filePath": "Recipes/Sourdough.md"}})
    assert not spelt_in_request("two prompts: a and b", {"t": {"prompts": {"type": "array", "min_length": 2}}})
    assert not spelt_in_request("turn it on: True", {"t": {"enabled": True}}) and not spelt_in_request("x", {})

    def case(case_id, right):
        return {
            "id": case_id,
            "expected_tools": ["t"],
            "calls": [{"name": "t", "arguments": {}}],
            "stages": {"call": True, "valid": True, "tools": True, "arguments": right},
        }

    prompts = [
        PromptCase("a", "search Hugo", expected_tools=["t"], expected_arguments={"t": {"query": "Hugo"}}),
        PromptCase("b", "search Hugo", expected_tools=["t"], expected_arguments={"t": {"query": "Hugo"}}),
        PromptCase("c", "open the Sourdough note", expected_tools=["t"], expected_arguments={"t": {"path": "R/S.md"}}),
    ]
    report = {"summary": {"pass_at_1": 0}, "cases": [case("a", True), case("b", False), case("c", True)]}
    m = case_metrics(report, prompts)
    assert m["argument_accuracy"] == round(2 / 3, 4) and m["argument_cases"] == {"spelt": 2, "all": 3}
    assert m["argument_accuracy_spelt"] == 0.5 and m["argument_accuracy_inferred"] == 1.0
    # an answer without a call never reaches the arguments stage; given the prompt set, it counts as wrong
    report["cases"][1]["stages"] = {"call": False, "valid": None, "tools": None, "arguments": None}
    m = case_metrics(report, prompts)
    assert m["argument_cases"] == {"spelt": 2, "all": 3} and m["argument_accuracy_spelt"] == 0.5
    assert case_metrics(report)["argument_accuracy_spelt"] is None  # no prompt set, no split


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
        (["--heads", "3"], "--heads (3) must divide --hidden (128)"),
        (["--id-loss-weight", "0"], "--id-loss-weight must be a positive number"),
        (["--prose-loss-weight", "nan"], "--prose-loss-weight must be a positive number"),
        (["--copy-attention-weight", "-1"], "--copy-attention-weight must be 0 or more"),
        (["--copy-attention-weight", "nan"], "--copy-attention-weight must be 0 or more"),
        (["--adam-beta2", "1"], "--adam-beta2 must be between 0 and 1 (exclusive)"),
        (["--sft-schedule", "step"], "argument --sft-schedule: invalid choice: 'step'"),
    ],
)
def test_bad_flags_are_one_line(flags, message, run, tmp_path):
    done = run("Tools/closed_loop.py", "--out", tmp_path, *flags)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_adam_beta2_is_095_from_scratch_and_the_trainers_own_for_a_base_model():
    from claudesidian.closed_loop import LoopSettings

    assert LoopSettings().beta2 == 0.95 and LoopSettings(base_model="org/model").beta2 is None
    assert LoopSettings(base_model="org/model", adam_beta2=0.98).beta2 == LoopSettings(adam_beta2=0.98).beta2 == 0.98


def test_sft_holds_its_peak_rate_from_scratch_and_keeps_the_trainers_schedule_for_a_base_model():
    from claudesidian.closed_loop import LoopSettings

    assert LoopSettings().schedule == "wsd" and LoopSettings(base_model="org/model").schedule is None
    assert (
        LoopSettings(sft_schedule="cosine").schedule
        == LoopSettings(base_model="m", sft_schedule="cosine").schedule
        == "cosine"
    )


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


def test_the_warm_up_reads_the_first_records_cut_down_to_the_request_and_its_calls(tmp_path, tiny_model_dir):
    """The warm-up rows keep the request and the calls, with each call's context left out and every
    other argument as the teacher wrote it; such calls fail the validator, so the loop trains on them
    unvalidated, which a user's run never does."""
    from claudesidian.closed_loop import LoopSettings, requests_alone
    from SelfPlay.teacher import write_datasets
    from Tools.schema.records import iter_jsonl
    from Tools.schema.toolcalls import parse_message
    from Trainers.shared.config import load_config
    from Trainers.shared.data import DataError
    from Trainers.shared.train import run_training

    write_datasets(tmp_path, seed=5, sft_size=10, kto_size=2, dpo_size=0)
    sft = tmp_path / "teacher_sft.jsonl"
    out, detail = requests_alone(LoopSettings(request_warmup=2, sft_batch=3), sft)
    originals = [line.record for line in iter_jsonl(sft)]
    records = [line.record for line in iter_jsonl(out)]
    assert detail == "6 SFT records without their system turn or the calls' context" and len(records) == 6
    for original, record in zip(originals, records):
        assert record["metadata"] == original["metadata"]  # the rest of each record is kept
        kept = [m for m in original["conversations"] if m["role"] != "system"]
        assert [m["role"] for m in record["conversations"]] == [m["role"] for m in kept]
        for before, after in zip(kept, record["conversations"]):
            if before["role"] != "assistant":
                assert after == before
                continue
            calls_before, calls_after = parse_message(before, 0).calls, parse_message(after, 0).calls
            assert [c.name for c in calls_after] == [c.name for c in calls_before] != []
            for b, a in zip(calls_before, calls_after):
                assert "context" in b.arguments and a.arguments == {
                    k: v for k, v in b.arguments.items() if k != "context"
                }
    assert len(list(iter_jsonl(sft))) == 10  # the SFT file itself is untouched

    flags = {"model_name": str(tiny_model_dir), "local_file": str(out), "output_dir": str(tmp_path / "runs")}
    config = load_config("sft", None, {**flags, "dry_run": True})
    with pytest.raises(DataError, match="E_CONTEXT_MISSING"):
        run_training(config)
    config.data.validate = False
    assert run_training(config).plan  # planned: the loop's warm-up trains on these rows


def test_the_demo_tokenizer_spells_ids_nearly_letter_by_letter(tmp_path):
    """Learnt on the ids, the vocabulary gave their random letters hundreds of rare pieces that the demo's
    model copied badly; the corpus leaves the ids out, so the random part of an id it never saw is
    spelt in more, and fewer distinct, pieces."""
    from transformers import AutoTokenizer

    from claudesidian.closed_loop import tokenizer_corpus
    from SelfPlay.teacher import write_datasets
    from Tools.schema.context import SESSION_ID_RE, WORKSPACE_ID_RE
    from Trainers.shared.tiny_model import build_tiny_model

    for seed in (3, 4):
        write_datasets(tmp_path / f"data{seed}", seed=seed, sft_size=2000, kto_size=2, dpo_size=0)
    sft = tmp_path / "data3" / "teacher_sft.jsonl"
    corpus = tokenizer_corpus(sft)
    assert len(corpus) == 2000 and not any(SESSION_ID_RE.search(t) or WORKSPACE_ID_RE.search(t) for t in corpus)
    unseen = (tmp_path / "data4" / "teacher_sft.jsonl").read_text(encoding="utf-8")
    ids = sorted({m.group() for pattern in (SESSION_ID_RE, WORKSPACE_ID_RE) for m in pattern.finditer(unseen)})[:300]

    def random_parts(texts: list[str]) -> list[list[str]]:
        build_tiny_model(tmp_path / "tok", corpus=texts, vocab_size=2000, hidden_size=16, num_layers=1, num_heads=1)
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
        parts = []
        for i in ids:
            pieces = tokenizer.tokenize(f'"{i}"')[:-1]
            parts.append(pieces[len(pieces) - pieces[::-1].index("_") :])  # after the last "_"
            assert len(pieces) - len(parts[-1]) >= 13  # the 13 digits are one piece each either way
        return parts

    left_out, learnt = random_parts(corpus), random_parts(sft.read_text(encoding="utf-8").splitlines())
    assert all("".join(p) == i.rsplit("_", 1)[1] for p, i in zip(left_out, ids))
    per_id = [sum(map(len, parts)) / len(parts) for parts in (left_out, learnt)]
    distinct = [len({piece for p in parts for piece in p}) for parts in (left_out, learnt)]
    assert per_id[0] > per_id[1] + 0.3 and distinct[0] < distinct[1] / 1.5, (per_id, distinct)
