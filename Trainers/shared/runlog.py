"""The run's JSONL log and the KTO health check, free of any training framework.

The TRL callbacks (``callbacks.py``) and the MLX trainer (``mlx/trainer.py``) both write through
``RunLog``, so every trainer's ``logs/training_*.jsonl`` has the same shape: a ``start`` event, one
line per log (``step``, ``epoch``, ``time`` and the metrics), an ``end`` event; every line flushed.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from Tools.schema.records import JsonlAppender


def point_latest(log_path: Path) -> Path:
    """logs/training_latest.jsonl -> the current log (a relative symlink; a copy where links fail)."""
    latest = log_path.parent / "training_latest.jsonl"
    tmp = latest.with_name(".training_latest.tmp")
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(log_path.name)
    except OSError:  # e.g. Windows without developer mode: a one-line file naming the log instead
        tmp.write_text(log_path.name + "\n", encoding="utf-8")
    os.replace(tmp, latest)
    return latest


def new_log_path(logs_dir: Path) -> Path:
    """logs/training_YYYYMMDD_HHMMSS.jsonl; a resumed run gets its own file, the earlier one stays as it was."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path, n = logs_dir / f"training_{datetime.now().strftime('%Y%m%d_%H%M%S')}.jsonl", 1
    while path.exists():
        n += 1
        path = path.with_name(f"{path.stem.split('-')[0]}-{n}.jsonl")
    return path


class RunLog:
    """Every log event as one flushed JSON line, so a killed run keeps its history."""

    def __init__(self, log_path: Path, extra: dict | None = None):
        self.log_path = Path(log_path)
        self.extra = extra or {}
        self._out = None

    @property
    def open(self) -> bool:
        return self._out is not None

    def start(self, global_step: int, max_steps: int) -> None:
        if self._out is None:
            self._out = JsonlAppender(self.log_path)
            point_latest(self.log_path)
            self._out.write(
                {
                    "event": "start",
                    "time": time.time(),
                    "global_step": global_step,
                    "max_steps": max_steps,
                    **self.extra,
                }
            )

    def log(self, step: int, epoch: float | None, metrics: dict) -> None:
        self.write({"step": step, "epoch": epoch, "time": time.time(), **metrics})

    def write(self, record: dict) -> None:
        if self._out is not None:
            self._out.write(record)

    def end(self, global_step: int) -> None:
        if self._out is not None:
            self._out.write({"event": "end", "time": time.time(), "global_step": global_step})
            self._out.close()
            self._out = None


class KtoHealth:
    """Warn while training when KTO drifts: margins stuck below zero, KL outside its healthy band,
    or exploding gradients. Warnings are printed and written to the run log."""

    def __init__(self, log: RunLog | None = None, kl_band=(0.01, 0.5), max_grad_norm=100.0, patience: int = 3):
        self.log, self.kl_band, self.max_grad_norm, self.patience = log, kl_band, max_grad_norm, patience
        self.negative_streak = 0
        self.warnings: list[str] = []

    def _warn(self, step: int, message: str) -> None:
        self.warnings.append(message)
        print(f"warning: KTO health at step {step}: {message}", flush=True)
        if self.log:
            self.log.write({"step": step, "health_warning": message})

    def check(self, step: int, logs: dict) -> None:
        margin = logs.get("rewards/margins")
        if margin is not None:
            self.negative_streak = self.negative_streak + 1 if margin < 0 else 0
            if self.negative_streak == self.patience:
                self._warn(
                    step,
                    f"reward margin negative for {self.patience} logs in a row ({margin:.4g}): "
                    "the model prefers rejected answers; check labels and alternation",
                )
        kl = logs.get("kl")
        # KL is 0 by construction until the policy moves away from the reference, so early logs are skipped
        if kl is not None and step > self.patience and not self.kl_band[0] <= kl <= self.kl_band[1]:
            self._warn(
                step,
                f"KL {kl:.4g} outside {self.kl_band[0]}-{self.kl_band[1]}: "
                + (
                    "the policy is not moving (learning rate too low?)"
                    if kl < self.kl_band[0]
                    else "the policy is drifting fast (lower the learning rate or raise beta)"
                ),
            )
        grad = logs.get("grad_norm")
        if grad is not None and grad > self.max_grad_norm:
            self._warn(step, f"gradient norm {grad:.4g} above {self.max_grad_norm:g}: training may diverge")
