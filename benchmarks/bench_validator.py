"""Validator speed, measured side by side in one run.

    python benchmarks/bench_validator.py [FILE] [--runs 10] [--baseline PATH/TO/earlier/validate_syngen.py]

Prints: the json.loads floor (read + parse every line), the validation itself (imports excluded),
their ratio (target <= 3x), the whole command from process start to exit, and, with --baseline,
the earlier validator's whole command on the same file and the ratio between the two (target <= 1).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from Tools.cli_common import ArgumentParser  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "reference" / "datasets" / "tools_sft_v1.5_11.29.25.jsonl"


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def command_seconds(argv: list[str], runs: int) -> float:
    """Median wall time of a whole command, process start to exit."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = ArgumentParser(prog="bench_validator.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--baseline", type=Path, help="the earlier project's tools/validate_syngen.py, to time side by side"
    )
    args = parser.parse_args()
    if not args.file.is_file():
        parser.error(f"{args.file}: no such file")

    from Tools.schema.registry import load_registry
    from Tools.schema.report import validate_file

    registry = load_registry()
    data = args.file.read_bytes().splitlines()
    floor = best_of(args.runs, lambda: [json.loads(line) for line in data if line.strip()])
    validation = best_of(args.runs, lambda: validate_file(args.file, registry))
    ours = command_seconds(
        [sys.executable, str(ROOT / "Tools" / "validate_syngen.py"), str(args.file), "--summary-only"], args.runs
    )
    print(f"file: {args.file.name} ({len(data):,} lines, {args.file.stat().st_size / 1e6:.1f} MB)")
    print(f"json.loads floor:            {floor * 1000:7.1f} ms")
    print(
        f"validation (imports excl.):  {validation * 1000:7.1f} ms   ratio to floor {validation / floor:.2f}x (target <= 3x)"
    )
    print(f"whole command (median):      {ours * 1000:7.1f} ms")
    if args.baseline:
        earlier = command_seconds([sys.executable, str(args.baseline), str(args.file)], args.runs)
        print(
            f"earlier validator (median):  {earlier * 1000:7.1f} ms   ours / earlier = {ours / earlier:.2f} (target <= 1)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
