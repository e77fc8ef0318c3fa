"""A plain folder of markdown files that executes Claudesidian / Nexus tool calls (see docs/vault.md)."""

from . import agents, content, files, memory, search  # noqa: F401  (their @tool modes fill HANDLERS)
from .executor import Outcome, VaultExecutor, execute_call
from .handlers import HANDLERS, ToolError
from .paths import VaultPathError, normalize

__all__ = ["HANDLERS", "Outcome", "ToolError", "VaultExecutor", "VaultPathError", "execute_call", "normalize"]
