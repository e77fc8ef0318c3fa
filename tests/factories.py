"""Small builders for valid records, used across the test suite."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from Tools.schema.context import make_context
from Tools.schema.toolcalls import ToolCall, render_message

SESSION = "session_1732147550000_x2y3z4a5b"
WORKSPACE = "ws_1732147550000_c6d7e8f9g"


def context(**overrides) -> dict:
    base = make_context(
        SESSION,
        WORKSPACE,
        sessionDescription="Organising notes",
        sessionMemory="User asked for a folder",
        toolContext="Create the folder",
        primaryGoal="Organise the vault",
        subgoal="Make Projects/Garden",
    )
    base.update(overrides)
    return base


def system_prompt(session: str = SESSION, workspace: str = WORKSPACE, xml: bool = False) -> str:
    if xml:
        return f"<session_context>\n<sessionId>{session}</sessionId>\n<workspaceId>{workspace}</workspaceId>\n</session_context>"
    return (
        f'<session_context>\n- sessionId: "{session}"\n- workspaceId: "{workspace}" (current workspace)\n</session_context>\n'
        f'<available_workspaces>\n- Garden (id: "{workspace}")\n</available_workspaces>\n'
        f'<available_agents>\n- Writer (id: "agent_001")\n</available_agents>'
    )


def call(name: str = "vaultManager_createFolder", **arguments) -> ToolCall:
    arguments = arguments or {"path": "Projects/Garden"}
    return ToolCall(name, {"context": context(), **arguments}, "abc123def")


def record(
    *calls: ToolCall, fmt: str = "openai", label=True, system: str | None = None, content: str | None = None
) -> dict:
    conversation = [
        {"role": "system", "content": system if system is not None else system_prompt()},
        {"role": "user", "content": "make a folder for the garden"},
    ]
    assistant = (
        render_message(list(calls), fmt, content) if calls else {"role": "assistant", "content": content or "Sure."}
    )
    result = {"conversations": conversation + [assistant]}
    if label is not None:
        result["label"] = label
    return result


def bundled_template(name: str) -> str:
    """A chat template llama.cpp ships in models/templates/ (read from the llama-cpp-python sdist
    or a checkout; never copied into this repository)."""
    from Trainers.shared.gguf import CACHE_DIR

    relative = f"models/templates/{name}.jinja"
    if os.environ.get("LLAMA_CPP_DIR") and (Path(os.environ["LLAMA_CPP_DIR"]) / relative).is_file():
        return (Path(os.environ["LLAMA_CPP_DIR"]) / relative).read_text()
    for archive in sorted(CACHE_DIR.glob("llama_cpp_python-*.tar.gz"), reverse=True):
        with tarfile.open(archive) as tar:
            member = f"{archive.name.removesuffix('.tar.gz')}/vendor/llama.cpp/{relative}"
            try:
                return tar.extractfile(member).read().decode()
            except KeyError:
                continue
    pytest.skip(f"llama.cpp's {relative} not found (make test downloads the sdist into .cache/)")


def hermes_answer(body):
    """Answers every question with a listDirectory call in content (Qwen/Hermes style)."""
    context = {
        "sessionId": "session_1735689600000_k3v9x2m7q",
        "workspaceId": "ws_1735689600000_garden001",
        "sessionDescription": "d",
        "sessionMemory": "The user asked about a folder.",
        "toolContext": "t",
        "primaryGoal": "g",
        "subgoal": "s",
    }
    call = {"name": "vaultManager_listDirectory", "arguments": {"context": context, "path": "Thesis"}}
    return {"role": "assistant", "content": f"<tool_call>\n{json.dumps(call)}\n</tool_call>"}
