"""The daemon's loop: take jobs in priority order, validate and train each with the shared
``run_training``, continuing from the adapter the previous job produced.

Stopping: the first SIGTERM / Ctrl-C lets the current job reach the end of its optimizer step,
saves a checkpoint, puts the job back at the head of its queue and exits (the next start resumes
it from that checkpoint); a second one stops at once, and the job, left in queue/running/, is
requeued at the next start, as after SIGKILL.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from Tools.errors import UsageError

from .queue import Job, QueueLayout, QueueLock, now, read_meta, write_meta


class JobStopped(Exception):
    """The daemon was asked to stop; the job's checkpoint is saved."""

    def __init__(self, step: int):
        super().__init__(f"stopped at step {step}")
        self.step = step


class DaemonLog:
    """logs/daemon_YYYYMMDD.log (a new file each day), one flushed line per event, echoed to stdout."""

    def __init__(self, folder: Path, echo=print):
        self.folder, self.echo = folder, echo

    def __call__(self, message: str, level: str = "INFO") -> None:
        stamp = datetime.now()
        line = f"{stamp:%Y-%m-%d %H:%M:%S} {level} {message}"
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"daemon_{stamp:%Y%m%d}.log", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        if self.echo:
            self.echo(f"daemon: {message}" if level == "INFO" else f"daemon {level.lower()}: {message}")


@dataclass
class DaemonSettings:
    method: str
    base_model: str
    root: Path | None = None
    config_file: str | None = None
    overrides: dict = field(default_factory=dict)  # training flags (FLAG_KEYS names)
    runs_dir: Path | None = None  # default ROOT/daemon_runs
    once: bool = False
    poll: float = 5.0
    settle: float = 2.0
    fresh: bool = False


@dataclass
class Outcome:
    file: str
    result: str  # done | failed | stopped
    steps: int = 0
    seconds: float = 0.0
    detail: str = ""


def _stop_callback(stop: threading.Event):
    from transformers import TrainerCallback

    class StopOnRequest(TrainerCallback):
        """At the end of the step during which a stop was asked: save a checkpoint, then raise."""

        def on_step_end(self, args, state, control, **kwargs):
            if stop.is_set():
                control.should_save = True
                control.should_training_stop = True

        def on_save(self, args, state, control, **kwargs):
            if stop.is_set():
                raise JobStopped(state.global_step)

    return StopOnRequest()


class Daemon:
    def __init__(self, settings: DaemonSettings, echo=print):
        self.settings = settings
        self.layout = QueueLayout(settings.root)
        self.runs_dir = Path(settings.runs_dir) if settings.runs_dir else self.layout.runs
        self.log = DaemonLog(self.layout.logs, echo)
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self._signals = 0

    # -- start-up checks --------------------------------------------------------------------------
    def _check(self) -> None:
        """Everything that would make every job fail, refused before the loop starts."""
        from Trainers.shared.config import load_config

        s = self.settings
        config = load_config(s.method, s.config_file, {**s.overrides, "model_name": s.base_model})
        sc = config.self_correction
        if (
            sc.enabled
            and sc.auto_queue
            and Path(sc.queue_dir or QueueLayout().root).resolve() == self.layout.root.resolve()
        ):
            raise UsageError(
                "self_correction.auto_queue would feed this daemon's own queue forever; "
                "set self_correction.queue_dir to another queue or turn auto_queue off"
            )
        state = self.layout.read_state()
        if state and not s.fresh:
            if state.get("base_model") != s.base_model:
                raise UsageError(
                    f"this queue continues from {state.get('latest_adapter')}, trained on "
                    f"{state.get('base_model')}, not --base-model {s.base_model}; pass --fresh to start "
                    "again from --base-model, or use another --root"
                )
            adapter = state.get("latest_adapter")
            if adapter and not Path(adapter).is_dir():
                raise UsageError(
                    f"the latest adapter {adapter} no longer exists; pass --fresh to start again from --base-model"
                )
        from Trainers.shared.backend import load_tokenizer

        load_tokenizer(config)  # an unloadable model is the daemon's problem, not each job's

    def _model(self) -> str:
        state = self.layout.read_state()
        if self.settings.fresh or state.get("base_model") != self.settings.base_model:
            return self.settings.base_model
        return state.get("latest_adapter") or self.settings.base_model

    # -- signals --------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        if self._signals > 1:
            raise KeyboardInterrupt
        self.stop.set()
        self.log(f"{signal.Signals(signum).name}: stopping after the current step (again to stop at once)")

    def serve(self) -> list[Outcome]:
        self.layout.ensure()
        self._check()
        with QueueLock(self.layout) as lock:
            if lock.stale is not None:
                self.log(f"took over a stale lock left by pid {lock.stale.get('pid')}", "WARNING")
            for path in self.layout.recover():
                self.log(f"{path.name}: requeued after an interrupted run", "WARNING")
            self.log(
                f"serving {self.layout.root} (pid {os.getpid()}, method {self.settings.method}, "
                f"base {self.settings.base_model}, next job continues from {self._model()})"
            )
            handlers = {}
            if threading.current_thread() is threading.main_thread():
                handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                self._loop()
            finally:
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)
        self.log("stopped" if self.stop.is_set() else "queue drained")
        return self.outcomes

    def _loop(self) -> None:
        while not self.stop.is_set():
            taken, refused, settling = self.layout.intake(self.settings.settle)
            for path in taken:
                self.log(f"{path.name}: taken from the inbox into queue/normal")
            for path in refused:
                self.log(f"{path.name}: refused (not a .jsonl file)", "WARNING")
                self.outcomes.append(Outcome(path.name, "failed", detail="not a .jsonl file"))
            jobs = self.layout.queued()
            if jobs:
                self._run(jobs[0])
                continue
            if self.settings.once and not settling:
                return
            self.stop.wait(min(self.settings.poll, self.settings.settle) if settling else self.settings.poll)

    # -- one job --------------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        from Trainers.shared.config import load_config
        from Trainers.shared.train import checkpoints, run_training

        layout, s = self.layout, self.settings
        path = layout.move(job.path, layout.running)
        meta = read_meta(path)
        meta.setdefault("id", f"{datetime.now():%Y%m%d_%H%M%S}_{path.stem}")
        meta.setdefault("model", self._model())  # a resumed job keeps the adapter it started from
        meta.update(
            priority=job.priority,
            attempts=meta.get("attempts", 0) + 1,
            started_at=now(),
            pid=os.getpid(),
            output_dir=str(self.runs_dir / meta["id"]),
        )
        write_meta(path, meta)
        output = Path(meta["output_dir"])
        resumable = sorted((p for p in output.glob("*") if p.is_dir() and checkpoints(p)), key=lambda p: p.name)
        resume = str(resumable[-1]) if resumable else None
        self.log(
            ("Self-Correction: " if path.name.startswith("self_correction") else "")
            + f"{path.name}: training ({s.method}) from {meta['model']}"
            + (f", resuming {resume}" if resume else "")
            + f" (attempt {meta['attempts']})"
        )
        started = time.time()
        try:
            config = load_config(
                s.method,
                s.config_file,
                {
                    **s.overrides,
                    "model_name": meta["model"],
                    "local_file": str(path),
                    "output_dir": str(output),
                    "resume": resume,
                },
            )
            result = run_training(config, extra_callbacks=[_stop_callback(self.stop)])
        except JobStopped as stopped:
            meta.update(interrupted_at=now(), stopped_at_step=stopped.step)
            write_meta(path, meta)
            layout.move(path, layout.priority_dir(job.priority))
            self.log(
                f"{path.name}: checkpoint saved at step {stopped.step}; back in queue/{job.priority}, "
                "resumed at the next start"
            )
            self.outcomes.append(Outcome(path.name, "stopped", stopped.step, time.time() - started))
        except UsageError as exc:  # the data or the setup is wrong: the job cannot succeed as it is
            self._fail(path, meta, str(exc), started)
        except KeyboardInterrupt:
            self.log(f"{path.name}: stopped at once; left in queue/running/, requeued at the next start", "WARNING")
            raise
        except Exception as exc:  # a crash inside training: record it, keep serving the queue
            self.log(traceback.format_exc().rstrip(), "ERROR")
            self._fail(path, meta, f"training crashed: {type(exc).__name__}: {exc}", started)
        else:
            meta.update(
                finished_at=now(),
                run_dir=str(result.run_dir),
                final_model=str(result.final_dir),
                global_step=result.global_step,
                seconds=round(time.time() - started, 2),
            )
            write_meta(path, meta)
            layout.write_state(
                {
                    "method": s.method,
                    "base_model": s.base_model,
                    "latest_adapter": str(result.final_dir),
                    "updated": now(),
                    "last_job": path.name,
                }
            )
            layout.move(path, layout.done)
            self.log(f"{path.name}: done in {result.global_step} step(s); next jobs continue from {result.final_dir}")
            self.outcomes.append(
                Outcome(path.name, "done", result.global_step, time.time() - started, str(result.final_dir))
            )

    def _fail(self, path: Path, meta: dict, reason: str, started: float) -> None:
        reason = reason.replace(str(path), path.name)  # the file is about to leave running/
        meta.update(finished_at=now(), reason=reason)
        write_meta(path, meta)
        target = self.layout.move(path, self.layout.failed)
        self.layout.write_reason(target, reason)
        self.log(f"{path.name}: failed: {reason}", "ERROR")
        self.outcomes.append(Outcome(path.name, "failed", seconds=time.time() - started, detail=reason))
