"""The MLX trainer (Trainers/mistral_lora_mac, Trainers/shared/mlx) on the tiny model with mlx[cpu]:
LoRA placement, the SFT and KTO losses against PyTorch and TRL, training, exact resume, eval-only,
the fused Hugging Face export, and the one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("mlx_lm", reason="the MLX trainer needs mlx and mlx-lm (make test installs mlx[cpu] on Linux)")

import mlx.core as mx  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

from conftest import require_llama_cpp, tool_record, write_jsonl  # noqa: E402
from Trainers.shared.data import load_records, prepare  # noqa: E402
from Trainers.shared.mlx import data as mdata  # noqa: E402
from Trainers.shared.mlx.cli import main as cli_main  # noqa: E402
from Trainers.shared.mlx.config import load_mlx_config  # noqa: E402
from Trainers.shared.mlx.trainer import Session, Stepper, lora_settings, session_rows, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAC = ROOT / "Trainers" / "mistral_lora_mac"
KEYS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _config(tmp_path: Path, model: str, dataset: str, **sections) -> Path:
    """A YAML config for the tiny model: small LoRA, no warm-up, quick evaluations."""
    document = {
        "model": {"name": model, "max_seq_length": 512},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "training": {
            "batch_size": 2,
            "gradient_accumulation": 1,
            "learning_rate": 5e-3,
            "warmup_steps": 0,
            "logging_steps": 1,
            "max_steps": 4,
            "save_steps": 100,
            "output_dir": str(tmp_path / "runs"),
            "fuse": False,
        },
        "data": {"local_file": dataset},
        "monitor": {"eval_steps": 100, "validation_fraction": 0, "num_eval_samples": 0, "eval_max_tokens": 8},
    }
    for section, values in sections.items():
        if section == "method":
            document["method"] = values
        else:
            document.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "logs" / "training_latest.jsonl").read_text().splitlines()]


def _random_adapters(session: Session, seed: int = 0) -> dict:
    """Non-zero LoRA weights, so the policy differs from the base (reference) model."""
    rng = np.random.default_rng(seed)
    weights = {
        k: mx.array(rng.normal(0, 0.3, v.shape).astype(np.float32))
        for k, v in tree_flatten(session.model.trainable_parameters())
    }
    session.model.load_weights(list(weights.items()), strict=False)
    return weights


def _peft_state(weights: dict) -> dict:
    """MLX LoRA tensors as PEFT's: lora_a (in x r) is lora_A.weight (r x in), lora_b likewise transposed."""
    import torch

    state = {}
    for name, value in weights.items():
        module, leaf = name.rsplit(".", 1)
        state[f"base_model.model.{module}.{'lora_A' if leaf == 'lora_a' else 'lora_B'}.default.weight"] = torch.tensor(
            np.array(value).T.copy()
        )
    return state


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlx_data") / "sft.jsonl"
    return write_jsonl(
        path,
        [tool_record(f"Projects/{n}", f"Create a folder for {n}") for n in ("Alpha", "Beta", "Gamma", "Delta")] * 2,
    )


@pytest.fixture(scope="module")
def sft_run(tiny_model_dir, sft_data, tmp_path_factory):
    """One SFT run shared by the tests that inspect its outputs: accumulation, validation, hooks, fuse."""
    tmp = tmp_path_factory.mktemp("mlx_sft")
    calls = []

    def hook(step, generate):
        messages = [{"role": "user", "content": "Create a folder for Alpha"}]
        calls.append((step, generate(messages), generate(messages)))

    path = _config(
        tmp,
        tiny_model_dir,
        sft_data,
        lora={"target_modules": KEYS + ["lm_head"]},
        training={"max_steps": 8, "gradient_accumulation": 2, "learning_rate": 1e-2, "save_steps": 4, "fuse": True},
        monitor={"eval_steps": 4, "validation_fraction": 0.25, "num_eval_samples": 2, "eval_max_tokens": 12},
        self_correction={
            "enabled": True,
            "min_examples": 1,
            "generation_interval": 4,
            "output_dir": str(tmp / "self_correction"),
        },
    )
    config = load_mlx_config(path)
    return config, train(config, eval_hooks=[hook]), calls, path


# -- configuration and command line ------------------------------------------------------------
def test_shipped_config_has_the_seed_defaults_and_the_cli_imports_no_mlx():
    config = load_mlx_config(MAC / "config" / "config.yaml")
    assert (config.model.name, config.model.max_seq_length) == ("mlx-community/Mistral-7B-Instruct-v0.3-4bit", 2048)
    assert (config.lora.r, config.training.batch_size, config.training.gradient_accumulation) == (16, 2, 4)
    assert config.method == "sft" and Path(config.data.local_file).is_file() and config.kto.beta == 0.3
    code = (
        "import sys; import Trainers.shared.mlx.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    helped = subprocess.run([sys.executable, "main.py", "--help"], cwd=MAC, capture_output=True, text=True)
    assert helped.returncode == 0 and "--eval-only" in helped.stdout and "--resume" in helped.stdout


@pytest.mark.parametrize(
    "change, flags, message",
    [
        ({"training": {"batch_sise": 2}}, [], "unknown key 'training.batch_sise'"),
        ({"optimizer": {"lr": 1}}, [], "unknown section 'optimizer'"),
        ({"lora": {"r": "sixteen"}}, [], "'lora.r' must be a number"),
        ({"training": {"adam_beta2": 1.5}}, [], "training.adam_beta2 must be between 0 and 1 (exclusive), got 1.5"),
        ({"method": "ppo"}, [], "method must be one of sft, kto, dpo, not 'ppo'"),
        ({"method": "kto", "training": {"batch_size": 1}}, [], "KTO needs a per-device batch of at least 2"),
        ({"method": "kto", "kto": {"use_kto_s": True}}, [], "kto.use_kto_s: the NVIDIA trainers only"),
        ({"sft": {"copy_attention_weight": 0.1}}, [], "sft.copy_attention_weight: the NVIDIA trainers only"),
        ({}, ["--dataset", "missing.jsonl"], "missing.jsonl: no such dataset file"),
        ({}, ["--dataset", "{kto}"], "SFT trains on positives only"),
        ({}, ["--eval-only"], "--eval-only needs --resume"),
        ({}, ["--fuse"], "--fuse needs --resume"),
        ({}, ["--resume", "nowhere/checkpoint_step_5.npz"], "no such checkpoint"),
        ({}, ["--model", "./no/such/model"], "no such model directory"),
        ({"lora": {"target_modules": ["qproj"]}}, [], "lora.target_modules ['qproj'] match no linear layer"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    change, flags, message, tiny_model_dir, tiny_sft_file, tiny_kto_file, tmp_path, capsys
):
    config = _config(tmp_path, tiny_model_dir, tiny_sft_file, **change)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--config", str(config), *[f.replace("{kto}", tiny_kto_file) for f in flags]])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert not (tmp_path / "runs").exists()  # nothing written before the input is known to be good


def test_missing_config_file_from_the_command_line(tmp_path):
    run = subprocess.run(
        [sys.executable, "main.py", "--config", str(tmp_path / "nope.yaml")], cwd=MAC, capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such config file"


def test_on_a_mac_without_metal_the_trainer_refuses_and_elsewhere_says_cpu(monkeypatch):
    from Tools.cli_common import UsageError
    from Trainers.shared.mlx import trainer

    assert trainer.select_device().startswith("device: CPU (Linux") or sys.platform != "linux"
    monkeypatch.setattr(trainer.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(mx.metal, "is_available", lambda: False)
    with pytest.raises(UsageError, match=r"no Metal device \(mx.metal.is_available\(\) is False\)"):
        trainer.select_device()


def test_adam_beta2_reaches_the_mlx_optimizer(tiny_model_dir, tiny_sft_file, tmp_path):
    from Trainers.shared.mlx.trainer import _optimizer

    config = load_mlx_config(_config(tmp_path, tiny_model_dir, tiny_sft_file, training={"adam_beta2": 0.95}), {})
    assert [float(b) for b in _optimizer(config, 10).betas] == [0.9, 0.95]
    default = load_mlx_config(_config(tmp_path, tiny_model_dir, tiny_sft_file), {})
    assert [float(b) for b in _optimizer(default, 10).betas] == [0.9, 0.999]


def test_wsd_holds_the_peak_rate_then_decays_over_the_last_fifth(tiny_model_dir, tiny_sft_file, tmp_path):
    from Trainers.shared.mlx.trainer import _schedule

    training = {"lr_scheduler": "wsd", "warmup_steps": 10, "learning_rate": 1e-3}
    config = load_mlx_config(_config(tmp_path, tiny_model_dir, tiny_sft_file, training=training), {})
    rate = _schedule(config, 100)
    at = {step: float(rate(mx.array(step))) for step in (5, 10, 50, 80, 90, 100)}
    assert at[5] == pytest.approx(5e-4)  # warming up
    assert at[10] == at[50] == at[80] == pytest.approx(1e-3)  # held until the last 20 steps
    assert at[90] == pytest.approx(5e-4, rel=1e-3) and at[100] == pytest.approx(0, abs=1e-9)  # cosine down


# -- data --------------------------------------------------------------------------------------
def test_validation_split_keeps_kto_alternation_and_the_batch_order_is_replayable(tiny_kto_file):
    data = load_records(tiny_kto_file)
    train_part, held = mdata.split_validation(data, "kto", 0.25, seed=1)
    for part in (train_part, held):
        labels = [r["label"] for _, r in part.records]
        assert all(a != b for a, b in zip(labels, labels[1:])) and len(labels) % 2 == 0
    assert len(held.records) == 2 and sorted(n for n, _ in train_part.records + held.records) == list(range(1, 9))
    with pytest.raises(mdata.DataError, match="too few to hold out"):
        mdata.split_validation(data, "kto", 0.9, seed=1)
    schedule = mdata.Schedule(rows=7, batch_size=2, shuffle=True, seed=3)
    first = [schedule.indices(i) for i in range(12)]
    again = mdata.Schedule(rows=7, batch_size=2, shuffle=True, seed=3)
    assert [again.indices(i) for i in reversed(range(12))][::-1] == first  # any order of access, same batches
    assert sorted(i for b in first[:4] for i in b) == list(range(7)) and first[:4] != first[4:8]  # reshuffled per epoch
    kto = mdata.Schedule(rows=5, batch_size=2, shuffle=False, seed=3, min_batch=2)
    assert [kto.indices(i) for i in range(3)] == [[0, 1], [2, 3], [0, 1]]  # file order; no one-row KL batch


def test_answers_are_scored_with_the_shared_parser_and_validator():
    from Tools.schema.toolcalls import parse_message, render_content

    record = tool_record("Projects/Alpha", "Create a folder for Alpha")
    system, call = record["conversations"][0]["content"], parse_message(record["conversations"][2]).calls[0]
    assert mdata.score_answer(render_content([call], "hermes"), system) == {
        "parsed": True,
        "valid": True,
        "codes": [],
        "tools": ["vaultManager_createFolder"],
    }
    call.name = "vaultManager_makeFolder"
    invented = mdata.score_answer(render_content([call], "hermes"), system)
    assert invented["parsed"] and not invented["valid"] and "E_UNKNOWN_TOOL" in invented["codes"]
    assert mdata.score_answer("I made the folder for you.", system)["parsed"] is False


def test_mistral_instruct_format_is_learnable_and_parses_back(tiny_model_dir):
    """model.chat_template: mistral (the shipped config's): prefixes render stably, the loss covers
    exactly the [TOOL_CALLS] answer and its end token, and the shared parser and validator read it back."""
    from transformers import AutoTokenizer

    from Trainers.shared.backend import use_chat_template
    from Trainers.shared.data import chat_messages, encode_prompt, encode_sft

    tokenizer = use_chat_template(AutoTokenizer.from_pretrained(tiny_model_dir), "mistral")
    record = tool_record("Projects/Alpha", "Create a folder for Alpha")
    messages = chat_messages(record)
    system, user = messages[0]["content"], messages[1]["content"]
    prompt = tokenizer.decode(encode_prompt(tokenizer, messages[:2]), skip_special_tokens=False)
    assert prompt.replace(" ", "") == f"<s>[INST] {system}\n\n{user}[/INST]".replace(" ", "")
    longer = messages + [
        {"role": "tool", "content": '{"success": true}', "tool_call_id": "abc123def"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "You are welcome."},
    ]
    row = encode_sft(tokenizer, [longer])[0]
    trained = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
    assert trained.startswith("[TOOL_CALLS] [") and "[TOOL_RESULTS]" not in trained and "[INST]" not in trained
    assert trained.count(tokenizer.eos_token) == 3 and "Done." in trained and "You are welcome." in trained
    single = encode_sft(tokenizer, [messages])[0]
    answer = tokenizer.decode([t for t, label in zip(single["input_ids"], single["labels"]) if label != -100])
    assert mdata.score_answer(answer.removesuffix(tokenizer.eos_token), system)["valid"]


# -- LoRA and the losses against PyTorch --------------------------------------------------------
def test_lora_reaches_every_nested_projection_and_a_step_changes_only_lora(tiny_model_dir, tiny_sft_file, tmp_path):
    config = load_mlx_config(
        _config(tmp_path, tiny_model_dir, tiny_sft_file, lora={"target_modules": KEYS, "dropout": 0.1})
    )
    session = Session(config, lora_settings(config))
    assert len(session.adapted) == 2 * len(KEYS)  # 2 blocks x 7 projections, inside self_attn and mlp
    trainable = dict(tree_flatten(session.model.trainable_parameters()))
    assert len(trainable) == 2 * len(session.adapted) and all(k.endswith(("lora_a", "lora_b")) for k in trainable)
    # rank x (in + out) per layer: attention 64 -> 64, gate/up 64 -> 128, down 128 -> 64
    assert sum(v.size for v in trainable.values()) == 2 * 4 * (4 * 128 + 3 * 192) > 0
    before = {k: np.array(v) for k, v in tree_flatten(session.model.parameters())}
    rows, _ = session_rows(session, load_records(tiny_sft_file))
    Stepper(session, rows).run_step()
    after = {k: np.array(v) for k, v in tree_flatten(session.model.parameters())}
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed and changed <= set(trainable)
    assert {k for k in trainable if k.endswith("lora_b")} <= changed  # B starts at zero and every one moved


def test_sft_loss_is_the_shifted_assistant_only_loss_pytorch_computes(tiny_model_dir, tiny_sft_file, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from Trainers.shared.methods.sft import sft_loss

    config = load_mlx_config(_config(tmp_path, tiny_model_dir, tiny_sft_file, lora={"target_modules": KEYS}))
    session = Session(config, lora_settings(config))
    weights = _random_adapters(session)
    rows, _ = session_rows(session, load_records(tiny_sft_file))
    pair = [rows[0], {k: v[:-7] for k, v in rows[1].items()}]  # two lengths: padding must not count
    batch = session.batch(pair)
    session.model.eval()
    loss, tokens = sft_loss(session.model, batch["inputs"], batch["targets"], batch["mask"])
    assert tokens.item() == sum(sum(1 for x in r["labels"][1:] if x != -100) for r in pair)

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=KEYS),
    )
    assert not model.load_state_dict(_peft_state(weights), strict=False).unexpected_keys
    width = max(len(r["input_ids"]) for r in pair)
    ids = torch.tensor([r["input_ids"] + [session.pad_id] * (width - len(r["input_ids"])) for r in pair])
    labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in pair])
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in pair])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss.item()  # shifts inside
    assert loss.item() == pytest.approx(expected, abs=1e-4)


def test_sft_tokens_count_their_class_weight(tiny_model_dir, tiny_sft_file, tmp_path):
    """sft.id_loss_weight and sft.prose_loss_weight on MLX as on NVIDIA: the mean negative
    log-likelihood of the labelled tokens with each answer token inside an id, or inside the
    context's prose, counted that many times."""
    import mlx.core as mx

    from Trainers.shared.methods import get_method
    from Trainers.shared.mlx.losses import token_logps

    config = load_mlx_config(_config(tmp_path, tiny_model_dir, tiny_sft_file, lora={"target_modules": KEYS}))
    session = Session(config, lora_settings(config))
    rows, _ = session_rows(session, load_records(tiny_sft_file))
    batch = session.batch(rows[:2])
    for kind in (1, 2):  # ids, prose: answer tokens only
        marked = batch["token_class"] == kind
        assert marked.sum().item() > 0 and (marked * (1 - batch["mask"])).sum().item() == 0
    sft = get_method("sft")
    plain, count = sft.mlx_loss(session.model, batch, None, config)
    config.sft.id_loss_weight, config.sft.prose_loss_weight = 3.0, 0.25
    weighted, same = sft.mlx_loss(session.model, batch, None, config)
    weights = batch["mask"] * mx.array([1.0, 3.0, 0.25])[batch["token_class"]]
    logps = token_logps(session.model, batch["inputs"], batch["targets"])
    assert same.item() == count.item() == batch["mask"].sum().item()
    assert weighted.item() == pytest.approx((-(logps * weights).sum() / weights.sum()).item(), rel=1e-5)
    assert abs(weighted.item() - plain.item()) > 1e-4


def test_kto_loss_and_metrics_equal_trl_on_the_same_weights_and_batch(tiny_model_dir, tiny_kto_file, tmp_path):
    """TRL's own KTOTrainer.compute_loss (tokenisation, KL pairs, reference with the adapter off)
    against the MLX trainer on identical weights and the same four records."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import KTOConfig, KTOTrainer

    beta = 0.3
    config = load_mlx_config(
        _config(
            tmp_path,
            tiny_model_dir,
            tiny_kto_file,
            lora={"target_modules": KEYS},
            method="kto",
            training={"batch_size": 4},
            kto={"beta": beta},
        )
    )
    session = Session(config, lora_settings(config))
    weights = _random_adapters(session)
    data = load_records(tiny_kto_file)
    rows, _ = session_rows(session, data)
    batch = session.batch(rows[:4])
    session.model.eval()
    loss, sums = session.objective(session.model, batch, session.reference(batch))
    metrics = session.method.mlx_metrics(sums)

    args = KTOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=4,
        beta=beta,
        max_length=512,
        train_sampling_strategy="sequential",
        report_to=[],
        use_cpu=True,
    )
    trl = KTOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
        args=args,
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=KEYS, task_type="CAUSAL_LM"),
        train_dataset=Dataset.from_list(prepare("kto", data, session.hf, 512).rows),
        processing_class=session.hf,
    )
    assert not trl.model.load_state_dict(_peft_state(weights), strict=False).unexpected_keys
    reference = next(iter(trl.get_train_dataloader()))
    for ours, theirs in (("inputs", "input_ids"), ("KL_inputs", "KL_input_ids")):  # same tokens, same KL pairs
        assert np.array_equal(np.array(batch[ours]), reference[theirs][:, :-1].numpy())
    trl.model.eval()
    with torch.no_grad():
        expected = trl.compute_loss(trl.model, reference).item()
    logged = {k: v[-1] for k, v in trl._metrics["eval"].items()}
    assert metrics["kl"] > 1 and abs(metrics["rewards/margins"]) > 0.1  # the policy really differs from the reference
    assert loss.item() == pytest.approx(expected, abs=1e-4) and loss.item() != pytest.approx(0.5, abs=1e-3)
    for key in ("kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert metrics[key] == pytest.approx(logged[key], rel=1e-4, abs=1e-3), key


# -- training runs -----------------------------------------------------------------------------
def test_sft_run_learns_evaluates_calls_hooks_and_writes_its_layout(sft_run):
    config, result, calls, _ = sft_run
    log = _log(result.run_dir)
    assert (
        log[0]["event"] == "start"
        and log[0]["max_steps"] == 8
        and log[-1] == {**log[-1], "event": "end", "global_step": 8}
    )
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 9))
    rates = [r["learning_rate"] for r in steps]  # cosine from the peak, no warm-up
    assert rates[0] == pytest.approx(1e-2) and all(a > b for a, b in zip(rates, rates[1:]))
    assert all(r["grad_norm"] > 0 and r["epoch"] > 0 for r in steps)
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.5, [r["loss"] for r in steps]
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in evals] == [4, 8] and evals[1]["eval_loss"] < evals[0]["eval_loss"]
    assert all(0 <= r["eval_parse_rate"] <= 1 and r["eval_samples"] == 2 for r in evals)
    assert [c[0] for c in calls] == [4, 8]  # every evaluation step, with a working greedy generate()
    assert all(isinstance(text, str) and text and text == again for _, text, again in calls)
    checkpoints = result.run_dir / "checkpoints"
    for stem in ("checkpoint_step_4", "checkpoint_step_8", "best_checkpoint"):
        for suffix in (".npz", ".optimizer.npz", ".json"):
            assert (checkpoints / f"{stem}{suffix}").is_file(), stem + suffix
    assert all(k.endswith(("lora_a", "lora_b")) for k in mx.load(str(checkpoints / "checkpoint_step_8.npz")))
    assert result.best == {
        "step": 8,
        "eval_loss": evals[1]["eval_loss"],
        "path": str(checkpoints / "best_checkpoint.npz"),
    }
    assert (result.run_dir / "logs" / "training_latest.jsonl").resolve().name.startswith("training_2")
    assert json.loads((result.run_dir / "eval" / "step_8.json").read_text())["samples"][0]["line"] >= 1
    assert "lora:" in (result.run_dir / "effective_config.yaml").read_text()


def test_the_self_correction_monitor_runs_as_an_mlx_eval_hook(sft_run):
    """The shared live monitor answers the validation records at each evaluation; the untrained
    model's mistakes become correction examples whose targets are the golden answers."""
    config, result, _, _ = sft_run
    folder = Path(config.self_correction.output_dir)
    metadata = sorted(folder.glob("self_correction_step*_*.json"))
    assert [json.loads(p.read_text())["step"] for p in metadata] == [4, 8]
    golden = {
        json.dumps(r["conversations"][-1], sort_keys=True)
        for r in map(json.loads, Path(config.data.local_file).read_text().splitlines())
    }
    written = [
        json.loads(line)
        for p in folder.glob("self_correction_step*.jsonl")
        if not p.stem.endswith("_kto")
        for line in p.read_text().splitlines()
    ]
    corrections = [r for r in written if r.get("metadata", {}).get("kind") == "correction"]
    assert corrections and all(json.dumps(r["conversations"][-1], sort_keys=True) in golden for r in corrections)


def test_fused_model_is_a_hugging_face_model_with_lineage_and_exports_to_gguf(sft_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from Trainers.shared.lineage import file_sha256, lineage_of
    from Trainers.shared.mlx.checkpoints import read_checkpoint
    from Trainers.shared.tiny_model import CHAT_TEMPLATE

    config, result, _, _ = sft_run
    fused = result.fused_dir
    assert fused == result.run_dir / "fused_model"
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "tokenizer.model",
        "lineage.json",
        "effective_config.yaml",
    ):
        assert (fused / name).is_file(), name
    lineage = json.loads((fused / "lineage.json").read_text())
    assert set(lineage_of("sft", "m", "hf:d", 1, "cpu")) <= set(lineage)  # the NVIDIA trainers' keys, and more
    assert lineage["backend"] == "mlx-cpu" and lineage["global_step"] == 8 and lineage["method"] == "sft"
    assert lineage["adapter"] == result.best["path"] and lineage["dataset_sha256"] == file_sha256(
        config.data.local_file
    )
    assert lineage["versions"]["mlx-lm"] and lineage["fused_lora_layers"] == 2 * len(KEYS) + 1  # + lm_head
    assert lineage["metrics"]["train_loss"] == result.train_loss and lineage["train_seconds"] > 0

    session = Session(config, lineage["lora"], read_checkpoint(Path(lineage["adapter"])))
    session.model.eval()
    ids = session.hf("<|im_start|>user\nCreate a folder for Alpha<|im_end|>")["input_ids"]
    ours = np.array(session.model(mx.array([ids])))
    model = AutoModelForCausalLM.from_pretrained(fused, dtype=torch.float32)
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits.numpy()
    assert np.abs(ours - theirs).max() < 1e-4  # base + LoRA in MLX == fused weights in transformers
    assert (
        np.abs(ours - np.array(Session(config, lineage["lora"]).model(mx.array([ids])))).max() > 1e-3
    )  # trained != fresh
    assert AutoTokenizer.from_pretrained(fused).chat_template == CHAT_TEMPLATE
    require_llama_cpp()
    # the export command takes the MLX run as it is: GGUF, Modelfile checked against the chat template
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "Trainers.shared.export",
            "gguf",
            str(result.run_dir),
            "--outdir",
            str(tmp_path / "export"),
            "--quantizations",
            "none",
            "--roundtrip",
            "plumbing",
            "--no-server",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    gguf = next((tmp_path / "export").glob("*-f16.gguf"))
    assert gguf.read_bytes()[:4] == b"GGUF" and "chat format: chatml" in run.stdout


def test_eval_only_reports_validation_loss_parse_and_valid_call_rates(sft_run):
    config, result, _, path = sft_run
    # a relative checkpoint path that does not exist here is found in the newest run under the output root
    run = subprocess.run(
        [
            sys.executable,
            "main.py",
            "--config",
            str(path),
            "--eval-only",
            "--resume",
            "checkpoints/checkpoint_step_8.npz",
        ],
        cwd=MAC,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "device: CPU" in run.stdout and "validation loss" in run.stdout and "valid-call rate" in run.stdout
    report = json.loads((result.run_dir / "eval" / "eval_only_step_8.json").read_text())
    trained = next(r for r in _log(result.run_dir) if r.get("step") == 8 and "eval_loss" in r)
    assert report["metrics"]["eval_loss"] == pytest.approx(trained["eval_loss"], abs=1e-5)  # same adapters, same split
    samples = report["samples"]
    assert len(samples) == 2 and report["records"] == 2
    assert report["metrics"]["eval_parse_rate"] == sum(s["parsed"] for s in samples) / 2
    assert report["metrics"]["eval_valid_call_rate"] == sum(s["valid"] for s in samples) / 2
    assert f"{report['metrics']['eval_loss']:.4f}" in run.stdout


def test_kto_after_sft_logs_trls_metrics_raises_the_margin_and_fuses_on_request(
    sft_run, tiny_model_dir, tiny_kto_file, tmp_path
):
    sft_fused = sft_run[1].fused_dir  # KTO starts from the fused SFT model, which is also its reference
    path = _config(
        tmp_path,
        str(sft_fused),
        tiny_kto_file,
        lora={"target_modules": KEYS},
        method="kto",
        training={"max_steps": 6},
        monitor={"validation_fraction": 0.25},
    )
    result = train(load_mlx_config(path))
    log = _log(result.run_dir)
    rows = [r for r in log if "loss" in r]
    evaluated = [r for r in log if "eval_loss" in r]  # one true/false pair held out, scored with the KTO loss
    assert (
        [r["step"] for r in evaluated] == [6]
        and 0 < evaluated[0]["eval_loss"] < 1
        and "eval_rewards/margins" in evaluated[0]
    )
    assert len(rows) == 6 and all(k in rows[0] for k in ("rewards/chosen", "rewards/rejected", "rewards/margins", "kl"))
    assert rows[0]["loss"] == pytest.approx(0.5, abs=1e-6) and rows[0]["kl"] == 0  # fresh adapter: policy == reference
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"] + 0.05, [r["rewards/margins"] for r in rows]
    assert result.fused_dir is None
    assert cli_main(["--config", str(path), "--fuse", "--resume", "best_checkpoint.npz"]) == 0  # of the newest run
    lineage = json.loads((result.run_dir / "fused_model" / "lineage.json").read_text())
    assert lineage["method"] == "kto" and lineage["global_step"] == 6
    assert lineage["adapter"] == str(result.run_dir / "checkpoints" / "best_checkpoint.npz")
    assert lineage["parent_adapter"] == str(sft_fused) and lineage["base_model"] == tiny_model_dir


def test_resume_after_a_kill_continues_exactly_like_an_uninterrupted_run(tiny_model_dir, tiny_sft_file, tmp_path):
    from Trainers.shared.mlx.checkpoints import step_checkpoints

    sections = {
        "lora": {"dropout": 0.1, "target_modules": KEYS},  # dropout: the random stream must be replayed too
        "training": {"max_steps": 4, "gradient_accumulation": 2, "save_steps": 2, "warmup_steps": 1},
        "monitor": {"eval_steps": 3},
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = train(load_mlx_config(_config(tmp_path / "a", tiny_model_dir, tiny_sft_file, **sections)))
    config = load_mlx_config(_config(tmp_path / "b", tiny_model_dir, tiny_sft_file, **sections))

    def kill(step, generate):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, eval_hooks=[kill])
    run_dir = next((tmp_path / "b" / "runs").iterdir())
    assert [p.name for p in step_checkpoints(run_dir)] == ["checkpoint_step_2.npz"]
    resumed = train(config, resume="latest")
    assert resumed.run_dir == run_dir and resumed.global_step == 4
    for name in ("checkpoint_step_4.npz", "checkpoint_step_4.optimizer.npz"):
        ours, reference = (mx.load(str(d / "checkpoints" / name)) for d in (run_dir, whole.run_dir))
        assert set(ours) == set(reference) and len(ours) > 2
        for key in reference:
            assert np.allclose(np.array(ours[key]), np.array(reference[key]), rtol=0, atol=1e-7), (name, key)
    log = _log(run_dir)
    assert log[0]["global_step"] == 2 and log[0]["resume_from"].endswith("checkpoint_step_2.npz")
    assert [r["step"] for r in log if "loss" in r] == [3, 4]  # continued, not restarted
    assert len(list((run_dir / "logs").glob("training_2*.jsonl"))) == 2  # the killed run's log is kept
    assert json.loads((run_dir / "checkpoints" / "checkpoint_step_4.json").read_text())["micro_batches"] == 8


def test_main_py_trains_from_its_folder_with_the_shipped_config(tiny_model_dir, tiny_sft_file, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "main.py",
            "--config",
            "config/config.yaml",
            "--model",
            tiny_model_dir,
            "--dataset",
            tiny_sft_file,
            "--max-steps",
            "2",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        cwd=MAC,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("device: CPU") and "trainable parameters" in run.stdout
    run_dir = next((tmp_path / "runs").iterdir())
    assert json.loads((run_dir / "fused_model" / "lineage.json").read_text())["dataset"] == str(
        Path(tiny_sft_file).resolve()
    )
    assert "max_seq_length: 2048" in (run_dir / "effective_config.yaml").read_text()
