"""The small sample dataset shipped in Datasets/sample/, written by the template teacher.

    python Tools/sample_data.py [--out Datasets/sample] [--seed 7]

Same as `python -m SelfPlay.teacher sample`: 8 correct calls (one per common tool) for SFT, and for
KTO each followed by a negative with one controlled corruption whose validator code is stated in
`metadata.codes` (the teacher's corruptions: SelfPlay/teacher.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SelfPlay.teacher import build_sample, main as teacher_main  # noqa: E402

__all__ = ["build_sample", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    return teacher_main(["sample", *argv])


if __name__ == "__main__":
    sys.exit(main())
