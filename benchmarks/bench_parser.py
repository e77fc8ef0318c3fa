"""The tool-call parser's worst case: hostile inputs against json.loads of a document of the same size.

    python benchmarks/bench_parser.py [--size 1000000] [--runs 3]

For each pathological input (the ones issue 14 reported, and the slowest shapes the property test in
tests/test_parser_linear.py draws) prints the parse time, the time json.loads takes on a JSON list
of small call objects of the same size, and their ratio, at two sizes; the last column is how much
longer the parse takes on the tenfold input: about 10 for a linear parser, about 100 for a quadratic one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from Tools.cli_common import ArgumentParser, format_table  # noqa: E402
from Tools.schema.toolcalls import parse_message  # noqa: E402

# name -> one repeated unit (a prefix before it where the shape needs one)
INPUTS = {
    "fence + spaces": ("```", " "),
    "fence + newlines": ("```json", "\n"),
    "[TOOL_CALLS]x repeated": ("", "[TOOL_CALLS]x"),
    "[TOOL_CALLS] [ repeated": ("", "[TOOL_CALLS] ["),
    "tool_call: markers": ("", "tool_call: x\n"),
    "tool_call: + arguments: markers": ("", "tool_call: x\narguments: \n"),
    "<tool_call> without close": ("", "<tool_call>x"),
    "unterminated string after <tool_call>": ("<tool_call>", '"a'),
    "nested arrays after <tool_call>": ("<tool_call>", "["),
    "harmony headers without a message": ("", "<|start|>assistant<|channel|>commentary to=functions.x "),
    "<|python_tag|> + unterminated JSON": ("<|python_tag|>", '{"name": "x", "parameters": {"a": [1, '),
    "fences around non-calls": ("", "```[\n```"),
    '{"name": nested': ("", '{"name": '),
}


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def json_doc(size: int) -> str:
    item = json.dumps({"name": "vaultManager_createFolder", "arguments": {"path": "Projects/A", "n": 1}})
    return "[" + ",".join([item] * max(1, size // (len(item) + 1))) + "]"


def main() -> None:
    parser = ArgumentParser(prog="bench_parser.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=int, default=1_000_000, help="characters of the larger input (default 1,000,000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args()
    sizes = (args.size // 10, args.size)
    floors = {size: best_of(args.runs, lambda doc=json_doc(size): json.loads(doc)) for size in sizes}
    rows = [("input", *(f"{label} {s // 1000:,} KB" for s in sizes for label in ("parse", "ratio")), "x10 input")]
    for name, (prefix, unit) in INPUTS.items():
        cells, times = [], []
        for size in sizes:
            text = prefix + unit * (size // len(unit))
            took = best_of(args.runs, lambda text=text: parse_message({"role": "assistant", "content": text}))
            times.append(took)
            cells += [f"{took * 1000:.1f} ms", f"{took / floors[size]:.1f}x"]
        rows.append((name, *cells, f"{times[1] / times[0]:.1f}x time"))
    print(
        f"json.loads floor: {floors[sizes[0]] * 1000:.2f} ms at {sizes[0] // 1000:,} KB, "
        f"{floors[sizes[1]] * 1000:.2f} ms at {sizes[1] // 1000:,} KB"
    )
    print("\n".join(format_table(rows)))


if __name__ == "__main__":
    main()
