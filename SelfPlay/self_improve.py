"""Seed path of `python -m claudesidian self-improve` (the logic: claudesidian/self_improve.py)."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path: put the repository root on sys.path, package installed or not
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from claudesidian.__main__ import run_seed_path  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_seed_path(__file__))
