"""The handler table: each agent module registers its modes here with ``@tool``; the executor looks
them up. It also holds what a handler and the executor share (Call, Reply, ToolError), so the agent
modules never import the executor. Importing the package (Tools/vault/__init__.py) imports every
agent module: the table is complete before anyone reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


class ToolError(Exception):
    """A failure the plugin reports as success:false; code is a Tools.schema.issues code."""

    def __init__(self, message: str, code: str = "E_EXEC_FAILED"):
        super().__init__(message)
        self.code = code


@dataclass
class Call:
    """One call being executed: its arguments and the session / workspace it runs in."""

    name: str
    args: dict
    session_id: str
    workspace_id: str
    context: dict | None


@dataclass
class Reply:
    """A handler's answer when it needs more than `data`: extra top-level envelope keys."""

    data: object = None
    extra: dict = field(default_factory=dict)


# name -> (handler, flat): flat handlers return the whole result object, the others return data
HANDLERS: dict[str, tuple[Callable, bool]] = {}


def tool(name: str, flat: bool = False):
    def register(func):
        HANDLERS[name] = (func, flat)
        return func

    return register
