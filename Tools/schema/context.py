"""The 7-field context object every tool call carries, session / workspace ids, and the ids a
system prompt hands the model."""

from __future__ import annotations

import random
import re
import time
from functools import cached_property

from .issues import Finding

CONTEXT_FIELDS = (
    "sessionId",
    "workspaceId",
    "sessionDescription",
    "sessionMemory",
    "toolContext",
    "primaryGoal",
    "subgoal",
)
# the fields a model fills with its own words: no check compares them with an expected value
PROSE_FIELDS = CONTEXT_FIELDS[2:]
SESSION_ID_RE = re.compile(r"session_\d{13}_[a-z0-9]{9}")
WORKSPACE_ID_RE = re.compile(r"ws_\d{13}_[a-z0-9]{9}")
DEFAULT_WORKSPACE = "default"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def clean_context_schema() -> dict:
    """JSON Schema that a context passes exactly when check_context finds nothing at all
    (every field a string with visible text, ids well formed); the validator's fast path."""
    text = {"type": "string", "pattern": r"\S"}
    properties = {name: text for name in CONTEXT_FIELDS}
    properties["sessionId"] = {"type": "string", "pattern": f"^{SESSION_ID_RE.pattern}$"}
    properties["workspaceId"] = {"type": "string", "pattern": f"^(?:{WORKSPACE_ID_RE.pattern}|{DEFAULT_WORKSPACE})$"}
    return {"type": "object", "properties": properties, "required": list(CONTEXT_FIELDS)}


def _id(prefix: str, now_ms: int | None, rng: random.Random | None) -> str:
    rng = rng or random
    ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    return f"{prefix}_{ms:013d}_{''.join(rng.choices(_ID_ALPHABET, k=9))}"


def generate_session_id(now_ms: int | None = None, rng: random.Random | None = None) -> str:
    return _id("session", now_ms, rng)


def generate_workspace_id(now_ms: int | None = None, rng: random.Random | None = None) -> str:
    return _id("ws", now_ms, rng)


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and SESSION_ID_RE.fullmatch(value) is not None


def is_workspace_id(value: object) -> bool:
    return isinstance(value, str) and (value == DEFAULT_WORKSPACE or WORKSPACE_ID_RE.fullmatch(value) is not None)


def make_context(session_id: str, workspace_id: str, **fields: str) -> dict:
    """A complete context dict in the canonical field order; missing text fields raise."""
    values = {"sessionId": session_id, "workspaceId": workspace_id, **fields}
    missing = [f for f in CONTEXT_FIELDS if f not in values]
    if missing:
        raise ValueError(f"context is missing {', '.join(missing)}")
    return {f: values[f] for f in CONTEXT_FIELDS}


def check_context(arguments: dict, tool: str | None = None, index: int | None = None) -> list[Finding]:
    """Context present, first, an object, all 7 fields strings, sessionMemory non-empty, id formats."""

    def finding(code: str, message: str) -> Finding:
        return Finding(code, message, index, tool)

    if "context" not in arguments:
        return [finding("E_CONTEXT_MISSING", "arguments have no 'context' object")]
    found = []
    if next(iter(arguments)) != "context":
        found.append(finding("E_CONTEXT_NOT_FIRST", "'context' must be the first key of the arguments"))
    context = arguments["context"]
    if not isinstance(context, dict):
        found.append(finding("E_CONTEXT_TYPE", f"'context' is {type(context).__name__}, not an object"))
        return found
    for name in CONTEXT_FIELDS:
        if name not in context:
            found.append(finding("E_CONTEXT_FIELD_MISSING", f"context is missing '{name}'"))
            continue
        value = context[name]
        if not isinstance(value, str):
            found.append(finding("E_CONTEXT_FIELD_TYPE", f"context.{name} is {type(value).__name__}, not a string"))
        elif not value.strip():
            code = "E_CONTEXT_FIELD_EMPTY" if name == "sessionMemory" else "W_CONTEXT_FIELD_EMPTY"
            found.append(finding(code, f"context.{name} is empty"))
    session_id = context.get("sessionId")
    if isinstance(session_id, str) and session_id.strip() and not is_session_id(session_id):
        found.append(
            finding("E_SESSION_ID_FORMAT", f"sessionId {session_id!r} is not session_<13 digits>_<9 [a-z0-9]>")
        )
    workspace_id = context.get("workspaceId")
    if isinstance(workspace_id, str) and workspace_id.strip() and not is_workspace_id(workspace_id):
        found.append(
            finding(
                "E_WORKSPACE_ID_FORMAT", f"workspaceId {workspace_id!r} is not ws_<13 digits>_<9 [a-z0-9]> or 'default'"
            )
        )
    return found


# -- ids in the system prompt ------------------------------------------------------------------
_KV_RE = {key: re.compile(rf"{key}:\s*[\"']([^\"']+)[\"']") for key in ("sessionId", "workspaceId")}
_TAG_RE = {key: re.compile(rf"<{key}>\s*([^<\s]+)\s*</{key}>") for key in ("sessionId", "workspaceId")}
_LISTED_ID_RE = re.compile(r"\(id:\s*[\"']([^\"']+)[\"']\)")


def _block(text: str, tag: str) -> str | None:
    """The text between <tag> and </tag>, or None."""
    start = text.find(f"<{tag}>")
    if start == -1:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return text[start:] if end == -1 else text[start:end]


class PromptIds:
    """The ids a system prompt gives the model, in the kv style (`- sessionId: "..."`) or the
    XML-tag style (`<sessionId>...</sessionId>`). Each part is read from the prompt only when a
    check needs it: most calls never need the workspace or agent lists."""

    def __init__(self, system_prompt: str):
        self.prompt = system_prompt
        session = _block(system_prompt, "session_context") if "<session_context>" in system_prompt else None
        self.session_id = self._id(session, "sessionId")
        self.workspace_id = self._id(session, "workspaceId")

    @staticmethod
    def _id(block: str | None, key: str) -> str | None:
        if not block:
            return None
        match = (_TAG_RE[key] if f"<{key}>" in block else _KV_RE[key]).search(block)
        return match.group(1) if match else None

    def _listed(self, *tags: str) -> list[str]:
        found = []
        for tag in tags:
            block = _block(self.prompt, tag)
            if block:
                found.extend(_LISTED_ID_RE.findall(block))
        return found

    @cached_property
    def workspaces(self) -> list[str]:
        return self._listed("available_workspaces", "current_workspace")

    @cached_property
    def agents(self) -> list[str]:
        return self._listed("available_agents")


def extract_prompt_ids(system_prompt: str) -> PromptIds:
    return PromptIds(system_prompt)


_AGENT_ID_MODES = ("update", "delete", "get", "toggle")


def check_prompt_ids(
    arguments: dict, ids: PromptIds, tool: str | None = None, index: int | None = None
) -> list[Finding]:
    """The call's ids must be the ones the system prompt handed out."""
    context = arguments.get("context")
    if not isinstance(context, dict):
        return []
    found = []
    session_id = context.get("sessionId")
    if ids.session_id and isinstance(session_id, str) and session_id != ids.session_id:
        found.append(
            Finding(
                "E_SESSION_ID_MISMATCH",
                f"sessionId {session_id!r} does not match the system prompt's {ids.session_id!r}",
                index,
                tool,
            )
        )
    workspace_id = context.get("workspaceId")
    if (
        isinstance(workspace_id, str)
        and workspace_id != ids.workspace_id
        and (allowed := ([ids.workspace_id] if ids.workspace_id else []) + ids.workspaces)
        and workspace_id not in allowed
    ):
        found.append(
            Finding(
                "E_WORKSPACE_ID_MISMATCH",
                f"workspaceId {workspace_id!r} is not in the system prompt (expected one of {allowed})",
                index,
                tool,
            )
        )
    ref = arguments.get("id")
    if isinstance(ref, str) and tool:
        if (
            tool.startswith("memoryManager_")
            and "load" in tool.lower()
            and ref.startswith("ws_")
            and ids.workspaces
            and ref not in ids.workspaces
        ):
            found.append(
                Finding(
                    "W_UNKNOWN_WORKSPACE_REF", f"workspace {ref!r} is not listed in <available_workspaces>", index, tool
                )
            )
        if (
            tool.startswith("agentManager_")
            and any(m in tool for m in _AGENT_ID_MODES)
            and ref.startswith("agent_")
            and ids.agents
            and ref not in ids.agents
        ):
            found.append(
                Finding("W_UNKNOWN_AGENT_REF", f"agent {ref!r} is not listed in <available_agents>", index, tool)
            )
    return found
