"""Every path-taking tool refuses paths that leave the vault, and nothing outside the vault changes.

A directory beside the vault is hashed before and after throwing the adversarial paths at every
path parameter of every tool; symlinks inside the vault point into it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from Tools.vault.executor import VaultExecutor
from Tools.vault.paths import VaultPathError, normalize

from vault_helpers import call

TRAVERSALS = [
    "..",
    "../",
    "../x.md",
    "../outside/secret.md",
    "../outside",
    "a/../../x.md",
    "a/b/../../../x",
    "./../x",
    "/../x",
    "/..",
    "a/./../../x",
    "....//..//x",
    "../../../../../../etc/passwd",
    "~/../x",
    "Notes/../../outside",
    "a/..",
    "../outside/new folder",
    "/../../outside/secret.md",
    "../outside/sub/deep.md",
    ".././../x",
    "a/b/c/../../../../x",
]
VARIANTS = [p.replace("/", "\\") for p in TRAVERSALS[:8]]  # Windows separators are separators too
ABSOLUTE = [
    "//etc/passwd",
    "///etc",
    "\\\\server\\share\\x.md",
    "C:\\Windows\\x.md",
    "c:/x.md",
    "Z:",
    "C:x.md",
    "//outside/secret.md",
]
BAD_BYTES = ["x\x00.md", "\x00", "a/\x00/b", "x\n.md", "\t", "x\r.md", "a/\x1b[31m.md"]
TOO_LONG = ["a" * 256, "a/" + "b" * 256, "é" * 200 + ".md", "x/" * 600]
SYMLINKS = ["link/secret.md", "link", "link/new.md", "link/sub/deep.md", "evil.md", "inner/escape/secret.md"]
ADVERSARIAL = TRAVERSALS + VARIANTS + ABSOLUTE + BAD_BYTES + TOO_LONG + SYMLINKS
SAFE_NOTE = "Safe.md"


def _slots():
    """(tool, arguments-builder) for every path parameter of every tool."""

    def op(kind, **extra):
        return lambda p: {"operations": [{"type": kind, "params": {"filePath": p, **extra}}]}

    return [
        ("vaultManager_createFolder", lambda p: {"path": p}),
        ("vaultManager_deleteFolder", lambda p: {"path": p, "recursive": True}),
        ("vaultManager_deleteNote", lambda p: {"path": p}),
        ("vaultManager_listDirectory", lambda p: {"path": p, "depth": 3}),
        ("vaultManager_openNote", lambda p: {"path": p}),
        ("vaultManager_moveNote", lambda p: {"path": p, "newPath": "moved.md", "overwrite": True}),
        ("vaultManager_moveNote", lambda p: {"path": SAFE_NOTE, "newPath": p, "overwrite": True}),
        ("vaultManager_moveFolder", lambda p: {"path": p, "newPath": "movedf", "overwrite": True}),
        ("vaultManager_moveFolder", lambda p: {"path": "Dir", "newPath": p, "overwrite": True}),
        ("vaultManager_editFolder", lambda p: {"path": p, "newPath": "renamed"}),
        ("vaultManager_editFolder", lambda p: {"path": "Dir", "newPath": p}),
        ("vaultManager_duplicateNote", lambda p: {"sourcePath": p, "targetPath": "dup.md", "overwrite": True}),
        ("vaultManager_duplicateNote", lambda p: {"sourcePath": SAFE_NOTE, "targetPath": p, "overwrite": True}),
        ("contentManager_readContent", lambda p: {"filePath": p}),
        ("contentManager_createContent", lambda p: {"filePath": p, "content": "pwned"}),
        ("contentManager_appendContent", lambda p: {"filePath": p, "content": "pwned"}),
        ("contentManager_prependContent", lambda p: {"filePath": p, "content": "pwned"}),
        ("contentManager_replaceContent", lambda p: {"filePath": p, "oldContent": "secret", "newContent": "pwned"}),
        ("contentManager_deleteContent", lambda p: {"filePath": p, "content": "secret"}),
        (
            "contentManager_replaceByLine",
            lambda p: {"filePath": p, "startLine": 1, "endLine": 1, "newContent": "pwned"},
        ),
        ("contentManager_findReplaceContent", lambda p: {"filePath": p, "findText": "secret", "replaceText": "pwned"}),
        ("contentManager_batchContent", op("create", content="pwned")),
        ("contentManager_batchContent", op("append", content="pwned")),
        ("vaultLibrarian_searchContent", lambda p: {"query": "secret", "paths": [p]}),
        ("vaultLibrarian_searchDirectory", lambda p: {"query": "secret", "paths": [p]}),
        (
            "memoryManager_createWorkspace",
            lambda p: {
                "name": "W",
                "rootFolder": p,
                "purpose": "p",
                "currentGoal": "g",
                "workflows": [{"name": "n", "when": "w", "steps": "s"}],
            },
        ),
        (
            "memoryManager_updateWorkspace",
            lambda p: {"workspaceId": "default", "fieldPath": "rootFolder", "newValue": p},
        ),
        ("agentManager_executePrompt", lambda p: {"prompt": "read it", "filepaths": [p]}),
    ]


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(folder) / name
            st = path.lstat()
            h.update(f"{path.relative_to(root)}|{st.st_mode}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            if path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def layout(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.md").write_text("top secret\n")
    (outside / "sub" / "deep.md").write_text("deep secret\n")
    vault = tmp_path / "vault"
    (vault / "Dir").mkdir(parents=True)
    (vault / "inner").mkdir()
    (vault / SAFE_NOTE).write_text("safe secret\n")
    (vault / "Dir" / "n.md").write_text("n\n")
    os.symlink(outside, vault / "link")
    os.symlink(outside / "secret.md", vault / "evil.md")
    os.symlink("../../outside", vault / "inner" / "escape")
    return vault, outside


def test_at_least_fifty_adversarial_paths():
    assert len(set(ADVERSARIAL)) >= 50


@pytest.mark.parametrize("raw", TRAVERSALS + VARIANTS + ABSOLUTE + BAD_BYTES + TOO_LONG)
def test_normalize_refuses(raw):
    with pytest.raises(VaultPathError):
        normalize(raw)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("/Notes/a.md", "Notes/a.md"),
        ("./a//b/", "a/b"),
        ("a\\b.md", "a/b.md"),
        ("/", ""),
        ("", ""),
        ("/etc/passwd", "etc/passwd"),
    ],
)
def test_normalize_keeps_the_plugin_forms(raw, expected):
    assert normalize(raw) == expected  # one leading '/' is the vault root, as normalizePath makes it


def test_nothing_outside_the_vault_changes(layout):
    vault, outside = layout
    before = _digest(outside)
    executor = VaultExecutor(vault, llm=lambda prompt, system, model: prompt)
    refused, leaks = 0, []
    for tool, build in _slots():
        for raw in ADVERSARIAL:
            (vault / SAFE_NOTE).write_text("safe secret\n")
            (vault / "Dir").mkdir(exist_ok=True)
            outcome = executor.execute_detailed(call(tool, **build(raw)))
            text = repr(outcome.envelope)
            if "top secret" in text or "deep secret" in text:
                leaks.append((tool, raw))
            nested = (
                outcome.envelope.get("data", {}).get("results", [])
                if isinstance(outcome.envelope.get("data"), dict)
                else []
            )
            if outcome.code == "E_PATH_OUTSIDE_VAULT" or (nested and not any(r["success"] for r in nested)):
                refused += 1
            else:
                assert not outcome.ok, f"{tool} accepted {raw!r}: {outcome.envelope}"
    assert not leaks, f"contents from outside the vault came back: {leaks[:5]}"
    assert _digest(outside) == before
    # with a generous margin: only argument-validation errors may come before the path check
    assert refused >= 0.95 * len(_slots()) * len(ADVERSARIAL)


def test_symlink_inside_the_vault_still_works(layout):
    vault, _ = layout
    os.symlink(vault / "Dir", vault / "alias")
    out = VaultExecutor(vault).execute(call("contentManager_readContent", filePath="alias/n.md"))
    assert out["success"] and out["data"]["content"] == "n\n"


BAD_IDS = [
    "/tmp/x",
    "C:\\x",
    "a/b",
    "a\\b",
    "..",
    "../x",
    ".hidden",
    "x\x00",
    "x\n",
    "\x1b",
    "a" * 129,
    "",
    " x",
    "é",
    "index",
    None,
    3,
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_store_ids_never_name_another_file(tmp_path, bad):
    """A workspace id that could leave .workspaces/ (or clash with the index) reaches no file: loading
    finds nothing, saving refuses, and only index.json and default.json ever exist in the store."""
    from Tools.vault.executor import ToolError
    from Tools.vault.memory import load_workspace, new_workspace, save_workspace
    from Tools.vault.paths import is_store_id

    vault = tmp_path / "vault"
    vault.mkdir()
    ex = VaultExecutor(vault)
    assert not is_store_id(bad) or bad == "index"
    assert load_workspace(ex, bad) is None
    with pytest.raises(ToolError):
        save_workspace(ex, new_workspace(ex, bad, "W", "/"))
    envelope = ex.execute(call("memoryManager_loadWorkspace", id=bad)) if isinstance(bad, str) and bad else None
    assert envelope is None or not envelope["success"]
    assert ex.execute(call("memoryManager_createSession", name="s", ctx={"workspaceId": bad}))["success"] is not (
        isinstance(bad, str) and bool(bad)
    )
    assert {p.name for p in tmp_path.rglob("*") if p.is_file()} <= {"index.json", "default.json"}


def test_a_store_file_whose_id_points_elsewhere_is_saved_back_to_itself(tmp_path):
    vault = tmp_path / "vault"
    (vault / ".workspaces").mkdir(parents=True)
    target = tmp_path / "pwned"
    (vault / ".workspaces" / "evil.json").write_text(f'{{"id": "{target}", "name": "Evil", "sessions": {{}}}}')
    ex = VaultExecutor(vault)
    assert ex.execute(call("memoryManager_loadWorkspace", id="Evil"))["success"]
    assert ex.execute(call("memoryManager_createSession", name="s", ctx={"workspaceId": "evil"}))["success"]
    assert not list(tmp_path.glob("pwned*"))
    assert '"id": "evil"' in (vault / ".workspaces" / "evil.json").read_text()
