import json

from factories import call, record

from Tools.analyze_tool_coverage import analyze


def test_counts_per_tool_format_and_label(tmp_path, registry):
    path = tmp_path / "d.jsonl"
    rows = [
        record(call(), fmt="openai"),
        record(call(), fmt="hermes", label=False),
        record(call(), fmt="text", label=None),
        record(call("vaultManager_fly", path="x"), fmt="mistral"),
        record(content="Which folder do you mean?"),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{bad\n")
    report = analyze([path], registry)
    folder = report["agents"]["vaultManager"]["vaultManager_createFolder"]
    assert folder == {
        "examples": 3,
        "calls": 3,
        "positives": 1,
        "negatives": 1,
        "unlabeled": 1,
        "formats": {"openai": 1, "hermes": 1, "text": 1},
    }
    assert report["unknown_tools"]["vaultManager_fly"]["formats"] == {"mistral": 1}
    assert report["unreadable_lines"] == 1 and report["records"] == 5 and report["records_with_calls"] == 4
    assert (
        "vaultManager_createFolder" not in report["never_covered"]
        and "contentManager_readContent" in report["never_covered"]
    )
    assert "commandManager_executeCommand" not in report["never_covered"]  # hidden tools are not expected


def test_cli_on_reference_formats(reference_dir, run):
    # the earlier coverage script crashed on OpenAI-format data
    result = run(
        "Tools/analyze_tool_coverage.py",
        reference_dir / "datasets" / "tools_contentManager_v1.4.jsonl",
        reference_dir / "datasets" / "syngen_toolset_v1.0.0_claude_partial.jsonl",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["formats"]["openai"] == 1201 and report["formats"]["text"] == 2893
    assert run("Tools/analyze_tool_coverage.py", "nope.jsonl").returncode == 2


def test_text_report_names_agents_and_uncovered_tools(run):
    result = run("Tools/analyze_tool_coverage.py", "Datasets/sample")
    assert result.returncode == 0, result.stderr
    assert "contentManager" in result.stdout and "Never covered" in result.stdout and "appendContent" in result.stdout
