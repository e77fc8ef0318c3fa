"""--execute-mcp: run each scored call in a fresh sandbox copy of a vault (Tools/vault)."""
from __future__ import annotations

from pathlib import Path

from Tools.schema.issues import Finding


class ExecutionUnavailable(RuntimeError):
    pass


def execute_calls(sandbox, calls) -> list[Finding]:
    """Run calls in order in a sandbox; one Finding (the executor's code) per call that failed."""
    found = []
    for call in calls:
        outcome = sandbox.execute_detailed(call)
        if not outcome.ok:
            found.append(Finding(outcome.code, f"{call.name}: {outcome.envelope.get('error') or 'failed'}", tool=call.name))
    return found


def make_executor(vault_path: str | None):
    """A function calls -> list of Findings (empty when every call succeeded), each case run
    in its own fresh sandbox copied from vault_path (Datasets/vault_template when None), so
    concurrent cases never see each other's changes."""
    if vault_path and not Path(vault_path).is_dir():
        raise ExecutionUnavailable(f"--vault-path {vault_path}: no such folder")
    from Tools.vault.sandbox import VaultSandbox

    def execute(calls) -> list[Finding]:
        with VaultSandbox(vault_path) as sandbox:
            return execute_calls(sandbox, calls)

    return execute
