"""An adversarial vault, driven through the executor CLI and the MCP server (a real stdio subprocess
under the official SDK client): a poisoned memory store, symlinks to outside files and to
/etc/passwd, dangling links, a FIFO, and patterns that backtrack for ever. The folder around the
vault is hashed before and after: nothing outside changes, and no outside byte reaches an answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from Tools.mcp_client import server_command
from Tools.vault.sandbox import DEFAULT_TEMPLATE

from vault_helpers import call

SECRET = "TOP-SECRET"  # searched for: it is in the query echo, so leaks are found by BODY
BODY = "body-of-a-file-outside-the-vault"
PASSWD = Path("/etc/passwd")
LONG_A = "a" * 40


def _world(tmp_path: Path) -> tuple[Path, Path]:
    """tmp/world/{outside,vault}: the vault is a template copy full of traps pointing around it."""
    world = tmp_path / "world"
    outside = world / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.md").write_text(f"{SECRET} {BODY} (a note)\n")
    (outside / "dir" / "leak.md").write_text(f"{SECRET} {BODY} (in a folder)\n")
    vault = shutil.copytree(DEFAULT_TEMPLATE, world / "vault")
    os.symlink(outside / "secret.md", vault / "Projects" / "secret.md")  # a note that is a link out
    os.symlink(outside / "dir", vault / "Linked")  # a folder that is a link out
    if PASSWD.is_file():
        os.symlink(PASSWD, vault / "passwd.md")
    os.symlink(vault / ".workspaces" / "default.json", vault / "store.md")  # inside, but into the store
    os.symlink(vault / "nowhere.md", vault / "Projects" / "dangling.md")  # dangling, inside
    os.symlink(outside / "gone.md", vault / "dangling-out.md")  # dangling, outside
    os.mkfifo(vault / "pipe.md")  # a read would block for ever
    (vault / f"{LONG_A}.md").write_text("a note with a long name\n")
    # a store file written behind the tools' back, whose id names a file outside the vault
    (vault / ".workspaces" / "evil.json").write_text(
        json.dumps({"id": str(outside / "pwned"), "name": "Evil", "rootFolder": "../outside", "sessions": {}})
    )
    return world, vault


def _digest(world: Path, skip: Path) -> dict[str, str]:
    """Every path in world outside skip, with a content digest (links by target, not followed)."""
    state = {}
    for folder, dirs, files in os.walk(world):
        base = Path(folder)
        if base == skip or skip in base.parents:
            continue
        for name in dirs + files:
            path = base / name
            if path == skip:
                continue
            rel = path.relative_to(world).as_posix()
            state[rel] = (
                os.readlink(path)
                if path.is_symlink()
                else "dir"
                if path.is_dir()
                else hashlib.sha256(path.read_bytes()).hexdigest()
            )
    return state


def _calls(outside: Path) -> list[tuple[dict, bool, str]]:
    """(call, succeeds, text the error or result must contain)."""
    evil = json.dumps({"id": str(outside / "pwned"), "name": "Pwn", "rootFolder": "/", "sessions": {}})
    refused = "data folder"
    return [
        # the memory store is not reachable through content or file tools
        (call("contentManager_createContent", filePath=".workspaces/pwn.json", content=evil), False, refused),
        (call("contentManager_createContent", filePath="/.Workspaces/pwn.json", content=evil), False, refused),
        (call("vaultManager_moveNote", path="Welcome.md", newPath=".workspaces/pwn.json"), False, refused),
        (call("vaultManager_editFolder", path="Inbox", newPath=".workspaces"), False, refused),
        (call("contentManager_readContent", filePath=".obsidian/plugins/claudesidian-mcp/data.json"), False, refused),
        (call("contentManager_readContent", filePath="store.md"), False, refused),
        (
            call(
                "memoryManager_createWorkspace",
                name="W",
                rootFolder=".workspaces",
                purpose="p",
                currentGoal="g",
                workflows=[{"name": "n", "when": "w", "steps": "s"}],
            ),
            False,
            refused,
        ),
        # ids from the store or from arguments never name a file elsewhere
        (call("memoryManager_loadWorkspace", id="evil"), True, "Evil"),
        (call("memoryManager_loadWorkspace", id=str(outside / "pwned")), False, "not found"),
        (call("memoryManager_listSessions", ctx={"workspaceId": "../outside/pwned"}), False, "Workspace not found"),
        (
            call("memoryManager_createSession", name="s", ctx={"workspaceId": "/etc/passwd"}),
            False,
            "Workspace not found",
        ),
        # reads, listings and searches do not follow links out, and skip dangling ones
        (call("contentManager_readContent", filePath="Projects/secret.md"), False, "outside the vault"),
        (call("contentManager_readContent", filePath="pipe.md"), False, "Not a file"),
        (call("vaultLibrarian_searchContent", query=SECRET), True, '"results": []'),
        (call("vaultLibrarian_searchContent", query="secret"), True, '"results"'),
        (call("vaultLibrarian_searchContent", query="root", paths=["/"]), True, '"results"'),
        (call("vaultLibrarian_searchDirectory", query="secret", paths=["/"]), True, '"results"'),
        (call("vaultLibrarian_searchDirectory", query="leak", paths=["**/*.md"]), True, '"results"'),
        (call("vaultLibrarian_searchDirectory", query="dangling", paths=["Projects"]), True, '"results"'),
        (
            call("vaultLibrarian_batch", searches=[{"query": SECRET}, {"query": "passwd"}, {"query": "leak"}]),
            True,
            "categories",
        ),
        (call("vaultManager_listDirectory", path="/", depth=5), True, '"folders"'),
        (call("vaultManager_listDirectory", path="Linked"), False, "outside the vault"),
        # user regexes: the pattern finishes at once; one that backtracks for ever is cut at the budget
        (call("vaultLibrarian_searchDirectory", query="a", paths=["/"], pattern="^(a+)+$"), True, '"results": []'),
        (call("vaultLibrarian_searchDirectory", query="a", paths=["/"], pattern=f"^{LONG_A}"), True, LONG_A),
        (call("vaultLibrarian_searchDirectory", query="a", paths=["/"], pattern="(a|aa)+c"), False, "took too long"),
        (call("vaultManager_listDirectory", path="/", filter="(a|aa)+c"), False, "took too long"),
        (
            call("vaultLibrarian_searchDirectory", query="a", paths=["/"], pattern="((a{1000}){1000}){1000}"),
            False,
            "counted repeats",
        ),
    ]


def _check(answers: list[tuple[dict, str, float]], calls, vault: Path) -> None:
    passwd = PASSWD.read_text().splitlines()[0] if PASSWD.is_file() else None
    for (c, succeeds, expected), (envelope, text, seconds) in zip(calls, answers):
        what = f"{c['name']} {json.dumps(c['arguments'])[:200]}"
        assert envelope["success"] is succeeds, f"{what}: {text[:400]}"
        assert expected in text, f"{what}: {text[:400]}"
        assert "Internal error" not in text, what
        assert BODY not in text and (passwd is None or passwd not in text), f"leak: {what}"
        assert seconds < 5, f"{what} took {seconds:.1f} s"
        if c["name"].startswith(("vaultLibrarian_search", "vaultManager_list")) and succeeds:
            for name in (
                'secret.md"',
                'Linked"',
                'passwd.md"',
                'store.md"',
                'dangling.md"',
                'dangling-out.md"',
                'pipe.md"',
            ):
                assert name not in text, f"{what} lists {name}"
    stored = json.loads((vault / ".workspaces" / "evil.json").read_text())
    assert stored["id"] == "evil" and not list(vault.parent.glob("outside/pwned*"))
    assert not (vault / ".workspaces" / "pwn.json").exists()


@pytest.fixture
def world(tmp_path):
    world, vault = _world(tmp_path)
    before = _digest(world, vault)
    yield world, vault
    assert _digest(world, vault) == before  # nothing outside the vault was created, changed or removed


def test_adversarial_vault_through_the_cli(world):
    world, vault = world
    calls = _calls(world / "outside")
    answers = []
    for c, _, _ in calls:
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "Tools/mcp_executor.py", "--vault", str(vault), "--call", json.dumps(c)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode in (0, 1) and not result.stderr, result.stderr
        answers.append((json.loads(result.stdout), result.stdout, time.monotonic() - start))
        assert result.returncode == (0 if answers[-1][0]["success"] else 1)
    _check(answers, calls, vault)


def test_adversarial_vault_through_the_mcp_server(world):
    pytest.importorskip("mcp", reason="the mcp package is not installed (pip install 'claudesidian-toolkit[mcp]')")
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    world, vault = world
    calls = _calls(world / "outside")

    async def scenario():
        command = server_command(vault)
        params = StdioServerParameters(command=command[0], args=command[1:])
        async with stdio_client(params) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()

            async def one(c):
                start = time.monotonic()
                result = await session.call_tool(c["name"], c["arguments"])
                text = result.content[0].text
                return json.loads(text), text, time.monotonic() - start

            answers = [await one(c) for c, _, _ in calls]
            # a call stuck in a runaway pattern does not hold up the next one for longer than its budget
            slow = call("vaultLibrarian_searchDirectory", query="a", paths=["/"], pattern="(a|aa)+c")
            quick = call("vaultManager_listDirectory", path="Projects")
            start = time.monotonic()
            both = await asyncio.gather(one(slow), one(quick))
            return answers, both, time.monotonic() - start

    answers, (slow, quick), seconds = asyncio.run(asyncio.wait_for(scenario(), 120))
    _check(answers, calls, vault)
    assert not slow[0]["success"] and quick[0]["success"] and seconds < 4
