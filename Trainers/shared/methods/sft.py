"""SFT: supervised fine-tuning on positives, the loss on assistant tokens only."""

from __future__ import annotations

from .base import Method


class Sft(Method):
    name = "sft"
    remove_unused_columns = False

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

        # random batches, not length-grouped ones: the length of an answer follows its tool, so a
        # length-grouped batch holds one tool and the model learns the batch's tool instead of reading
        # the request (closed loop: the expected tool on 5% of held-out requests, 43% with random batches)
        return sft_trainer_class(cpu=args.get("use_cpu", False))(
            model=model,
            args=SFTConfig(**args, packing=False),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )

    # -- MLX ------------------------------------------------------------------------------------
    def mlx_rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, str]:
        """input_ids and labels (-100 outside assistant turns), cut to max_seq_length."""
        rows, cut = self.rows(data, tokenizer, max_seq_length)
        rows = [{"input_ids": r["input_ids"][:max_seq_length], "labels": r["labels"][:max_seq_length]} for r in rows]
        return rows, f"{cut} cut to {max_seq_length} tokens" if cut else ""

    def mlx_batch(self, rows: list, pad_id: int, max_seq_length: int) -> dict:
        """Inputs, next-token targets and the loss mask (assistant tokens only), right-padded.

        Position t predicts token t+1, so the mask is taken from the labels shifted by one: the loss
        lands exactly on the assistant tokens, never on the prompt or on padding.
        """
        import numpy as np

        from ..data import IGNORE_INDEX

        width = max(len(r["input_ids"]) for r in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int32)
        labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = row["input_ids"]
            labels[i, : len(row["labels"])] = row["labels"]
        return {
            "inputs": ids[:, :-1],
            "targets": ids[:, 1:],
            "mask": (labels[:, 1:] != IGNORE_INDEX).astype(np.float32),
        }

    def mlx_tokens(self, row: dict) -> int:
        return len(row["input_ids"])

    def mlx_loss(self, model, batch: dict, fixed, config):
        """Mean negative log-likelihood over the masked (assistant) target tokens, and their count."""
        return sft_loss(model, batch["inputs"], batch["targets"], batch["mask"])

    def mlx_weight(self, aux) -> float:
        return aux.item()  # token-weighted, as the NVIDIA trainer averages


def sft_trainer_class(cpu: bool):
    """TRL's SFTTrainer; on CPU, one whose loss is the model's own cross-entropy.

    TRL computes the loss through a tiled log-probability LM head, which saves GPU memory on large
    vocabularies; its torch fallback for devices without Triton takes about half of each CPU step
    (benchmarks/bench_sft_cpu_loss.py). The loss is the same: the summed negative log-likelihood of
    the labelled tokens over their count."""
    from trl import SFTTrainer

    if not cpu:
        return SFTTrainer

    class CpuSftTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            outputs = model(**inputs, use_cache=False, num_items_in_batch=num_items_in_batch)
            if model.training:  # the metrics TRL logs, from the logits this forward already built
                with torch.no_grad():
                    targets = inputs["labels"][:, 1:]
                    mask = targets != -100
                    right = (outputs.logits[:, :-1].argmax(-1) == targets) & mask
                    self._metrics["train"]["mean_token_accuracy"].append((right.sum() / mask.sum().clamp(min=1)).item())
                    self._total_train_tokens += int(inputs["attention_mask"].sum())
                    self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return (outputs.loss, outputs) if return_outputs else outputs.loss

    return CpuSftTrainer


def sft_loss(model, inputs, targets, mask):
    import mlx.core as mx

    from ..mlx.losses import token_logps

    ntoks = mask.sum()
    return -(token_logps(model, inputs, targets) * mask).sum() / mx.maximum(ntoks, 1), ntoks


SFT = Sft()
