"""Trainer benchmarks.

CPU (always): time the data path on a real dataset: load, validate, render with the chat template,
tokenise and mask, with the tiny model's tokenizer (nothing downloaded).

    python -m Trainers.shared.benchmark --dataset ../shared/reference/datasets/tools_sft_v1.5_11.29.25.jsonl

GPU (``--gpu``, NVIDIA only): tokens/s and peak memory of LoRA training steps on the 7b preset's
architecture (Mistral 7B shapes, random weights, so nothing is downloaded), transformers+PEFT
against Unsloth when it is installed, measured side by side in one run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die


def bench_data(dataset: str) -> dict:
    from transformers import AutoTokenizer

    from .data import load_records, prepare, validate_for
    from .tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp))
    times = {}
    start = time.perf_counter()
    data = load_records(dataset)
    times["load_s"] = time.perf_counter() - start
    mark = time.perf_counter()
    dropped = validate_for("sft", data, drop_invalid=True)
    times["validate_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    prepared = prepare("sft", data, tokenizer, 2048, dropped)
    times["render_tokenise_mask_s"] = time.perf_counter() - mark
    total = time.perf_counter() - start
    tokens = sum(len(r["input_ids"]) for r in prepared.rows)
    trained = sum(sum(l != -100 for l in r["labels"]) for r in prepared.rows)
    return {
        "dataset": dataset,
        "records": len(data.records) + dropped,
        "dropped_invalid": dropped,
        "prepared": prepared.records,
        "tokens": tokens,
        "assistant_tokens": trained,
        **{k: round(v, 3) for k, v in times.items()},
        "total_s": round(total, 3),
        "records_per_s": round((len(data.records) + dropped) / total),
    }


def _mistral_7b_dir(tmp: str) -> str:
    """Mistral 7B v0.3 shapes with random weights, saved so both backends load the same thing."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from .tiny_model import build_tiny_model

    build_tiny_model(tmp)  # its tokenizer; the 7b vocabulary only changes the embedding size
    config = MistralConfig(
        vocab_size=32768,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=32768,
        rope_theta=1e6,
        torch_dtype="bfloat16",
    )
    with torch.device("cuda"):
        model = MistralForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(tmp)
    del model
    torch.cuda.empty_cache()
    return tmp


def _time_steps(model, seq_len: int, batch: int, steps: int) -> dict:
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, 1000, (batch, seq_len), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    for step in range(steps + 1):
        if step == 1:  # the first step compiles kernels; time the rest
            torch.cuda.synchronize()
            start = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {
        "tokens_per_s": round(batch * seq_len * steps / elapsed),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


def bench_gpu(seq_len: int = 2048, batch: int = 2, steps: int = 5) -> dict:
    import gc
    import importlib.util

    import torch

    from .backend import Backend, load_model, load_tokenizer
    from .config import load_config

    if not torch.cuda.is_available():
        raise UsageError("--gpu needs an NVIDIA GPU")
    results = {"device": torch.cuda.get_device_name(0), "seq_len": seq_len, "batch": batch}
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config("sft", None, {"model_name": _mistral_7b_dir(tmp), "max_seq_length": seq_len})
        tokenizer = load_tokenizer(config)
        backends = [
            Backend("transformers+peft", "cuda", importlib.util.find_spec("bitsandbytes") is not None, "benchmark")
        ]
        if importlib.util.find_spec("unsloth"):
            backends.append(Backend("unsloth", "cuda", True, "benchmark"))
        for backend in backends:
            model = load_model(config, backend, tokenizer)
            model.train()
            results[backend.name] = _time_steps(model, seq_len, batch, steps)
            del model
            gc.collect()
            torch.cuda.empty_cache()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m Trainers.shared.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        default=str(Path(__file__).resolve().parents[3] / "shared/reference/datasets/tools_sft_v1.5_11.29.25.jsonl"),
    )
    parser.add_argument("--gpu", action="store_true", help="also measure training throughput on an NVIDIA GPU")
    args = parser.parse_args(argv)
    try:
        report = {"data": bench_data(args.dataset)}
        if args.gpu:
            report["gpu"] = bench_gpu()
    except UsageError as exc:
        die(str(exc))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
