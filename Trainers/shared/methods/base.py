"""What a training method provides. The generic trainers (train.py, mlx/trainer.py, config.py, cli.py)
ask a method object these questions and never compare method names.

Heavy dependencies (torch, trl, mlx, numpy) are imported inside the methods that use them, so the
config and the command lines stay light.
"""

from __future__ import annotations

from dataclasses import replace


class Method:
    name = ""
    # the method's own config keys, a YAML section named after the method (None: it has none)
    section: type | None = None
    # flag name -> (key in the method's section, argparse keyword arguments)
    flags: dict = {}
    labelled = False  # trains on label true/false records (KTO, DPO) instead of positives only (SFT)
    unit = 1  # records that stay together when some are held out: 2 keeps a true/false pair whole
    shuffle = True  # the MLX batch order; False keeps file order
    min_batch = 1  # the smallest batch the loss can use
    remove_unused_columns = True  # TRL: SFT keeps its prepared labels column
    learning_rate = 2e-4  # NVIDIA default
    mlx_learning_rate = 1e-4
    shipped_dataset = "Datasets/teacher/teacher_{name}.jsonl"  # relative to the repository root
    mlx_unsupported: tuple = ()  # keys of the method's section the MLX trainer does not implement

    @property
    def title(self) -> str:
        return self.name.upper()

    def training_defaults(self, training, preset):
        """The NVIDIA trainers' training section for this method on a --model-size preset."""
        return replace(training, batch_size=preset.sft_batch_size, gradient_accumulation=preset.gradient_accumulation)

    def check_config(self, config) -> None:
        """Values of the effective config this method cannot train with (both backends)."""

    def check_data(self, data, registry, drop_invalid: bool) -> int:
        """Refuse data the method must not train on; returns how many records were left out."""
        raise NotImplementedError

    def rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, int]:
        """The TRL trainer's dataset rows and how many exceed max_seq_length."""
        raise NotImplementedError

    def trainer(self, config, model, tokenizer, dataset, args: dict, callbacks: list):
        """The TRL trainer, from the shared TrainingArguments keywords."""
        raise NotImplementedError

    def health(self, log):
        """A transformers callback that warns while training, or None."""
        return None

    # -- MLX ------------------------------------------------------------------------------------
    def mlx_rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, str]:
        """Token-id rows and a note on what was cut or dropped."""
        raise NotImplementedError

    def mlx_batch(self, rows: list, pad_id: int, max_seq_length: int) -> dict:
        """numpy arrays for one micro-batch."""
        raise NotImplementedError

    def mlx_tokens(self, row: dict) -> int:
        """Tokens a row feeds the model (for tokens/s)."""
        raise NotImplementedError

    def mlx_reference(self, model, batch: dict):
        """What the loss needs without gradient (reference log-probs), computed before the step; None: nothing."""
        return None

    def mlx_loss(self, model, batch: dict, fixed, config):
        """(loss, aux) of one micro-batch; aux feeds mlx_weight and mlx_metrics."""
        raise NotImplementedError

    def mlx_weight(self, aux) -> float:
        """How much a batch's loss counts in the validation mean."""
        return 1.0

    def mlx_metrics(self, aux) -> dict:
        """Per-batch metrics to log beside the loss."""
        return {}

    def mlx_health(self, log):
        """A runlog health check (check(step, logs)) or None."""
        return None
