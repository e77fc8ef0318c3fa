"""DPO entry point; all logic lives in Trainers/shared. See docs/train-nvidia.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from any folder without installing

from Trainers.shared import cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return cli.main("dpo", argv)


if __name__ == "__main__":
    sys.exit(main())
