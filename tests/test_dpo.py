"""DPO (Trainers/shared/methods/dpo.py): pairs from labelled records that share a prompt, a real TRL
DPOTrainer run on the tiny model, and the MLX DPO loss against TRL's on the same weights and batch."""

import json

import pytest

from conftest import tool_record, write_jsonl
from Tools.cli_common import UsageError
from Trainers.shared import data as D
from Trainers.shared.config import load_config
from Trainers.shared.train import run_training


def _records(*specs):
    """(folder, user prompt, label) -> records; a negative writes a wrong folder."""
    return [tool_record(folder if label else "Trash/tmp", user, label) for folder, user, label in specs]


def test_pairs_are_built_per_prompt_and_an_unpaired_file_is_refused(tmp_path):
    data = D.load_records(
        write_jsonl(
            tmp_path / "d.jsonl",
            _records(
                ("P/A", "make A", True),
                ("P/B", "make B", False),
                ("P/A", "make A", False),
                ("P/B", "make B", True),
                ("P/C", "make C", True),
                ("P/A", "make A", False),
            ),
        )
    )
    assert (
        D.validate_for("dpo", data) == 0
    )  # the lone C positive is left out, the second A negative reuses A's positive
    pairs = [(r["label"], r["conversations"][1]["content"]) for _, r in data.records]
    assert pairs == [
        (True, "make A"),
        (False, "make A"),
        (True, "make A"),
        (False, "make A"),
        (True, "make B"),
        (False, "make B"),
    ]
    assert [n for n, _ in data.records] == [1, 3, 1, 6, 4, 2]
    unpaired = D.load_records(
        write_jsonl(tmp_path / "u.jsonl", _records(("P/A", "make A", True), ("P/B", "make B", False)))
    )
    with pytest.raises(
        D.DataError, match=r"no pair: DPO needs a label true and a label false record with the same prompt"
    ):
        D.validate_for("dpo", unpaired)


def test_rows_hold_the_shared_prompt_and_both_completions(tiny_model_dir, tiny_kto_file):
    from transformers import AutoTokenizer

    from Trainers.shared.methods.kto import kto_row

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = D.load_records(tiny_kto_file)
    D.validate_for("dpo", data)
    prepared = D.prepare("dpo", data, tokenizer, 512)
    records = [r for _, r in data.records]
    assert len(prepared.rows) == 4 and prepared.records == 8
    chosen, rejected = kto_row(tokenizer, records[0]), kto_row(tokenizer, records[1])
    assert prepared.rows[0] == {
        "prompt": chosen["prompt"],
        "chosen": chosen["completion"],
        "rejected": rejected["completion"],
    }
    assert "Projects/Alpha" in prepared.rows[0]["chosen"] and "Trash/tmp" in prepared.rows[0]["rejected"]


def test_dpo_trains_the_tiny_model_and_raises_the_reward_margin(tiny_model_dir, tiny_kto_file, tmp_path):
    flags = {
        "model_name": tiny_model_dir,
        "local_file": tiny_kto_file,
        "output_dir": str(tmp_path / "out"),
        "batch_size": 2,
        "gradient_accumulation": 1,
        "max_steps": 8,
        "learning_rate": 5e-3,
        "save_steps": 100,
    }
    config = load_config("dpo", None, flags)
    assert config.dpo.beta == 0.1 and "kto" not in config.to_dict()  # only the run's own method section
    result = run_training(config)
    log = [json.loads(line) for line in (result.run_dir / "logs" / "training_latest.jsonl").read_text().splitlines()]
    rows = [r for r in log if "rewards/margins" in r]
    assert len(rows) == 8 and all(
        k in rows[0] for k in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "loss")
    )
    assert rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # a fresh adapter: policy == reference, -log sigmoid(0)
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"] + 0.05, [r["rewards/margins"] for r in rows]
    assert rows[-1]["loss"] < rows[0]["loss"]
    lineage = json.loads((result.final_dir / "lineage.json").read_text())
    assert lineage["method"] == "dpo" and lineage["global_step"] == 8
    assert "beta: 0.1" in (result.final_dir / "effective_config.yaml").read_text()


def test_dpo_command_line_refuses_unpaired_data_in_one_line(tmp_path, run):
    path = write_jsonl(tmp_path / "u.jsonl", _records(("P/A", "make A", True), ("P/B", "make B", False)))
    done = run("Trainers/rtx3090_dpo/train_dpo.py", "--local-file", path, "--dry-run")
    assert done.returncode == 2 and "no pair" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    refused = run("Trainers/rtx3090_dpo/train_dpo.py", "--use-kto-s")
    assert refused.returncode == 2 and "--use-kto-s" in refused.stderr
    with pytest.raises(UsageError, match="--use-kto-s applies to --method kto only"):
        load_config("dpo", None, {"use_kto_s": True})
    with pytest.raises(UsageError, match="a 'kto' section only applies to KTO training"):
        yaml_file = tmp_path / "c.yaml"
        yaml_file.write_text("kto: {beta: 0.2}\n")
        load_config("dpo", yaml_file, {})


# -- MLX ---------------------------------------------------------------------------------------
def test_mlx_dpo_loss_and_metrics_equal_trl_on_the_same_weights_and_batch(tiny_model_dir, tiny_kto_file, tmp_path):
    """TRL's own DPOTrainer.compute_loss (tokenisation, [chosen, rejected] batch, reference with the
    adapter off) against the MLX trainer on identical weights and the same pairs."""
    pytest.importorskip("mlx_lm", reason="the MLX trainer needs mlx and mlx-lm")
    import numpy as np
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from test_trainers_mlx import KEYS, _config, _peft_state, _random_adapters
    from Trainers.shared.mlx.config import load_mlx_config
    from Trainers.shared.mlx.trainer import Session, lora_settings, session_rows

    beta = 0.1
    config = load_mlx_config(
        _config(
            tmp_path,
            tiny_model_dir,
            tiny_kto_file,
            lora={"target_modules": KEYS},
            method="dpo",
            training={"batch_size": 4},
            dpo={"beta": beta},
        )
    )
    session = Session(config, lora_settings(config))
    weights = _random_adapters(session)
    data = D.load_records(tiny_kto_file)
    D.validate_for("dpo", data)
    rows, _ = session_rows(session, data)
    batch = session.batch(rows[:4])
    session.model.eval()
    loss, aux = session.objective(session.model, batch, session.reference(batch))
    metrics = session.method.mlx_metrics(aux)

    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=4,
        beta=beta,
        max_length=512,
        report_to=[],
        use_cpu=True,
    )
    trl = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
        args=args,
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=KEYS, task_type="CAUSAL_LM"),
        train_dataset=Dataset.from_list(D.prepare("dpo", data, session.hf, 512).rows),
        processing_class=session.hf,
    )
    assert not trl.model.load_state_dict(_peft_state(weights), strict=False).unexpected_keys
    reference = trl.data_collator([trl.train_dataset[i] for i in range(4)])
    assert np.array_equal(np.array(batch["inputs"]), reference["input_ids"][:, :-1].numpy())  # same tokens, same order
    trl.model.eval()
    with torch.no_grad():
        expected = trl.compute_loss(trl.model, reference).item()
    logged = {k: v[-1] for k, v in trl._metrics["eval"].items()}
    assert abs(metrics["rewards/margins"]) > 0.01  # the policy really differs from the reference
    assert loss.item() == pytest.approx(expected, abs=1e-4) and loss.item() != pytest.approx(0.6931, abs=1e-3)
    for key in (
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "logps/rejected",
    ):
        assert metrics[key] == pytest.approx(logged[key], rel=1e-4, abs=1e-3), key


def test_mlx_dpo_run_raises_the_margin(tiny_model_dir, tiny_kto_file, tmp_path):
    pytest.importorskip("mlx_lm", reason="the MLX trainer needs mlx and mlx-lm")
    from test_trainers_mlx import KEYS, _config, _log
    from Trainers.shared.mlx.config import load_mlx_config
    from Trainers.shared.mlx.trainer import train

    path = _config(
        tmp_path,
        tiny_model_dir,
        tiny_kto_file,
        lora={"target_modules": KEYS},
        method="dpo",
        training={"max_steps": 6},
        monitor={"validation_fraction": 0.25},
    )
    result = train(load_mlx_config(path))
    rows = [r for r in _log(result.run_dir) if "loss" in r]
    assert rows[0]["loss"] == pytest.approx(0.6931, abs=1e-4)  # fresh adapter: policy == reference
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"] + 0.05, [r["rewards/margins"] for r in rows]
    evaluated = [r for r in _log(result.run_dir) if "eval_loss" in r]  # one held-out pair, scored with the DPO loss
    assert evaluated and "eval_rewards/margins" in evaluated[-1]


def test_the_teachers_dpo_file_is_all_pairs_and_is_the_default_dataset():
    """Datasets/teacher/teacher_dpo.jsonl: each positive followed by a corrupted copy of the same answer,
    so every record pairs (nothing left out), and DPO trains on it when no dataset is given."""
    from conftest import ROOT
    from Trainers.shared.config import shipped_dataset

    assert shipped_dataset("dpo") == "Datasets/teacher/teacher_dpo.jsonl"
    data = D.load_records(ROOT / shipped_dataset("dpo"))
    total = len(data.records)
    assert D.validate_for("dpo", data) == 0
    assert len(data.records) == total == 1200
    labels = [r["label"] for _, r in data.records]
    assert labels == [True, False] * 600
