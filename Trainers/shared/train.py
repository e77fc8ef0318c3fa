"""The one training function behind every entry point: ``run_training(config)``.

All methods share everything (run layout, data path, backend, logging, resume, lineage); what differs
(data check, rows, the TRL trainer and its arguments, a health check) the method object says
(Trainers/shared/methods).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from Tools.cli_common import UsageError
from Tools.schema.records import write_json_atomic

from .config import RunConfig, dump_yaml, wsd_decay_steps
from .methods import get_method

_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


@dataclass
class RunResult:
    run_dir: Path
    final_dir: Path | None = None
    global_step: int = 0
    metrics: dict = field(default_factory=dict)
    plan: dict = field(default_factory=dict)
    health_warnings: list = field(default_factory=list)


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first: the trainer writes trainer_state.json last, so a folder
    without it was cut short by a kill and cannot be resumed from."""
    found = [
        p
        for p in (run_dir / "checkpoints").glob("checkpoint-*")
        if _CHECKPOINT.search(p.name) and (p / "trainer_state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(_CHECKPOINT.search(p.name).group(1)))


def new_run_dir(root: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    run_dir, n = root / stamp, 1
    while run_dir.exists():  # two runs in the same second must not share a directory
        n += 1
        run_dir = root / f"{stamp}_{n}"
    return run_dir


def _shared_across_ranks(make, *args):
    """Under accelerate launch every rank must write into the directory rank 0 picked."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return make(*args)
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    value = [make(*args) if state.is_main_process else None]
    return broadcast_object_list(value)[0]


def resolve_run(config: RunConfig) -> tuple[Path, Path | None]:
    """The run directory to write into and the checkpoint to resume from (None for a fresh run)."""
    root, resume = config.output_root, config.training.resume
    if not resume:
        return _shared_across_ranks(new_run_dir, root), None
    if resume == "latest":
        runs = sorted((p for p in root.glob("*") if p.is_dir() and checkpoints(p)), key=lambda p: p.name)
        if not runs:
            raise UsageError(f"--resume latest: no run with checkpoints under {root}")
        return runs[-1], checkpoints(runs[-1])[-1]
    path = Path(resume)
    if _CHECKPOINT.search(path.name) and path.is_dir():
        return path.parent.parent, path
    if path.is_dir() and checkpoints(path):
        return path, checkpoints(path)[-1]
    raise UsageError(f"--resume {resume}: not a checkpoint directory nor a run directory with checkpoints")


def check_wandb(config: RunConfig) -> None:
    """--wandb is settled before any data or weights load: the package must be there, and without an
    API key (environment, the repository's .env, or `wandb login`) the run logs offline, said once."""
    if not config.training.wandb:
        return
    import importlib.util
    import netrc

    from Evaluator.backends import load_dotenv_once

    if importlib.util.find_spec("wandb") is None:
        raise UsageError("--wandb needs the wandb package: pip install wandb (or pip install -e '.[wandb]')")
    load_dotenv_once()
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return
    try:
        logged_in = netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        logged_in = False
    if not logged_in:
        os.environ["WANDB_MODE"] = "offline"
        print(
            "wandb: no API key (WANDB_API_KEY in the environment or .env, or `wandb login`); logging offline "
            "under the run's logs/wandb (upload later with `wandb sync`)",
            flush=True,
        )


def _report_to(config: RunConfig, logs_dir: Path) -> list[str]:
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(logs_dir / "tensorboard")
    report = ["tensorboard"]
    if config.training.wandb:
        os.environ.setdefault("WANDB_PROJECT", config.training.wandb_project)
        os.environ.setdefault("WANDB_DIR", str(logs_dir))
        report.append("wandb")
    return report


def schedule_args(training, steps: int) -> dict:
    """Transformers' names for the shared schedules (config.SCHEDULES), each after the warm-up as in
    the MLX trainer; wsd decays over the last wsd_decay_steps of the run."""
    if training.lr_scheduler == "wsd":
        decay = wsd_decay_steps(steps)
        return {"lr_scheduler_type": "warmup_stable_decay", "lr_scheduler_kwargs": {"num_decay_steps": decay}}
    return {"lr_scheduler_type": {"constant": "constant_with_warmup"}.get(training.lr_scheduler, training.lr_scheduler)}


def _common_args(config: RunConfig, run_dir: Path, backend, report_to: list[str], steps: int) -> dict:
    import torch

    t = config.training
    cuda = backend.device == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=str(run_dir / "checkpoints"),
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        adam_beta2=t.adam_beta2,
        **schedule_args(t, steps),
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        bf16=bf16,
        fp16=cuda and not bf16,
        use_cpu=not cuda,
        report_to=report_to,
        run_name=f"{config.method}-{run_dir.name}",
        max_length=config.model.max_seq_length,
        gradient_checkpointing=cuda and t.gradient_checkpointing and backend.name != "unsloth",
        optim="adamw_8bit" if backend.quantized else "adamw_torch",
        dataloader_num_workers=0,
        remove_unused_columns=get_method(config.method).remove_unused_columns,
    )


def plan_of(config: RunConfig, run_dir: Path, resume_from: Path | None, prepared, backend_line: str) -> dict:
    t = config.training
    steps_per_epoch = -(-len(prepared.rows) // (t.batch_size * t.gradient_accumulation))  # a DPO row is a pair
    return {
        "method": config.method,
        "model": config.model_name,
        "model_size": config.model.size,
        "dataset": prepared.source,
        "records": prepared.records,
        "labels": dict(prepared.labels),
        "dropped_invalid": prepared.dropped,
        "over_max_seq_length": prepared.truncated,
        "effective_batch": t.batch_size * t.gradient_accumulation,
        "optimizer_steps": t.max_steps if t.max_steps > 0 else int(steps_per_epoch * t.num_epochs),
        "run_dir": str(run_dir),
        "resume_from": str(resume_from) if resume_from else None,
        "backend": backend_line,
    }


def _validation_examples(config: RunConfig, data) -> list:
    """The live monitor's golden examples: a separate file, or records held out of data (removed
    from what is trained on). Empty when the monitor is off."""
    monitor = config.monitor
    if monitor.eval_steps <= 0:
        return []
    from .data import recount
    from .self_correction.monitor import examples_from_records, hold_out, load_validation_file

    if monitor.validation_file:
        return load_validation_file(monitor.validation_file)
    data.records, held = hold_out(
        data.records, monitor.validation_fraction, config.training.seed, paired=get_method(config.method).unit == 2
    )
    recount(data)
    examples = examples_from_records(held, Path(data.source).name)
    if not examples:
        raise UsageError("no held-out record has a golden answer to evaluate on; set monitor.validation_file")
    return examples


def run_training(config: RunConfig, extra_callbacks: list | None = None) -> RunResult:
    """Validate and prepare the data, train, and write final_model/ with lineage. --dry-run stops
    after the plan: it loads the tokenizer and the data but no weights."""
    from .backend import detect_backend, load_tokenizer, out_of_memory, split_adapter
    from .data import load_records, prepare, validate_for

    check_wandb(config)
    run_dir, resume_from = resolve_run(config)
    data = load_records(config.data.local_file, config.data.dataset_name, config.data.split)
    # before any heavy import
    dropped = validate_for(config.method, data, drop_invalid=config.data.drop_invalid) if config.data.validate else 0
    validation = _validation_examples(config, data)
    tokenizer = load_tokenizer(config)
    prepared = prepare(config.method, data, tokenizer, config.model.max_seq_length, dropped)
    backend = detect_backend(
        config.model.require_cuda, config.model.load_in_4bit, config.model.backend, config.training.full_finetune
    )
    result = RunResult(run_dir, plan=plan_of(config, run_dir, resume_from, prepared, backend.describe()))
    if validation:
        result.plan["live_monitor"] = {
            "validation_examples": len(validation),
            "eval_steps": config.monitor.eval_steps,
            "source": config.monitor.validation_file or "held out of the training data",
            "self_correction": config.self_correction.enabled,
        }
    if config.training.dry_run:
        return result

    import torch
    from transformers import set_seed

    from .backend import load_model
    from .callbacks import JsonlLogCallback
    from .export.merge import keep_sentencepiece
    from .lineage import lineage
    from .runlog import new_log_path

    print(backend.describe(), flush=True)
    set_seed(config.training.seed)
    logs_dir = run_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "effective_config.yaml").write_text(dump_yaml(config), encoding="utf-8")
    log = JsonlLogCallback(
        new_log_path(logs_dir),
        {
            "method": config.method,
            "resume_from": str(resume_from) if resume_from else None,
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        },
    )
    callbacks = [log] + list(extra_callbacks or [])
    method = get_method(config.method)
    health = method.health(log)
    if health:
        callbacks.append(health)
    if validation:
        from .self_correction.callback import make_callback

        callbacks.append(make_callback(config, validation, tokenizer, log))
    model = load_model(config, backend, tokenizer)
    from datasets import Dataset

    trainer = method.trainer(
        config,
        model,
        tokenizer,
        Dataset.from_list(prepared.rows),
        _common_args(config, run_dir, backend, _report_to(config, logs_dir), result.plan["optimizer_steps"]),
        callbacks,
    )
    started = time.time()
    try:
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(config) from None
    final = run_dir / "final_model"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
        keep_sentencepiece(getattr(tokenizer, "vocab_file", None), final)  # for llama.cpp's converter
        (final / "effective_config.yaml").write_text(dump_yaml(config), encoding="utf-8")
        base, parent = split_adapter(config.model_name)
        info = lineage(config, backend.name, prepared.records, parent)
        info.update(
            base_model=base,
            global_step=trainer.state.global_step,
            train_seconds=round(time.time() - started, 2),
            metrics=output.metrics,
        )
        write_json_atomic(final / "lineage.json", info)
    result.final_dir, result.global_step, result.metrics = final, trainer.state.global_step, output.metrics
    result.health_warnings = health.warnings if health else []
    return result
