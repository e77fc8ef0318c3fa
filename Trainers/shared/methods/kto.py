"""KTO: labelled true/false records in strict alternation, TRL's KTOTrainer (or KTO-S), and the same
loss on MLX.

The MLX loss follows TRL 1.16's ``KTOTrainer._compute_loss`` (loss_type "kto", eqn 7 of the KTO paper):
the KL estimate z is the batch mean of policy minus reference log-probs of the mismatched
(prompt, other completion) pairs, detached and clamped at 0; desirable completions cost
``1 - sigmoid(beta * (r - z))``, undesirable ones ``1 - sigmoid(beta * (z - r))`` with r the
policy/reference log-ratio, weighted and averaged over the batch. The logged metrics are TRL's:
rewards/chosen, rewards/rejected, rewards/margins, kl, logps/chosen, logps/rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from Tools.cli_common import UsageError

from .base import Method

# One default for both backends: the seed's documented NVIDIA value. It is above TRL's 0.1 and keeps
# the policy nearer its reference, which the MLX trainer's larger default learning rate (5e-6) needs more.
BETA = 0.3


@dataclass
class KtoConfig:
    beta: float = BETA
    use_kto_s: bool = False  # sign-corrected KL reference point (Trainers/shared/kto_s.py)
    two_stage_lr: bool = False
    stage_split: float = 0.5  # fraction of steps in stage 1 (full learning rate)
    stage_two_factor: float = 0.1  # stage 2 learning rate = learning_rate * factor
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0


class Kto(Method):
    name = "kto"
    section = KtoConfig
    flags = {
        "beta": (
            "beta",
            dict(type=float, help=f"KTO beta: how far the policy may move from the reference (default {BETA})"),
        ),
        "use_kto_s": (
            "use_kto_s",
            dict(
                action="store_true",
                default=None,
                help=(
                    "KTO-S: the KL reference point acts with the sign of each example's utility, so a drifting policy gets "
                    "smaller updates (steadier KL from a base model); see docs/train-nvidia.md"
                ),
            ),
        ),
        "two_stage_lr": (
            "two_stage_lr",
            dict(
                action="store_true",
                default=None,
                help=(
                    "full learning rate for the first half of the steps, then 0.1x (kto.stage_split, kto.stage_two_factor)"
                ),
            ),
        ),
    }
    labelled = True
    unit = 2
    shuffle = False  # TRL's sequential sampling: the file's true/false order, so every batch holds both labels
    min_batch = 2  # a batch of one would pair a completion with itself for the KL estimate
    learning_rate = 2e-7
    mlx_learning_rate = 5e-6  # KTO moves a policy that is already good: much smaller steps than SFT
    mlx_unsupported = ("use_kto_s", "two_stage_lr", "stage_split", "stage_two_factor")

    def training_defaults(self, training, preset):
        # one epoch at a much smaller step, 4 x 6 effective batch on the 7b preset
        return replace(
            training,
            learning_rate=self.learning_rate,
            num_epochs=1,
            batch_size=preset.kto_batch_size,
            gradient_accumulation=max(6, preset.gradient_accumulation),
        )

    def check_config(self, config) -> None:
        t, k = config.training, config.kto
        if t.batch_size < 2:
            raise UsageError(
                f"KTO needs a per-device batch of at least 2 (got {t.batch_size}): the KL term pairs "
                "completions within a batch; raise training.batch_size (--batch-size) and lower "
                "training.gradient_accumulation to keep the effective batch"
            )
        if k.beta <= 0 or k.desirable_weight < 0 or k.undesirable_weight < 0:
            raise UsageError("kto.beta must be positive and the kto weights non-negative")
        if not 0 < k.stage_split < 1 or k.stage_two_factor <= 0:
            raise UsageError("kto.stage_split must be in (0, 1) and kto.stage_two_factor positive")

    def check_data(self, data, registry, drop_invalid: bool) -> int:
        """Negatives only need to be structurally sound; both labels in strict true/false alternation,
        because the KL term is estimated per batch. With drop_invalid the remaining records are
        re-paired, so the alternation holds and the unpaired surplus is dropped too."""
        from ..data import check_records, recount

        before = len(data.records)
        if check_records(data, registry, drop_invalid):
            repair_alternation(data)
            recount(data)
        else:
            check_alternation(data)
        return before - len(data.records)

    def rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, int]:
        rows = [kto_row(tokenizer, r) for _, r in data.records]
        return rows, sum(len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) > max_seq_length for r in rows)

    def trainer(self, config, model, tokenizer, dataset, args: dict, callbacks: list):
        from trl import KTOConfig, KTOTrainer

        k = config.kto
        # Sequential sampling keeps the interleaved True/False order, so each batch holds both labels.
        kto_args = KTOConfig(
            **args,
            beta=k.beta,
            desirable_weight=k.desirable_weight,
            undesirable_weight=k.undesirable_weight,
            train_sampling_strategy="sequential",
        )
        cls = KTOTrainer
        if k.use_kto_s:
            from ..kto_s import kto_s_trainer

            cls = kto_s_trainer(cls)
        if k.two_stage_lr:
            cls = _two_stage(cls, k.stage_split, k.stage_two_factor)
        try:
            return cls(
                model=model, args=kto_args, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks
            )
        except ValueError as exc:  # TRL's own constraint checks, reworded as something to do
            raise UsageError(f"TRL rejected the KTO setup: {str(exc).splitlines()[0]}") from None

    def health(self, log):
        from ..callbacks import KtoHealthCallback

        return KtoHealthCallback(log)

    # -- MLX ------------------------------------------------------------------------------------
    def mlx_rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, str]:
        """prompt_ids / completion_ids / label per record, tokenised as TRL's KTOTrainer does: EOS appended
        to a completion that lacks it, the completion starting where prompt and prompt+completion diverge.
        Records whose prompt alone fills max_seq_length are dropped (no completion token would remain),
        as TRL drops them."""
        from ..data import DataError
        from ..mlx.data import split_completion

        rows, dropped = [], 0
        for row in self.rows(data, tokenizer, max_seq_length)[0]:
            prompt_ids, (completion_ids,) = split_completion(tokenizer, row["prompt"], [row["completion"]])
            if len(prompt_ids) >= max_seq_length:
                dropped += 1
                continue
            rows.append({"prompt_ids": prompt_ids, "completion_ids": completion_ids, "label": row["label"]})
        if not rows:
            raise DataError(f"{data.source}: every prompt fills model.max_seq_length ({max_seq_length}); raise it")
        return rows, f"{dropped} dropped: prompt fills {max_seq_length} tokens" if dropped else ""

    def mlx_batch(self, rows: list, pad_id: int, max_seq_length: int) -> dict:
        """The matched sequences and, for the KL estimate, each prompt paired with the previous row's
        completion (rotated by one within the batch, as TRL pairs them); both cut to max_seq_length."""
        import numpy as np

        from ..mlx.data import completion_arrays

        completions = [r["completion_ids"] for r in rows]
        shifted = completions[-1:] + completions[:-1]
        prompts = [r["prompt_ids"] for r in rows]
        out = {"label": np.array([r["label"] for r in rows], dtype=bool)}
        for prefix, answers in (("", completions), ("KL_", shifted)):
            for key, value in completion_arrays(prompts, answers, pad_id, max_seq_length).items():
                out[prefix + key] = value
        return out

    def mlx_tokens(self, row: dict) -> int:
        return len(row["prompt_ids"]) + len(row["completion_ids"])

    def mlx_reference(self, model, b: dict):
        """Reference log-probs (adapters off) and the policy's KL-pair log-probs: KTO's inputs that
        carry no gradient, as TRL computes them under no_grad."""
        import mlx.core as mx

        from ..mlx.lora import adapters_off
        from ..mlx.losses import sequence_logps

        with adapters_off(model):
            reference = sequence_logps(model, b["inputs"], b["targets"], b["mask"])
            reference_kl = sequence_logps(model, b["KL_inputs"], b["KL_targets"], b["KL_mask"])
            mx.eval(reference, reference_kl)
        policy_kl = mx.stop_gradient(sequence_logps(model, b["KL_inputs"], b["KL_targets"], b["KL_mask"]))
        return policy_kl, reference, reference_kl

    def mlx_loss(self, model, b: dict, fixed, config):
        from ..mlx.losses import sequence_logps

        k = config.kto
        policy = sequence_logps(model, b["inputs"], b["targets"], b["mask"])
        return kto_loss(policy, *fixed, b["label"], k.beta, k.desirable_weight, k.undesirable_weight)

    def mlx_metrics(self, aux) -> dict:
        return kto_metrics(aux)

    def mlx_health(self, log):
        from ..runlog import KtoHealth

        return KtoHealth(log)


def kto_row(tokenizer, record: dict) -> dict:
    """prompt / completion text for the last assistant turn, rendered exactly as SFT renders it."""
    from ..data import prompt_completion

    prompt, completion = prompt_completion(tokenizer, record)
    return {"prompt": prompt, "completion": completion, "label": bool(record["label"])}


def repair_alternation(data) -> None:
    """After records were dropped: pair the remaining true and false records in file order
    (true, false, true, ...) and drop the unpaired surplus (and unlabeled records), so TRL's
    per-batch KL still sees both labels."""
    from Tools.schema.records import label_of

    from ..data import DataError

    positives = [(n, r) for n, r in data.records if label_of(r) is True]
    negatives = [(n, r) for n, r in data.records if label_of(r) is False]
    if not positives or not negatives:
        raise DataError(
            f"{data.source}: after dropping invalid records only label "
            f"{'true' if positives else 'false'} is left; KTO needs both"
        )
    data.records = [pair[i] for pair in zip(positives, negatives) for i in (0, 1)]


def check_alternation(data) -> None:
    from Tools.schema.records import label_of

    from ..data import DataError

    labels = [label_of(r) for _, r in data.records]
    if None in labels:
        raise DataError(
            f"{data.source}: {labels.count(None)} record(s) without a boolean label; KTO needs true/false on every record"
        )
    if all(labels) or not any(labels):
        raise DataError(
            f"{data.source}: only label {str(labels[0]).lower()} is present; KTO needs both true and false records"
        )
    neighbours = sum(a == b for a, b in zip(labels, labels[1:]))
    if neighbours:
        raise DataError(
            f"{data.source}: {neighbours} same-label neighbour(s); KTO needs strict true/false alternation "
            "(run python Tools/interleave_dataset.py)"
        )


def _two_stage(base, stage_split: float, stage_two_factor: float):
    """A trainer whose learning rate warms up, stays at its peak for stage 1, then drops to
    peak x stage_two_factor for stage 2 (consolidation at a lower rate)."""

    class TwoStage(base):
        def create_scheduler(self, num_training_steps, optimizer=None):
            from torch.optim.lr_scheduler import LambdaLR

            if self.lr_scheduler is None:
                warmup = self.args.get_warmup_steps(num_training_steps)
                boundary = int(num_training_steps * stage_split)

                def factor(step):
                    if step < warmup:
                        return (step + 1) / (warmup + 1)
                    return 1.0 if step < boundary else stage_two_factor

                self.lr_scheduler = LambdaLR(optimizer or self.optimizer, factor)
                self._created_lr_scheduler = True
            return self.lr_scheduler

    return TwoStage


def kto_loss(
    policy,
    policy_kl,
    reference,
    reference_kl,
    label,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
):
    """The batch KTO loss on MLX arrays and its metric sums (per label; divide by the counts to log means)."""
    import mlx.core as mx

    kl = mx.maximum(mx.stop_gradient(policy_kl - reference_kl).mean(), 0.0)
    logratios = policy - reference
    chosen_losses = desirable_weight * (1 - mx.sigmoid(beta * (logratios - kl)))
    rejected_losses = undesirable_weight * (1 - mx.sigmoid(beta * (kl - logratios)))
    loss = mx.where(label, chosen_losses, rejected_losses).mean()
    rewards = beta * mx.stop_gradient(logratios)
    logps = mx.stop_gradient(policy)
    zero = mx.zeros_like(rewards)
    sums = {
        "kl": kl,
        "chosen": label.sum(),
        "rejected": (~label).sum(),
        "rewards/chosen": mx.where(label, rewards, zero).sum(),
        "rewards/rejected": mx.where(label, zero, rewards).sum(),
        "logps/chosen": mx.where(label, logps, zero).sum(),
        "logps/rejected": mx.where(label, zero, logps).sum(),
    }
    return loss, sums


def kto_metrics(sums: dict) -> dict:
    """TRL's per-batch KTO metrics from kto_loss's sums (a label absent from the batch logs nothing)."""
    out = {"kl": float(sums["kl"])}
    counts = {side: int(sums[side]) for side in ("chosen", "rejected")}
    for side, count in counts.items():
        if count:
            out[f"rewards/{side}"] = float(sums[f"rewards/{side}"]) / count
            out[f"logps/{side}"] = float(sums[f"logps/{side}"]) / count
    if counts["chosen"] and counts["rejected"]:
        out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
    return out


KTO = Kto()
