"""A plain folder of markdown files that executes Claudesidian / Nexus tool calls (see docs/vault.md)."""
from .executor import HANDLERS, Outcome, ToolError, VaultExecutor, execute_call
from .paths import VaultPathError, normalize

__all__ = ["HANDLERS", "Outcome", "ToolError", "VaultExecutor", "VaultPathError", "execute_call", "normalize"]
