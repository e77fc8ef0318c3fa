"""SFT on CPU: TRL's own SFTTrainer against the toolkit's CPU trainer (the same trainer with the
model's own cross-entropy in place of TRL's tiled log-probability LM head), side by side on the same
model, rows, batches and seed. Prints tokens per second for each, their ratio, and the logged losses,
which must agree: the two compute the same loss.

    python benchmarks/bench_sft_cpu_loss.py [--steps 40] [--batch 8] [--hidden 128] [--layers 4]

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


def run(trainer_class, model_dir: Path, rows, steps: int, batch: int, out: Path) -> tuple[float, list[float]]:
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
    )
    trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
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
    args = parser.parse_args(argv)
    if min(args.steps, args.batch, args.hidden, args.layers) < 1:
        parser.error("--steps, --batch, --hidden and --layers must be at least 1")

    from SelfPlay.teacher import write_datasets
    from Tools.schema.records import iter_jsonl
    from Trainers.shared.data import chat_messages, encode_sft
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
            num_heads=4,
            seed=7,
        )
        from transformers import AutoTokenizer

        rows = encode_sft(AutoTokenizer.from_pretrained(model_dir), conversations)
        trl_speed, trl_losses = run(sft_trainer_class(cpu=False), model_dir, rows, args.steps, args.batch, tmp / "a")
        cpu_speed, cpu_losses = run(sft_trainer_class(cpu=True), model_dir, rows, args.steps, args.batch, tmp / "b")

    same = len(trl_losses) == len(cpu_losses) and all(
        math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4) for a, b in zip(trl_losses, cpu_losses)
    )
    print(
        f"model {args.layers} x {args.hidden}, {args.steps} steps x batch {args.batch}, rows of the teacher's records"
    )
    print(f"{'trainer':<36}{'tokens/s':>10}{'first loss':>12}{'last loss':>11}")
    print(f"{'TRL SFTTrainer (tiled LM head)':<36}{trl_speed:>10.0f}{trl_losses[0]:>12.4f}{trl_losses[-1]:>11.4f}")
    print(f"{'CPU trainer (model cross-entropy)':<36}{cpu_speed:>10.0f}{cpu_losses[0]:>12.4f}{cpu_losses[-1]:>11.4f}")
    print(f"speed-up {cpu_speed / trl_speed:.2f}x; losses {'agree' if same else 'DIFFER'} at every step")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
