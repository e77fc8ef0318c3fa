"""DPO entry point; all logic lives in Trainers/shared. See docs/train-nvidia.md."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from any folder without installing

from Trainers.shared.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("dpo"))
