"""Shared helpers for the vault tests: a complete context object and a call builder."""

from __future__ import annotations

CONTEXT = {
    "sessionId": "session_1767225600000_testaaaaa",
    "workspaceId": "default",
    "sessionDescription": "testing",
    "sessionMemory": "a test run",
    "toolContext": "test",
    "primaryGoal": "check the executor",
    "subgoal": "one call",
}


def call(tool: str, /, **arguments) -> dict:
    context = dict(CONTEXT, **arguments.pop("ctx", {}))
    return {"name": tool, "arguments": {"context": context, **arguments}}
