"""Upload a KTO run to the Hugging Face Hub (merged, 4-bit or LoRA; optionally GGUF). All logic
lives in Trainers/shared/export; see docs/export.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run from any folder without installing

from Trainers.shared.export.cli import upload_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(upload_main(method="kto"))
