"""--execute-mcp: run each scored call in a fresh sandbox copy of a vault (Tools/vault), or against
an MCP server (--mcp-command / --mcp-url), such as the real plugin's or Tools/vault_mcp_server.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from Tools.errors import UsageError
from Tools.schema.context import extract_prompt_ids
from Tools.schema.issues import Finding


class ExecutionUnavailable(RuntimeError):
    pass


def check_execution_flags(execute_mcp: bool, vault_path, mcp_command, mcp_url) -> None:
    """One UsageError for execution flags that cannot work together (evaluator and self-play CLIs)."""
    for flag, value in (("--vault-path", vault_path), ("--mcp-command", mcp_command), ("--mcp-url", mcp_url)):
        if value and not execute_mcp:
            raise UsageError(f"{flag} is used only with --execute-mcp")
    if mcp_command and mcp_url:
        raise UsageError("--mcp-command and --mcp-url name two servers; pass one")
    if vault_path and (mcp_command or mcp_url):
        raise UsageError("--vault-path is for the built-in sandbox; an MCP server acts on its own vault")


def execute_calls(sandbox, calls) -> list[Finding]:
    """Run calls in order in a sandbox; one Finding (the executor's code) per call that failed."""
    found = []
    for call in calls:
        outcome = sandbox.execute_detailed(call)
        if not outcome.ok:
            found.append(
                Finding(outcome.code, f"{call.name}: {outcome.envelope.get('error') or 'failed'}", tool=call.name)
            )
    return found


# `- Name (id: "ws_...")` then indented `Description:`, `Root folder:`, `Folders:` lines
_ENTRY = re.compile(r'^- (?P<name>[^\n]*?) \(id: "(?P<id>[^"\n]+)"\)\n(?P<body>(?:[ \t]+[^\n]*\n?)*)', re.M)
_FIELD = re.compile(r"^[ \t]+(Description|Root folder|Folders):[ \t]*(.*)$", re.M)


def prompt_workspaces(system_prompt: str) -> tuple[str | None, list[dict]]:
    """The session id and the workspaces ({id, name, rootFolder, description, folders}) a system
    prompt tells the model exist, from its <current_workspace> and <available_workspaces> blocks."""
    found = []
    for tag in ("current_workspace", "available_workspaces"):
        start = system_prompt.find(f"<{tag}>")
        end = system_prompt.find(f"</{tag}>", start)
        if start == -1:
            continue
        for entry in _ENTRY.finditer(system_prompt[start : end if end != -1 else None]):
            fields = dict(_FIELD.findall(entry.group("body")))
            found.append(
                {
                    "id": entry.group("id"),
                    "name": entry.group("name").strip() or "Workspace",
                    "rootFolder": fields.get("Root folder") or "/",
                    "description": fields.get("Description", ""),
                    "folders": [f.strip() for f in fields.get("Folders", "").split(",") if f.strip()],
                }
            )
    return extract_prompt_ids(system_prompt).session_id, found


def _settings(cases) -> tuple[dict, dict]:
    """Workspaces by id and, for each session id, its prompt's current workspace id, over all cases."""
    workspaces, sessions = {}, {}
    for case in cases:
        if not case.system:
            continue
        session_id, listed = prompt_workspaces(case.system)
        for workspace in listed:
            workspaces.setdefault(workspace["id"], workspace)
        current = extract_prompt_ids(case.system).workspace_id
        if session_id and current:
            sessions[session_id] = current
    return workspaces, sessions


class McpExecutor:
    """Calls run on an MCP server; the server's own vault is used as it is (nothing is registered)."""

    def __init__(self, mcp_command: str | None, mcp_url: str | None):
        from Tools.mcp_client import open_mcp_client

        try:
            self.client = open_mcp_client(mcp_command=mcp_command, mcp_url=mcp_url)
        except (ConnectionError, OSError, ValueError) as exc:
            raise ExecutionUnavailable(str(exc)) from None
        except ImportError:
            raise ExecutionUnavailable("--mcp-command / --mcp-url need the MCP SDK: pip install -e '.[mcp]'") from None

    def __call__(self, calls) -> list[Finding]:
        found = []
        for call in calls:
            try:
                envelope = self.client.call_tool(call.name, call.arguments)
            except Exception as exc:  # a server that fails mid-run fails the call, not the whole evaluation
                envelope = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
            if not envelope.get("success"):
                found.append(
                    Finding("E_EXEC_FAILED", f"{call.name}: {envelope.get('error') or 'failed'}", tool=call.name)
                )
        return found

    def for_session(self, session_id, workspace):  # self-play's executor interface (SelfPlay/labels.py)
        return self

    def close(self) -> None:
        self.client.close()


def make_executor(vault_path: str | None, cases=(), *, mcp_command: str | None = None, mcp_url: str | None = None):
    """A function calls -> list of Findings (empty when every call succeeded).

    With mcp_command / mcp_url the calls go to that MCP server. Otherwise each case runs in its own
    fresh sandbox copied from vault_path (Datasets/vault_template when None), so concurrent cases
    never see each other's changes; the workspaces and sessions the cases' system prompts name are
    registered first (those a call refers to), as the plugin would hold them."""
    if mcp_command or mcp_url:
        return McpExecutor(mcp_command, mcp_url)
    if vault_path and not Path(vault_path).is_dir():
        raise ExecutionUnavailable(f"--vault-path {vault_path}: no such folder")
    from Tools.vault.sandbox import VaultSandbox

    workspaces, sessions = _settings(cases)

    def execute(calls) -> list[Finding]:
        text = json.dumps([call.arguments for call in calls], ensure_ascii=False)
        with VaultSandbox(vault_path) as sandbox:
            for workspace in (w for wid, w in workspaces.items() if wid in text):
                session_ids = [s for s, wid in sessions.items() if wid == workspace["id"] and s in text]
                for session_id in session_ids or [None]:
                    sandbox.add_workspace(
                        workspace["id"],
                        workspace["name"],
                        workspace["rootFolder"],
                        workspace["description"],
                        tuple(workspace["folders"]),
                        session_id,
                    )
            return execute_calls(sandbox, calls)

    return execute
