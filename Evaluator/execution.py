"""--execute-mcp: run each scored call in a fresh sandbox copy of a vault (Tools/vault)."""
from __future__ import annotations

from pathlib import Path


class ExecutionUnavailable(RuntimeError):
    pass


def make_executor(vault_path: str | None):
    """A function calls -> list of error messages (empty when every call succeeded), each case run
    in its own fresh sandbox copied from vault_path (Datasets/vault_template when None), so
    concurrent cases never see each other's changes."""
    if vault_path and not Path(vault_path).is_dir():
        raise ExecutionUnavailable(f"--vault-path {vault_path}: no such folder")
    from Tools.vault.sandbox import VaultSandbox

    def execute(calls) -> list[str]:
        errors = []
        with VaultSandbox(vault_path) as sandbox:
            for call in calls:
                result = sandbox.execute(call)
                if not result.get("success"):
                    errors.append(f"{call.name}: {result.get('error') or 'failed'}")
        return errors

    return execute
