"""The MLX training loop: LoRA SFT, KTO or DPO (the method's rows, batches and loss) with gradient accumulation, evaluation, eval hooks,
checkpoints that resume exactly, JSONL logs in the NVIDIA trainers' shape, and the fused export.

Three entry points, all validating the data before any model is loaded:
``train(config, resume, eval_hooks)``, ``evaluate_checkpoint(config, resume)`` and
``fuse_checkpoint(config, resume)``.

Exact resume: a micro-batch's rows are a pure function of its global index (data.Schedule), the
dropout randomness of optimizer step N is seeded from (seed, N), and checkpoints hold the
adapters and the whole optimizer state, so stopping and resuming reproduces an uninterrupted run.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from Tools.cli_common import UsageError
from Tools.schema.records import write_json_atomic

from ..data import encode_prompt
from ..runlog import RunLog, new_log_path
from ..train import new_run_dir  # the NVIDIA trainers' YYYYMMDD_HHMMSS naming
from . import data as mdata
from .checkpoints import BEST, Checkpoint, prune, resolve_resume, save_checkpoint
from ..methods import get_method
from .config import MlxConfig, dump_yaml

Generate = Callable[[list], str]
EvalHook = Callable[[int, Generate], None]  # hook(step, generate): called at every evaluation step


@dataclass
class RunResult:
    run_dir: Path
    global_step: int = 0
    train_loss: float | None = None
    eval: dict = field(default_factory=dict)  # the last evaluation's metrics
    best: dict | None = None  # {"step", "eval_loss", "path"} of best_checkpoint
    fused_dir: Path | None = None
    trainable_parameters: int = 0
    health_warnings: list = field(default_factory=list)


def select_device() -> str:
    """Metal on macOS (required there), the CPU elsewhere; returns the line saying which."""
    import mlx.core as mx

    if platform.system() == "Darwin":
        if not mx.metal.is_available():
            raise UsageError(
                "MLX sees no Metal device (mx.metal.is_available() is False): the Mac trainer needs "
                "Apple silicon; on other machines use Trainers/rtx3090_sft"
            )
        mx.set_default_device(mx.gpu)
        info = getattr(mx, "device_info", None) or mx.metal.device_info  # mx.device_info is newer
        return f"device: Metal GPU ({info().get('device_name', 'Apple silicon')})"
    mx.set_default_device(mx.cpu)
    return f"device: CPU ({platform.system()} {platform.machine()}; Metal exists only on macOS, so mlx[cpu] runs here)"


def lora_settings(config: MlxConfig) -> dict:
    lora = config.lora
    return {
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "layers": lora.layers,
        "target_modules": list(lora.target_modules),
    }


def checkpoint_lora(checkpoint: Checkpoint) -> dict:
    """The LoRA settings a checkpoint was trained with; earlier checkpoints name r and target_modules rank and keys."""
    lora = dict(checkpoint.meta["lora"])
    for old, new in (("rank", "r"), ("keys", "target_modules")):
        if old in lora:
            lora[new] = lora.pop(old)
    return lora


def _local_model(name: str) -> Path | None:
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or path.exists():
        raise UsageError(f"model {name}: no such model directory (a Hugging Face id looks like org/name)")
    return None


class Session:
    """A model with LoRA adapters, its tokenizer, and the helpers to run batches through it."""

    def __init__(self, config: MlxConfig, lora: dict, checkpoint: Checkpoint | None = None):
        import mlx.core as mx
        import mlx_lm
        from mlx_lm.utils import hf_repo_to_path

        from ..backend import use_chat_template
        from .lora import adapter_weights, apply_lora

        self.config, self.lora, self.method = config, lora, get_method(config.method)
        name = config.model.name
        local = _local_model(name)
        try:
            self.model, self.tokenizer, self.model_config = mlx_lm.load(str(local or name), return_config=True)
        except Exception as exc:  # Hub, network and format errors all end the same way for the user
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UsageError(f"cannot load model {name} with mlx-lm ({type(exc).__name__}: {first})") from None
        self.model_path = local or hf_repo_to_path(name)
        self.hf = use_chat_template(self.tokenizer._tokenizer, config.model.chat_template)
        self.pad_id = self.hf.pad_token_id
        mx.random.seed(config.training.seed)  # the LoRA A matrices start random
        self.adapted = apply_lora(
            self.model, lora["r"], lora["alpha"], lora["dropout"], lora["layers"], lora["target_modules"]
        )
        if checkpoint is not None:
            weights, expected = checkpoint.adapters(), adapter_weights(self.model)
            if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in weights):
                raise UsageError(f"{checkpoint.path}: its adapters do not fit {name} with LoRA {lora}")
            self.model.load_weights(list(weights.items()), strict=False)
        mx.eval(self.model.parameters())

    # -- batches ---------------------------------------------------------------------------
    def batch(self, rows: list) -> dict:
        import mlx.core as mx

        arrays = self.method.mlx_batch(rows, self.pad_id, self.config.model.max_seq_length)
        return {k: mx.array(v) for k, v in arrays.items()}

    def reference(self, b: dict):
        """What the loss needs without gradient (the reference model's log-probs, adapters off); None for SFT."""
        return self.method.mlx_reference(self.model, b)

    def objective(self, model, b: dict, fixed):
        """(loss, aux) of one micro-batch; aux is the token count (SFT) or the method's metric values."""
        return self.method.mlx_loss(model, b, fixed, self.config)

    def generate(self, messages: list) -> str:
        """The model's greedy answer to chat messages, rendered with the chat template (generation prompt on)."""
        import mlx_lm

        self.model.eval()
        return mlx_lm.generate(
            self.model,
            self.tokenizer,
            encode_prompt(self.hf, messages),
            max_tokens=self.config.monitor.eval_max_tokens,
            verbose=False,
        )

    # -- evaluation ------------------------------------------------------------------------
    def validation_loss(self, rows: list) -> dict:
        """eval_loss over the rows (token-weighted for SFT; the batch-mean loss and TRL's metrics for KTO and DPO)."""
        import mlx.core as mx

        self.model.eval()
        total, weight, metrics = 0.0, 0.0, []
        for indices in mdata.chunks(len(rows), self.config.training.batch_size, self.method.min_batch):
            b = self.batch([rows[i] for i in indices])
            loss, aux = self.objective(self.model, b, self.reference(b))
            mx.eval(loss, aux)
            w = self.method.mlx_weight(aux)
            total, weight = total + loss.item() * w, weight + w
            metrics.append(self.method.mlx_metrics(aux))
        out = {"eval_loss": total / weight} if weight else {}
        for key in sorted({k for m in metrics for k in m}):
            values = [m[key] for m in metrics if key in m]
            out[f"eval_{key}"] = sum(values) / len(values)
        return out

    def sample_scores(self, samples: list) -> tuple[dict, list]:
        """Greedy answers to the sample prompts, scored with the shared parser and validator."""
        answers = []
        for sample in samples:
            text = self.generate(sample.messages)
            answers.append({"line": sample.line, "answer": text, **mdata.score_answer(text, sample.system)})
        if not answers:
            return {}, []
        n = len(answers)
        return {
            "eval_parse_rate": sum(a["parsed"] for a in answers) / n,
            "eval_valid_call_rate": sum(a["valid"] for a in answers) / n,
            "eval_samples": n,
        }, answers

    def evaluate(self, step: int, rows: list, samples: list, hooks) -> tuple[dict, list]:
        """Validation loss, scored sample answers, then every eval hook; leaves the model in training mode."""
        metrics = self.validation_loss(rows) if rows else {}
        rates, answers = self.sample_scores(samples)
        metrics.update(rates)
        for hook in hooks:
            hook(step, self.generate)
        self.model.train()
        return metrics, answers


def session_rows(session: Session, data) -> tuple[list, str]:
    """Tokenised rows of a dataset and a note on what was cut or dropped."""
    return session.method.mlx_rows(data, session.hf, session.config.model.max_seq_length)


def _optimizer(config: MlxConfig, total: int):
    import mlx.optimizers as optim

    t = config.training
    return optim.AdamW(learning_rate=_schedule(config, total), betas=[0.9, t.adam_beta2], weight_decay=t.weight_decay)


def _schedule(config: MlxConfig, total: int):
    """The learning rate at each step: a linear warm-up, then training.lr_scheduler."""
    import mlx.core as mx
    import mlx.optimizers as optim

    from ..config import wsd_decay_steps

    t, lr = config.training, config.learning_rate
    warm = min(t.warmup_steps, total - 1) if total > 1 else 0
    rest = max(total - warm, 1)
    decay = min(wsd_decay_steps(total), rest)  # wsd: the peak held, then a cosine over these steps

    def constant(step):
        return mx.array(lr, dtype=mx.float32)

    main = {
        "cosine": optim.cosine_decay(lr, rest),
        "linear": optim.linear_schedule(lr, 0.0, rest),
        "constant": constant,
        "wsd": optim.join_schedules([constant, optim.cosine_decay(lr, decay)], [rest - decay]),
    }[t.lr_scheduler]
    return optim.join_schedules([optim.linear_schedule(0.0, lr, warm), main], [warm]) if warm else main


def _grad_norm(grads):  # -> mx.array
    import mlx.core as mx
    from mlx.utils import tree_flatten

    return mx.sqrt(sum(g.astype(mx.float32).square().sum() for _, g in tree_flatten(grads)))


def _progress(total: int, done: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    )
    task = bar.add_task("steps", total=total, completed=done, info="")
    return bar, task


def _lineage(config: MlxConfig, session: Session, backend: str, records: int) -> dict:
    import json

    from ..lineage import MLX_PACKAGES, lineage_of

    base, parent = config.model.name, None
    parent_lineage = Path(session.model_path) / "lineage.json"
    if parent_lineage.is_file():  # KTO on a fused SFT model: name the SFT model and its own base
        parent, base = (
            str(session.model_path),
            json.loads(parent_lineage.read_text(encoding="utf-8")).get("base_model", base),
        )
    return lineage_of(config.method, base, config.data.local_file, records, backend, parent, MLX_PACKAGES)


def _backend(device_line: str) -> str:
    return "mlx-metal" if device_line.startswith("device: Metal") else "mlx-cpu"


def _fuse(session: Session, config: MlxConfig, run_dir: Path, source: Checkpoint, lineage: dict) -> Path:
    from .fuse import save_fused

    weights = source.adapters()
    session.model.load_weights(list(weights.items()), strict=False)
    info = {
        **lineage,
        "global_step": source.step,
        "adapter": str(source.path),
        "lora": session.lora,
        "eval_loss": source.meta.get("eval_loss"),
    }
    return save_fused(
        session.model,
        session.hf,
        session.model_config,
        Path(session.model_path),
        run_dir / "fused_model",
        info,
        dump_yaml(config),
    )


class Stepper:
    """Optimizer steps one at a time: gradient accumulation over micro-batches, clipping, AdamW.
    Keeps the window of losses and metrics since the last log."""

    def __init__(self, session: Session, rows: list):
        import mlx.nn as nn

        config, t = session.config, session.config.training
        self.session, self.rows, self.step, self.micro = session, rows, 0, 0
        method = session.method
        self.schedule = mdata.Schedule(len(rows), t.batch_size, method.shuffle, t.seed, method.min_batch)
        self.total = mdata.total_steps(config, self.schedule)
        self.optimizer = _optimizer(config, self.total)
        self.loss_and_grad = nn.value_and_grad(session.model, session.objective)
        self._reset()

    def _reset(self) -> None:
        self.losses, self.metrics, self.tokens, self.seconds, self.grad_norm = [], [], 0, 0.0, None

    @property
    def epoch(self) -> float:
        return self.micro / self.schedule.per_epoch

    def run_step(self) -> None:
        import mlx.core as mx
        from mlx.utils import tree_map

        session, t = self.session, self.session.config.training
        started = time.perf_counter()
        mx.random.seed(t.seed * 100_003 + self.step)  # dropout of step N is the same in a resumed run
        accumulated = None
        for _ in range(t.gradient_accumulation):
            rows = [self.rows[i] for i in self.schedule.indices(self.micro)]
            self.micro += 1
            b = session.batch(rows)
            (loss, aux), grads = self.loss_and_grad(session.model, b, session.reference(b))
            accumulated = grads if accumulated is None else tree_map(mx.add, accumulated, grads)
            mx.eval(loss, aux, accumulated)
            self.losses.append(loss.item())
            self.tokens += sum(map(session.method.mlx_tokens, rows))
            self.metrics.append(session.method.mlx_metrics(aux))
        grads = tree_map(lambda g: g / t.gradient_accumulation, accumulated)
        norm = _grad_norm(grads)
        if t.max_grad_norm > 0:  # torch's clip_grad_norm_: scale by max / (norm + 1e-6) when above max
            grads = tree_map(lambda g: g * mx.minimum(1.0, t.max_grad_norm / (norm + 1e-6)), grads)
        self.optimizer.update(session.model, grads)
        mx.eval(session.model.trainable_parameters(), self.optimizer.state)
        self.step += 1
        self.grad_norm = norm.item()
        self.seconds += time.perf_counter() - started

    def flush(self) -> dict:
        """The metrics to log for the steps since the last flush (losses and the method's metrics averaged)."""
        logs = {
            "loss": sum(self.losses) / len(self.losses),
            "grad_norm": self.grad_norm,
            "learning_rate": self.optimizer.learning_rate.item(),
            "tokens_per_second": self.tokens / self.seconds,
        }
        for key in sorted({k for m in self.metrics for k in m}):
            values = [m[key] for m in self.metrics if key in m]
            logs[key] = sum(values) / len(values)
        self._reset()
        return logs


def train(config: MlxConfig, resume: str | None = None, eval_hooks: list[EvalHook] | tuple = ()) -> RunResult:
    """Train (or continue training) and return what happened; see the module docstring."""
    from .checkpoints import read_checkpoint
    from .lora import adapter_weights, trainable_count

    from ..lineage import file_sha256

    train_data, validation = mdata.load_datasets(config)  # the validator runs before any weights are loaded
    checkpoint = resolve_resume(resume, config.output_root) if resume else None
    lora, dataset_sha = lora_settings(config), file_sha256(config.data.local_file)
    if checkpoint is not None:
        if checkpoint.meta.get("dataset_sha256") not in (None, dataset_sha):
            print(
                f"note: {config.data.local_file} is not the file {checkpoint.path.name} was trained on; "
                "training continues on it, but not in the interrupted run's data order"
            )
        if checkpoint.meta.get("method") != config.method:
            raise UsageError(
                f"{checkpoint.path} was trained with {checkpoint.meta.get('method')}, the config says {config.method}"
            )
        if checkpoint_lora(checkpoint) != lora:
            lora = checkpoint_lora(checkpoint)
            print(f"note: LoRA settings taken from the checkpoint: {lora}")
    device = select_device()
    print(device, flush=True)
    session = Session(config, lora, checkpoint)
    rows, note = session_rows(session, train_data)
    val_rows = session_rows(session, validation)[0] if validation else []
    stepper = Stepper(session, rows)
    best = None
    if checkpoint is not None:
        state = checkpoint.optimizer_state()
        if state is None:
            raise UsageError(f"{checkpoint.path}: its optimizer state is missing, so it cannot resume exactly")
        stepper.optimizer.state = state
        stepper.step, stepper.micro, best = (
            checkpoint.step,
            int(checkpoint.meta["micro_batches"]),
            checkpoint.meta.get("best"),
        )
        if stepper.step >= stepper.total:
            raise UsageError(
                f"{checkpoint.path} is at step {stepper.step} of {stepper.total}; "
                "raise training.max_steps (or --max-steps) to train further"
            )
    t, total = config.training, stepper.total
    run_dir = checkpoint.run_dir if checkpoint else new_run_dir(config.output_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "effective_config.yaml").write_text(dump_yaml(config), encoding="utf-8")
    samples = mdata.generation_samples(validation or train_data, config.monitor.num_eval_samples)
    monitor = _self_correction_monitor(config, validation or train_data)
    eval_hooks = [*eval_hooks, monitor.evaluate] if monitor else eval_hooks
    trainable = trainable_count(session.model)
    print(
        f"{config.method.upper()} on {config.model.name}: {len(rows)} training rows"
        f"{f' ({note})' if note else ''}, {len(val_rows)} validation, LoRA on {len(session.adapted)} layers "
        f"({trainable:,} trainable parameters), {total} optimizer steps of {t.batch_size} x "
        f"{t.gradient_accumulation}; run directory {run_dir}"
        + (f"; resuming at step {stepper.step} from {checkpoint.path}" if checkpoint else ""),
        flush=True,
    )

    log = RunLog(
        new_log_path(run_dir / "logs"),
        {
            "method": config.method,
            "framework": "mlx",
            "device": device,
            "resume_from": str(checkpoint.path) if checkpoint else None,
        },
    )
    log.start(stepper.step, total)
    health = get_method(config.method).mlx_health(log)
    result = RunResult(run_dir, trainable_parameters=trainable, best=best)
    started = time.time()
    session.model.train()
    bar, task = _progress(total, stepper.step)
    try:
        with bar:
            while stepper.step < total:
                stepper.run_step()
                step = stepper.step
                if step % t.logging_steps == 0 or step == total:
                    logs = stepper.flush()
                    log.log(step, stepper.epoch, logs)
                    if health:
                        health.check(step, logs)
                    result.train_loss = logs["loss"]
                    bar.update(task, info=f"loss {logs['loss']:.4f}")
                evaluated = {}
                if step % config.monitor.eval_steps == 0 or step == total:
                    evaluated, answers = session.evaluate(step, val_rows, samples, eval_hooks)
                    result.eval = evaluated
                    if evaluated:
                        log.log(step, stepper.epoch, evaluated)
                    if answers:
                        write_json_atomic(
                            run_dir / "eval" / f"step_{step}.json",
                            {"step": step, "metrics": evaluated, "samples": answers},
                        )
                    if "eval_loss" in evaluated and (best is None or evaluated["eval_loss"] < best["eval_loss"]):
                        path = run_dir / "checkpoints" / f"{BEST}.npz"
                        best = {"step": step, "eval_loss": evaluated["eval_loss"], "path": str(path)}
                        save_checkpoint(
                            path.parent,
                            BEST,
                            adapter_weights(session.model),
                            stepper.optimizer.state,
                            _meta(config, stepper, best, lora, evaluated, dataset_sha),
                        )
                if step % t.save_steps == 0 or step == total:
                    save_checkpoint(
                        run_dir / "checkpoints",
                        f"checkpoint_step_{step}",
                        adapter_weights(session.model),
                        stepper.optimizer.state,
                        _meta(config, stepper, best, lora, evaluated, dataset_sha),
                    )
                    prune(run_dir, t.save_total_limit)
                bar.update(task, completed=step)
    except RuntimeError as exc:
        if "memory" in str(exc).lower() or "malloc" in str(exc).lower():
            raise UsageError(
                f"out of memory at batch {t.batch_size} x {config.model.max_seq_length} tokens: "
                "lower training.batch_size (raise training.gradient_accumulation to keep the "
                "effective batch) or model.max_seq_length"
            ) from None
        raise
    log.end(stepper.step)
    if monitor:
        monitor.finish(stepper.step)
    result.global_step, result.best = stepper.step, best
    result.health_warnings = health.warnings if health else []
    if t.fuse:
        source = Path(best["path"]) if best else run_dir / "checkpoints" / f"checkpoint_step_{stepper.step}.npz"
        lineage = {
            **_lineage(config, session, _backend(device), len(train_data.records)),
            "train_seconds": round(time.time() - started, 2),
            "metrics": {"train_loss": result.train_loss},
        }
        result.fused_dir = _fuse(session, config, run_dir, read_checkpoint(source), lineage)
    return result


def _self_correction_monitor(config: MlxConfig, data):
    """The shared live monitor on the validation records, run as an eval hook (None when off)."""
    if not config.self_correction.enabled:
        return None
    from ..self_correction.monitor import examples_from_records, make_monitor

    examples = examples_from_records(data.records, data.source)
    return make_monitor(
        config.method, examples, max(config.monitor.num_eval_samples, 1), config.self_correction, config.training.seed
    )


def _meta(config: MlxConfig, stepper: Stepper, best: dict | None, lora: dict, metrics: dict, dataset_sha: str) -> dict:
    from Tools.schema.registry import load_registry

    return {
        "step": stepper.step,
        "micro_batches": stepper.micro,
        "method": config.method,
        "base_model": config.model.name,
        "lora": lora,
        "best": best,
        "eval_loss": metrics.get("eval_loss"),
        "dataset_sha256": dataset_sha,
        "schema_hash": load_registry().schema_hash,
    }


def _checkpoint_session(config: MlxConfig, resume: str):
    data, validation = mdata.load_datasets(config)
    checkpoint = resolve_resume(resume, config.output_root)
    if checkpoint.meta.get("method") != config.method:
        raise UsageError(
            f"{checkpoint.path} was trained with {checkpoint.meta.get('method')}, the config says {config.method}"
        )
    device = select_device()
    print(device, flush=True)
    return data, validation, checkpoint, device, Session(config, checkpoint_lora(checkpoint), checkpoint)


def evaluate_checkpoint(config: MlxConfig, resume: str, eval_hooks: list[EvalHook] | tuple = ()) -> dict:
    """--eval-only: validation loss and sample generations (parse rate, valid-call rate) of one
    checkpoint, written to <run>/eval/eval_only_step_N.json; returns the metrics."""
    data, validation, checkpoint, _, session = _checkpoint_session(config, resume)
    if validation is None:
        print(f"note: no validation split (monitor.validation_fraction is 0); evaluating on all of {data.source}")
    target = validation or data
    rows, _ = session_rows(session, target)
    samples = mdata.generation_samples(target, config.monitor.num_eval_samples)
    metrics, answers = session.evaluate(checkpoint.step, rows, samples, eval_hooks)
    out = checkpoint.run_dir / "eval" / f"eval_only_step_{checkpoint.step}.json"
    write_json_atomic(
        out,
        {
            "checkpoint": str(checkpoint.path),
            "step": checkpoint.step,
            "dataset": target.source,
            "records": len(target.records),
            "metrics": metrics,
            "samples": answers,
        },
    )
    return {
        "checkpoint": str(checkpoint.path),
        "step": checkpoint.step,
        "records": len(target.records),
        "report": str(out),
        **metrics,
    }


def fuse_checkpoint(config: MlxConfig, resume: str) -> Path:
    """--fuse: merge one checkpoint's adapters into the base model as <run>/fused_model/."""
    data, _, checkpoint, device, session = _checkpoint_session(config, resume)
    return _fuse(
        session, config, checkpoint.run_dir, checkpoint, _lineage(config, session, _backend(device), len(data.records))
    )
