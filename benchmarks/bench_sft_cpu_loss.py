"""SFT on CPU, side by side on the same model, rows and seed: TRL's own SFTTrainer; the toolkit's
CPU trainer with the model's whole forward (its cross-entropy in place of TRL's tiled LM head, as for
a model type outside sft.PLAIN_LM_HEAD); the same trainer's lean forward, as the demo's model
takes it (no attention mask on a right-padded batch, the LM head on labelled positions only); and
the lean forward with the copy-attention loss the closed loop adds (sft.copy_attention_weight 0.1).
All see the same batches without gradient checkpointing, as the toolkit trains on CPU. Prints
tokens per second (the real tokens, padding not counted), each one's ratio to TRL's, and the
logged losses, which must agree at every step for the first three (the fourth adds a term).

    python benchmarks/bench_sft_cpu_loss.py [--steps 40] [--batch 8] [--hidden 128] [--layers 4] [--heads 8]

The model is built from scratch as in the closed loop (`make demo`): random weights and a tokenizer
trained on the teacher's records, which are also the rows trained on. Exits 1 when the losses differ.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COPY = "lean forward + copy-attention loss"


def run(trainer_class, model_dir: Path, rows, steps: int, batch: int, out: Path, **extra) -> tuple[float, list[float]]:
    """Tokens per second and the per-step losses of `steps` steps from the same initial weights."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        data_seed=0,
        disable_tqdm=True,
        packing=False,
        gradient_checkpointing=False,  # as the toolkit on CPU (train.py); TRL's default recomputes
        remove_unused_columns=False,  # as the toolkit runs SFT: the rows keep token_class and copy_source
    )
    if extra.pop("collate", False):
        from Trainers.shared.methods.sft import sft_collator

        extra["data_collator"] = sft_collator(tokenizer)
    trainer = trainer_class(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, **extra
    )
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    history = [h for h in trainer.state.log_history if "loss" in h]
    return history[-1]["num_tokens"] / seconds, [float(h["loss"]) for h in history]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per trainer (default 40)")
    parser.add_argument("--batch", type=int, default=8, help="rows per step (default 8, as the demo)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    args = parser.parse_args(argv)
    if min(args.steps, args.batch, args.hidden, args.layers, args.heads) < 1:
        parser.error("--steps, --batch, --hidden, --layers and --heads must be at least 1")
    if args.hidden % args.heads:
        parser.error(f"--heads ({args.heads}) must divide --hidden ({args.hidden})")

    from SelfPlay.teacher import write_datasets
    from Tools.schema.records import iter_jsonl
    from Trainers.shared.data import chat_messages, encode_sft
    from Trainers.shared.methods import sft
    from Trainers.shared.methods.sft import sft_trainer_class
    from Trainers.shared.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_datasets(tmp, seed=7, sft_size=args.steps * args.batch, kto_size=2, dpo_size=0)
        conversations = [chat_messages(line.record) for line in iter_jsonl(tmp / "teacher_sft.jsonl")]
        model_dir = build_tiny_model(
            tmp / "model",
            corpus=[json.dumps(c) for c in conversations],
            vocab_size=2000,
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=args.heads,
            seed=7,
        )
        from transformers import AutoTokenizer

        rows = encode_sft(AutoTokenizer.from_pretrained(model_dir), conversations)
        whole_forward = set()  # no model type takes the lean path: the whole forward, as before
        results = {}
        for name, trainer_class, plain in (
            ("TRL SFTTrainer (tiled LM head)", sft_trainer_class(cpu=False), sft.PLAIN_LM_HEAD),
            ("CPU trainer, whole forward", sft_trainer_class(cpu=True), whole_forward),
            ("CPU trainer, lean forward", sft_trainer_class(cpu=True), sft.PLAIN_LM_HEAD),
            (COPY, sft_trainer_class(True, sft.PLAIN, 0.1), sft.PLAIN_LM_HEAD),
        ):
            kept, sft.PLAIN_LM_HEAD = sft.PLAIN_LM_HEAD, plain
            try:
                out = tmp / str(len(results))
                results[name] = run(trainer_class, model_dir, rows, args.steps, args.batch, out, collate=name == COPY)
            finally:
                sft.PLAIN_LM_HEAD = kept

    copy_speed = results.pop(COPY)[0]
    (base, reference), *others = results.values()
    same = all(
        len(losses) == len(reference)
        and all(math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4) for a, b in zip(reference, losses))
        for _, losses in others
    )
    print(
        f"model {args.layers} x {args.hidden} ({args.heads} heads), {args.steps} steps x batch {args.batch}, "
        "rows of the teacher's records"
    )
    print(f"{'trainer':<34}{'tokens/s':>10}{'vs TRL':>8}{'first loss':>12}{'last loss':>11}")
    for name, (speed, losses) in results.items():
        print(f"{name:<34}{speed:>10.0f}{speed / base:>7.2f}x{losses[0]:>12.4f}{losses[-1]:>11.4f}")
    lean = results["CPU trainer, lean forward"][0]
    print(f"{COPY:<34}{copy_speed:>10.0f}{copy_speed / base:>7.2f}x   ({copy_speed / lean:.2f}x the lean forward)")
    print(f"losses {'agree' if same else 'DIFFER'} at every step (the copy-attention loss aside)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
