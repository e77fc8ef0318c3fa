"""SFT: supervised fine-tuning on positives, the loss on assistant tokens only."""

from __future__ import annotations

from dataclasses import dataclass

from Tools.cli_common import UsageError

from .base import Method


@dataclass
class SftConfig:
    # Each answer token inside a session or workspace id counts this many times in the loss (1: plain
    # SFT). A model that cannot copy yet (one built from scratch) learns to copy the ids its system
    # prompt hands out far sooner when their tokens weigh more (docs/benchmarks.md).
    id_loss_weight: float = 1.0


class Sft(Method):
    name = "sft"
    section = SftConfig
    flags = {
        "id_loss_weight": (
            "id_loss_weight",
            dict(
                type=float,
                help="each answer token inside a session or workspace id counts this many times in the loss "
                "(default 1; the closed loop's model built from scratch uses 3 to learn copying the ids sooner)",
            ),
        ),
    }
    remove_unused_columns = False

    def check_config(self, config) -> None:
        if not config.sft.id_loss_weight > 0:
            raise UsageError(f"sft.id_loss_weight must be positive (got {config.sft.id_loss_weight})")

    def check_data(self, data, registry, drop_invalid: bool) -> int:
        from ..data import DataError, check_records

        if data.labels["false"]:
            raise DataError(
                f"{data.source}: {data.labels['false']} record(s) have label false; SFT trains on positives "
                "only (use the KTO or DPO trainer for labelled data)"
            )
        return check_records(data, registry, drop_invalid)

    def rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, int]:
        from ..data import IGNORE_INDEX, DataError, chat_messages, encode_sft

        rows = encode_sft(tokenizer, [chat_messages(r) for _, r in data.records])
        if all(all(x == IGNORE_INDEX for x in r["labels"][:max_seq_length]) for r in rows):
            raise DataError(f"{data.source}: no assistant token within {max_seq_length} tokens; raise --max-seq-length")
        return rows, sum(len(r["input_ids"]) > max_seq_length for r in rows)

    def trainer(self, config, model, tokenizer, dataset, args: dict, callbacks: list):
        from trl import SFTConfig

        weight = config.sft.id_loss_weight
        # random batches, not length-grouped ones: the length of an answer follows its tool, so a
        # length-grouped batch holds one tool and the model learns the batch's tool instead of reading
        # the request (closed loop: the expected tool on 5% of held-out requests, 43% with random batches)
        return sft_trainer_class(cpu=args.get("use_cpu", False), id_loss_weight=weight)(
            model=model,
            args=SFTConfig(**args, packing=False),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
            **({"data_collator": id_mask_collator(tokenizer)} if weight != 1 else {}),
        )

    # -- MLX ------------------------------------------------------------------------------------
    def mlx_rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, str]:
        """input_ids, labels (-100 outside assistant turns) and id_mask, cut to max_seq_length."""
        rows, cut = self.rows(data, tokenizer, max_seq_length)
        rows = [{key: values[:max_seq_length] for key, values in r.items()} for r in rows]
        return rows, f"{cut} cut to {max_seq_length} tokens" if cut else ""

    def mlx_batch(self, rows: list, pad_id: int, max_seq_length: int) -> dict:
        """Inputs, next-token targets, the loss mask (assistant tokens only) and the id mask, right-padded.

        Position t predicts token t+1, so the masks are taken shifted by one: the loss lands exactly
        on the assistant tokens, never on the prompt or on padding.
        """
        import numpy as np

        from ..data import IGNORE_INDEX

        width = max(len(r["input_ids"]) for r in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int32)
        labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int32)
        id_mask = np.zeros((len(rows), width), dtype=np.float32)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = row["input_ids"]
            labels[i, : len(row["labels"])] = row["labels"]
            id_mask[i, : len(row["id_mask"])] = row["id_mask"]
        return {
            "inputs": ids[:, :-1],
            "targets": ids[:, 1:],
            "mask": (labels[:, 1:] != IGNORE_INDEX).astype(np.float32),
            "id_mask": id_mask[:, 1:],
        }

    def mlx_tokens(self, row: dict) -> int:
        return len(row["input_ids"])

    def mlx_loss(self, model, batch: dict, fixed, config):
        """Mean negative log-likelihood over the masked (assistant) target tokens, weighted: each id
        token counts sft.id_loss_weight times; and the token count."""
        weights = batch["mask"] * (1 + (config.sft.id_loss_weight - 1) * batch["id_mask"])
        return sft_loss(model, batch["inputs"], batch["targets"], batch["mask"], weights)

    def mlx_weight(self, aux) -> float:
        return aux.item()  # token-weighted, as the NVIDIA trainer averages


def sft_trainer_class(cpu: bool, id_loss_weight: float = 1.0):
    """TRL's SFTTrainer; on CPU, or with id tokens weighted, one whose loss is computed here.

    TRL computes the loss through a tiled log-probability LM head, which saves GPU memory on large
    vocabularies; its torch fallback for devices without Triton takes about half of each CPU step
    (benchmarks/bench_sft_cpu_loss.py). The loss here is the same, the mean negative log-likelihood
    of the labelled tokens; with id_loss_weight, a weighted mean in which each id token (the batch's
    id_mask, from id_mask_collator) counts that many times. A mean, not a sum over the token count:
    the gradient keeps plain SFT's scale, so clipping does not shrink every token's step while the
    ids' loss is high. On CPU two exact savings follow (labelled_logits): no attention mask for a
    right-padded batch, and the LM head only where a token is labelled."""
    from trl import SFTTrainer

    if not cpu and id_loss_weight == 1:
        return SFTTrainer

    class OwnLossSftTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            id_mask = inputs.pop("id_mask", None)
            labels = inputs.pop("labels")
            targets = labels[:, 1:]
            labelled = targets != -100
            logits, outputs = labelled_logits(model, inputs, labelled, lean=cpu and not return_outputs)
            inputs["labels"] = labels
            nll = torch.nn.functional.cross_entropy(logits.float(), targets[labelled], reduction="none")
            weights = torch.ones_like(nll)
            if id_mask is not None and id_loss_weight != 1:
                weights = 1 + (id_loss_weight - 1) * id_mask[:, 1:][labelled].to(nll.dtype)
            loss = (nll * weights).sum() / weights.sum().clamp(min=1e-6)
            if num_items_in_batch is not None:  # accumulation: each micro-batch by its share of the tokens
                loss = loss * labelled.sum() / num_items_in_batch
            # the metrics TRL logs, from the logits this forward already built; TRL keeps them in
            # private attributes, so a TRL without them logs the loss alone instead of failing
            metrics = getattr(self, "_metrics", None)
            if model.training and isinstance(metrics, dict) and "train" in metrics:
                with torch.no_grad():
                    right = (logits.argmax(-1) == targets[labelled]).sum() / labelled.sum().clamp(min=1)
                    metrics["train"]["mean_token_accuracy"].append(right.item())
                    mask = inputs.get("attention_mask")
                    tokens = int(mask.sum()) if mask is not None else labels.numel()
                    self._total_train_tokens = getattr(self, "_total_train_tokens", 0) + tokens
                    metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return (loss, outputs) if return_outputs else loss

    return OwnLossSftTrainer


# the model types whose causal-LM head is a plain linear layer over the decoder's last hidden state
# (no soft-capping or scaling of the logits), so labelled_logits may apply it to some positions only
PLAIN_LM_HEAD = {"llama", "mistral", "qwen2", "qwen3", "phi3"}


def labelled_logits(model, inputs: dict, labelled, lean: bool):
    """The logits at the positions that predict a labelled token (labelled: the shifted labels'
    mask), and the model's outputs when it ran whole.

    lean, for a plain LM head (PLAIN_LM_HEAD): the decoder runs alone and the head only on those
    positions (about 45% of a closed-loop row), and a right-padded batch runs without its attention
    mask, so attention takes the causal kernel's path: padding only follows a row's tokens, which
    the causal mask already hides from them, and its positions carry no label. The same loss in
    about 80% of the time (benchmarks/bench_sft_cpu_loss.py). A model inside a wrapper without the
    model's config (DistributedDataParallel) runs whole: its gradients are synchronised only
    through the wrapper's forward."""
    config = getattr(model, "config", None)
    if not lean or getattr(config, "model_type", None) not in PLAIN_LM_HEAD:
        outputs = model(**inputs, use_cache=False)
        return outputs.logits[:, :-1][labelled], outputs
    mask = inputs.get("attention_mask")
    if mask is not None and "position_ids" not in inputs and bool((mask[:, 1:] <= mask[:, :-1]).all()):
        inputs = {key: value for key, value in inputs.items() if key != "attention_mask"}
    hidden = model.get_decoder()(**inputs, use_cache=False).last_hidden_state
    return model.get_output_embeddings()(hidden[:, :-1][labelled]), None


def id_mask_collator(tokenizer):
    """TRL's language-modeling collator that also pads the rows' id_mask, cut as TRL cut input_ids."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    class IdMaskCollator(DataCollatorForLanguageModeling):
        def torch_call(self, examples):
            batch = super().torch_call(examples)
            id_mask = torch.zeros_like(batch["input_ids"])
            for row, example in zip(id_mask, examples):
                kept = example["id_mask"][: len(example["input_ids"])]
                row[: len(kept)] = torch.tensor(kept)
            batch["id_mask"] = id_mask
            return batch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return IdMaskCollator(pad_token_id=pad)


def sft_loss(model, inputs, targets, mask, weights=None):
    import mlx.core as mx

    from ..mlx.losses import token_logps

    weights = mask if weights is None else weights
    return -(token_logps(model, inputs, targets) * weights).sum() / mx.maximum(weights.sum(), 1e-6), mask.sum()


SFT = Sft()
