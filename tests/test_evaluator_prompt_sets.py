import json
from pathlib import Path

import pytest

from Evaluator.prompt_sets import PromptSetError, builtin_sets, load_prompt_set, unknown_tools
from Tools.schema.registry import load_registry

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "prompts"


def test_builtin_sets_load_and_name_only_known_tools():
    registry = load_registry()
    assert set(builtin_sets()) >= {"tool_prompts", "behavior_prompts", "baseline", "tool_combos"}
    for name in builtin_sets():
        prompt_set = load_prompt_set(name)
        assert prompt_set.cases and not unknown_tools(prompt_set, registry), name


def test_tool_prompts_cover_every_visible_tool():
    registry = load_registry()
    covered = {tool for case in load_prompt_set("tool_prompts").cases for tool in case.expected_tools}
    assert {t.name for t in registry.visible()} <= covered


def test_behavior_set_covers_the_six_behaviours():
    tags = {tag for case in load_prompt_set("behavior_prompts").cases for tag in case.tags}
    assert {
        "intellectual_humility",
        "error_recovery",
        "verification_before_action",
        "workspace_awareness",
        "strategic_tool_selection",
        "context_continuity",
    } <= tags


@pytest.mark.parametrize("name,count", [("tool_prompts.json", 44), ("behavior_prompts.json", 51)])
def test_reference_sets_load_unchanged(name, count):
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"reference prompt set not present at {path}")
    prompt_set = load_prompt_set(path)
    raw = json.loads(path.read_text())
    assert len(prompt_set.cases) == count
    for case, item in zip(prompt_set.cases, raw):
        assert (case.id, case.question, case.tags, case.expected_tools) == (
            item["id"],
            item["question"],
            item["tags"],
            item.get("expected_tools", []),
        )
        assert case.system == item["system"]
        assert case.metadata.get("expected_context") == item["expected_context"]


def test_selection_by_tag_and_limit():
    prompt_set = load_prompt_set("tool_prompts")
    chosen = prompt_set.select(["vaultManager"], 3)
    assert len(chosen.cases) == 3 and all("vaultManager" in c.tags for c in chosen.cases)


@pytest.mark.parametrize(
    "content,message",
    [
        ("not json", "not valid JSON"),
        ("{}", "non-empty JSON list"),
        ('[{"id": "a"}]', "'question'"),
        ('[{"id": "a", "question": "q"}, {"id": "a", "question": "q"}]', "duplicate case id 'a'"),
        ('[{"id": "a", "question": "q", "expected_tools": "x"}]', "list of non-empty strings"),
        ('[{"id": "a", "question": "q", "expected_response_type": "poem"}]', "expected_response_type"),
    ],
)
def test_bad_prompt_sets_are_named(tmp_path, content, message):
    path = tmp_path / "set.json"
    path.write_text(content)
    with pytest.raises(PromptSetError, match=message):
        load_prompt_set(path)


def test_missing_prompt_set():
    with pytest.raises(PromptSetError, match="no such prompt set"):
        load_prompt_set("does_not_exist")
