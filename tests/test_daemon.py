"""Self-correction during a real SFT run, and the training queue daemon that trains on its files:
priority order, continuing from the latest adapter, failed jobs with reasons, the lock, and a
SIGTERM then a SIGKILL mid-job that lose nothing."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from Tools.schema.interleave import check_kto_ready
from Tools.schema.records import read_records
from Trainers.daemon.cli import main as daemon_main
from Trainers.daemon.queue import QueueLayout, QueueLock, status
from Trainers.daemon.runner import Daemon, DaemonSettings
from Trainers.shared import data as D
from Trainers.shared.config import load_config
from Trainers.shared.self_correction.generator import NO, YES
from Trainers.shared.train import run_training

ROOT = Path(__file__).resolve().parents[1]
JOB_FLAGS = {"batch_size": 2, "gradient_accumulation": 1, "save_steps": 100, "max_steps": 1}


def _lines(path: Path) -> list[dict]:
    return [record for _, record in read_records(path)]


def test_sft_run_writes_self_correction_at_the_interval_and_the_daemon_trains_on_it(
    tiny_model_dir, tiny_sft_file, tmp_path, capsys
):
    root, out = tmp_path / "root", tmp_path / "selfcorr"
    config = load_config(
        "sft",
        None,
        {
            "model_name": tiny_model_dir,
            "local_file": tiny_sft_file,
            "output_dir": str(tmp_path / "runs"),
            "batch_size": 2,
            "max_steps": 4,
            "save_steps": 100,
            "eval_steps": 2,
            "num_eval_samples": 2,
            "eval_max_tokens": 8,
            "validation_fraction": 0.25,
            "self_correction": True,
            "min_examples": 1,
            "generation_interval": 4,
            "auto_queue": True,
            "self_correction_dir": str(out),
            "queue_dir": str(root),
        },
    )
    result = run_training(config)
    assert result.plan["records"] == 6 and result.plan["live_monitor"]["validation_examples"] == 2  # 2 of 8 held out
    printed = capsys.readouterr().out
    assert (
        "live eval @ step 2: " in printed
        and "live eval @ step 4: " in printed
        and "expected:  vaultManager_createFolder(" in printed
    )
    evals = [r for r in _lines(result.run_dir / "logs" / "training_latest.jsonl") if "live_eval" in r]
    assert [r["step"] for r in evals] == [2, 4] and all(r["live_eval"]["evaluated"] == 2 for r in evals)

    # evaluations at steps 2 and 4, one file at step 4: generation_interval counts from the start
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3 and all(
        re.fullmatch(r"self_correction_step4_\d{8}_\d{6}(\.jsonl|_kto\.jsonl|\.json)", f) for f in files
    )
    meta_file = next(out.glob("*.json"))
    meta = json.loads(meta_file.read_text())
    sft_file, kto_file = out / meta["files"]["sft"], out / meta["files"]["kto"]
    wrong = meta["stats"]["needed_correction"]
    assert meta["step"] == 4 and meta["stats"]["total_evals"] == 4 and wrong == 4  # random weights: all wrong
    assert meta["counts"] == {"self_evaluation": 4, "correction": 4, "kto_true": wrong, "kto_false": wrong}
    sft = _lines(sft_file)
    assert [r["conversations"][-1]["content"] for r in sft if r["metadata"]["kind"] == "self_evaluation"] == [NO] * 4
    assert all(
        r["conversations"][-1].get("tool_calls") for r in sft if r["metadata"]["kind"] == "correction"
    )  # golden calls
    assert YES not in sft_file.read_text() and check_kto_ready(kto_file).ready
    D.validate_for("sft", D.load_records(str(sft_file)))
    queued = root / "queue" / "normal" / sft_file.name
    assert meta["files"]["queued"] == str(queued) and queued.read_bytes() == sft_file.read_bytes()

    # the daemon: a high-priority job first, then the queued self-correction file from its adapter;
    # a KTO file and a text file dropped into the inbox fail with their reasons
    (root / "inbox").mkdir()
    (root / "inbox" / "notes.txt").write_text("not data")
    (root / "inbox" / kto_file.name).write_bytes(kto_file.read_bytes())
    QueueLayout(root).enqueue(tiny_sft_file, "high")
    daemon = Daemon(DaemonSettings("sft", tiny_model_dir, root, overrides=JOB_FLAGS, once=True, settle=0), echo=None)
    outcomes = daemon.serve()
    assert [(o.file, o.result) for o in outcomes] == [
        ("notes.txt", "failed"),
        ("sft.jsonl", "done"),
        (sft_file.name, "done"),
        (kto_file.name, "failed"),
    ]
    queue = root / "queue"
    first = json.loads((queue / "done" / "sft.jsonl.job.json").read_text())
    second = json.loads((queue / "done" / f"{sft_file.name}.job.json").read_text())
    assert (
        first["model"] == tiny_model_dir and second["model"] == first["final_model"]
    )  # continues from the latest adapter
    lineage = json.loads((Path(second["final_model"]) / "lineage.json").read_text())
    assert (
        lineage["parent_adapter"] == first["final_model"]
        and lineage["dataset_records"] == 8
        and lineage["global_step"] == 1
    )
    state = json.loads((queue / "state.json").read_text())
    assert state["latest_adapter"] == second["final_model"] and state["base_model"] == tiny_model_dir
    reason = (queue / "failed" / f"{kto_file.name}.reason.txt").read_text()
    assert reason.startswith(f"{kto_file.name}: 4 record(s) have label false; SFT trains on positives only")
    assert (queue / "failed" / "notes.txt.reason.txt").read_text().startswith("not a .jsonl file")
    assert not list((queue / "normal").iterdir()) and not list((queue / "running").iterdir())
    assert not (queue / "daemon.lock").exists()  # released on exit
    log = next((root / "logs").glob("daemon_*.log"))
    assert re.fullmatch(r"daemon_\d{8}\.log", log.name) and f"{sft_file.name}: done in 1 step(s)" in log.read_text()

    code = daemon_main(["status", "--root", str(root)])
    listing = capsys.readouterr().out
    assert code == 0 and "daemon: not running" in listing and "finished: 4" in listing and "queued: 0" in listing
    assert f"next job continues from: {second['final_model']}" in listing
    assert f"failed  {kto_file.name}" in listing and f"{kto_file.name}: 4 record(s) have label false" in listing


def _start(root: Path, tiny_model_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "Trainers.daemon",
            "--root",
            str(root),
            "--base-model",
            tiny_model_dir,
            "--method",
            "sft",
            "--batch-size",
            "2",
            "--max-steps",
            "8",
            "--save-steps",
            "1",
            "--poll",
            "0.2",
            "--settle",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")


def _checkpoint_steps(root: Path) -> list[int]:
    """Steps of the complete checkpoints (the trainer writes trainer_state.json last)."""
    return sorted(
        int(p.parent.name.split("-")[1])
        for p in root.glob("daemon_runs/*/*/checkpoints/checkpoint-*/trainer_state.json")
    )


def test_sigterm_checkpoints_and_requeues_and_sigkill_loses_no_job(tiny_model_dir, tiny_sft_file, tmp_path):
    root = tmp_path / "root"
    layout = QueueLayout(root)
    layout.enqueue(tiny_sft_file)
    job = "sft.jsonl"

    # SIGTERM: the current step ends, a checkpoint is saved, the job goes back to its queue, exit 0
    proc = _start(root, tiny_model_dir)
    _wait_for(lambda: _checkpoint_steps(root), proc, "the first checkpoint")
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    assert "0 done, 0 failed, 1 checkpointed and requeued" in output
    meta = json.loads((root / "queue" / "normal" / f"{job}.job.json").read_text())
    stopped = meta["stopped_at_step"]
    assert 1 <= stopped < 8 and stopped in _checkpoint_steps(root) and meta["attempts"] == 1
    assert not (root / "queue" / "daemon.lock").exists() and not list((root / "queue" / "running").iterdir())

    # SIGKILL mid-job: nothing can run, yet the job file is still there (in running/) and the lock is stale
    proc = _start(root, tiny_model_dir)
    _wait_for(lambda: max(_checkpoint_steps(root)) > stopped, proc, "a checkpoint after the resumed start")
    assert (root / "queue" / "running" / job).is_file()
    proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()
    assert (root / "queue" / "running" / job).is_file()
    lock, report = QueueLock(layout).owner(), status(layout)
    assert lock["pid"] == proc.pid and report["daemon"]["state"] == "stale lock"
    assert [(r["file"], r["state"]) for r in report["running"]] == [(job, "interrupted (requeued at next start)")]
    killed_at = max(_checkpoint_steps(root))

    # the next start takes over the stale lock, requeues the job and resumes it from its last checkpoint
    daemon = Daemon(
        DaemonSettings(
            "sft",
            tiny_model_dir,
            root,
            overrides={"batch_size": 2, "max_steps": 8, "save_steps": 1},
            once=True,
            settle=0,
        ),
        echo=None,
    )
    outcomes = daemon.serve()
    assert [(o.file, o.result, o.steps) for o in outcomes] == [(job, "done", 8)]
    meta = json.loads((root / "queue" / "done" / f"{job}.job.json").read_text())
    assert meta["attempts"] == 3 and meta["global_step"] == 8
    run_dir = Path(meta["run_dir"])
    starts = [json.loads(p.read_text().splitlines()[0]) for p in sorted((run_dir / "logs").glob("training_2*.jsonl"))]
    assert len(starts) == 3 and starts[-1]["resume_from"].endswith(f"checkpoint-{killed_at}")  # one run, resumed twice
    log = next((root / "logs").glob("daemon_*.log")).read_text()
    assert (
        f"took over a stale lock left by pid {proc.pid}" in log and f"{job}: requeued after an interrupted run" in log
    )


def test_one_daemon_per_queue_and_bad_input_is_one_line(tiny_model_dir, tiny_sft_file, tmp_path, capsys):
    root = tmp_path / "root"
    layout = QueueLayout(root)
    layout.ensure()
    with QueueLock(layout), pytest.raises(SystemExit) as exit_info:  # this test's own process holds the lock
        daemon_main(["--root", str(root), "--base-model", tiny_model_dir, "--method", "sft", "--once"])
    err = capsys.readouterr().err
    assert (
        exit_info.value.code == 2 and f"another daemon (pid {os.getpid()}" in err and len(err.strip().splitlines()) == 1
    )
    assert not layout.lock_file.exists()

    layout.write_state({"base_model": "some/other-model", "latest_adapter": str(tmp_path)})
    cases = [
        (["--root", str(root), "--base-model", tiny_model_dir, "--method", "sft", "--once"], "pass --fresh"),
        (
            ["--root", str(root), "--base-model", tiny_model_dir, "--method", "sft", "--beta", "0.2"],
            "--beta applies to --method kto or dpo only",
        ),
        (["--root", str(root), "--method", "sft"], "the following arguments are required: --base-model"),
        (
            ["--root", str(root), "--base-model", str(tmp_path / "nowhere"), "--method", "kto", "--fresh", "--once"],
            "cannot load",
        ),
        (
            [
                "--root",
                str(root),
                "--base-model",
                tiny_model_dir,
                "--method",
                "sft",
                "--fresh",
                "--self-correction",
                "--eval-steps",
                "2",
                "--auto-queue",
                "--queue-dir",
                str(root),
            ],
            "feed this daemon's own queue forever",
        ),
        (["add", str(tmp_path / "missing.jsonl"), "--root", str(root)], "no such file"),
        (["add", tiny_sft_file, "--priority", "urgent"], "invalid choice: 'urgent'"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            daemon_main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not list((root / "queue" / "normal").iterdir()) and not layout.lock_file.exists()

    # a second file of the same name never overwrites the first
    first = layout.enqueue(tiny_sft_file, "low")
    second = layout.enqueue(tiny_sft_file, "low")
    assert (first.name, second.name) == ("sft.jsonl", "sft_2.jsonl")
    assert [j.name for j in layout.queued()] == ["sft.jsonl", "sft_2.jsonl"]


CONTENDER = """
import os, sys, time
from pathlib import Path
from Tools.cli_common import UsageError
from Trainers.daemon.queue import QueueLayout, QueueLock

root, trials = Path(sys.argv[1]), int(sys.argv[2])
layout = QueueLayout(root)
for trial in range(trials):
    while not (root / f"go{trial}").exists():
        time.sleep(0.001)
    lock, result = QueueLock(layout), "refused"
    try:
        lock.acquire()
        try:  # alone inside while holding the lock, or two daemons serve the queue at once
            fd = os.open(root / "inside", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            end = time.monotonic() + 5  # hold until the 7 others have tried (and been refused)
            while len(list(root.glob(f"r{trial}_*"))) < 7 and time.monotonic() < end:
                time.sleep(0.002)
            os.close(fd)
            os.unlink(root / "inside")
            result = "held" if lock.stale is not None else "held, no stale note"
        except FileExistsError:
            result = "overlap"
        lock.release()
    except UsageError:
        pass
    (root / f".r{trial}_{os.getpid()}").write_text(result)
    os.replace(root / f".r{trial}_{os.getpid()}", root / f"r{trial}_{os.getpid()}")
"""


@pytest.mark.skipif(os.name == "nt", reason="the contenders use POSIX paths and timing")
def test_eight_contenders_for_a_stale_lock_never_hold_it_together(tmp_path):
    """Each trial leaves the lock a killed daemon's note (a dead pid), then releases 8 real
    processes at once to take it over; a holder keeps the lock until the others have tried.
    Exactly one holder in every trial, never two inside at once."""
    root, trials = tmp_path / "root", 25
    layout = QueueLayout(root)
    layout.ensure()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(root), str(trials)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = []
    for trial in range(trials):
        layout.lock_file.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "x"}))
        (root / f"go{trial}").touch()
        deadline = time.time() + 60
        while len(outcome := [p.read_text() for p in root.glob(f"r{trial}_*")]) < 8 and time.time() < deadline:
            time.sleep(0.01)
        results.append(sorted(outcome))
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    bad = [r for r in results if r != ["held"] + ["refused"] * 7]
    assert not bad, bad
