"""--full-finetune (every weight, no LoRA) and --backend (a forced backend that cannot run is an error)."""

import json

import pytest
from safetensors.torch import load_file

from Trainers.shared.config import load_config
from Trainers.shared.train import run_training


def _flags(model, data, out, **extra):
    return {
        "model_name": model,
        "local_file": data,
        "output_dir": str(out),
        "batch_size": 2,
        "gradient_accumulation": 1,
        "save_steps": 100,
        "full_finetune": True,
        **extra,
    }


def test_full_finetune_trains_every_weight_and_kto_continues_from_it(
    tiny_model_dir, tiny_sft_file, tiny_kto_file, tmp_path
):
    sft = run_training(
        load_config(
            "sft", None, _flags(tiny_model_dir, tiny_sft_file, tmp_path / "sft", max_steps=6, learning_rate=3e-3)
        )
    )
    final = sft.final_dir
    assert (final / "model.safetensors").is_file() and not (final / "adapter_config.json").exists()
    before, after = load_file(f"{tiny_model_dir}/model.safetensors"), load_file(final / "model.safetensors")
    assert before.keys() == after.keys()
    unchanged = [name for name in before if (before[name] == after[name]).all()]
    assert not unchanged, unchanged  # embeddings, norms and every projection moved
    log = [json.loads(x) for x in (sft.run_dir / "logs" / "training_latest.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0] - 0.5
    # KTO on the full model: TRL keeps a frozen copy as the reference
    kto = run_training(
        load_config("kto", None, _flags(str(final), tiny_kto_file, tmp_path / "kto", max_steps=4, learning_rate=1e-4))
    )
    assert (kto.final_dir / "model.safetensors").is_file() and kto.global_step == 4


def test_a_forced_backend_that_cannot_run_is_one_clear_line(tiny_model_dir, tiny_sft_file, tmp_path, run):
    done = run(
        "Trainers/rtx3090_sft/train_sft.py",
        "--model-name",
        tiny_model_dir,
        "--local-file",
        tiny_sft_file,
        "--backend",
        "unsloth",
        "--output-dir",
        str(tmp_path),
        "--max-steps",
        "1",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: --backend unsloth needs a CUDA device")
    dry = run(
        "Trainers/rtx3090_sft/train_sft.py",
        "--model-name",
        tiny_model_dir,
        "--local-file",
        tiny_sft_file,
        "--backend",
        "cpu",
        "--full-finetune",
        "--dry-run",
        "--output-dir",
        str(tmp_path),
    )
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout.split("plan:\n", 1)[1].split("\neffective config:", 1)[0])
    assert plan["backend"].startswith("backend: cpu on cpu: forced by --backend cpu")
    assert "full_finetune: true" in dry.stdout


@pytest.mark.parametrize("value", ["tpu", "cuda"])
def test_unknown_backend_names_are_refused(value, run):
    done = run("Trainers/rtx3090_sft/train_sft.py", "--backend", value)
    assert done.returncode == 2 and "invalid choice" in done.stderr
