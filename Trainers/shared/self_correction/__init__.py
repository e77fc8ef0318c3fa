"""Self-correction during training: a live inference monitor that compares the model's answers
with golden answers, and a generator that turns its mistakes into training data for the daemon.

- ``compare``: tool-call-aware comparison (codes from Tools/schema/issues.py) and the generic
  text codes (LENGTH_SHORT_BY_X_TOKENS, ...), one documented table.
- ``generator``: self-evaluation, correction and KTO examples; the buffer and the batch writer.
- ``monitor``: ``LiveMonitor.evaluate(step, generate)``, framework-free (HF and MLX trainers).
- ``callback``: the transformers TrainerCallback around the monitor.

Nothing here imports torch except ``callback``.
"""
