"""Write the Colab notebooks of Trainers/notebooks/ (python Trainers/notebooks/build.py).

The notebooks are the earlier project's beginner path, kept thin: every cell calls the toolkit's own
functions (the same ones train.sh, the validator, the evaluator and the exporter run), so they
cannot drift from the code. One builder writes all three, so they share their set-up cells; a test
fails when a committed notebook differs from what this script writes, and the test suite executes
each one on CPU with the tiny model through its `parameters` cell (papermill's convention).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parents[1]))


def _source(text: str) -> list[str]:
    lines = text.strip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": _source(text)}


def code(text: str, *tags: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": list(tags)} if tags else {},
        "outputs": [],
        "source": _source(text),
    }


def notebook(cells: list[dict]) -> dict:
    cells = [{"id": f"cell-{i}", **cell} for i, cell in enumerate(cells)]  # stable ids: a rebuild changes nothing
    return {
        "cells": cells,
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "accelerator": "GPU",
            "colab": {"provenance": []},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    }


SETUP = """
# Set-up: inside a clone of the toolkit nothing is installed; on Colab the toolkit is cloned and installed
import pathlib, subprocess, sys

ROOT = next((p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents] if (p / "Trainers" / "shared").is_dir()), None)
if ROOT is None:
    if not TOOLKIT_GIT_URL:
        raise SystemExit("set TOOLKIT_GIT_URL in the parameters cell to the toolkit's git URL")
    subprocess.run(["git", "clone", "--depth", "1", TOOLKIT_GIT_URL, "toolkit"], check=True)
    ROOT = pathlib.Path("toolkit").resolve()
    extras = "train,hub,gguf" + (",gpu" if subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0 else "")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extras}]"], check=True)
sys.path.insert(0, str(ROOT))
print("toolkit:", ROOT)
"""

CHECK = """
# What this machine can run: GPU, VRAM, versions, tokens present (python -m Trainers.doctor)
from Trainers import doctor

print("\\n".join(doctor.render(doctor.diagnose())))
"""


def validate_cell(method: str) -> str:
    return f'''
# The dataset: the shipped teacher set unless DATASET names another file; checked by the validator
from Trainers.shared.config import REPO_ROOT, SHIPPED_DATASET
from Tools.validate_syngen import main as validate

dataset = DATASET or str(REPO_ROOT / SHIPPED_DATASET.format(method="{method}"))
print("dataset:", dataset, "| validator exit code:", validate([dataset, "--summary-only"]))
'''


def train_cell(method: str, extra: str = "") -> str:
    return f'''
# Training: the same run_training(config) as Trainers/rtx3090_{method}/train.sh, config file included
from Trainers.shared.config import load_config
from Trainers.shared.train import run_training

flags = {{"model_size": MODEL_SIZE, "model_name": MODEL_NAME, "local_file": dataset, "output_dir": OUTPUT_DIR,
         "max_steps": MAX_STEPS if MAX_STEPS > 0 else None, "batch_size": BATCH_SIZE{extra}}}
config = load_config("{method}", ROOT / "Trainers/rtx3090_{method}/configs/config.yaml", flags)
result = run_training(config)
print("adapter, tokenizer and lineage in", result.final_dir)
'''


EVALUATE = """
# A first look: the evaluator over a few one-per-tool cases (transformers backend, base model + adapter)
from Evaluator import cli as evaluator
from Trainers.shared.backend import split_adapter

base, adapter = split_adapter(str(result.final_dir))
if pathlib.Path(base).is_dir():
    evaluator.main(["--backend", "transformers", "--model", base, "--adapter", str(result.final_dir),
                    "--prompt-set", "full_coverage", "--limit", str(EVAL_CASES), "--max-tokens", str(EVAL_MAX_TOKENS),
                    "--no-progress", "--output", str(result.run_dir / "eval_report.json")])
else:  # a Hub base model: export to GGUF below and evaluate in LM Studio or Ollama (docs/evaluate.md)
    print(f"base model {base} is not a local folder: evaluate the GGUF export instead")
"""

EXPORT = """
# GGUF for LM Studio / Ollama, with its Modelfile and a tool-calling round trip (docs/export.md)
from Trainers.shared.export.cli import gguf_main

if EXPORT_GGUF:
    gguf_main([str(result.run_dir), "--quantizations", QUANTIZATIONS, "--no-progress"])
"""

UPLOAD = """
# Upload to the Hugging Face Hub (HF_TOKEN from Colab's secrets, the environment or .env)
from Trainers.shared.export.cli import upload_main

if HF_REPO:
    upload_main([str(result.final_dir), HF_REPO, "--save-method", UPLOAD_METHOD, "--no-progress"], method=METHOD)
else:
    print("set HF_REPO = 'username/model-name' in the parameters cell to upload")
"""


def parameters(method: str, extra: str = "") -> str:
    return f'''
# Parameters (papermill's "parameters" cell: tests replace these to run the notebook on CPU)
METHOD = "{method}"
MODEL_SIZE = "7b"           # 3b | 7b | 13b | 20b: picks the base model (a free Colab T4 fits 3b and 7b)
MODEL_NAME = None           # any Hugging Face id or local folder{" (KTO: the SFT run's final_model/)" if method == "kto" else ""}; None: the size's model
DATASET = None              # a JSONL file; None: the shipped Datasets/teacher/teacher_{method}.jsonl
MAX_STEPS = -1              # -1: the config's epochs
BATCH_SIZE = None           # None: the size preset's
OUTPUT_DIR = "{method}_output_rtx3090"
EVAL_CASES = 5
EVAL_MAX_TOKENS = 256
HF_REPO = None              # "username/model-name" to upload
UPLOAD_METHOD = "merged_16bit"   # merged_16bit | merged_4bit | lora
TOOLKIT_GIT_URL = None      # on Colab: the git URL of the toolkit to clone{extra}
'''


def build() -> dict[str, dict]:
    intro = (
        "Runtime > Change runtime type > T4 GPU, fill in the parameters cell, then Runtime > Run all. "
        "Everything here is also a command: see docs/train-nvidia.md."
    )
    return {
        "sft_colab_beginner.ipynb": notebook(
            [
                markdown(f"# SFT for beginners: teach a model the Claudesidian tool calls\n\n{intro}"),
                code(parameters("sft"), "parameters"),
                code(SETUP),
                code(CHECK),
                code(validate_cell("sft")),
                code(train_cell("sft")),
                code(EVALUATE),
                code(UPLOAD),
            ]
        ),
        "sft_colab_tool_calling.ipynb": notebook(
            [
                markdown(
                    "# SFT on a tool-calling dataset, then GGUF and the Hub\n\nFor the toolkit's record format "
                    f"(ChatML conversations, tool calls with the 7-field context object). {intro}"
                ),
                code(
                    parameters(
                        "sft", '\nEXPORT_GGUF = True\nQUANTIZATIONS = "Q4_K_M"   # after the f16 file; "none": f16 only'
                    ),
                    "parameters",
                ),
                code(SETUP),
                code(CHECK),
                code(validate_cell("sft")),
                code(train_cell("sft")),
                code(EVALUATE),
                code(EXPORT),
                code(UPLOAD),
            ]
        ),
        "kto_colab_notebook.ipynb": notebook(
            [
                markdown(
                    "# KTO refinement after SFT\n\nPreference learning on true/false examples in strict "
                    "alternation (the shipped `teacher_kto.jsonl` is). Start from your SFT run: set MODEL_NAME "
                    f"to its `final_model/`. {intro}"
                ),
                code(
                    parameters("kto", "\nBETA = 0.3                  # how far the policy may move from the reference"),
                    "parameters",
                ),
                code(SETUP),
                code(CHECK),
                code(validate_cell("kto")),
                code(train_cell("kto", ', "beta": BETA')),
                code(EVALUATE),
                code(UPLOAD),
            ]
        ),
    }


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    from Tools.cli_common import ArgumentParser

    ArgumentParser(
        prog="build.py",
        description="Write the Colab notebooks of Trainers/notebooks/ from the toolkit's "
        "functions (a test fails when a committed one is stale).",
    ).parse_args(argv)
    for name, nb in build().items():
        (HERE / name).write_text(render(nb), encoding="utf-8")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
