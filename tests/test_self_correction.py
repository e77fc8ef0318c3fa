"""Self-correction: every error code from a hand-made case, the no-wrong-target property over all
generated examples, the monitor, the generator's interval, the config, the manual CLIs."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SESSION, SYSTEM, WORKSPACE, tool_record, write_jsonl
from Tools.cli_common import UsageError
from Tools.schema.interleave import check_kto_ready
from Tools.schema.records import read_records
from Tools.schema.toolcalls import ToolCall, render_content, render_message
from Trainers.shared import data as D
from Trainers.shared.config import REPO_ROOT, load_config
from Trainers.shared.self_correction.compare import (
    TEXT_CODES,
    code_pattern,
    compare_answer,
    markdown_table,
    summarize,
    text_codes,
)
from Trainers.shared.self_correction.generator import (
    NO,
    YES,
    SelfCorrectionGenerator,
    example_from_record,
    make_examples,
)
from Trainers.shared.self_correction.monitor import LiveMonitor, examples_from_records, hold_out

CONTEXT = {
    "sessionId": SESSION,
    "workspaceId": WORKSPACE,
    "sessionDescription": "Garden notes",
    "sessionMemory": "The user plans the garden.",
    "toolContext": "Searching notes",
    "primaryGoal": "Plan the garden",
    "subgoal": "Find the plans",
}


def call(name, context=None, **arguments):
    return ToolCall(name, {"context": dict(CONTEXT) if context is None else context, **arguments})


def hermes(*calls):
    return render_content(list(calls), "hermes")


SEARCH = call("vaultLibrarian_searchContent", query="garden plans", limit=10)
GOLDEN = render_message([SEARCH], "openai")  # the golden answer as a dataset stores it


def compare(answer, golden=GOLDEN):
    return compare_answer(golden, answer, SYSTEM, "Find my garden plans")


# -- tool-call codes from the shared table -----------------------------------------------------
def test_the_same_call_matches_in_any_format_and_after_normalisation():
    assert compare(hermes(SEARCH)).match
    assert compare(render_content([SEARCH], "mistral")).match
    assert compare(hermes(call("vaultLibrarian_searchContent", query="  Garden   PLANS ", limit=10))).match
    other_memory = dict(CONTEXT, sessionMemory="Something else entirely, still a summary.")
    assert compare(hermes(call("vaultLibrarian_searchContent", other_memory, query="garden plans", limit=10))).match


no_memory = {k: v for k, v in CONTEXT.items() if k != "sessionMemory"}
TOOL_CASES = {
    "E_WRONG_TOOL": (
        hermes(call("vaultLibrarian_searchDirectory", query="garden plans", paths=["Garden"])),
        ["E_WRONG_TOOL", "E_EXTRA_CALL"],
    ),
    "E_NO_TOOL_CALL": ("I will search your vault for the garden plans.", ["E_NO_TOOL_CALL"]),
    "E_WRONG_ARG_VALUE": (
        hermes(call("vaultLibrarian_searchContent", query="garden plans", limit=5)),
        ["E_WRONG_ARG_VALUE"],
    ),
    "missing optional argument": (
        hermes(call("vaultLibrarian_searchContent", query="garden plans")),
        ["E_WRONG_ARG_VALUE"],
    ),
    "E_MISSING_REQUIRED_ARG": (hermes(call("vaultLibrarian_searchContent", limit=10)), ["E_MISSING_REQUIRED_ARG"]),
    "E_CONTEXT_MISSING": (
        hermes(ToolCall("vaultLibrarian_searchContent", {"query": "garden plans", "limit": 10})),
        ["E_CONTEXT_MISSING", "E_MISSING_REQUIRED_ARG"],
    ),  # the validator's own two findings
    "E_CONTEXT_FIELD_MISSING": (
        hermes(call("vaultLibrarian_searchContent", no_memory, query="garden plans", limit=10)),
        ["E_CONTEXT_FIELD_MISSING"],
    ),
    "E_SESSION_ID_MISMATCH": (
        hermes(
            call(
                "vaultLibrarian_searchContent",
                dict(CONTEXT, sessionId="session_1732147550000_zzzzzzzzz"),
                query="garden plans",
                limit=10,
            )
        ),
        ["E_SESSION_ID_MISMATCH"],
    ),
    "E_MALFORMED_CALL": ("<tool_call>\nsearch the garden\n</tool_call>", ["E_MALFORMED_CALL"]),
    "E_MALFORMED_ARGUMENTS": (
        '<tool_call>{"name": "vaultLibrarian_searchContent", "arguments": "query=garden"}</tool_call>',
        ["E_MALFORMED_ARGUMENTS"],
    ),
    "E_UNKNOWN_TOOL": (
        hermes(call("vaultLibrarian_findEverything", query="garden plans")),
        ["E_UNKNOWN_TOOL", "E_WRONG_TOOL", "E_EXTRA_CALL"],
    ),
}


@pytest.mark.parametrize("case", list(TOOL_CASES))
def test_each_tool_call_code_is_produced(case):
    answer, expected = TOOL_CASES[case]
    result = compare(answer)
    assert not result.match and result.kind == "tool"
    assert result.codes == expected, [f.message for f in result.findings]
    if case == "missing optional argument":
        assert result.findings[0].message == "'limit' is missing"


def test_call_order_and_a_call_where_text_is_expected():
    read = call("contentManager_readContent", filePath="Garden/plan.md")
    two = render_message([SEARCH, read], "openai")
    assert compare(hermes(SEARCH, read), two).match
    assert compare(hermes(read, SEARCH), two).codes == ["E_CALL_ORDER"]
    text_golden = {"role": "assistant", "content": "Which garden note do you mean: the plan or the log?"}
    result = compare(hermes(SEARCH), text_golden)
    assert (result.kind, result.codes) == ("text", ["E_UNEXPECTED_CALL"])


# -- the seed's generic text codes, each from a hand-made case ----------------------------------
LONG = (
    "Photosynthesis turns sunlight, water and carbon dioxide into glucose and oxygen inside the "
    "chloroplasts of green plants."
)
TEXT_CASES = {  # code pattern -> (answer, golden, question)
    "PRIMARY_ANSWER_MISSING": ("  ...  ", "The capital of France is Paris.", ""),
    "LENGTH_SHORT_BY_X_TOKENS": ("Plants make glucose.", LONG, ""),
    "LENGTH_LONG_BY_X_TOKENS": (
        LONG + " It happens in the leaves during the day.",
        "Plants make glucose and oxygen from light.",
        "",
    ),
    "TOO_BRIEF": ("Glucose.", LONG, ""),
    "TOO_VERBOSE": (LONG + " " + LONG, "Plants make glucose from light.", ""),
    "VERY_DIFFERENT_CONTENT": ("Yes.", LONG, ""),
    "SIMILARITY_X%": ("Water the roses on Monday.", "Prune the apple trees in winter.", ""),
    "CLOSE_BUT_INACCURATE": ("The calculation gives us 156.", "The calculation gives us 142.", ""),
    "OFF_TOPIC_CONTENT": (
        "Python is a great programming language with dynamic typing.",
        "The capital of France is Paris.",
        "What is the capital of France?",
    ),
    "MISSING_NUMBERS": ("The meeting has many people attending.", "The meeting has 12 people attending.", ""),
    "NUMERIC_ERROR_MISSING_X_VALUES": ("Move 3 notes today.", "Move 3 notes today and 5 notes tomorrow.", ""),
    "NUMERIC_ERROR_EXTRA_X_VALUES": ("Move 3 notes today and 7 tomorrow.", "Move 3 notes today.", ""),
    "STRUCTURE_SHOULD_BE_LIST": (
        "We need apples oranges and bananas.",
        "We need:\n1. Apples\n2. Oranges\n3. Bananas",
        "",
    ),
    "STRUCTURE_SHOULD_BE_PROSE": ("We need:\n- apples\n- oranges", "We need apples and oranges.", ""),
    "MISSING_CODE_BLOCK": ("Call print with the text hello.", "Use this:\n```python\nprint('hello')\n```", ""),
    "FORMAT_SHOULD_BE_JSON": ("name is Ada and age is 36", '{"name": "Ada", "age": 36}', ""),
    "MISSING_KEY_CONCEPTS_X_TERMS": ("Plants use light to make food for growing.", LONG, ""),
}


def test_the_cases_cover_the_whole_documented_table():
    assert set(TEXT_CASES) == {c.code for c in TEXT_CODES}
    assert markdown_table() in (REPO_ROOT / "docs" / "self-correction.md").read_text(), (
        "docs/self-correction.md is stale: paste Trainers.shared.self_correction.compare.markdown_table()"
    )


@pytest.mark.parametrize("pattern", list(TEXT_CASES))
def test_each_text_code_is_produced_by_a_hand_made_case(pattern):
    answer, golden, question = TEXT_CASES[pattern]
    codes = text_codes(answer, golden, question)
    assert pattern in [code_pattern(c) for c in codes], codes
    assert all(not re.search(r"\bX\b|_X_", c) for c in codes)  # X is always filled in
    order = [code_pattern(c) for c in codes]
    table = [c.code for c in TEXT_CODES]
    assert order == sorted(order, key=table.index)


def test_filled_in_numbers_are_the_measured_differences():
    assert "LENGTH_SHORT_BY_14_TOKENS" in text_codes("Plants make glucose.", LONG)  # 17 words against 3
    assert "SIMILARITY_50%" in text_codes("abcdefgh", "abcdwxyz")
    assert "NUMERIC_ERROR_MISSING_2_VALUES" in text_codes(
        "It costs 4 euros.", "It costs 4 euros, 6 with tax, 8 with shipping."
    )


def test_a_right_text_answer_has_no_code():
    assert text_codes("The capital of France is Paris.", "the capital of  France is Paris.") == []
    assert compare(
        "The capital of France is Paris.", {"role": "assistant", "content": "The capital of France is Paris."}
    ).match


def test_summaries_are_one_line_and_cut():
    assert summarize(GOLDEN) == "vaultLibrarian_searchContent(query=garden plans, limit=10)"
    line = summarize("word " * 100, 40)
    assert len(line) == 40 and line.endswith("\u2026") and "\n" not in summarize("a\nb")


# -- the generator never teaches a wrong answer ----------------------------------------------------
def _example(golden=GOLDEN, system=SYSTEM):
    record = {
        "conversations": [
            {"role": "system", "content": system},
            {"role": "user", "content": "Find my garden plans"},
            golden,
        ]
    }
    return example_from_record(record, "garden")


def assert_no_wrong_target(records, answers_by_source):
    """Every assistant target is the golden answer, or a yes/no that tells the truth; the model's
    wrong answer appears only as a label:false completion."""
    for record in records:
        meta, messages = record["metadata"], record["conversations"]
        last = messages[-1]
        answer, golden, matched = answers_by_source[meta["source_id"]]
        assert all(m["role"] != "assistant" or m == golden for m in messages[:-1])  # history: golden turns only
        if meta["kind"] == "self_evaluation":
            assert last == {"role": "assistant", "content": YES if matched else NO}
        elif meta["kind"] == "correction":
            assert not matched and last == golden
        else:
            assert not matched and meta["kind"] == "kto_pair"
            assert last == (golden if record["label"] else {"role": "assistant", "content": answer})
        if "label" not in record or record["label"]:
            assert last.get("content") != answer or matched


ANSWERS = st.one_of(
    st.sampled_from(
        [hermes(SEARCH), render_content([SEARCH], "mistral")]
        + [answer for answer, _ in TOOL_CASES.values()]
        + [case[0] for case in TEXT_CASES.values()]
    ),
    st.text(max_size=60),
    st.builds(
        lambda q, n: hermes(call("vaultLibrarian_searchContent", query=q, limit=n)),
        st.sampled_from(["garden plans", "Garden Plans", "recipes"]),
        st.integers(1, 12),
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ANSWERS, min_size=1, max_size=6))
def test_no_generated_example_has_a_wrong_answer_as_its_target(tmp_path_factory, answers):
    generator = SelfCorrectionGenerator(tmp_path_factory.mktemp("sc"), min_examples=1, generation_interval=1)
    truth = {}
    for n, answer in enumerate(answers):
        example = _example()
        example.id = f"garden-{n}"
        comparison = compare(answer)
        truth[example.id] = (answer, GOLDEN, comparison.match)
        generator.add(example, answer, comparison, step=n)
    batch = generator.maybe_write(len(answers))
    sft = [r for _, r in read_records(batch.sft_file)]  # JSONL lines end at \n only ('\x85' is text)
    kto = [r for _, r in read_records(batch.kto_file)] if batch.kto_file else []
    assert_no_wrong_target(sft + kto, truth)
    assert len([r for r in sft if r["metadata"]["kind"] == "self_evaluation"]) == len(answers)
    mistakes = sum(not m for _, _, m in truth.values())
    assert len([r for r in sft if r["metadata"]["kind"] == "correction"]) == mistakes
    if kto:
        assert check_kto_ready(batch.kto_file).ready  # strictly alternating, both labels
    for path, method in ((batch.sft_file, "sft"), (batch.kto_file, "kto")):
        if path is not None:
            D.validate_for(method, D.load_records(str(path)))  # the daemon will accept the files


def test_examples_keep_the_conversation_and_show_the_answer_only_to_the_user():
    answer = hermes(call("vaultLibrarian_searchContent", query="garden plans", limit=5))
    example = _example()
    out = make_examples(example, answer, compare(answer), step=7)
    correction = out["correction"][0]["conversations"]
    assert correction[0] == {"role": "system", "content": SYSTEM} and correction[-1] == GOLDEN
    assert correction[1]["content"].startswith("Find my garden plans\n\nYour previous answer:\n<tool_call>")
    assert "Error codes: E_WRONG_ARG_VALUE" in correction[1]["content"]
    assert out["correction"][0]["metadata"] == {
        "kind": "correction",
        "source_id": "garden",
        "error_codes": ["E_WRONG_ARG_VALUE"],
        "step": 7,
        "generator": "self_correction",
    }
    # a prompt ending in a tool result gets the question as a new user turn, never an assistant turn
    record = tool_record("Projects/Alpha", "Create a folder for Alpha")
    record["conversations"] += [
        {"role": "tool", "content": '{"success": true}'},
        {"role": "assistant", "content": "Done: Projects/Alpha exists."},
    ]
    example = example_from_record(record, "alpha")
    out = make_examples(example, "Nothing.", compare_answer(example.golden, "Nothing."))
    messages = out["self_evaluation"][0]["conversations"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user", "assistant"]
    assert messages[2] == record["conversations"][2] and messages[-1]["content"] == NO
    # an empty answer still gets its correction, but no KTO pair (an empty completion is not a record)
    empty = make_examples(_example(), "", compare(""))
    assert len(empty["correction"]) == 1 and not empty["kto_false"] and not empty["kto_true"]


def test_writes_follow_the_interval_and_the_minimum_and_auto_queue_places_the_method_file(tmp_path):
    queue = tmp_path / "root"
    generator = SelfCorrectionGenerator(
        tmp_path / "out", method="kto", min_examples=5, generation_interval=4, auto_queue=True, queue_dir=queue
    )
    wrong = hermes(call("vaultLibrarian_searchContent", query="recipes", limit=10))
    generator.add(_example(), wrong, compare(wrong), 2)
    assert generator.maybe_write(2) is None  # 2 steps since the start: below the interval
    assert generator.maybe_write(4) is None  # 4 buffered (self-eval, correction, 2 KTO records): below 5
    generator.add(_example(), hermes(SEARCH), compare(hermes(SEARCH)), 6)
    batch = generator.maybe_write(6)
    assert batch is not None and re.fullmatch(r"self_correction_step6_\d{8}_\d{6}\.jsonl", batch.sft_file.name)
    meta = json.loads(batch.metadata_file.read_text())
    assert meta["counts"] == {"self_evaluation": 2, "correction": 1, "kto_true": 1, "kto_false": 1}
    assert meta["stats"] == {
        "total_evals": 2,
        "correct_first_try": 1,
        "needed_correction": 1,
        "files_generated": 2,
        "examples_generated": 5,
    }
    assert meta["step"] == 6 and meta["error_codes"] == {"E_WRONG_ARG_VALUE": 1} and len(meta["schema_hash"]) == 64
    assert batch.queued == queue / "queue" / "normal" / batch.kto_file.name  # a KTO run queues its KTO pairs
    assert batch.queued.read_bytes() == batch.kto_file.read_bytes() and not list(queue.glob("queue/normal/.*"))
    assert generator.maybe_write(9) is None and generator.buffered == 0  # the buffer was emptied


# -- the monitor --------------------------------------------------------------------------------
def _records():
    return [
        (n, tool_record(f"Projects/{name}", f"Create a folder for {name}"))
        for n, name in enumerate(("Alpha", "Beta", "Gamma", "Delta"), start=1)
    ]


def test_monitor_reports_matches_and_feeds_the_generator(tmp_path):
    examples = examples_from_records(_records(), "d.jsonl")
    right = {e.question: e.golden for e in examples}

    def generate(messages):  # the trainer's side of the interface: chat messages in, text out
        assert messages[-1]["role"] == "user" and messages[0]["role"] == "system"
        question = messages[-1]["content"]
        if question.endswith("Alpha"):
            return "I cannot do that."
        function = D.chat_messages({"conversations": [right[question]]})[0]["tool_calls"][0]["function"]
        return hermes(ToolCall(function["name"], function["arguments"]))

    printed = []
    generator = SelfCorrectionGenerator(tmp_path, min_examples=1, generation_interval=1)
    monitor = LiveMonitor(examples, num_samples=4, generator=generator, printer=printed.append)
    report = monitor.evaluate(3, generate)
    assert (report.step, len(report.results), report.correct) == (3, 4, 3)
    text = printed[0]
    assert text.startswith("live eval @ step 3: 3/4 match (75%)")
    assert (
        "MISMATCH  d.jsonl:1: E_NO_TOOL_CALL" in text
        and "expected:  vaultManager_createFolder(path=Projects/Alpha)" in text
    )
    assert "predicted: I cannot do that." in text and printed[1].startswith("Self-Correction: generated ")
    assert generator.stats.total_evals == 4 and generator.batches[0].step == 3


def test_monitor_samples_differ_by_step_and_a_failed_generation_does_not_raise():
    monitor = LiveMonitor(examples_from_records(_records(), "d"), num_samples=2, printer=None)
    assert len({tuple(e.id for e in monitor.sample(step)) for step in range(1, 20)}) > 1

    def out_of_memory(messages):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    report = monitor.evaluate(5, out_of_memory)
    assert report.results == [] and report.error == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"


def test_hold_out_keeps_kto_alternation_and_refuses_too_little_data():
    records = [(n, {"label": n % 2 == 1, "n": n}) for n in range(1, 12)]  # T F T F ... T
    train, held = hold_out(records, 0.4, seed=3, paired=True)
    labels = [r["label"] for _, r in train]
    assert all(a != b for a, b in zip(labels, labels[1:])) and len(held) == 4 and len(train) == 7
    assert sorted(n for n, _ in train + held) == list(range(1, 12))
    train, held = hold_out(records, 0.01)
    assert len(held) == 1 and len(train) == 10
    with pytest.raises(UsageError, match="too few"):
        hold_out(records[:1], 0.5)


# -- configuration --------------------------------------------------------------------------------
def test_config_sections_flags_and_the_shipped_config_files(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "monitor: {eval_steps: 50, validation_file: val.jsonl}\n"
        "self_correction: {enabled: true, min_examples: 4, generation_interval: 200}\n"
    )
    config = load_config("sft", yaml_file, {"generation_interval": 100, "num_eval_samples": 2})
    assert (config.monitor.eval_steps, config.monitor.num_eval_samples) == (50, 2)
    assert config.monitor.validation_file == str(tmp_path / "val.jsonl")  # relative to the YAML file
    assert (config.self_correction.min_examples, config.self_correction.generation_interval) == (4, 100)  # flag wins
    for method in ("sft", "kto"):
        shipped = load_config(method, REPO_ROOT / f"Trainers/rtx3090_{method}/configs/config.yaml", {})
        assert shipped.monitor.eval_steps == 0 and not shipped.self_correction.enabled  # off unless asked for


@pytest.mark.parametrize(
    "text, flags, fragment",
    [
        ("self_correction: {enabeld: true}\n", {}, "unknown key 'self_correction.enabeld'"),
        ("", {"self_correction": True}, "self-correction needs the live monitor"),
        ("monitor: {validation_fraction: 1.5}\n", {}, "validation_fraction must be in"),
        ("monitor: {eval_steps: many}\n", {}, "must be a number"),
    ],
)
def test_bad_monitor_config_is_a_usage_error(tmp_path, text, flags, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment):
        load_config("sft", path, flags)


# -- the manual path (the seed's scripts) ---------------------------------------------------------
def test_manual_path_with_a_real_model_answers_then_builds_training_data(run, tiny_model_dir, tmp_path):
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"prompt": "What is 2+2?", "response": "2+2 equals 4."},
            tool_record("Projects/Alpha", "Create a folder for Alpha"),
        ],
    )
    answers = tmp_path / "answers.jsonl"
    first = run(
        "Tools/generate_initial_answers.py",
        "--input",
        qa,
        "--output",
        answers,
        "--model",
        tiny_model_dir,
        "--max-tokens",
        "6",
        "--temperature",
        "0",
    )
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["qa.jsonl:1", "qa.jsonl:2"] and all(
        isinstance(l["answer"], str) for l in lines
    )
    again = run("Tools/generate_initial_answers.py", "--input", qa, "--output", answers, "--model", tiny_model_dir)
    assert "0 new, 0 failed, 2 already in" in again.stdout and len(answers.read_text().splitlines()) == 2  # resumes
    with answers.open("a") as handle:  # the seed's own answer format: matched by prompt
        handle.write(json.dumps({"prompt": "What is 2+2?", "answer": "4"}) + "\n")
    out = tmp_path / "training.jsonl"
    built = run("Tools/self_correction_trainer.py", "--input", qa, "--initial-answers", answers, "--output", out)
    assert built.returncode == 0, built.stderr
    meta = json.loads((tmp_path / "training_metadata.json").read_text())
    assert meta["stats"]["total_evals"] == 2 and meta["answers"]["answered"] == 2
    sft = [json.loads(line) for line in out.read_text().splitlines()]
    kto_file = tmp_path / "training_kto.jsonl"
    kto = [json.loads(line) for line in kto_file.read_text().splitlines()] if kto_file.exists() else []
    goldens = {
        "qa.jsonl:1": {"role": "assistant", "content": "2+2 equals 4."},
        "qa.jsonl:2": tool_record("Projects/Alpha", "x")["conversations"][-1],
    }
    truth = {line["id"]: (line["answer"], goldens[line["id"]], False) for line in lines}
    for record in sft:  # random weights: no answer is right, so every self-evaluation must say no
        assert record["metadata"]["error_codes"]
    assert_no_wrong_target(sft + kto, truth)
    assert "self-evaluation examples" in built.stdout and "wrote " in built.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--input", "missing.jsonl", "--initial-answers", "{answers}", "--output", "{out}"],
            "missing.jsonl: no such file",
        ),
        (
            ["--input", "{qa}", "--initial-answers", "{qa}", "--output", "{out}"],
            "not answer records with an 'answer' field",
        ),
        (["--input", "{qa}", "--initial-answers", "{answers}", "--output", "{qa}"], "is also an input"),
        (["--input", "{qa}", "--initial-answers", "{other}", "--output", "{out}"], "no answer in"),
        (["--input", "{qa}"], "--initial-answers, --output required"),
    ],
)
def test_self_correction_trainer_bad_input_is_one_line_and_exit_2(run, tmp_path, args, message):
    paths = {
        "qa": write_jsonl(tmp_path / "qa.jsonl", [{"prompt": "What is 2+2?", "response": "4."}]),
        "answers": write_jsonl(tmp_path / "a.jsonl", [{"prompt": "What is 2+2?", "answer": "5"}]),
        "other": write_jsonl(tmp_path / "o.jsonl", [{"prompt": "Unrelated?", "answer": "5"}]),
        "out": str(tmp_path / "out.jsonl"),
    }
    result = run("Tools/self_correction_trainer.py", *[a.format(**paths) for a in args])
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.jsonl").exists()


def test_invalid_golden_answers_are_refused_and_error_codes_are_listed(run, tmp_path):
    bad = tool_record("Projects/A", "Make it", tool="vaultManager_inventedTool")
    qa = write_jsonl(tmp_path / "qa.jsonl", [bad])
    result = run("Tools/generate_initial_answers.py", "--input", qa, "--output", tmp_path / "a.jsonl", "--model", "x")
    assert result.returncode == 2 and "fails validation (a golden answer must be right)" in result.stderr
    listing = run("Tools/self_correction_trainer.py", "--test-error-codes")
    assert listing.returncode == 0 and all(entry.code in listing.stdout for entry in TEXT_CODES)


def test_kto_run_holds_out_whole_pairs_and_queues_its_kto_pairs(tiny_model_dir, tiny_kto_file, tmp_path, capsys):
    from Trainers.shared.train import run_training

    root, out = tmp_path / "root", tmp_path / "sc"
    config = load_config(
        "kto",
        None,
        {
            "model_name": tiny_model_dir,
            "local_file": tiny_kto_file,
            "output_dir": str(tmp_path / "runs"),
            "batch_size": 2,
            "gradient_accumulation": 1,
            "max_steps": 2,
            "save_steps": 100,
            "eval_steps": 1,
            "num_eval_samples": 1,
            "eval_max_tokens": 8,
            "validation_fraction": 0.25,
            "self_correction": True,
            "min_examples": 1,
            "generation_interval": 100,
            "auto_queue": True,
            "self_correction_dir": str(out),
            "queue_dir": str(root),
        },
    )
    result = run_training(config)
    # one true/false pair of the 8 records held out: 6 left, still alternating (KTO trained on them)
    assert result.plan["records"] == 6 and result.plan["labels"] == {"true": 3, "false": 3}
    assert result.global_step == 2 and result.plan["live_monitor"]["validation_examples"] == 1
    assert capsys.readouterr().out.count("live eval @ step") == 2
    # the interval is never reached: the buffer is written at the end of training, and the KTO pairs are queued
    meta = json.loads(next(out.glob("*.json")).read_text())
    assert meta["step"] == 2 and meta["stats"]["total_evals"] == 2
    queued = root / "queue" / "normal" / meta["files"]["kto"]
    assert meta["files"]["queued"] == str(queued) and check_kto_ready(queued).ready
