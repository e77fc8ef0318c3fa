"""LoRA SFT training throughput of the MLX trainer against PyTorch + PEFT, side by side in one run.

    python benchmarks/bench_mlx_trainer.py [--hidden 64] [--layers 2] [--steps 10] [--batch 2]

Both train the same random-weight Llama from the tiny-model factory (no download) with the same
LoRA (rank 16, alpha 32, q/k/v/o/gate/up/down), AdamW, batches and rows: the shipped sample SFT set
rendered and masked by the shared data path. The MLX side is the trainer's own optimizer step
(Trainers/shared/mlx/trainer.Stepper); the PyTorch side is a plain forward/backward/AdamW loop
(TRL's per-step overhead left out). Prints tokens/s for each and the ratio. On a Mac, MLX runs on
Metal and PyTorch on the CPU unless --torch-device mps is given.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from Tools.cli_common import ArgumentParser, format_table  # noqa: E402

KEYS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def mlx_side(model_dir: str, dataset: str, args) -> tuple[float, list]:
    from Trainers.shared.data import load_records
    from Trainers.shared.mlx.config import load_mlx_config
    from Trainers.shared.mlx.trainer import Session, Stepper, lora_settings, select_device, session_rows

    config = load_mlx_config(
        None, {"model_name": model_dir, "local_file": dataset, "max_steps": args.warmup + args.steps}
    )
    config.lora.r, config.lora.alpha, config.lora.dropout = 16, 32.0, 0.0
    t = config.training
    t.batch_size, t.gradient_accumulation, t.warmup_steps, t.learning_rate = args.batch, 1, 0, 1e-4
    print(select_device())
    session = Session(config, lora_settings(config))
    rows, _ = session_rows(session, load_records(dataset))
    stepper = Stepper(session, rows)
    session.model.train()
    for _ in range(args.warmup):
        stepper.run_step()
    stepper.flush()
    order = [stepper.schedule.indices(stepper.micro + i) for i in range(args.steps)]
    for _ in range(args.steps):
        stepper.run_step()
    return stepper.flush()["tokens_per_second"], [[rows[i] for i in batch] for batch in order]


def torch_side(model_dir: str, batches: list, pad_id: int, args) -> float:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    device = torch.device(args.torch_device)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=KEYS))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    model.train()

    def step(rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows], device=device)
        labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows], device=device)
        mask = (torch.arange(width)[None, :] < torch.tensor([[len(r["input_ids"])] for r in rows])).long().to(device)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        return sum(len(r["input_ids"]) for r in rows)

    for rows in batches[: args.warmup]:
        step(rows)
    if device.type == "mps":
        torch.mps.synchronize()
    start, tokens = time.perf_counter(), 0
    for rows in batches:
        tokens += step(rows)
    if device.type == "mps":
        torch.mps.synchronize()
    return tokens / (time.perf_counter() - start)


def main() -> int:
    parser = ArgumentParser(prog="bench_mlx_trainer.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--torch-device", default="cpu")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from Trainers.shared.tiny_model import build_tiny_model

    dataset = str(ROOT / "Datasets" / "sample" / "sample_sft.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(
            build_tiny_model(tmp, hidden_size=args.hidden, num_layers=args.layers, num_heads=max(4, args.hidden // 64))
        )
        mlx_rate, batches = mlx_side(model_dir, dataset, args)
        pad_id = AutoTokenizer.from_pretrained(model_dir).pad_token_id
        torch_rate = torch_side(model_dir, batches, pad_id, args)
    print(
        "\n".join(
            format_table(
                [
                    ("framework", "tokens/s"),
                    ("MLX trainer (Stepper)", round(mlx_rate)),
                    (f"PyTorch + PEFT ({args.torch_device})", round(torch_rate)),
                    ("ratio MLX / PyTorch", round(mlx_rate / torch_rate, 2)),
                ]
            )
        )
    )
    print(
        f"model: Llama, hidden {args.hidden}, {args.layers} layers; LoRA r16 on {len(KEYS)} projections; "
        f"batch {args.batch}; {args.steps} timed steps after {args.warmup} warm-up"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
