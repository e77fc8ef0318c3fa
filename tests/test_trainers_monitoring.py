"""Trainers: KTO health warnings, W&B offline logging, and DDP with two CPU processes."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import tool_record, write_jsonl
from Trainers.shared.callbacks import KtoHealthCallback

ROOT = Path(__file__).resolve().parents[1]


def test_health_check_warns_on_negative_margins_kl_out_of_band_and_big_gradients(capsys):
    health = KtoHealthCallback(patience=3)
    state = SimpleNamespace(global_step=0, is_world_process_zero=True)
    for step, logs in enumerate(
        [
            {"rewards/margins": 0.1, "kl": 0.0, "grad_norm": 1.0},  # early KL 0 is normal
            {"rewards/margins": -0.1, "kl": 0.05},
            {"rewards/margins": -0.2, "kl": 0.05},
            {"rewards/margins": -0.3, "kl": 0.9, "grad_norm": 250.0},
        ],
        start=1,
    ):
        state.global_step = step + 1
        health.on_log(None, state, None, logs=logs)
    assert [w.split()[0] for w in health.warnings] == ["reward", "KL", "gradient"]
    assert "warning: KTO health at step 5: reward margin negative" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb not installed (pip install wandb)")
def test_wandb_offline_run_is_written(tiny_model_dir, tiny_sft_file, tmp_path, monkeypatch):
    from Trainers.shared.config import load_config
    from Trainers.shared.train import run_training

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    config = load_config(
        "sft",
        None,
        {
            "model_name": tiny_model_dir,
            "local_file": tiny_sft_file,
            "output_dir": str(tmp_path),
            "batch_size": 2,
            "max_steps": 2,
            "wandb": True,
            "wandb_project": "toolkit-test",
        },
    )
    result = run_training(config)
    assert list((result.run_dir / "logs" / "wandb").glob("offline-run-*"))


@pytest.mark.parametrize("weighted", [False, True])
def test_ddp_with_two_cpu_processes(tiny_model_dir, tmp_path, weighted):
    """Two ranks train one run. Weighted: the CPU trainer's own loss with each token class weighted
    and the copy-attention loss, which recomputes the head's attention through the unwrapped model
    beside DDP's forward: autograd sums both uses into each weight's one gradient before DDP's hook
    averages it over the ranks (a weight left without a gradient would stop the second step)."""
    records = [tool_record(f"Projects/{name}", f"Create the folder Projects/{name}") for name in ("Alpha", "Beta")]
    data = write_jsonl(tmp_path / "sft.jsonl", records * 4)  # the request spells each value: copy positions
    weights = ["--id-loss-weight", "3", "--prose-loss-weight", "0.5", "--copy-attention-weight", "0.1"]
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # --multi_gpu makes accelerate start torchrun; with no CUDA each rank trains on CPU over gloo
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "Trainers/rtx3090_sft/train_sft.py",
            "--model-name",
            tiny_model_dir,
            "--local-file",
            data,
            "--output-dir",
            str(out),
            "--batch-size",
            "2",
            "--max-steps",
            "2",
            *(weights if weighted else []),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    run_dirs = [p for p in out.iterdir() if (p / "final_model").is_dir()]
    assert len(run_dirs) == 1  # both ranks agree on one run directory
    lineage = json.loads((run_dirs[0] / "final_model" / "lineage.json").read_text())
    assert lineage["global_step"] == 2 and lineage["metrics"]["epoch"] == 1.0  # 2 steps x 2 ranks x 2 = all 8 records
    logged = [json.loads(line) for line in (run_dirs[0] / "logs" / "training_latest.jsonl").read_text().splitlines()]
    assert logged[0]["world_size"] == 2
    assert any("copy_attention_loss" in entry for entry in logged) == weighted
