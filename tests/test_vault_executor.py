"""The vault executor against a sandbox copy of Datasets/vault_template: each agent's modes,
the plugin's surprising behaviours, strict semantics, and errors that never raise."""

from __future__ import annotations

import json

import pytest

from Tools.vault.content import js_replace
from Tools.vault.executor import VaultExecutor
from Tools.vault.sandbox import VaultSandbox

from vault_helpers import call

MEETING = "Projects/Website Redesign/Meeting 2026-01-12.md"


@pytest.fixture
def box():
    with VaultSandbox(seed=1) as sandbox:
        yield sandbox


def run(box, tool, /, **args):
    return box.execute(call(tool, **args))


def test_importing_the_package_fills_the_handler_table():
    """No executor needed: a fresh interpreter that imports Tools.vault has a handler for every tool in
    Tools/tool_schemas.json; the handler modules never import the executor (no import circle)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import json, Tools.vault; from Tools.schema.registry import load_registry; "
        "print(json.dumps([sorted(Tools.vault.HANDLERS), sorted(load_registry().tools)]))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    handlers, tools = json.loads(run.stdout)
    assert handlers == tools and len(tools) > 40, run.stderr
    vault = Path(__file__).resolve().parents[1] / "Tools" / "vault"
    for name in ("handlers", "agents", "content", "files", "memory", "search", "patterns"):
        imported = {
            node.module
            for node in ast.walk(ast.parse((vault / f"{name}.py").read_text()))
            if isinstance(node, ast.ImportFrom)
        }
        assert not imported & {"executor", "Tools.vault.executor"}, name


# -- vaultManager ------------------------------------------------------------------------------
def test_folder_lifecycle(box):
    assert run(box, "vaultManager_createFolder", path="Archive/2026/Q1")["data"] == {
        "path": "Archive/2026/Q1",
        "existed": False,
    }
    assert run(box, "vaultManager_createFolder", path="Archive/2026/Q1")["data"]["existed"] is True
    assert "Path exists but is not a folder" in run(box, "vaultManager_createFolder", path="Welcome.md")["error"]
    moved = run(box, "vaultManager_moveFolder", path="Archive/2026", newPath="Old/2026")
    assert moved["success"] and box.exists("Old/2026/Q1") and not box.exists("Archive/2026")
    assert "Folder is not empty" in run(box, "vaultManager_deleteFolder", path="Old")["error"]
    assert run(box, "vaultManager_deleteFolder", path="Old", recursive=True)["success"]
    assert run(box, "vaultManager_editFolder", path="Recipes", newPath="Cooking")["success"]
    assert box.exists("Cooking/Pancakes.md")
    assert box.changes().deleted[:1] == ["Recipes/"]


def test_notes_move_duplicate_delete(box):
    out = run(box, "vaultManager_moveNote", path="Inbox/Ideas.md", newPath="Archive/2025/Ideas.md")
    assert out["success"] and out["newPath"] == "Archive/2025/Ideas.md" and "data" not in out  # a flat result
    assert (
        "Destination already exists"
        in run(box, "vaultManager_moveNote", path="Welcome.md", newPath="Archive/2025/Ideas.md")["error"]
    )
    dup = run(box, "vaultManager_duplicateNote", sourcePath="Welcome.md", targetPath="Welcome.md", autoIncrement=True)
    assert dup["targetPath"] == "Welcome copy.md" and dup["wasAutoIncremented"]
    dup2 = run(box, "vaultManager_duplicateNote", sourcePath="Welcome.md", targetPath="Welcome.md", autoIncrement=True)
    assert dup2["targetPath"] == "Welcome copy 2.md"
    assert (
        "Target file already exists"
        in run(box, "vaultManager_duplicateNote", sourcePath="Welcome.md", targetPath="Welcome copy.md")["error"]
    )
    assert run(box, "vaultManager_deleteNote", path="Welcome copy.md")["success"]
    gone = run(box, "vaultManager_deleteNote", path="Welcome copy.md")
    assert gone == {**gone, "success": False, "error": "Failed to delete note: File not found: Welcome copy.md"}
    assert set(box.changes().created) == {"Archive/", "Archive/2025/", "Archive/2025/Ideas.md", "Welcome copy 2.md"} - {
        "Archive/"
    }


def test_list_directory_and_open_note(box):
    root = run(box, "vaultManager_listDirectory", path="/")["data"]
    names = [f["name"] for f in root["folders"]]
    assert names == sorted(names) and ".workspaces" not in names and ".obsidian" not in names
    deep = run(box, "vaultManager_listDirectory", path="Projects", depth=1, filesOnly=True, filter="over*")["data"]
    assert {f["path"] for f in deep["files"]} == {
        "Projects/Website Redesign/Overview.md",
        "Projects/Home Lab/Overview.md",
    }
    assert deep["summary"]["folderCount"] == 0
    globbed = run(box, "vaultManager_listDirectory", path="Projects", depth=1, filter="*view.MD")[
        "data"
    ]  # not a regex: a glob
    assert {f["path"] for f in globbed["files"]} == {f["path"] for f in deep["files"]}
    assert "Folder not found at path: Nope" in run(box, "vaultManager_listDirectory", path="Nope")["error"]
    assert run(box, "vaultManager_openNote", path="Welcome")["data"]["path"] == "Welcome.md"
    assert run(box, "vaultManager_openNote", path="Missing")["error"] == "Note not found at path: Missing.md"
    assert not box.changes()


# -- contentManager ----------------------------------------------------------------------------
def test_create_read_append_without_newline(box):
    assert run(box, "contentManager_createContent", filePath="New/Deep/note.md", content="line1")["success"]
    assert (
        "File already exists: New/Deep/note.md"
        in run(box, "contentManager_createContent", filePath="New/Deep/note.md", content="x")["error"]
    )
    appended = run(box, "contentManager_appendContent", filePath="New/Deep/note.md", content="line2")["data"]
    assert appended == {"filePath": "New/Deep/note.md", "appendedLength": 5, "totalLength": 10}
    assert box.read("New/Deep/note.md") == "line1line2"  # the plugin adds no newline
    run(box, "contentManager_prependContent", filePath="New/Deep/note.md", content="top\n")
    read = run(box, "contentManager_readContent", filePath="New/Deep/note.md", includeLineNumbers=True)["data"]
    assert read["content"] == "1: top\n2: line1line2"
    ranged = run(box, "contentManager_readContent", filePath=MEETING, offset=5, limit=3)["data"]
    assert (ranged["startLine"], ranged["endLine"]) == (5, 7) and ranged["content"].startswith("# Kickoff")
    assert (
        run(box, "contentManager_readContent", filePath="Notes/alpha")["error"]
        == "Error reading content: Error reading file: File not found: Notes/alpha"
    )  # no .md is added
    missing = run(box, "contentManager_appendContent", filePath="nope.md", content="x")
    assert missing["error"] == "Error appending content: Error appending to file: File not found: nope.md"
    assert not box.exists("nope.md")


def test_replace_is_global_fuzzy_and_expands_dollar_patterns(box):
    run(box, "contentManager_createContent", filePath="r.md", content="foo and foo")
    assert (
        run(box, "contentManager_replaceContent", filePath="r.md", oldContent="foo", newContent="[$&]")["data"][
            "replacements"
        ]
        == 2
    )
    assert box.read("r.md") == "[foo] and [foo]"
    run(box, "contentManager_createContent", filePath="fox.md", content="The quick brown fox jumps over the lazy dog.")
    fuzzy = run(box, "contentManager_replaceContent", filePath="fox.md", oldContent="green cat", newContent="red hen")
    assert fuzzy["data"]["replacements"] == 1
    assert box.read("fox.md") == "The quick red hen jumps over the lazy dog."  # 0.95 lets green cat hit brown fox
    long = run(box, "contentManager_replaceContent", filePath="fox.md", oldContent="x" * 40, newContent="y")
    assert long["error"] == "Error replacing content: Pattern too long for this browser."
    strict = VaultExecutor(box.root, strict=True)
    refused = strict.execute(
        call("contentManager_replaceContent", filePath="fox.md", oldContent="blue dog", newContent="z")
    )
    assert not refused["success"] and "exact match only" in refused["error"]
    strict.execute(
        call("contentManager_findReplaceContent", filePath="r.md", findText="[foo]", replaceText="$&!", replaceAll=True)
    )
    assert box.read("r.md") == "$&! and $&!"


def test_find_replace_first_only_and_delete_and_lines(box):
    run(box, "contentManager_createContent", filePath="f.md", content="Cat cat cat\nb\nc\nd")
    assert (
        run(box, "contentManager_findReplaceContent", filePath="f.md", findText="cat", replaceText="dog")["data"][
            "replacements"
        ]
        == 1
    )
    assert box.read("f.md").startswith("Cat dog cat")
    zero = run(box, "contentManager_findReplaceContent", filePath="f.md", findText="zebra", replaceText="x")
    assert zero["success"] and zero["data"]["replacements"] == 0
    run(
        box,
        "contentManager_findReplaceContent",
        filePath="f.md",
        findText="cat",
        replaceText="$$",
        caseSensitive=False,
        replaceAll=True,
        wholeWord=True,
    )
    assert box.read("f.md").startswith("$ dog $")
    assert (
        run(box, "contentManager_replaceByLine", filePath="f.md", startLine=2, endLine=99, newContent="X\nY")["data"][
            "linesReplaced"
        ]
        == 3
    )
    assert box.read("f.md") == "$ dog $\nX\nY"
    assert (
        run(box, "contentManager_replaceByLine", filePath="f.md", startLine=9, endLine=10, newContent="z")["error"]
        == "Error replacing lines: Start line cannot be greater than end line"
    )
    assert run(box, "contentManager_deleteContent", filePath="f.md", content="X\n")["data"]["deletions"] == 1
    assert box.read("f.md") == "$ dog $\nY"


def test_batch_content_validates_up_front_and_runs_without_rollback(box):
    bad = run(
        box,
        "contentManager_batchContent",
        operations=[
            {"type": "create", "params": {"filePath": "a.md", "content": "A"}},
            {"type": "append", "params": {"filePath": "a.md", "content": ""}},
        ],
    )
    assert not bad["success"] and "append requires content" in bad["error"] and not box.exists("a.md")
    out = run(
        box,
        "contentManager_batchContent",
        operations=[
            {"type": "create", "params": {"filePath": "a.md", "content": "A"}},
            {"type": "read", "params": {"filePath": "missing.md"}},
            {"type": "append", "params": {"filePath": "a.md", "content": "B"}},
        ],
    )
    assert out["success"] and [r["success"] for r in out["data"]["results"]] == [True, False, True]
    assert box.read("a.md") == "AB"


# -- vaultLibrarian ----------------------------------------------------------------------------
def test_search_content_and_directory(box):
    out = run(box, "vaultLibrarian_searchContent", query="quick brown fox")
    top = out["results"][0]
    assert top["filePath"] == MEETING and top["searchMethod"] == "keyword" and top["score"] == 0.9
    assert top["frontmatter"]["attendees"] == ["Ana", "Ben"] and "quick brown fox" in top["content"]
    scoped = run(box, "vaultLibrarian_searchContent", query="project", paths=["Projects/Home Lab"])["results"]
    assert scoped and all(r["filePath"].startswith("Projects/Home Lab") for r in scoped)
    assert (
        run(box, "vaultLibrarian_searchContent", query=" ")["error"]
        == "Query parameter is required and cannot be empty"
    )
    found = run(box, "vaultLibrarian_searchDirectory", query="overview", paths=["/"], searchType="files")["results"]
    assert {r["path"] for r in found[:2]} == {"Projects/Website Redesign/Overview.md", "Projects/Home Lab/Overview.md"}
    assert run(box, "vaultLibrarian_searchDirectory", query="x", paths=["Nope"])["results"] == []
    globbed = run(box, "vaultLibrarian_searchDirectory", query="2026", paths=["Daily/*.md"])["results"]
    assert len(globbed) == 3


def test_search_memory_and_batch(box):
    mem = run(box, "vaultLibrarian_searchMemory", query="rag", workspaceId="global-workspace")["data"]["results"]
    assert {"session", "state"} <= {r["type"] for r in mem}
    batch = run(box, "vaultLibrarian_batch", searches=[{"query": "llm", "prioritizeCategories": ["tags"]}])["data"][
        "results"
    ][0]
    assert list(batch["categories"])[0] == "tags" and len(batch["categories"]["tags"]) == 2


# -- memoryManager -----------------------------------------------------------------------------
def test_workspace_session_state_round_trip(box):
    made = run(
        box,
        "memoryManager_createWorkspace",
        name="Garden",
        rootFolder="Garden",
        purpose="Plan the garden",
        currentGoal="Pick plants",
        workflows=[{"name": "Weekly", "when": "Sundays", "steps": "Water\nWeed"}],
    )
    ws = made["data"]["workspaceId"]
    assert (
        box.exists("Garden")
        and json.loads(box.read(f".workspaces/{ws}.json"))["context"]["workflows"][0]["steps"] == "Water\nWeed"
    )
    assert "not found" in run(box, "memoryManager_loadWorkspace", id="Nope")["error"]
    loaded = run(box, "memoryManager_loadWorkspace", id="garden")  # by name, case-insensitive
    assert loaded["workspaceContext"]["workspaceId"] == ws and loaded["workspaceId"] == ws
    # the session is now bound to the workspace: createSession without a workspaceId lands there
    session = run(box, "memoryManager_createSession", name="Spring", ctx={"workspaceId": ""})["data"]
    assert session["workspaceId"] == ws
    names = [s["name"] for s in run(box, "memoryManager_listSessions", ctx={"workspaceId": ws})["data"]["sessions"]]
    assert names == ["Spring"]
    state = run(
        box,
        "memoryManager_createState",
        name="Halfway",
        conversationContext="c",
        activeTask="t",
        activeFiles=["Garden"],
        nextSteps=["n"],
        reasoning="r",
        tags=["a"],
        ctx={"workspaceId": ws},
    )["data"]
    listed = run(box, "memoryManager_listStates", ctx={"workspaceId": ws})["data"]["states"]
    assert [s["id"] for s in listed] == [state["stateId"]]
    upd = run(
        box, "memoryManager_updateState", stateId="Halfway", addTags=["b"], removeTags=["a"], ctx={"workspaceId": ws}
    )
    assert upd["data"]["tags"] == ["b"]
    restored = run(box, "memoryManager_loadState", stateId=state["stateId"], ctx={"workspaceId": ws})["data"]
    assert restored["restoredContext"]["activeTask"] == "t"
    changed = run(
        box, "memoryManager_updateWorkspace", workspaceId=ws, fieldPath="context.workflows[0].name", newValue="Daily"
    )
    assert changed["data"]["oldValue"] == "Weekly" and changed["data"]["updated"]
    assert (
        "Invalid field path"
        in run(box, "memoryManager_updateWorkspace", workspaceId=ws, fieldPath="a..b", newValue=1)["error"]
    )
    assert (
        run(box, "memoryManager_updateSession", ctx={"workspaceId": ws})["error"] == "No updates provided for session"
    )
    listed_ws = run(box, "memoryManager_listWorkspaces", sortBy="name", order="asc")["data"]["workspaces"]
    assert [w["name"] for w in listed_ws] == ["Garden", "Research", "Website Redesign"]


def test_load_session_creates_continuation(box):
    ws = run(box, "memoryManager_listWorkspaces", sortBy="name", order="asc")["data"]["workspaces"][0]["id"]
    sid = run(box, "memoryManager_listSessions", ctx={"workspaceId": ws})["data"]["sessions"][0]["id"]
    out = run(box, "memoryManager_loadSession", sessionId=sid, ctx={"workspaceId": ws})["data"]
    assert out["session"]["id"] == sid and out["newSessionId"] != sid
    stored = json.loads(box.read(f".workspaces/{ws}.json"))["sessions"][out["newSessionId"]]
    assert stored["name"].startswith("Continuation of") and [t["type"] for t in stored["memoryTraces"].values()] == [
        "session_restoration"
    ]


# -- agentManager, commandManager, get_tools ---------------------------------------------------
def test_agents_crud_and_provider_errors(box):
    listed = run(box, "agentManager_listAgents", enabledOnly=True)["data"]
    assert [p["name"] for p in listed["prompts"]] == ["Summarizer"] and listed["totalCount"] == 2
    made = run(box, "agentManager_createAgent", name="Critic", description="d", prompt="Be critical.")["data"]
    assert made["id"].startswith("prompt_")
    assert (
        run(box, "agentManager_createAgent", name="critic", description="d", prompt="p")["error"]
        == 'A prompt with the name "critic" already exists'
    )
    assert run(box, "agentManager_toggleAgent", id="Critic")["data"]["isEnabled"] is False
    assert run(box, "agentManager_deleteAgent", id=made["id"])["success"]
    assert "not found" in run(box, "agentManager_getAgent", id=made["id"])["error"]
    outcome = box.execute_detailed(call("agentManager_executePrompt", prompt="hi"))
    assert outcome.code == "E_PROVIDER_REQUIRED" and "needs a model provider" in outcome.envelope["error"]
    with_llm = VaultExecutor(box.root, llm=lambda prompt, system, model: f"[{system}] {prompt[-2:]}")
    out = with_llm.execute(
        call(
            "agentManager_executePrompt",
            agent="Summarizer",
            prompt="hi",
            action={"type": "create", "targetPath": "Out.md"},
        )
    )
    assert (
        out["data"]["response"] == "[You summarise notes in three bullet points.] hi"
        and box.read("Out.md") == out["data"]["response"]
    )
    hidden = box.execute_detailed(call("commandManager_listCommands"))
    assert hidden.code == "E_HIDDEN_TOOL" and not hidden.envelope["success"]


def test_get_tools(box):
    overview = run(box, "get_tools", tools=[])["data"]["agents"]
    assert len(overview["contentManager"]) == 9 and "commandManager" not in overview
    schemas = run(box, "get_tools", tools=["contentManager_createContent", "contentManager_createNote"])["data"]
    assert schemas["notFound"] == ["contentManager_createNote"]
    assert "context" not in schemas["tools"][0]["inputSchema"]["properties"]
    assert "No valid tools found" in run(box, "get_tools", tools=["contentManager_createNote"])["error"]


# -- errors are results, never exceptions ------------------------------------------------------
@pytest.mark.parametrize(
    "bad, code",
    [
        ({"name": "vaultManager_teleport", "arguments": {}}, "E_UNKNOWN_TOOL"),
        ({"name": "", "arguments": {}}, "E_EMPTY_TOOL_NAME"),
        ({"name": "vaultManager_createFolder", "arguments": "nope"}, "E_MALFORMED_ARGUMENTS"),
        ({"name": "vaultManager_createFolder", "arguments": None}, "E_MALFORMED_ARGUMENTS"),
        (call("vaultManager_createFolder"), "E_MISSING_REQUIRED_ARG"),
        (call("vaultManager_createFolder", path=42), "E_ARG_TYPE"),
        (call("contentManager_readContent", filePath=["a"]), "E_ARG_TYPE"),
        (call("vaultManager_openNote", path="Welcome", mode="fullscreen"), "E_ARG_ENUM"),
        ({"name": "vaultManager_createFolder", "arguments": {"path": "x"}}, "E_MISSING_REQUIRED_ARG"),
        ({"name": "vaultManager_createFolder", "arguments": {"context": {}, "path": "x"}}, "E_CONTEXT_FIELD_MISSING"),
        (call("contentManager_batchContent", operations=[{"type": "explode", "params": {}}]), "E_ARG_ENUM"),
        (call("memoryManager_updateWorkspace", workspaceId="../../etc", fieldPath="name", newValue=1), "E_EXEC_FAILED"),
    ],
)
def test_bad_calls_give_error_results(box, bad, code):
    outcome = box.execute_detailed(bad)
    assert outcome.code == code and outcome.envelope["success"] is False and outcome.envelope["error"]
    assert not box.changes()


def test_strict_refuses_unexpected_arguments(box):
    args = call("vaultManager_createFolder", path="X", colour="red")
    assert box.execute(args)["success"]  # the plugin ignores unknown parameters
    assert VaultExecutor(box.root, strict=True).execute_detailed(args).code == "E_UNEXPECTED_ARG"


def test_js_replace_patterns():
    assert js_replace("a-b", [(1, 2)], "[$`|$'|$$|$1]") == "a[a|b|$|$1]b"
    assert js_replace("a-b", [(1, 2)], "$&", literal=True) == "a$&b"


def test_trace_calls_records_tool_call_traces(box):
    tracing = VaultExecutor(box.root, trace_calls=True)
    tracing.execute(call("vaultManager_createFolder", path="T"))
    store = json.loads(box.read(".workspaces/default.json"))
    traces = [t for s in store["sessions"].values() for t in s["memoryTraces"].values()]
    assert [t["metadata"]["tool"] for t in traces] == ["vaultManager_createFolder"]


def test_strict_append_and_prepend_keep_lines_apart(box):
    strict = VaultExecutor(box.root, strict=True)
    run(box, "contentManager_createContent", filePath="s.md", content="one")
    strict.execute(call("contentManager_appendContent", filePath="s.md", content="two"))
    strict.execute(call("contentManager_prependContent", filePath="s.md", content="zero"))
    strict.execute(call("contentManager_appendContent", filePath="s.md", content="\nthree"))
    assert box.read("s.md") == "zero\none\ntwo\nthree"
