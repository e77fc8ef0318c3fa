"""--execute-mcp: run each scored call in a fresh copy of a vault.

The vault executor (Tools/mcp_executor.py) is a separate module; this seam imports it lazily so
that the evaluator works without it and says so in one line when it is asked for and missing.
"""
from __future__ import annotations

MISSING = "--execute-mcp needs the vault executor (Tools/mcp_executor.py)"


class ExecutionUnavailable(RuntimeError):
    pass


def make_executor(vault_path: str | None):
    """A function calls -> list of error messages (empty when every call succeeded), each run in a
    fresh sandbox copied from vault_path (the executor's sample vault when None)."""
    try:
        from Tools import mcp_executor
    except ImportError:
        raise ExecutionUnavailable(MISSING) from None

    def execute(calls) -> list[str]:
        errors = []
        with mcp_executor.sandbox(vault_path) as vault:
            for call in calls:
                result = vault.execute(call.name, call.arguments or {})
                if not result.get("success"):
                    errors.append(f"{call.name}: {result.get('error') or 'failed'}")
        return errors

    return execute
