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
    # Each answer token inside the context's prose (sessionDescription, sessionMemory, toolContext,
    # primaryGoal, subgoal) counts this many times (1: plain SFT). That prose is the model's own words,
    # which no check compares, and the hardest text of an answer to predict: weighed below 1, it
    # leaves more of each step to the call's name and arguments (docs/benchmarks.md).
    prose_loss_weight: float = 1.0
    # Weight of a second loss that teaches the last layer's first attention head, at each answer token
    # that copies a value the request spells, to look at that token in the request (0: off). A model
    # built from scratch forms that look-up only after thousands of steps; pointed there, it copies
    # names it never saw within the closed loop's budget (docs/benchmarks.md). Torch trainers only.
    copy_attention_weight: float = 0.0


class Sft(Method):
    name = "sft"
    section = SftConfig
    flags = {
        "id_loss_weight": (
            "id_loss_weight",
            dict(
                type=float,
                help="each answer token inside a session or workspace id counts this many times in the loss "
                "(default 1; the closed loop's model built from scratch used 3 to learn copying the ids sooner, until "
                "it weighed the context's prose 1/3 instead)",
            ),
        ),
        "prose_loss_weight": (
            "prose_loss_weight",
            dict(
                type=float,
                help="each answer token inside the context's prose (sessionDescription, sessionMemory, "
                "toolContext, primaryGoal, subgoal) counts this many times in the loss (default 1; the closed "
                "loop uses 1/3 so that the call's name and arguments get more of each step)",
            ),
        ),
        "copy_attention_weight": (
            "copy_attention_weight",
            dict(
                type=float,
                help="weight of a second loss that teaches the last layer's first attention head to look, at "
                "each answer token copying a value the request spells, at that token in the request "
                "(default 0: off; the closed loop's model built from scratch uses 0.05 to copy names sooner)",
            ),
        ),
    }
    remove_unused_columns = False
    mlx_unsupported = ("copy_attention_weight",)

    def check_config(self, config) -> None:
        for key in ("id_loss_weight", "prose_loss_weight"):
            if not 0 < getattr(config.sft, key) < float("inf"):
                raise UsageError(f"sft.{key} must be a positive number (got {getattr(config.sft, key)})")
        weight = config.sft.copy_attention_weight
        if not 0 <= weight < float("inf"):
            raise UsageError(f"sft.copy_attention_weight must be 0 or more (got {weight})")

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

        weights, copy_weight = token_class_weights(config.sft), config.sft.copy_attention_weight
        # random batches, not length-grouped ones: the length of an answer follows its tool, so a
        # length-grouped batch holds one tool and the model learns the batch's tool instead of reading
        # the request (closed loop: the expected tool on 5% of held-out requests, 43% with random batches)
        if copy_weight:
            check_copy_attention(model)
        return sft_trainer_class(args.get("use_cpu", False), weights, copy_weight)(
            model=model,
            args=SFTConfig(**args, packing=False),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
            **({"data_collator": sft_collator(tokenizer)} if weights != PLAIN or copy_weight else {}),
        )

    # -- MLX ------------------------------------------------------------------------------------
    def mlx_rows(self, data, tokenizer, max_seq_length: int) -> tuple[list, str]:
        """input_ids, labels (-100 outside assistant turns) and token_class, cut to max_seq_length."""
        rows, cut = self.rows(data, tokenizer, max_seq_length)
        rows = [{key: values[:max_seq_length] for key, values in r.items()} for r in rows]
        return rows, f"{cut} cut to {max_seq_length} tokens" if cut else ""

    def mlx_batch(self, rows: list, pad_id: int, max_seq_length: int) -> dict:
        """Inputs, next-token targets, the loss mask (assistant tokens only) and the token classes,
        right-padded.

        Position t predicts token t+1, so the masks are taken shifted by one: the loss lands exactly
        on the assistant tokens, never on the prompt or on padding.
        """
        import numpy as np

        from ..data import IGNORE_INDEX

        width = max(len(r["input_ids"]) for r in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int32)
        labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int32)
        token_class = np.zeros((len(rows), width), dtype=np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = row["input_ids"]
            labels[i, : len(row["labels"])] = row["labels"]
            token_class[i, : len(row["token_class"])] = row["token_class"]
        return {
            "inputs": ids[:, :-1],
            "targets": ids[:, 1:],
            "mask": (labels[:, 1:] != IGNORE_INDEX).astype(np.float32),
            "token_class": token_class[:, 1:],
        }

    def mlx_tokens(self, row: dict) -> int:
        return len(row["input_ids"])

    def mlx_loss(self, model, batch: dict, fixed, config):
        """Mean negative log-likelihood over the masked (assistant) target tokens, each weighted by its
        class (token_class_weights); and the token count."""
        import mlx.core as mx

        weights = batch["mask"] * mx.array(token_class_weights(config.sft))[batch["token_class"]]
        return sft_loss(model, batch["inputs"], batch["targets"], batch["mask"], weights)

    def mlx_weight(self, aux) -> float:
        return aux.item()  # token-weighted, as the NVIDIA trainer averages


# the loss weight of each token_class (data.ID_TOKEN, data.PROSE_TOKEN; 0: any other answer token)
PLAIN = (1.0, 1.0, 1.0)


def token_class_weights(sft: SftConfig) -> tuple[float, float, float]:
    return (1.0, sft.id_loss_weight, sft.prose_loss_weight)


def sft_trainer_class(cpu: bool, class_weights: tuple = PLAIN, copy_attention_weight: float = 0.0):
    """TRL's SFTTrainer; on CPU, with token classes weighted or with the copy-attention loss, one whose
    loss is computed here.

    TRL computes the loss through a tiled log-probability LM head, which saves GPU memory on large
    vocabularies; its torch fallback for devices without Triton takes about half of each CPU step
    (benchmarks/bench_sft_cpu_loss.py). The loss here is the same, the mean negative log-likelihood
    of the labelled tokens; with class_weights, a weighted mean in which each token counts as many
    times as its class's weight (the batch's token_class, from sft_collator). A mean, not a sum
    over the token count: the gradient keeps plain SFT's scale, so clipping does not shrink every
    token's step while the ids' loss is high. On CPU two exact savings follow (labelled_logits): no
    attention mask for a right-padded batch, and the LM head only where a token is labelled. With
    copy_attention_weight, that weight times copy_attention_loss is added (logged as
    copy_attention_loss)."""
    from trl import SFTTrainer

    if not cpu and class_weights == PLAIN and not copy_attention_weight:
        return SFTTrainer

    class OwnLossSftTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            token_class = inputs.pop("token_class", None)
            copy_source = inputs.pop("copy_source", None)
            labels = inputs.pop("labels")
            targets = labels[:, 1:]
            labelled = targets != -100
            copies = bool(copy_attention_weight) and copy_source is not None and bool((copy_source >= 0).any())
            logits, outputs, hidden = labelled_logits(
                model, inputs, labelled, lean=cpu and not return_outputs, hidden_states=copies
            )
            inputs["labels"] = labels
            nll = torch.nn.functional.cross_entropy(logits.float(), targets[labelled], reduction="none")
            weights = torch.ones_like(nll)
            if token_class is not None and class_weights != PLAIN:
                weights = torch.tensor(class_weights, dtype=nll.dtype, device=nll.device)[token_class[:, 1:][labelled]]
            loss = (nll * weights).sum() / weights.sum().clamp(min=1e-6)
            copy_loss = None
            if copies:  # the unwrapped model's layers; the hidden states came through any wrapper
                bare = self.accelerator.unwrap_model(model)
                copy_loss = copy_attention_loss(bare, hidden, copy_source, inputs.get("position_ids"))
                loss = loss + copy_attention_weight * copy_loss
            if num_items_in_batch is not None:  # accumulation: each micro-batch by its share of the tokens
                loss = loss * labelled.sum() / num_items_in_batch
            # the metrics TRL logs, from the logits this forward already built; TRL keeps them in
            # private attributes, so a TRL without them logs the loss alone instead of failing
            metrics = getattr(self, "_metrics", None)
            if model.training and isinstance(metrics, dict) and "train" in metrics:
                if copy_loss is not None:
                    metrics["train"]["copy_attention_loss"].append(copy_loss.item())
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


def labelled_logits(model, inputs: dict, labelled, lean: bool, hidden_states: bool = False):
    """The logits at the positions that predict a labelled token (labelled: the shifted labels'
    mask), the model's outputs when it ran whole, and with hidden_states its hidden states (the
    embeddings, then each layer's output; None without).

    lean, for a plain LM head (PLAIN_LM_HEAD): the decoder runs alone and the head only on those
    positions (about 45% of a closed-loop row), and a right-padded batch runs without its attention
    mask, so attention takes the causal kernel's path: padding only follows a row's tokens, which
    the causal mask already hides from them, and its positions carry no label. The same loss in
    about 80% of the time (benchmarks/bench_sft_cpu_loss.py). A model inside a wrapper without the
    model's config (DistributedDataParallel) runs whole: its gradients are synchronised only
    through the wrapper's forward."""
    config = getattr(model, "config", None)
    if not lean or getattr(config, "model_type", None) not in PLAIN_LM_HEAD:
        outputs = model(**inputs, use_cache=False, output_hidden_states=hidden_states)
        return outputs.logits[:, :-1][labelled], outputs, outputs.hidden_states
    mask = inputs.get("attention_mask")
    if mask is not None and "position_ids" not in inputs and bool((mask[:, 1:] <= mask[:, :-1]).all()):
        inputs = {key: value for key, value in inputs.items() if key != "attention_mask"}
    decoded = model.get_decoder()(**inputs, use_cache=False, output_hidden_states=hidden_states)
    logits = model.get_output_embeddings()(decoded.last_hidden_state[:, :-1][labelled])
    return logits, None, decoded.hidden_states


def check_copy_attention(model):
    """The decoder and its last layer's attention, for copy_attention_loss; a UsageError for a model
    whose attention it cannot recompute."""
    decoder = getattr(model, "get_decoder", lambda: None)()
    attention = getattr(getattr(decoder, "layers", [None])[-1], "self_attn", None)
    if not (hasattr(attention, "q_proj") and hasattr(attention, "k_proj") and hasattr(decoder, "rotary_emb")):
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise UsageError(
            f"sft.copy_attention_weight needs separate q_proj and k_proj and rotary positions in the attention "
            f"(Llama, Mistral, Qwen); {kind} has not: set it to 0"
        )
    return decoder, attention


def copy_attention_loss(model, hidden_states, copy_source, position_ids=None):
    """The mean negative log of the attention that the last layer's first head pays, from each
    position whose next token copies a request token, to that token (copy_source: its index, -1
    elsewhere; data.copy_sources).

    The head's scores are recomputed from the last layer's input exactly as the layer computes them
    (its norm, the head's part of q_proj and k_proj, rotary positions, a causal mask), so the model
    and what it exports stay a plain transformer: the loss only steers where one head looks."""
    import torch

    decoder, attention = check_copy_attention(model)
    layer = decoder.layers[-1]
    size = attention.head_dim
    hidden = layer.input_layernorm(hidden_states[-2])  # the last layer's input
    batch, length, _ = hidden.shape

    def head(project, norm):  # the whole projection, so a LoRA adapter on it counts
        out = project(hidden)[..., :size].unsqueeze(1)
        return norm(out) if norm is not None else out  # Qwen3 normalises each head's q and k

    query = head(attention.q_proj, getattr(attention, "q_norm", None))
    key = head(attention.k_proj, getattr(attention, "k_norm", None))
    if position_ids is None:
        position_ids = torch.arange(length, device=hidden.device).expand(batch, length)
    cos, sin = decoder.rotary_emb(hidden, position_ids)
    query, key = _rotate(query, cos, sin)[:, 0], _rotate(key, cos, sin)[:, 0]
    rows, positions = (copy_source >= 0).nonzero(as_tuple=True)
    scores = torch.einsum("nd,ntd->nt", query[rows, positions], key[rows]).float() * size**-0.5
    future = torch.arange(length, device=hidden.device) > positions.unsqueeze(1)
    log_attention = torch.log_softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return -log_attention[torch.arange(len(rows)), copy_source[rows, positions]].mean()


def _rotate(x, cos, sin):
    """Rotary position embedding of x (batch, heads, length, head size) by the model's cos and sin."""
    import torch

    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.unsqueeze(1) + turned * sin.unsqueeze(1)


def sft_collator(tokenizer):
    """TRL's language-modeling collator that also pads the rows' token_class (with 0) and copy_source
    (with -1), cut as TRL cut input_ids."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    class SftCollator(DataCollatorForLanguageModeling):
        def torch_call(self, examples):
            batch = super().torch_call(examples)
            for key, fill in (("token_class", 0), ("copy_source", -1)):
                column = torch.full_like(batch["input_ids"], fill)
                for row, example in zip(column, examples):
                    kept = example[key][: len(example["input_ids"])]
                    row[: len(kept)] = torch.tensor(kept, dtype=column.dtype)
                batch[key] = column
            return batch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return SftCollator(pad_token_id=pad)


def sft_loss(model, inputs, targets, mask, weights=None):
    import mlx.core as mx

    from ..mlx.losses import token_logps

    weights = mask if weights is None else weights
    return -(token_logps(model, inputs, targets) * weights).sum() / mx.maximum(weights.sum(), 1e-6), mask.sum()


SFT = Sft()
