"""The layer rule of docs/architecture.md, checked on every import (inside functions too):

    0 Tools (schema, vault, cli_common, errors, the data CLIs)  <-  1 Evaluator  <-  2 SelfPlay | Trainers  <-  3 claudesidian

A module imports its own layer or lower ones, never a higher one; SelfPlay and Trainers never
import each other. Entry points are exempt: ``__main__.py`` files and the shims the front door's
command table names (claudesidian/commands.py), which must stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from claudesidian.commands import COMMANDS
from conftest import ROOT

LAYERS = {"Tools": 0, "Evaluator": 1, "SelfPlay": 2, "Trainers": 2, "claudesidian": 3}
SHIMS = {shim for command in COMMANDS for shim in command.shims}
SHIM_MAX_LINES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module the source imports anywhere: import statements (relative ones resolved) and
    importlib.import_module / __import__ calls with a literal name."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found.add(".".join(base + ([node.module] if node.module else [])))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
        ):
            found.add(node.args[0].value)
    return found


def forbidden(module: str, imported: str) -> bool:
    mine, theirs = module.split(".")[0], imported.split(".")[0]
    if theirs not in LAYERS or theirs == mine:
        return False
    return LAYERS[theirs] > LAYERS[mine] or LAYERS[theirs] == LAYERS[mine]  # higher, or a peer (SelfPlay <-> Trainers)


def is_entry_point(path: Path) -> bool:
    return path.name == "__main__.py" or path.relative_to(ROOT).as_posix() in SHIMS


def layer_violations() -> set[tuple[str, str]]:
    found = set()
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if is_entry_point(path):
                continue
            module = module_name(path)
            found.update(
                (module, imported)
                for imported in imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
                if forbidden(module, imported)
            )
    return found


def test_no_module_imports_a_higher_layer_or_a_forbidden_peer():
    found = sorted(layer_violations())
    assert not found, "imports against the layer rule (docs/architecture.md):\n" + "\n".join(
        f"  {m} -> {i}" for m, i in found
    )


@pytest.mark.parametrize(
    "module, source, bad",
    [
        ("Tools.x", "import Trainers.shared.train", {"Trainers.shared.train"}),
        ("Tools.x", "def f():\n    from SelfPlay.teacher import Teacher\n", {"SelfPlay.teacher"}),
        ("Evaluator.x", "import importlib\nimportlib.import_module('SelfPlay.teacher')", {"SelfPlay.teacher"}),
        ("Trainers.shared.x", "class A:\n    def f(self):\n        import SelfPlay.config\n", {"SelfPlay.config"}),
        ("SelfPlay.x", "from Trainers.shared import train", {"Trainers.shared"}),
        ("SelfPlay.x", "from claudesidian.closed_loop import main", {"claudesidian.closed_loop"}),
        ("Trainers.shared.x", "from Evaluator.backends import make_client\nfrom Tools.errors import UsageError", set()),
        ("claudesidian.x", "import SelfPlay.teacher, Trainers.shared.train, Evaluator.runner, Tools.schema", set()),
        ("Trainers.shared.x", "from ..self_correction import compare\nfrom . import data", set()),
    ],
)
def test_the_rule_catches_a_violation_anywhere_in_a_file(module, source, bad):
    assert {i for i in imported_modules(source, module) if forbidden(module, i)} == bad


def test_relative_imports_resolve_against_their_package():
    assert imported_modules("from ..export import build\nfrom . import x", "Trainers.shared.mlx.trainer") == {
        "Trainers.shared.export",
        "Trainers.shared.mlx",
    }
    assert imported_modules("from .context import CONTEXT_FIELDS", "Tools.schema", is_package=True) == {
        "Tools.schema.context"
    }


def test_exempt_shims_exist_and_stay_thin():
    """The exemption holds for what the command table names, and only for files that just hand over."""
    assert SHIMS, "the command table names no shim"
    for shim in sorted(SHIMS):
        lines = [line for line in (ROOT / shim).read_text(encoding="utf-8").splitlines() if line.strip()]
        assert len(lines) <= SHIM_MAX_LINES, f"{shim} is a seed-path shim: keep its logic in the command's module"
