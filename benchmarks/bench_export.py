"""GGUF export: size and embedded llama.cpp generation speed of each quantization, side by side with
the f16 file, plus the time each export step takes.

    python benchmarks/bench_export.py [--model DIR] [--quantizations Q8_0,Q4_K_M] [--tokens 128]

Without --model, a random-weight model from the tiny-model factory is built with 256-wide layers
(k-quants need rows that are a multiple of 256; the 64-wide test model makes them fall back).
Speeds on a random model measure the kernels, not answer quality.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tokens_per_second(gguf: Path, tokens: int, repeats: int = 3) -> float:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=512, n_threads=1, verbose=False)
    speeds = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = llm.create_completion(
            "<|im_start|>user\nCreate a folder<|im_end|>\n<|im_start|>assistant\n", max_tokens=tokens, temperature=0.0
        )
        speeds.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
    llm.close()
    return statistics.median(speeds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Hugging Face model directory (default: a 256-wide random tiny model)")
    parser.add_argument("--quantizations", default="Q8_0,Q5_K_M,Q4_K_M")
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    from Trainers.shared.export.quantize import parse_quantizations, quantize
    from Trainers.shared.gguf import convert_to_gguf
    from Trainers.shared.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Path(args.model) if args.model else build_tiny_model(work / "model", hidden_size=256, num_layers=4)
        started = time.perf_counter()
        f16 = convert_to_gguf(model, work / "model-f16.gguf")
        rows = [("F16", f16, time.perf_counter() - started, 0)]
        for name in parse_quantizations(args.quantizations):
            started = time.perf_counter()
            done = quantize(f16, work / f"model-{name}.gguf", name)
            rows.append((name, done.path, time.perf_counter() - started, done.fallback_tensors))
        base_size, base_speed = f16.stat().st_size, tokens_per_second(f16, args.tokens)
        print(
            f"model: {args.model or 'tiny factory, hidden 256, 4 layers'}; {args.tokens} tokens, 1 thread, median of 3"
        )
        print(
            f"{'type':<8} {'MB':>8} {'size vs f16':>12} {'tok/s':>9} {'speed vs f16':>13} {'made in (s)':>12} {'fallback':>9}"
        )
        for name, path, seconds, fallback in rows:
            speed = base_speed if name == "F16" else tokens_per_second(path, args.tokens)
            size = path.stat().st_size
            print(
                f"{name:<8} {size / 2**20:8.2f} {size / base_size:11.2f}x {speed:9.0f} {speed / base_speed:12.2f}x "
                f"{seconds:12.2f} {fallback:9d}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
