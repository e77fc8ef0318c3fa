"""Alias kept for the seed documents: the same command as Tools/interleave_dataset.py."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.interleave_dataset import main

if __name__ == "__main__":
    sys.exit(main())
