"""Command line of the training queue daemon.

python -m Trainers.daemon --base-model MODEL --method sft|kto [--root DIR] [--once] [training flags]
python -m Trainers.daemon status [--root DIR] [--json]
python -m Trainers.daemon add FILE [--priority high|normal|low] [--root DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from Tools.cli_common import EXIT_FINDINGS, EXIT_OK, ArgumentParser, UsageError, die, format_table

from .queue import PRIORITIES, QueueLayout, status

PROG = "python -m Trainers.daemon"
_DAEMON_OWNS = ("--config", "--model-name", "--local-file", "--dataset-name", "--resume", "--dry-run", "--output-dir")


def _root_flag(parser) -> None:
    parser.add_argument(
        "--root", type=Path, help="folder holding inbox/, queue/ and logs/ (default: the repository root)"
    )


def build_parser() -> ArgumentParser:
    from Trainers.shared.cli import add_training_flags
    from Trainers.shared.methods import METHODS

    parser = ArgumentParser(
        prog=PROG,
        description="Train on every dataset dropped into ROOT/inbox/ or queued in ROOT/queue/high|normal|low/, one "
        "after the other, each continuing from the adapter the previous one produced. Files end in "
        "queue/done/ or queue/failed/ (with NAME.reason.txt). Subcommands: 'status' lists queued, "
        "running and finished jobs; 'add FILE' queues a file. SIGTERM or Ctrl-C checkpoints the "
        "current job and stops; the next start resumes it. Exit 0, or 1 when a job failed.",
    )
    parser.add_argument(
        "--base-model", required=True, help="Hugging Face id or local directory the first job starts from"
    )
    parser.add_argument("--method", required=True, choices=tuple(METHODS))
    _root_flag(parser)
    parser.add_argument("--once", action="store_true", help="drain the queue, then exit instead of watching")
    parser.add_argument(
        "--poll", type=float, default=5.0, metavar="S", help="seconds between looks at the inbox (default 5)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        metavar="S",
        help="an inbox file is taken once unchanged for S seconds, so half-copied files wait (default 2)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start again from --base-model instead of the latest adapter"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="training YAML, as for train.sh (sections model, lora, training, ...)"
    )
    parser.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="where each job's run goes (default ROOT/daemon_runs)"
    )
    add_training_flags(parser, None, omit=_DAEMON_OWNS)
    return parser


def _status_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=f"{PROG} status", description="Queued, running and finished jobs of a daemon's queue.")
    _root_flag(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    return parser


def _add_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=f"{PROG} add", description="Copy a JSONL dataset into the daemon's queue.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--priority", choices=PRIORITIES, default="normal")
    _root_flag(parser)
    return parser


def print_status(report: dict) -> None:
    d = report["daemon"]
    print(f"queue: {report['root']}")
    print(f"daemon: {d['state']}" + (f" (pid {d['pid']}, since {d['since']})" if d["pid"] else ""))
    print(
        f"next job continues from: {report['latest_adapter'] or report['base_model'] or 'the --base-model given at start'}"
    )
    sections = (
        ("queued", report["queued"], ("priority", "file", "size", "modified")),
        ("running", report["running"], ("file", "state", "started_at", "attempts")),
        ("finished", report["finished"], ("result", "file", "finished_at", "global_step", "reason")),
    )
    for title, rows, columns in sections:
        print(f"\n{title}: {len(rows)}")
        if rows:
            table = [columns] + [
                tuple("" if r.get(c) is None else str(r[c])[:160] if c == "reason" else r[c] for c in columns)
                for r in rows
            ]
            for line in format_table(table):
                print("  " + line)


def _serve(argv: list[str]) -> int:
    args = vars(build_parser().parse_args(argv))
    from .runner import Daemon, DaemonSettings

    settings = DaemonSettings(
        method=args.pop("method"),
        base_model=args.pop("base_model"),
        root=args.pop("root"),
        config_file=args.pop("config"),
        runs_dir=args.pop("output_dir"),
        once=args.pop("once"),
        poll=args.pop("poll"),
        settle=args.pop("settle"),
        fresh=args.pop("fresh"),
    )
    if settings.poll <= 0 or settings.settle < 0:
        die("--poll must be positive and --settle 0 or more")
    settings.overrides = {k: v for k, v in args.items() if v is not None}
    daemon = Daemon(settings)
    try:
        outcomes = daemon.serve()
    except UsageError as exc:
        die(str(exc))
    except KeyboardInterrupt:
        die("stopped at once; the current job is requeued at the next start", 130)
    if outcomes:
        rows = [("file", "result", "steps", "seconds", "detail")]
        rows += [(o.file, o.result, o.steps, round(o.seconds, 1), o.detail[:80]) for o in outcomes]
        print("\n".join(format_table(rows)))
    counts = {r: sum(o.result == r for o in outcomes) for r in ("done", "failed", "stopped")}
    print(
        f"summary: {counts['done']} done, {counts['failed']} failed, {counts['stopped']} checkpointed and requeued; "
        f"status: {PROG} status" + (f" --root {settings.root}" if settings.root else "")
    )
    return EXIT_FINDINGS if counts["failed"] else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    try:
        if command == "status":
            args = _status_parser().parse_args(argv[1:])
            report = status(QueueLayout(args.root))
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                print_status(report)
            return EXIT_OK
        if command == "add":
            args = _add_parser().parse_args(argv[1:])
            target = QueueLayout(args.root).enqueue(args.file, args.priority)
            print(f"queued {args.file} as {target}")
            return EXIT_OK
    except UsageError as exc:
        die(str(exc))
    return _serve(argv)
