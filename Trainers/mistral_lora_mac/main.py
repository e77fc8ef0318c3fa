"""LoRA SFT / KTO on Apple silicon with MLX; all logic lives in Trainers/shared/mlx. See docs/train-mac.md.

cd Trainers/mistral_lora_mac && python main.py --config config/config.yaml [--resume latest] [--eval-only]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from any folder without installing

from Trainers.shared.mlx import cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, default_config=Path(__file__).resolve().parent / "config" / "config.yaml")


if __name__ == "__main__":
    sys.exit(main())
