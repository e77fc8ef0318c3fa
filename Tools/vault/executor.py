"""Execute one tool call against a folder of markdown files and return the plugin's result envelope.

The executor knows nothing of sandboxes or transports: give it a vault root and calls. Each agent's
modes live in their own module and register themselves in handlers.HANDLERS; this module resolves the
session and workspace, checks the arguments, runs the handler and wraps its answer the way the
plugin's server does (CLAUDESIDIAN_TOOLS.md section 4.5). A handler raises ToolError for a failure
the plugin reports; nothing a caller sends can make execute() raise.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from Tools.schema.registry import ToolRegistry, load_registry
from Tools.schema.toolcalls import ToolCall

from .handlers import HANDLERS, Call, Reply, ToolError
from .memory import record_tool_call
from .paths import VaultPathError, VaultPaths
from .patterns import REGEX_BUDGET_S

# Argument findings that the plugin's server refuses too; the rest only under strict semantics.
_REFUSED = {"E_MISSING_REQUIRED_ARG", "E_ARG_TYPE", "E_ARG_ENUM"}
_REFUSED_STRICT = _REFUSED | {"E_UNEXPECTED_ARG", "E_ARG_VALUE"}
MAX_ARG_DEPTH = 64  # real calls nest about 5 deep; the schema check recurses


@dataclass
class Outcome:
    """What execute_detailed returns: the envelope, and a finding code when the call failed."""

    envelope: dict
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None


class VaultExecutor:
    """Executes tool calls against one vault folder. Thread-safe: calls are serialised per executor."""

    def __init__(
        self,
        vault: str | Path,
        *,
        strict: bool = False,
        registry: ToolRegistry | None = None,
        trace_calls: bool = False,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        llm: Callable[..., str] | None = None,
    ):
        root = Path(vault)
        if not root.is_dir():
            raise FileNotFoundError(f"vault folder not found: {vault}")
        self.paths = VaultPaths(root)
        self.root = self.paths.root
        self.strict = strict
        self.registry = registry or load_registry()
        self.trace_calls = trace_calls
        self.llm = llm  # a callable(prompt, system=, model=) -> text for the modes that need a model
        self.rng = random.Random(seed)
        self._clock = clock or time.time
        self._lock = threading.RLock()
        self.session_workspace: dict[str, str] = {}  # loadWorkspace binds a session to a workspace
        self._regex_deadline: float | None = None

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def regex_deadline(self) -> float:
        """When the current call's regex budget runs out (it starts with the call's first pattern search)."""
        if self._regex_deadline is None:
            self._regex_deadline = time.monotonic() + REGEX_BUDGET_S
        return self._regex_deadline

    def resolve(self, raw, *, data: bool = False) -> tuple[str, Path]:
        """A path argument (data=False: the plugin's data folders are refused) or a file of the plugin's own."""
        try:
            return self.paths.resolve(raw, data=data)
        except VaultPathError as exc:
            raise ToolError(str(exc), "E_PATH_OUTSIDE_VAULT") from None

    @property
    def settings_path(self) -> Path:
        """The plugin's settings file, which holds the custom agents."""
        return self.resolve(".obsidian/plugins/claudesidian-mcp/data.json", data=True)[1]

    # -- executing ---------------------------------------------------------------------------
    def execute(self, call: ToolCall | dict) -> dict:
        return self.execute_detailed(call).envelope

    def execute_detailed(self, call: ToolCall | dict) -> Outcome:
        name, args = _unpack(call)
        with self._lock:
            self._regex_deadline = None
            try:
                return self._execute(name, args)
            except ToolError as exc:
                return Outcome({"success": False, "error": str(exc)}, exc.code)
            except Exception as exc:  # a bug or an OS error must still come back as a result
                return Outcome(
                    {"success": False, "error": f"Internal error: {type(exc).__name__}: {exc}"}, "E_EXEC_FAILED"
                )

    def _execute(self, name, args) -> Outcome:
        if not isinstance(name, str) or not name:
            raise ToolError("Tool name is required", "E_EMPTY_TOOL_NAME")
        if not isinstance(args, dict):
            raise ToolError(f"Arguments must be a JSON object, got {type(args).__name__}", "E_MALFORMED_ARGUMENTS")
        args = well_formed(args)
        spec = self.registry.tools.get(name)
        if spec is None or name not in HANDLERS:
            raise ToolError(f"Unknown tool: {name}. Call get_tools to see the available tools.", "E_UNKNOWN_TOOL")
        refused = _REFUSED_STRICT if self.strict else _REFUSED
        findings = [f for f in self.registry.validate_arguments(name, args) if f.code in refused]
        if findings:
            raise ToolError("Validation failed: " + "; ".join(f.message for f in findings), findings[0].code)
        context = args.get("context") if isinstance(args.get("context"), dict) else None
        session_id = (context or {}).get("sessionId") or args.get("sessionId")
        if not isinstance(session_id, str) or not session_id:
            raise ToolError(
                f"Session ID required: Mode {spec.mode} requires context.sessionId", "E_CONTEXT_FIELD_MISSING"
            )
        workspace_id = _workspace_of(args, context) or self.session_workspace.get(session_id) or "default"
        current = Call(name, args, session_id, workspace_id, context)
        handler, flat = HANDLERS[name]
        try:
            answer = handler(self, current)
        except ToolError as exc:
            envelope = (
                {"path": args.get("path"), "success": False, "error": str(exc)}
                if flat
                else {"success": False, "error": str(exc)}
            )
            outcome = Outcome(self._stamp(envelope, current, flat), exc.code)
        else:
            if flat:
                envelope = {**answer, "success": answer.get("success", True)}
            elif isinstance(answer, Reply):
                envelope = {
                    "success": True,
                    **({"data": answer.data} if answer.data is not None else {}),
                    **answer.extra,
                }
            else:
                envelope = {"success": True, "data": answer}
            outcome = Outcome(self._stamp(envelope, current, flat))
        if self.trace_calls:
            record_tool_call(self, current, outcome.envelope)
        return outcome

    def _stamp(self, envelope: dict, call: Call, flat: bool) -> dict:
        """The fields the plugin's server adds to every result."""
        envelope["sessionId"] = call.session_id
        envelope["workspaceId"] = call.workspace_id
        if not flat and call.context is not None:
            envelope["context"] = call.context
        return envelope


def well_formed(args: dict) -> dict:
    """A copy of the arguments in which lone surrogates (valid in JSON text, impossible in a UTF-8 file)
    are U+FFFD, as Node writes them. Iterative, and nesting past MAX_ARG_DEPTH is refused, so no
    argument can exhaust a stack here or in the schema check."""

    def fix(text: str) -> str:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    root: dict = {}
    stack = [(args, root, 1)]
    while stack:
        source, target, depth = stack.pop()
        if depth > MAX_ARG_DEPTH:
            raise ToolError(f"Arguments are nested deeper than {MAX_ARG_DEPTH} levels", "E_MALFORMED_ARGUMENTS")
        for key, item in source.items() if isinstance(source, dict) else enumerate(source):
            if isinstance(item, (dict, list)):
                copy = type(item)()
                stack.append((item, copy, depth + 1))
                item = copy
            elif isinstance(item, str):
                item = fix(item)
            if isinstance(target, dict):
                target[fix(key) if isinstance(key, str) else key] = item
            else:
                target.append(item)
    return root


def envelope_json(envelope: dict, indent: int | None = None) -> str:
    """An envelope as JSON text that any UTF-8 stream accepts (a tool name may carry a lone surrogate)."""
    text = json.dumps(envelope, indent=indent, ensure_ascii=False)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return json.dumps(envelope, indent=indent)


def _unpack(call) -> tuple:
    if isinstance(call, ToolCall):
        return call.name, call.arguments
    if isinstance(call, dict):
        return call.get("name"), call["arguments"] if "arguments" in call else call.get("parameters", {})
    return None, None


def _workspace_of(args: dict, context: dict | None) -> str | None:
    wsc = args.get("workspaceContext")
    if isinstance(wsc, dict) and isinstance(wsc.get("workspaceId"), str) and wsc["workspaceId"]:
        return wsc["workspaceId"]
    value = (context or {}).get("workspaceId")
    return value if isinstance(value, str) and value else None


def execute_call(vault: str | Path, call: ToolCall | dict, *, strict: bool = False) -> dict:
    """Execute one call against a vault folder and return the result envelope."""
    return VaultExecutor(vault, strict=strict).execute(call)
