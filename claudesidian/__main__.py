"""python -m claudesidian <command> [args]: the toolkit's front door (also the ``claudesidian``
console script). The commands are the table in claudesidian/commands.py; a command's module is
imported only when it runs, so listing them is instant."""

from __future__ import annotations

import difflib
import importlib
import sys
from pathlib import Path

from claudesidian.commands import BY_NAME, COMMANDS
from Tools.cli_common import die

ROOT = Path(__file__).resolve().parents[1]
PROG = "python -m claudesidian"
GROUPS = {
    "Tools": "data",
    "SelfPlay": "self-play",
    "Trainers": "training",
    "Evaluator": "evaluation",
    "claudesidian": "loops",
}


def listing() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = [f"usage: {PROG} <command> [args]   (installed: claudesidian <command> [args])"]
    group = None
    for command in COMMANDS:
        if GROUPS[command.module.split(".")[0]] != group:
            group = GROUPS[command.module.split(".")[0]]
            lines += ["", f"{group}:"]
        lines.append(f"  {command.name.ljust(width)}  {command.summary}")
    lines += [
        "",
        f"{PROG} <command> --help: the command's own flags. The paths each command replaces (still working): "
        "claudesidian/commands.py.",
    ]
    return "\n".join(lines)


def run(name: str, argv: list[str]) -> int:
    command = BY_NAME.get(name)
    if command is None:
        close = difflib.get_close_matches(name, BY_NAME, n=1)
        die(
            f"unknown command {name!r}"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; {PROG} --help lists them"
        )
    module, function = command.target.split(":")
    if not module.startswith("Tools."):  # the data tools stay fast; every other command may take --backend template
        from SelfPlay.backend import register

        register()
    return getattr(importlib.import_module(module), function)(argv)


def run_seed_path(path: str) -> int:
    """A seed script run by path (a shim): the command whose seeds name that file, with this process's arguments."""
    seed = Path(path).resolve().relative_to(ROOT).as_posix()
    return run(next(c.name for c in COMMANDS if seed in c.seeds), sys.argv[1:])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(listing())
        return 0
    return run(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
