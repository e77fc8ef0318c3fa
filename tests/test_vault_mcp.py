"""The vault MCP server as a real subprocess over stdio, driven by the official SDK client,
and the one client interface over its three targets."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys

import pytest

pytest.importorskip("mcp", reason="the mcp package is not installed (pip install 'claudesidian-toolkit[mcp]')")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from Tools.mcp_client import open_mcp_client, server_command  # noqa: E402
from Tools.schema.registry import load_registry  # noqa: E402
from Tools.vault.sandbox import DEFAULT_TEMPLATE  # noqa: E402

from vault_helpers import call  # noqa: E402


@pytest.fixture
def vault(tmp_path):
    return shutil.copytree(DEFAULT_TEMPLATE, tmp_path / "vault")


def _envelope(result) -> dict:
    return json.loads(result.content[0].text)


def test_sdk_client_drives_the_server_subprocess(vault):
    """One call per agent through a real stdio subprocess; results and files on disk are checked."""

    async def scenario():
        command = server_command(vault)
        params = StdioServerParameters(command=command[0], args=command[1:])
        async with stdio_client(params) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            listed = (await session.list_tools()).tools
            registry = load_registry()
            assert {t.name for t in listed} == {t.name for t in registry.visible()}
            schema = next(
                getattr(t, "inputSchema", None) or t.input_schema for t in listed if t.name == "vaultManager_moveNote"
            )
            assert schema == registry.tools["vaultManager_moveNote"].parameters

            async def run(tool, /, **args):
                c = call(tool, **args)
                result = await session.call_tool(c["name"], c["arguments"])
                envelope = _envelope(result)
                assert bool(getattr(result, "isError", None) or getattr(result, "is_error", False)) == (
                    not envelope["success"]
                )
                return envelope

            assert (await run("vaultManager_createFolder", path="Archive/2026"))["success"]
            assert (await run("contentManager_createContent", filePath="Archive/2026/log.md", content="first"))[
                "success"
            ]
            assert (await run("contentManager_appendContent", filePath="Archive/2026/log.md", content=" second"))[
                "success"
            ]
            hits = (await run("vaultLibrarian_searchContent", query="quick brown fox"))["results"]
            ws = await run(
                "memoryManager_createWorkspace",
                name="Log",
                rootFolder="Archive",
                purpose="p",
                currentGoal="g",
                workflows=[{"name": "n", "when": "w", "steps": "s"}],
            )
            agent = await run("agentManager_createAgent", name="Tester", description="d", prompt="p")
            tools = await run("get_tools", tools=["vaultManager_moveNote"])
            refused = await run("contentManager_readContent", filePath="../outside.md")
            hidden = await run("commandManager_listCommands")
            wrong = await session.call_tool("vaultManager_createFolder", {"path": 3})
            return hits, ws, agent, tools, refused, hidden, _envelope(wrong)

    hits, ws, agent, tools, refused, hidden, wrong = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert (vault / "Archive" / "2026" / "log.md").read_text() == "first second"
    assert hits[0]["filePath"].endswith("Meeting 2026-01-12.md")
    assert (vault / ".workspaces" / f"{ws['data']['workspaceId']}.json").is_file()
    settings = json.loads((vault / ".obsidian/plugins/claudesidian-mcp/data.json").read_text())
    assert agent["data"]["id"] in {p["id"] for p in settings["customPrompts"]["prompts"]}
    assert tools["data"]["tools"][0]["name"] == "vaultManager_moveNote"
    assert not refused["success"] and "outside the vault" in refused["error"]
    assert not hidden["success"] and not wrong["success"] and "Validation failed" in wrong["error"]


@pytest.mark.parametrize("transport", ["inprocess", "stdio"])
def test_one_interface_for_inprocess_and_stdio(vault, transport):
    with open_mcp_client(vault, transport=transport) as client:
        assert len(client.list_tools()) == len(load_registry().visible())
        c = call("contentManager_createContent", filePath=f"{transport}.md", content="same answer")
        assert client.call_tool(c["name"], c["arguments"])["data"]["filePath"] == f"{transport}.md"
        c = call("contentManager_readContent", filePath=f"{transport}.md")
        assert client.call_tool(c["name"], c["arguments"])["data"]["content"] == "same answer"
        assert client.call_tool("vaultManager_fly", {})["error"].startswith("Unknown tool")


def test_external_command_target(vault):
    command = " ".join(f"'{part}'" for part in server_command(vault))
    with open_mcp_client(mcp_command=command) as client:
        c = call("vaultManager_listDirectory", path="Projects")
        assert {f["name"] for f in client.call_tool(c["name"], c["arguments"])["data"]["folders"]} == {
            "Home Lab",
            "Website Redesign",
        }


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(ConnectionError, match="could not connect to MCP server"):
        open_mcp_client(mcp_command=f"{sys.executable} -c 'import sys; sys.exit(3)'", timeout=3)


def test_http_transport(vault):
    import socket
    import subprocess
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*server_command(vault), "--transport", "http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with open_mcp_client(mcp_url=f"http://127.0.0.1:{port}/mcp", timeout=20) as client:
            c = call("vaultManager_createFolder", path="ViaHttp")
            assert client.call_tool(c["name"], c["arguments"])["success"]
        assert (vault / "ViaHttp").is_dir()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_unknown_tool_is_a_protocol_error_and_server_reports_the_toolkit_version(vault):
    """MCP spec: an unknown tool is a JSON-RPC error -32602, not a tool result; serverInfo carries our version."""
    import re
    from pathlib import Path

    from mcp.shared import exceptions

    protocol_error = getattr(exceptions, "MCPError", None) or exceptions.McpError  # SDK 2.x / 1.x

    async def scenario():
        command = server_command(vault)
        params = StdioServerParameters(command=command[0], args=command[1:])
        async with stdio_client(params) as streams, ClientSession(streams[0], streams[1]) as session:
            init = await session.initialize()
            with pytest.raises(protocol_error) as caught:
                await session.call_tool("vaultManager_fly", {"path": "x"})
            hidden = call("commandManager_listCommands")  # known to the plugin, only hidden: a tool result
            hidden = _envelope(await session.call_tool(hidden["name"], hidden["arguments"]))
            return getattr(init, "serverInfo", None) or init.server_info, caught.value, hidden

    info, error, hidden = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert error.error.code == -32602 and "vaultManager_fly" in error.error.message
    assert not hidden["success"] and "hidden" in hidden["error"]
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert info.name == "claudesidian-vault"
    assert info.version == re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject).group(1)
