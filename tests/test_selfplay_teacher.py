"""The template teacher: the shipped datasets are what it writes, pass the validator, cover every
tool, and each negative fails for the reason it states; its answers execute in the template vault;
its held-out prompt sets share no request with training data."""

import json
import random
from collections import Counter

import pytest

from conftest import ROOT, run_tool
from Evaluator.prompt_sets import load_prompt_set
from Evaluator.scoring import score_case
from SelfPlay.config import Task, load_config
from SelfPlay.labels import SandboxExecutor, judge, record_expectation
from SelfPlay.teacher import (
    CORRUPTIONS,
    TemplateClient,
    Teacher,
    mistake_rate,
    shared_user_requests,
    write_datasets,
    write_heldout_prompt_set,
)
from SelfPlay.templates import not_found_error, replace_not_found_error
from Tools.schema.records import read_records
from Tools.schema.validate import validate_record
from Tools.vault.sandbox import VaultSandbox

SHIPPED = ROOT / "Datasets" / "teacher"
PROVIDER_TOOLS = {
    "agentManager_executePrompt",
    "agentManager_batchExecutePrompt",
    "agentManager_listModels",
    "agentManager_generateImage",
}


@pytest.fixture(scope="module")
def teacher():
    return Teacher(seed=4)


@pytest.fixture(scope="module")
def shipped():
    return {name: [r for _, r in read_records(SHIPPED / name)] for name in ("teacher_sft.jsonl", "teacher_kto.jsonl")}


def test_shipped_datasets_are_what_the_teacher_writes(tmp_path):
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    sizes = [manifest["files"][f"teacher_{method}.jsonl"] for method in ("sft", "kto", "dpo")]
    write_datasets(tmp_path, manifest["seed"], *sizes)
    for name in ("teacher_sft.jsonl", "teacher_kto.jsonl", "teacher_dpo.jsonl", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), (
            f"Datasets/teacher/{name} is stale: {manifest['command']}"
        )


def test_shipped_datasets_pass_the_validator_and_the_kto_check(shipped, registry):
    sft, kto = shipped["teacher_sft.jsonl"], shipped["teacher_kto.jsonl"]
    assert len(sft) >= 2000 and len(kto) >= 2000
    result = run_tool("Tools/validate_syngen.py", *(str(SHIPPED / n) for n in shipped), "--format", "json")
    assert result.returncode == 0, result.stdout[-2000:]
    totals = json.loads(result.stdout)["totals"]
    assert totals["failed"] == 0 and totals["labels"] == {
        "true": len(sft) + len(kto) // 2,
        "false": len(kto) // 2,
        "unlabeled": 0,
    }
    assert not totals["codes"]  # positives: not even a warning
    assert run_tool("Tools/interleave_dataset.py", "--check", str(SHIPPED / "teacher_kto.jsonl")).returncode == 0
    assert [r["label"] for r in kto[:6]] == [True, False] * 3


def test_sft_covers_every_tool(shipped, registry):
    sft = shipped["teacher_sft.jsonl"]
    topics = Counter(r["metadata"]["tools"][0] for r in sft if r["metadata"]["type"] == "tool")
    assert set(topics) == set(registry.tools)  # all 47, hidden ones included
    coverage = json.loads(
        run_tool("Tools/analyze_tool_coverage.py", str(SHIPPED / "teacher_sft.jsonl"), "--json").stdout
    )
    assert coverage["no_positive_example"] == [] and coverage["unknown_tools"] == {}
    hidden = [
        r for r in sft if r["metadata"]["type"] == "tool" and r["metadata"]["tools"][0].startswith("commandManager_")
    ]
    # a hidden tool's right answer says it is unavailable and calls nothing
    assert hidden and all(
        "tool_calls" not in r["conversations"][-1] and "command" in r["conversations"][-1]["content"] for r in hidden
    )
    behaviors = Counter(r["metadata"]["behavior"] for r in sft if r["metadata"]["type"] == "behavioral")
    assert set(behaviors) == {
        "intellectual_humility",
        "error_recovery",
        "verification_before_action",
        "strategic_tool_selection",
        "workspace_awareness",
    }


def test_every_record_is_judged_as_it_states(shipped, registry):
    config = load_config(registry=registry)
    corruptions = Counter()
    for record in shipped["teacher_sft.jsonl"][::7] + shipped["teacher_kto.jsonl"]:
        verdict = judge(record_expectation(record, config, registry), record["conversations"][-1], registry)
        if record["label"]:
            assert verdict.passed and validate_record(record, registry) == [], record["metadata"]
        else:
            meta = record["metadata"]
            assert verdict.codes == meta["codes"] and CORRUPTIONS[meta["corruption"]][0] in meta["codes"], meta
            corruptions[meta["corruption"]] += 1
    assert set(corruptions) == set(CORRUPTIONS)  # every controlled corruption is in the shipped KTO set
    codes = {c for r in shipped["teacher_kto.jsonl"] if not r["label"] for c in r["metadata"]["codes"]}
    assert {
        "E_WRONG_TOOL",
        "E_UNKNOWN_TOOL",
        "E_CONTEXT_FIELD_MISSING",
        "E_CONTEXT_FIELD_EMPTY",
        "E_SESSION_ID_MISMATCH",
        "E_WORKSPACE_ID_FORMAT",
        "E_MALFORMED_ARGUMENTS",
        "E_MISSING_REQUIRED_ARG",
        "E_ARG_TYPE",
        "E_UNSAFE_ACTION",
        "E_SHOULD_ASK",
        "E_HIDDEN_TOOL",
        "E_NO_TOOL_CALL",
    } <= codes


def test_right_answers_execute_in_the_template_vault(teacher, registry):
    """Arguments come from the vault: every right answer runs, except modes that need a model provider."""
    executor = SandboxExecutor()
    tasks = [
        Task("tool", v, tool=t, agent=registry.tools[t].agent)
        for t in registry.tools
        if not registry.tools[t].hidden
        for v in ("simple", "complex", "project_focused", "knowledge_base")
    ]
    tasks += [
        Task("behavioral", "complex", behavior=b.name, scenario=s)
        for b in teacher.config.behaviors.values()
        for s in b.scenarios
    ]
    failures = {}
    for i, task in enumerate(tasks):
        scene = teacher.scene(i, namespace="exec", task=task)
        codes = [f.code for f in executor.for_session(scene.ids.session_id, scene.workspace_dict())(scene.calls)]
        if codes:
            failures[task.tool or task.scenario] = codes
    executor.close()
    assert set(failures) == PROVIDER_TOOLS and {c for v in failures.values() for c in v} == {"E_PROVIDER_REQUIRED"}


@pytest.mark.parametrize(
    "tool, key, least",
    [
        ("memoryManager_createWorkspace", "name", 250),
        ("memoryManager_createSession", "name", 250),
        ("memoryManager_createState", "name", 250),
        ("vaultLibrarian_searchContent", "query", 80),
    ],
)
def test_names_a_user_gives_come_from_hundreds_and_are_spelt_in_the_request(teacher, registry, tool, key, least):
    """With a pool of 7 workspace names a model recalled the commonest instead of copying the one
    asked for; with hundreds, most held-out names are unseen, so only copying the request pays."""
    task = Task("tool", "simple", tool=tool, agent=registry.tools[tool].agent)
    scenes = [teacher.scene(i, namespace="names", task=task) for i in range(600)]
    names = [scene.calls[0].arguments[key] for scene in scenes]
    assert len(set(names)) >= least
    assert all(name.casefold() in scene.request.casefold() for name, scene in zip(names, scenes))


def test_session_memory_states_the_ask_without_echoing_the_request(teacher):
    """The context's sessionMemory says what the user asked in the teacher's words (and so holds
    the name once more), not the request itself with its greetings and typos."""
    task = Task("tool", "simple", tool="memoryManager_createWorkspace", agent="memoryManager")
    for i in range(50):
        scene = teacher.scene(i, namespace="memory", task=task)
        context = scene.calls[0].arguments["context"]
        name = scene.calls[0].arguments["name"]
        assert f"The user asked to create the {name} workspace." in context["sessionMemory"]
        assert scene.request not in context["sessionMemory"]


def test_quoted_errors_are_the_executors_own(teacher):
    context = {
        "sessionId": "session_1767225600000_abcdefghi",
        "workspaceId": "default",
        "sessionDescription": "d",
        "sessionMemory": "m",
        "toolContext": "t",
        "primaryGoal": "g",
        "subgoal": "s",
    }
    with VaultSandbox() as box:
        missing = box.execute(
            {"name": "contentManager_readContent", "arguments": {"context": context, "filePath": "Inbox/Sourdough.md"}}
        )
        unreplaced = box.execute(
            {
                "name": "contentManager_replaceContent",
                "arguments": {
                    "context": context,
                    "filePath": "Recipes/Pancakes.md",
                    "oldContent": "zzz",
                    "newContent": "x",
                },
            }
        )
    assert missing["error"] == not_found_error("Inbox/Sourdough.md")
    assert unreplaced["error"] == replace_not_found_error()


def test_heldout_prompt_set_shares_no_request_with_training_data(tmp_path, registry):
    sft = SHIPPED / "teacher_sft.jsonl"
    first = write_heldout_prompt_set(tmp_path / "a.json", seed=1, size=150, exclude=[sft])
    second = write_heldout_prompt_set(tmp_path / "b.json", seed=2, size=150, exclude=[sft, tmp_path / "a.json"])
    assert first["cases"] == second["cases"] == 150 and first["excluded_requests"] == 2400
    assert shared_user_requests(tmp_path / "a.json", sft) == set()
    assert shared_user_requests(tmp_path / "b.json", tmp_path / "a.json") == set()
    assert len(shared_user_requests(tmp_path / "a.json", tmp_path / "a.json")) == 150  # the check sees overlap
    # varied enough that without exclusion another seed still gives mostly new requests
    write_heldout_prompt_set(tmp_path / "c.json", seed=2, size=150)
    assert len(shared_user_requests(tmp_path / "a.json", tmp_path / "c.json")) < 20
    prompt_set = load_prompt_set(tmp_path / "a.json")  # the evaluator's format
    assert len({t for c in prompt_set.cases for t in c.expected_tools}) >= 30
    for case in prompt_set.cases:  # the teacher's reference answer passes the evaluator's scoring of its case
        score = score_case(case, case.metadata["reference"], registry)
        assert score.passed, (case.id, [f.code for f in score.findings])
    assert any(c.expected_arguments for c in prompt_set.cases) and any(
        c.response_type == "text_only" for c in prompt_set.cases
    )


def test_prompts_command_writes_a_disjoint_set(tmp_path):
    out = tmp_path / "heldout.json"
    result = run_tool(
        "SelfPlay/teacher.py",
        "prompts",
        "--output",
        out,
        "--size",
        "20",
        "--seed",
        "5",
        "--exclude",
        SHIPPED / "teacher_sft.jsonl",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 20 cases" in result.stdout and len(json.loads(out.read_text())) == 20
    bad = run_tool("SelfPlay/teacher.py", "prompts", "--output", out, "--exclude", tmp_path / "missing.jsonl")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --exclude") and "Traceback" not in bad.stderr


def test_template_client_plays_all_three_roles_deterministically(teacher):
    from SelfPlay.config import render_parameters

    client = TemplateClient(teacher=teacher)
    env = client.chat(
        [
            {
                "role": "user",
                "content": "Invent a workspace.\n"
                + render_parameters({"task": "environment", "variation": "project_focused", "example": 3}),
            }
        ]
    )
    workspace = json.loads(env.message["content"])
    assert workspace["rootFolder"].startswith("Projects/") and workspace["folders"]
    ask = {
        "task": "user_request",
        "type": "tool",
        "tool": "contentManager_readContent",
        "workspace": workspace,
        "session_id": "session_1767225600000_aaaaaaaaa",
        "workspace_id": "ws_1767225600000_bbbbbbbbb",
        "example": 3,
    }
    request = client.chat([{"role": "user", "content": "Write a request.\n" + render_parameters(ask)}]).message[
        "content"
    ]
    answer = client.chat([{"role": "user", "content": request}]).message
    call = json.loads(answer["tool_calls"][0]["function"]["arguments"])
    assert answer["tool_calls"][0]["function"]["name"] == "contentManager_readContent"
    assert call["filePath"].endswith(".md") and call["context"]["sessionId"] == "session_1767225600000_aaaaaaaaa"
    assert client.chat([{"role": "user", "content": request}]).message == answer  # a function of the messages
    unknown = client.chat([{"role": "user", "content": "what is the capital of France"}]).message
    assert "tool_calls" not in unknown and unknown["content"].endswith("from there.")


def test_template_client_makes_mistakes_at_the_rate_its_temperature_sets(teacher):
    client = TemplateClient(teacher=teacher)
    cases = client.prompt_cases(120)
    for temperature in (0.0, 1.0):
        corrupted = sum(
            client.chat(
                [{"role": "system", "content": c["system"]}, {"role": "user", "content": c["question"]}],
                temperature=temperature,
            ).raw["teacher"]["corruption"]
            is not None
            for c in cases
        )
        assert corrupted / len(cases) == pytest.approx(mistake_rate(temperature), abs=0.12)
    assert mistake_rate(0.0) == 0 and mistake_rate(1.0) == 0.5


def test_corruptions_apply_only_where_they_make_sense(teacher):
    rng = random.Random(0)
    ask = teacher.scene(
        1,
        namespace="c",
        task=Task("behavioral", "simple", behavior="intellectual_humility", scenario="ambiguous_target"),
    )
    assert teacher.corruptions(ask) == ["answer_instead_of_asking"]
    hidden = teacher.scene(
        2, namespace="c", task=Task("tool", "simple", tool="commandManager_listCommands", agent="commandManager")
    )
    assert teacher.corruptions(hidden) == ["hidden_tool_call"]
    assert teacher.negative(hidden, rng)["metadata"]["codes"] == ["E_HIDDEN_TOOL", "E_UNEXPECTED_CALL"]
    only_context = teacher.scene(
        3, namespace="c", task=Task("tool", "simple", tool="agentManager_listModels", agent="agentManager")
    )
    assert "missing_required_argument" not in teacher.corruptions(only_context)
    assert "context_not_first" not in teacher.corruptions(only_context)


def test_the_template_backend_answers_a_teacher_prompt_set_with_its_references(tmp_path):
    """The evaluator's sanity check for a held-out set: its own reference answers pass it."""
    from Evaluator import cli

    heldout = tmp_path / "heldout.json"
    write_heldout_prompt_set(heldout, seed=3, size=25)
    args = ["--backend", "template", "--prompt-set", str(heldout), "--no-progress", "--output"]
    assert cli.main(args + [str(tmp_path / "r.json"), "--model", str(heldout)]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["pass_at_1"] == 1.0
    assert cli.main(args + [str(tmp_path / "r2.json"), "--model", "teacher"]) == 0
    assert json.loads((tmp_path / "r2.json").read_text())["summary"]["pass_at_1"] < 0.3  # unknown requests: it asks
