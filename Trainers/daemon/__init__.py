"""The training queue daemon: ``python -m Trainers.daemon --base-model M --method sft|kto``.

Watches ROOT/inbox/ and ROOT/queue/high|normal|low/, validates and trains each file with the shared
``run_training`` continuing from the latest adapter, and files it under queue/done/ or
queue/failed/. ``queue.py`` owns the folders and the lock (no heavy imports), ``runner.py`` the
loop, ``cli.py`` the command line. See docs/self-correction.md.
"""
