"""Trainers end to end on CPU: real TRL SFT/KTO trainers on the tiny model, no downloads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from Trainers.shared.config import load_config
from Trainers.shared.train import run_training

ROOT = Path(__file__).resolve().parents[1]


def _flags(model, data, out, **extra):
    flags = {
        "model_name": model,
        "local_file": data,
        "output_dir": str(out),
        "batch_size": 2,
        "gradient_accumulation": 1,
        "save_steps": 100,
    }
    flags.update(extra)
    return flags


def _log(run_dir: Path) -> list[dict]:
    latest = run_dir / "logs" / "training_latest.jsonl"
    return [json.loads(line) for line in latest.read_text().splitlines()]


def test_sft_learns_and_writes_the_run_layout(tiny_model_dir, tiny_sft_file, tmp_path):
    class Betas(TrainerCallback):  # what the optimizer really uses, not what the config says
        seen = set()

        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            self.seen.update(tuple(group["betas"]) for group in optimizer.param_groups)

    flags = _flags(tiny_model_dir, tiny_sft_file, tmp_path / "out", max_steps=12, learning_rate=5e-3, adam_beta2=0.95)
    result = run_training(load_config("sft", None, flags), extra_callbacks=[Betas()])
    assert Betas.seen == {(0.9, 0.95)}
    rows = [r for r in _log(result.run_dir) if "loss" in r]
    losses = [r["loss"] for r in rows]
    # random weights give ~ln(vocab) = 6.9; on four repeated records it must fall and accuracy rise
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.3, losses
    assert rows[-1]["mean_token_accuracy"] > rows[0]["mean_token_accuracy"] + 0.15
    final = result.final_dir
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer_config.json",
        "effective_config.yaml",
        "lineage.json",
    ):
        assert (final / name).is_file(), name
    lineage = json.loads((final / "lineage.json").read_text())
    assert lineage["base_model"] == tiny_model_dir and len(lineage["dataset_sha256"]) == 64
    assert lineage["schema_hash"] and lineage["global_step"] == 12 and "toolkit_commit" in lineage
    logs = result.run_dir / "logs"
    assert (logs / "training_latest.jsonl").resolve().name.startswith("training_2")
    assert any((logs / "tensorboard").iterdir())
    assert result.run_dir.parent == tmp_path / "out" and len(result.run_dir.name) == 15  # YYYYMMDD_HHMMSS


def test_kto_raises_the_reward_margin_and_continues_from_an_sft_adapter(
    tiny_model_dir, tiny_kto_file, tiny_sft_file, tmp_path
):
    sft = run_training(load_config("sft", None, _flags(tiny_model_dir, tiny_sft_file, tmp_path / "sft", max_steps=2)))
    config = load_config(
        "kto",
        None,
        _flags(str(sft.final_dir), tiny_kto_file, tmp_path / "kto", max_steps=8, learning_rate=5e-3, two_stage_lr=True),
    )
    result = run_training(config)
    rows = [r for r in _log(result.run_dir) if "rewards/margins" in r]
    for key in ("rewards/chosen", "rewards/rejected", "kl", "grad_norm"):
        assert key in rows[0]
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"] + 0.05
    lrs = [r["learning_rate"] for r in rows]
    assert lrs[-1] == pytest.approx(lrs[3] * 0.1)  # two-stage: stage 2 runs at a tenth of stage 1
    lineage = json.loads((result.final_dir / "lineage.json").read_text())
    assert lineage["base_model"] == tiny_model_dir and lineage["parent_adapter"] == str(sft.final_dir)


class _Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt


def test_resume_latest_after_a_kill_reaches_the_same_step_count(tiny_model_dir, tiny_sft_file, tmp_path):
    flags = _flags(tiny_model_dir, tiny_sft_file, tmp_path / "out", max_steps=5, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config("sft", None, flags), extra_callbacks=[_Kill()])
    first_run = next((tmp_path / "out").iterdir())
    assert not (first_run / "final_model").exists()
    result = run_training(load_config("sft", None, {**flags, "resume": "latest"}))
    assert result.run_dir == first_run and result.global_step == 5
    log = _log(first_run)
    assert log[0]["resume_from"].endswith("checkpoint-2")
    assert [r["step"] for r in log if "loss" in r] == [3, 4, 5]  # continued, not restarted
    assert len(list((first_run / "logs").glob("training_2*.jsonl"))) == 2  # the killed run's log is kept


def _cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=240)


def test_train_sh_runs_from_its_folder_and_dry_run_loads_no_weights(tiny_model_dir, tiny_kto_file, tmp_path):
    out = tmp_path / "out"
    run = _cli(
        "./train.sh",
        "--model-name",
        tiny_model_dir,
        "--local-file",
        tiny_kto_file,
        "--output-dir",
        str(out),
        "--dry-run",
        cwd=ROOT / "Trainers/rtx3090_kto",
    )
    assert run.returncode == 0, run.stderr
    assert '"records": 8' in run.stdout and "beta: 0.3" in run.stdout and "dry run: nothing trained" in run.stdout
    assert "Loading weights" not in run.stderr + run.stdout and not out.exists()


def test_pipeline_script_runs_sft_then_kto_from_the_sft_adapter(tiny_model_dir, tiny_sft_file, tiny_kto_file, tmp_path):
    run = _cli(
        "Trainers/train_sft_to_kto_pipeline.sh",
        "--sft-file",
        tiny_sft_file,
        "--kto-file",
        tiny_kto_file,
        "--sft-output-dir",
        str(tmp_path / "sft"),
        "--kto-output-dir",
        str(tmp_path / "kto"),
        "--model-name",
        tiny_model_dir,
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--gradient-accumulation",
        "1",
        "--beta",
        "0.2",
    )  # a KTO-only flag reaches KTO alone
    assert run.returncode == 0, run.stderr[-2000:]
    kto_final = next((tmp_path / "kto").iterdir()) / "final_model"
    sft_final = next((tmp_path / "sft").iterdir()) / "final_model"
    assert json.loads((kto_final / "lineage.json").read_text())["parent_adapter"] == str(sft_final)
    assert "beta: 0.2" in (kto_final / "effective_config.yaml").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model-size", "9b"], "argument --model-size: invalid choice"),
        (["--local-file", "missing.jsonl"], "missing.jsonl: no such dataset file"),
        (["--local-file", "{sft}"], "SFT trains on positives only"),  # KTO data given to SFT
        (["--adam-beta2", "1"], "adam-beta2 must be between 0 and 1 (exclusive), got 1.0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tiny_kto_file):
    args = [a.replace("{sft}", tiny_kto_file) for a in args]
    run = _cli(sys.executable, "Trainers/rtx3090_sft/train_sft.py", *args)
    assert run.returncode == 2 and message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_one_sided_kto_data_is_one_line_and_exit_2(tiny_sft_file):
    run = _cli(sys.executable, "Trainers/rtx3090_kto/train_kto.py", "--local-file", tiny_sft_file)
    assert run.returncode == 2 and "KTO needs true/false on every record" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
