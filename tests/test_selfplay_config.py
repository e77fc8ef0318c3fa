"""SelfPlay's configuration: every value is read and used, agents.yaml follows the registry, the
sampled distribution matches the configured weights, and ids come from code."""

import random
import shutil
from collections import Counter

import pytest
import yaml

from SelfPlay.config import CONFIG_DIR, ConfigError, agents_document, load_config, tool_probabilities
from SelfPlay.generator import SelfPlayGenerator
from SelfPlay.id_utils import EPOCH_MS, generate_ids, inject_ids, seeded_ids, validate_session_id, validate_workspace_id
from SelfPlay.templates import BEHAVIOR_BUILDERS, TOOL_BUILDERS
from Tools.schema.toolcalls import ToolCall

N = 20000


@pytest.fixture(scope="module")
def config(registry):
    return load_config(registry=registry)


def test_agents_yaml_is_generated_from_the_registry(registry):
    shipped = (CONFIG_DIR / "agents.yaml").read_text()
    assert agents_document(registry, yaml.safe_load(shipped)) == shipped, (
        "SelfPlay/configs/agents.yaml is stale: python -m SelfPlay.config --write-agents"
    )
    tools = {t for agent in yaml.safe_load(shipped)["agents"].values() for t in agent["tools"]}
    assert tools == set(registry.tools) and len(tools) == 47


def test_every_tool_and_scenario_has_a_teacher_template(registry, config):
    assert set(TOOL_BUILDERS) == set(registry.tools)
    assert set(BEHAVIOR_BUILDERS) == {(b.name, s) for b in config.behaviors.values() for s in b.scenarios}


def test_sampled_distribution_matches_the_configured_weights(config):
    generator = SelfPlayGenerator(config=config, seed=11)
    tasks = [generator.plan(i) for i in range(N)]
    kinds = Counter(t.kind for t in tasks)
    assert kinds["tool"] / N == pytest.approx(0.70, abs=0.015)
    variations = Counter(t.variation for t in tasks)
    for name, weight in {"simple": 0.2, "complex": 0.5, "project_focused": 0.2, "knowledge_base": 0.1}.items():
        assert variations[name] / N == pytest.approx(weight, abs=0.015), name
    behaviors = Counter(t.behavior for t in tasks if t.kind == "behavioral")
    for name, weight in {
        "intellectual_humility": 0.25,
        "error_recovery": 0.20,
        "verification_before_action": 0.20,
        "strategic_tool_selection": 0.20,
        "workspace_awareness": 0.15,
    }.items():
        assert behaviors[name] / kinds["behavioral"] == pytest.approx(weight, abs=0.02), name
    tools = Counter(t.tool for t in tasks if t.kind == "tool")
    expected = tool_probabilities(config)
    assert set(tools) == {t for t, p in expected.items() if p > 0}
    for tool, p in expected.items():  # ~14,000 draws: 5 standard deviations of the biggest share is ~0.006
        assert tools[tool] / kinds["tool"] == pytest.approx(p, abs=0.006), tool
    hidden = sum(tools[t] for t in ("commandManager_executeCommand", "commandManager_listCommands"))
    assert 0 < hidden / kinds["tool"] < 0.02  # hidden tools are asked for rarely, never never


def test_changed_weights_change_what_is_drawn(tmp_path, registry):
    shutil.copytree(CONFIG_DIR, tmp_path / "configs")
    behaviors = tmp_path / "configs" / "behaviors.yaml"
    data = yaml.safe_load(behaviors.read_text())
    data["behaviors"]["workspace_awareness"]["weight"] = 0
    data["behaviors"]["error_recovery"]["scenarios"][0]["weight"] = 0
    behaviors.write_text(yaml.safe_dump(data))
    prompts = tmp_path / "configs" / "prompts"
    tool = yaml.safe_load((prompts / "user_tool.yaml").read_text())
    tool["weight"] = 0.0
    (prompts / "user_tool.yaml").write_text(yaml.safe_dump(tool))
    generator = SelfPlayGenerator(config=load_config(tmp_path / "configs", registry), seed=3)
    tasks = [generator.plan(i) for i in range(3000)]
    assert {t.kind for t in tasks} == {"behavioral"}
    assert "workspace_awareness" not in {t.behavior for t in tasks}
    assert {t.scenario for t in tasks if t.behavior == "error_recovery"} == {"replace_text_not_found"}


@pytest.mark.parametrize(
    "file,edit,message",
    [
        ("behaviors.yaml", lambda d: d["behaviors"]["error_recovery"].update(wieght=1), "unknown key(s) 'wieght'"),
        ("behaviors.yaml", lambda d: d["behaviors"]["error_recovery"].pop("weight"), "missing key 'weight'"),
        ("behaviors.yaml", lambda d: d["behaviors"]["error_recovery"].update(weight=-1), "must be >= 0"),
        (
            "behaviors.yaml",
            lambda d: d["behaviors"]["error_recovery"]["scenarios"][0].update(expected_tools=["nope_tool"]),
            "unknown tool(s) nope_tool",
        ),
        ("prompts/user_tool.yaml", lambda d: d["answer"].update(inject_ids="yes"), "'inject_ids' must be bool"),
        (
            "prompts/environment.yaml",
            lambda d: d["variations"]["simple"].update(weight="heavy"),
            "'weight' must be float",
        ),
        ("agents.yaml", lambda d: d.update(schema_hash="0" * 64), "stale"),
        (
            "agents.yaml",
            lambda d: d["agents"]["vaultManager"]["tools"].pop("vaultManager_openNote"),
            "1 tool(s) missing",
        ),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path, registry, file, edit, message):
    shutil.copytree(CONFIG_DIR, tmp_path / "configs")
    path = tmp_path / "configs" / file
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "configs", registry)
    assert message in str(info.value) and file.split("/")[-1] in str(info.value)


def test_a_config_directory_that_is_not_yaml(tmp_path, registry):
    shutil.copytree(CONFIG_DIR, tmp_path / "configs")
    (tmp_path / "configs" / "behaviors.yaml").write_text("behaviors: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "configs", registry)


def test_ids_come_from_code_and_are_reproducible():
    ids = generate_ids(random.Random(1), 1767225600000)
    assert validate_session_id(ids.session_id) and validate_workspace_id(ids.workspace_id)
    # the session starts now; its workspace was created between an hour and half a year before
    assert ids.session_id.split("_")[1] == "1767225600000"
    age_ms = 1767225600000 - int(ids.workspace_id.split("_")[1])
    assert 3_600_000 <= age_ms < 180 * 86_400_000
    assert ids.session_id.split("_")[2] != ids.workspace_id.split("_")[2]
    assert seeded_ids(5, 42) == seeded_ids(5, 42) != seeded_ids(6, 42)
    # sessions start at any time of the year: their times share no long prefix a model could memorise
    times = [int(seeded_ids(5, i).session_id.split("_")[1]) for i in range(500)]
    assert all(EPOCH_MS <= t < EPOCH_MS + 365 * 86_400_000 for t in times)
    assert len({str(t)[:6] for t in times}) > 100
    assert len({seeded_ids(5, i).session_id for i in range(500)}) == 500
    assert not validate_session_id("session_123") and not validate_workspace_id("ws_garden")
    assert validate_workspace_id("default")


def test_inject_ids_only_writes_ids_into_existing_context_objects():
    ids = seeded_ids(1, 1)
    good = ToolCall(
        "vaultManager_createFolder",
        {"context": {"sessionId": "made-up", "workspaceId": "x", "subgoal": "s"}, "path": "A"},
    )
    missing = ToolCall("vaultManager_createFolder", {"path": "A"})
    broken = ToolCall("vaultManager_createFolder", {"context": "not an object", "path": "A"})
    fixed, untouched, still_broken = inject_ids([good, missing, broken], ids)
    assert fixed.arguments["context"] == {"sessionId": ids.session_id, "workspaceId": ids.workspace_id, "subgoal": "s"}
    assert untouched.arguments == {"path": "A"} and still_broken.arguments["context"] == "not an object"
