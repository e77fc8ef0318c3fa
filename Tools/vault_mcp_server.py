"""An MCP server over a plain folder of markdown files, built on the official `mcp` Python SDK.

    python -m Tools.vault_mcp_server --vault PATH [--transport stdio|http --port 8765]

It advertises the visible tools of Tools/tool_schemas.json (same names, same JSON Schemas) and runs
each call with the vault executor. A result is one text item holding the plugin's JSON envelope;
a call that fails (success:false) is also flagged isError so generic clients notice.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser, die  # noqa: E402
from Tools.vault.executor import VaultExecutor, envelope_json  # noqa: E402

SERVER_NAME = "claudesidian-vault"
INVALID_PARAMS = -32602  # JSON-RPC "Invalid params": the MCP spec's answer to an unknown tool name


def toolkit_version() -> str:
    """This toolkit's version (serverInfo.version): the installed package's, else pyproject.toml's."""
    from importlib import metadata

    try:
        return metadata.version("claudesidian-toolkit")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        match = (
            re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"))
            if pyproject.is_file()
            else None
        )
        return match.group(1) if match else "0+unknown"


def unknown_tool_error(name: str) -> Exception:
    """The SDK's protocol error for a tool the server does not have (a JSON-RPC error, not a tool result)."""
    from mcp.shared import exceptions

    message = f"Unknown tool: {name}"
    if hasattr(exceptions, "MCPError"):  # SDK 2.x
        return exceptions.MCPError(code=INVALID_PARAMS, message=message)
    from mcp.types import ErrorData

    return exceptions.McpError(ErrorData(code=INVALID_PARAMS, message=message))


def advertised_tools(executor: VaultExecutor) -> list[dict]:
    return [
        {"name": t.name, "description": t.description, "inputSchema": t.parameters} for t in executor.registry.visible()
    ]


def build_server(executor: VaultExecutor):
    """A low-level SDK Server whose tools are the registry's and whose calls run in the executor."""
    import anyio
    import mcp.types as types
    from mcp.server.lowlevel import Server

    tools = [types.Tool(**t) for t in advertised_tools(executor)]

    async def call(name: str, arguments: dict | None):
        if name not in executor.registry.tools:  # hidden tools are known: they answer with the plugin's error
            raise unknown_tool_error(name)
        envelope = await anyio.to_thread.run_sync(executor.execute, {"name": name, "arguments": arguments or {}})
        text = envelope_json(envelope)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], isError=not envelope.get("success")
        )

    try:  # SDK 2.x: handlers are passed to the constructor

        async def on_list_tools(ctx, params):
            return types.ListToolsResult(tools=tools)

        async def on_call_tool(ctx, params):
            return await call(params.name, params.arguments)

        return Server(SERVER_NAME, version=toolkit_version(), on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    except TypeError:  # SDK 1.x: handlers are registered with decorators (which turn any error into an isError result)
        server = Server(SERVER_NAME, version=toolkit_version())

        @server.list_tools()
        async def list_tools():
            return tools

        @server.call_tool(validate_input=False)
        async def call_tool(name, arguments):
            return await call(name, arguments)

        return server


async def serve_stdio(executor: VaultExecutor) -> None:
    from mcp.server.stdio import stdio_server

    server = build_server(executor)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve_http(executor: VaultExecutor, host: str, port: int) -> None:
    import uvicorn

    server = build_server(executor)
    if not hasattr(server, "streamable_http_app"):
        die("--transport http needs mcp>=2 (pip install -U mcp); use --transport stdio with this SDK")
    print(f"vault MCP server on http://{host}:{port}/mcp (vault {executor.root})", file=sys.stderr)
    uvicorn.run(server.streamable_http_app(), host=host, port=port, log_level="warning")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="vault_mcp_server", description="MCP server over a folder of markdown files.")
    parser.add_argument("--vault", required=True, help="the vault folder the tools act on (changed in place)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--strict-semantics", action="store_true", help="refuse the plugin's surprising behaviours")
    parser.add_argument("--trace-calls", action="store_true", help="record a tool_call memory trace per call")
    args = parser.parse_args(argv)
    try:
        import mcp  # noqa: F401
    except ImportError:
        die("the MCP server needs the mcp package: pip install 'claudesidian-toolkit[mcp]'")
    try:
        executor = VaultExecutor(args.vault, strict=args.strict_semantics, trace_calls=args.trace_calls)
    except FileNotFoundError as exc:
        die(str(exc))
    if args.transport == "http":
        serve_http(executor, args.host, args.port)
    else:
        import anyio

        anyio.run(serve_stdio, executor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
