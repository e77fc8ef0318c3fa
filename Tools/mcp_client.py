"""One client interface for every place tool calls can run. Self-play and the evaluator reach an MCP server
(--execute-mcp with --mcp-command / --mcp-url) through it, via Evaluator.execution.McpExecutor; their
built-in sandbox calls the vault executor directly, for its finding codes.

    client = open_mcp_client(vault="Datasets/vault_template")                     # in-process executor (default)
    client = open_mcp_client(vault=path, transport="stdio")                       # this repo's MCP server, a subprocess
    client = open_mcp_client(mcp_command="npx some-mcp-server --flag")            # any stdio MCP server
    client = open_mcp_client(mcp_url="http://127.0.0.1:8765/mcp")                 # any streamable-HTTP MCP server
    client.list_tools()                -> [{"name", "description", "inputSchema"}]
    client.call_tool(name, arguments)  -> the result envelope as a dict ({"success": ..., ...})
    client.close()                     (or use it as a context manager)

The MCP targets run the SDK's async ClientSession on a private event loop in a background thread,
so callers stay synchronous.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shlex
import sys
import threading
from contextlib import AsyncExitStack
from pathlib import Path


class ToolClient:
    def list_tools(self) -> list[dict]:
        raise NotImplementedError

    def call_tool(self, name: str, arguments: dict | None) -> dict:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcessClient(ToolClient):
    """The vault executor itself: no subprocess, no SDK."""

    def __init__(self, vault: str | Path, **executor_options):
        from Tools.vault.executor import VaultExecutor

        self.executor = VaultExecutor(vault, **executor_options)

    def list_tools(self) -> list[dict]:
        from Tools.vault_mcp_server import advertised_tools

        return advertised_tools(self.executor)

    def call_tool(self, name: str, arguments: dict | None) -> dict:
        return self.executor.execute({"name": name, "arguments": arguments if arguments is not None else {}})


def envelope_from_result(result) -> dict:
    """An MCP CallToolResult as an envelope: the JSON text if it is one, else the text as data or error."""
    text = "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")
    failed = bool(getattr(result, "isError", None) or getattr(result, "is_error", False))
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and "success" in value:
        return value
    # servers such as the real plugin answer errors as formatted text rather than JSON
    return (
        {"success": False, "error": text} if failed else {"success": True, "data": value if value is not None else text}
    )


class SessionClient(ToolClient):
    """An SDK ClientSession over stdio (a command) or streamable HTTP (a URL)."""

    def __init__(self, command: list[str] | None = None, url: str | None = None, timeout: float = 60.0):
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._closing: asyncio.Event | None = None
        self._session = None
        # a thread-safe future: an asyncio one awaited through a task logs "exception never retrieved" on a failed start
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete,
            args=(self._main(command, url, ready),),
            daemon=True,
            name="mcp-client",
        )
        self._thread.start()
        try:
            ready.result(timeout)
        except Exception as exc:
            self.close()
            target = url or " ".join(command or [])
            raise ConnectionError(f"could not connect to MCP server {target}: {type(exc).__name__}: {exc}") from None

    async def _transport(self, stack: AsyncExitStack, command, url):
        if url:
            from mcp.client import streamable_http

            connect = getattr(streamable_http, "streamable_http_client", None) or streamable_http.streamablehttp_client
            streams = await stack.enter_async_context(connect(url))
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            streams = await stack.enter_async_context(
                stdio_client(StdioServerParameters(command=command[0], args=command[1:]))
            )
        return streams[0], streams[1]  # SDK 1.x also yields a session-id getter for HTTP

    async def _main(self, command, url, ready) -> None:
        from mcp import ClientSession

        self._closing = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                read, write = await self._transport(stack, command, url)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self._session = session
                ready.set_result(None)
                await self._closing.wait()
        except BaseException as exc:  # a failed start must reach the waiting caller, not vanish in the thread
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout)

    def list_tools(self) -> list[dict]:
        result = self._run(self._session.list_tools())
        return [
            {
                "name": t.name,
                "description": t.description,
                "inputSchema": getattr(t, "inputSchema", None) or t.input_schema,
            }
            for t in result.tools
        ]

    def call_tool(self, name: str, arguments: dict | None) -> dict:
        from mcp.shared import exceptions

        protocol_error = getattr(exceptions, "MCPError", None) or exceptions.McpError  # SDK 2.x / 1.x
        try:
            result = self._run(self._session.call_tool(name, arguments if arguments is not None else {}))
        except protocol_error as exc:  # the server refused the request itself, e.g. -32602 for an unknown tool
            return {"success": False, "error": str(exc)}
        return envelope_from_result(result)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


def server_command(vault: str | Path, *extra: str) -> list[str]:
    """The command line that starts this repository's vault MCP server over stdio."""
    return [sys.executable, "-m", "Tools.vault_mcp_server", "--vault", str(vault), *extra]


def open_mcp_client(
    vault: str | Path | None = None,
    *,
    transport: str = "inprocess",
    mcp_command: str | None = None,
    mcp_url: str | None = None,
    strict: bool = False,
    timeout: float = 60.0,
) -> ToolClient:
    """A ToolClient for one of: the in-process executor, this repo's server over stdio, an external command, a URL."""
    if mcp_url:
        return SessionClient(url=mcp_url, timeout=timeout)
    if mcp_command:
        return SessionClient(command=shlex.split(mcp_command), timeout=timeout)
    if vault is None:
        raise ValueError("a vault folder is needed unless --mcp-command or --mcp-url names another server")
    if transport == "inprocess":
        return InProcessClient(vault, strict=strict)
    if transport == "stdio":
        return SessionClient(
            command=server_command(vault, *(["--strict-semantics"] if strict else [])), timeout=timeout
        )
    raise ValueError(f"unknown transport {transport!r} (inprocess or stdio)")
