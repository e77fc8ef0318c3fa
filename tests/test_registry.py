import json

from Tools.schema.registry import ToolRegistry


def codes(findings):
    return sorted(f.code for f in findings)


def test_registry_holds_the_plugins_46_modes_plus_get_tools(registry):
    assert len(registry) == 47
    assert {t.name for t in registry.tools.values() if t.hidden} == {
        "commandManager_executeCommand",
        "commandManager_listCommands",
    }
    assert len(registry.visible()) == 45
    assert {a: len(n) for a, n in registry.agents().items()} == {
        "agentManager": 10,
        "commandManager": 2,
        "contentManager": 9,
        "memoryManager": 12,
        "vaultLibrarian": 4,
        "vaultManager": 9,
        "meta": 1,
    }


def test_plugin_schema_bugs_are_fixed(registry):
    for tool in registry.tools.values():
        params = tool.parameters
        assert params["required"][0] == "context" and list(params["properties"])[0] == "context", tool.name
        assert params["additionalProperties"] is False
        if "sessionId" not in params["properties"]:
            assert "sessionId" not in params["required"], tool.name
    load_session = registry.tools["memoryManager_loadSession"].parameters["properties"]
    assert "createContinuationSession" in load_session and "generateContextTrace" not in load_session
    assert "tools" in registry.tools["get_tools"].parameters["properties"]


def test_argument_validation_codes(registry):
    from factories import context

    ok = {"context": context(), "path": "Projects"}
    assert registry.validate_arguments("vaultManager_createFolder", ok) == []
    assert codes(registry.validate_arguments("vaultManager_createFolder", {"context": context()})) == [
        "E_MISSING_REQUIRED_ARG"
    ]
    assert codes(registry.validate_arguments("vaultManager_createFolder", {**ok, "colour": "red"})) == [
        "E_UNEXPECTED_ARG"
    ]
    assert codes(registry.validate_arguments("vaultManager_createFolder", {**ok, "path": 5})) == ["E_ARG_TYPE"]
    assert codes(
        registry.validate_arguments(
            "vaultLibrarian_searchDirectory",
            {"context": context(), "query": "x", "paths": ["/"], "searchType": "pictures"},
        )
    ) == ["E_ARG_ENUM"]
    assert codes(
        registry.validate_arguments("vaultLibrarian_searchContent", {"context": context(), "query": "x", "limit": 500})
    ) == ["E_ARG_VALUE"]


def test_schema_hash_is_canonical_and_changes_with_content(registry):
    document = json.loads(registry.path.read_text())
    reordered = {"tools": [dict(reversed(list(t.items()))) for t in document["tools"]]}
    assert ToolRegistry(reordered).schema_hash == registry.schema_hash
    document["tools"][0]["description"] += "!"
    assert ToolRegistry(document).schema_hash != registry.schema_hash


def test_sync_script_regenerates_the_committed_file(reference_dir, tmp_path, run, registry):
    out = tmp_path / "tool_schemas.json"
    result = run(
        "Tools/sync_tool_schemas.py",
        "--from",
        reference_dir / "schemas" / "claudesidian_modes_2025-12-05.json",
        "-o",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert ToolRegistry(json.loads(out.read_text())).schema_hash == registry.schema_hash
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = run("Tools/sync_tool_schemas.py", "--from", bad, "-o", tmp_path / "x.json")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "error:" in result.stderr
