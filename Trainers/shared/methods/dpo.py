"""DPO: preference pairs (prompt, chosen, rejected) from labelled records that answer the same prompt,
TRL's DPOTrainer, and the same sigmoid loss on MLX.

Pairs come from records whose conversation before the last assistant turn is identical: a label
true record is the chosen answer, a label false one the rejected. The self-correction generator's
``*_kto.jsonl`` files (the golden answer against the model's wrong one) and the teacher's
Datasets/teacher/teacher_dpo.jsonl and Datasets/sample/sample_kto.jsonl (each positive followed by
its corrupted copy) are paired this way. Each rejected record is paired with a chosen one of its prompt (cycling when a prompt has
fewer chosen); records without a partner are left out and counted.

The loss is TRL 1.16's ``loss_type="sigmoid"``: ``-logsigmoid(beta * ((pc - rc) - (pr - rr)))`` with
p and r the policy and reference (adapters off) log-probs of the chosen (c) and rejected (r)
completion; the logged metrics are TRL's rewards/chosen, rewards/rejected, rewards/accuracies,
rewards/margins, logps/chosen, logps/rejected.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from Tools.cli_common import UsageError

from .base import Method

BETA = 0.1  # TRL's and the DPO paper's default


@dataclass
class DpoConfig:
    beta: float = BETA


class Dpo(Method):
    name = "dpo"
    section = DpoConfig
    flags = {
        "beta": (
            "beta",
            dict(type=float, help=f"DPO beta: how far the policy may move from the reference (default {BETA})"),
        )
    }
    labelled = True
    unit = 2  # the data check orders records as chosen, rejected, chosen, ...: a pair is held out whole
    learning_rate = 5e-7
    mlx_learning_rate = 5e-6
    shipped_dataset = "Datasets/teacher/teacher_{name}.jsonl"  # each positive, then a corrupted copy of it

    def training_defaults(self, training, preset):
        # a row is a pair (two sequences, as KTO's row with its KL pair): KTO's batch, one epoch
        return replace(
            training,
            learning_rate=self.learning_rate,
            num_epochs=1,
            batch_size=preset.kto_batch_size,
            gradient_accumulation=max(6, preset.gradient_accumulation),
        )

    def check_config(self, config) -> None:
        if config.dpo.beta <= 0:
            raise UsageError("dpo.beta must be positive")

    def check_data(self, data, registry, drop_invalid: bool) -> int:
        from ..data import check_records

        before = len(data.records)
        check_records(data, registry, drop_invalid)
        pair_records(data)
        return before - len(data.records)

    def rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, int]:
        from ..data import prompt_completion

        rows, truncated = [], 0
        records = [r for _, r in data.records]
        for chosen, rejected in zip(records[::2], records[1::2]):
            prompt, good = prompt_completion(tokenizer, chosen)
            bad = prompt_completion(tokenizer, rejected)[1]
            rows.append({"prompt": prompt, "chosen": good, "rejected": bad})
            truncated += max(len(tokenizer(prompt + c)["input_ids"]) for c in (good, bad)) > max_seq_length
        return rows, truncated

    def trainer(self, config, model, tokenizer, dataset, args: dict, callbacks: list):
        from trl import DPOConfig, DPOTrainer

        try:
            return DPOTrainer(
                model=model,
                args=DPOConfig(**args, beta=config.dpo.beta, loss_type=["sigmoid"]),
                train_dataset=dataset,
                processing_class=tokenizer,
                callbacks=callbacks,
            )
        except ValueError as exc:  # TRL's own constraint checks, reworded as something to do
            raise UsageError(f"TRL rejected the DPO setup: {str(exc).splitlines()[0]}") from None

    # -- MLX ------------------------------------------------------------------------------------
    def mlx_rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, str]:
        """prompt_ids / chosen_ids / rejected_ids per pair, tokenised as TRL's DPOTrainer does; pairs
        whose prompt alone fills max_seq_length are dropped, as TRL drops them."""
        from ..data import DataError
        from ..mlx.data import split_completion

        rows, dropped = [], 0
        for row in self.rows(data, tokenizer, max_seq_length)[0]:
            prompt_ids, (chosen, rejected) = split_completion(
                tokenizer, row["prompt"], [row["chosen"], row["rejected"]]
            )
            if len(prompt_ids) >= max_seq_length:
                dropped += 1
                continue
            rows.append({"prompt_ids": prompt_ids, "chosen_ids": chosen, "rejected_ids": rejected})
        if not rows:
            raise DataError(f"{data.source}: every prompt fills model.max_seq_length ({max_seq_length}); raise it")
        return rows, f"{dropped} pair(s) dropped: prompt fills {max_seq_length} tokens" if dropped else ""

    def mlx_batch(self, rows: list, pad_id: int, max_seq_length: int) -> dict:
        """All chosen sequences, then all rejected ones (TRL's [chosen, rejected] batch), cut to max_seq_length."""
        from ..mlx.data import completion_arrays

        prompts = [r["prompt_ids"] for r in rows] * 2
        answers = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
        return completion_arrays(prompts, answers, pad_id, max_seq_length)

    def mlx_tokens(self, row: dict) -> int:
        return 2 * len(row["prompt_ids"]) + len(row["chosen_ids"]) + len(row["rejected_ids"])

    def mlx_reference(self, model, b: dict):
        import mlx.core as mx

        from ..mlx.lora import adapters_off
        from ..mlx.losses import sequence_logps

        with adapters_off(model):
            reference = sequence_logps(model, b["inputs"], b["targets"], b["mask"])
            mx.eval(reference)
        return reference

    def mlx_loss(self, model, b: dict, reference, config):
        from ..mlx.losses import sequence_logps

        return dpo_loss(sequence_logps(model, b["inputs"], b["targets"], b["mask"]), reference, config.dpo.beta)

    def mlx_metrics(self, aux) -> dict:
        out = {key: float(value) for key, value in aux.items()}
        out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
        return out


def pair_records(data) -> None:
    """Reorder data.records as (chosen, rejected) pairs that answer the same prompt; one DataError
    line when no pair exists."""
    from Tools.schema.records import label_of

    from ..data import DataError, prompt_key, recount

    groups = defaultdict(lambda: ([], []))
    for item in data.records:
        label = label_of(item[1])
        if label is not None:
            groups[prompt_key(item[1])][0 if label else 1].append(item)
    pairs = [
        (chosen[i % len(chosen)], rejected[i])
        for chosen, rejected in groups.values()
        if chosen
        for i in range(len(rejected))
    ]
    if not pairs:
        raise DataError(
            f"{data.source}: no pair: DPO needs a label true and a label false record with the same prompt "
            f"(the conversation before the last assistant turn); {data.labels['true']} true, "
            f"{data.labels['false']} false, {data.labels['unlabeled']} unlabeled record(s) share none "
            "(self-correction *_kto.jsonl files and Datasets/teacher/teacher_dpo.jsonl have pairs)"
        )
    data.records = [item for pair in pairs for item in pair]
    recount(data)


def dpo_loss(policy, reference, beta: float):
    """TRL's sigmoid DPO loss on MLX arrays: sequence log-probs of the [chosen..., rejected...] batch,
    policy and reference; returns the mean loss and TRL's per-batch metrics as arrays."""
    import mlx.core as mx
    import mlx.nn as nn

    chosen, rejected = mx.split(policy, 2)
    ref_chosen, ref_rejected = mx.split(reference, 2)
    chosen_logratios, rejected_logratios = chosen - ref_chosen, rejected - ref_rejected
    loss = -nn.log_sigmoid(beta * (chosen_logratios - rejected_logratios)).mean()
    chosen_rewards = beta * mx.stop_gradient(chosen_logratios)
    rejected_rewards = beta * mx.stop_gradient(rejected_logratios)
    metrics = {
        "rewards/chosen": chosen_rewards.mean(),
        "rewards/rejected": rejected_rewards.mean(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).astype(mx.float32).mean(),
        "logps/chosen": mx.stop_gradient(chosen).mean(),
        "logps/rejected": mx.stop_gradient(rejected).mean(),
    }
    return loss, metrics


DPO = Dpo()
