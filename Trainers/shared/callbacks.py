"""TRL/transformers callbacks over the framework-free run log and KTO health check (runlog.py)."""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from .runlog import KtoHealth, RunLog


class JsonlLogCallback(TrainerCallback):
    """Every log event as one flushed JSON line, so a killed run keeps its history."""

    def __init__(self, log_path: Path, extra: dict | None = None):
        self.run_log = RunLog(log_path, extra)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.run_log.start(state.global_step, state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.run_log.log(state.global_step, state.epoch, logs)

    def write(self, record: dict) -> None:
        self.run_log.write(record)

    def on_train_end(self, args, state, control, **kwargs):
        self.run_log.end(state.global_step)


class KtoHealthCallback(TrainerCallback):
    """Warn while training when KTO drifts (see runlog.KtoHealth); warnings also go to the JSONL log."""

    def __init__(
        self, log: JsonlLogCallback | None = None, kl_band=(0.01, 0.5), max_grad_norm=100.0, patience: int = 3
    ):
        self.health = KtoHealth(log.run_log if log else None, kl_band, max_grad_norm, patience)

    @property
    def warnings(self) -> list[str]:
        return self.health.warnings

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            self.health.check(state.global_step, logs)
