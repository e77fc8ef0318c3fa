"""Self-correction costs, measured side by side in one run.

    python benchmarks/bench_self_correction.py [--dataset FILE] [--steps 12] [--eval-steps 4]

1. Comparison: compare_answer (parse, validate, compare tool names and arguments) on every golden
   answer of a dataset, once as the golden call itself and once with a changed argument, against
   the shared validator alone on the same answers; prints answers/s and the ratio.
2. Live monitor: the tiny model trained for --steps SFT steps on CPU with the monitor off and on
   (every --eval-steps steps, 2 examples, 32 tokens, self-correction on); prints both wall times
   and their ratio, and the generation time of one evaluation as the monitor timed it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from Tools.cli_common import ArgumentParser  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "reference" / "datasets" / "tools_sft_v1.5_11.29.25.jsonl"


def bench_compare(path: Path) -> dict:
    from Tools.schema.records import read_records
    from Tools.schema.registry import load_registry
    from Tools.schema.toolcalls import parse_message, render_content
    from Tools.schema.validate import check_assistant_message
    from Trainers.shared.self_correction.compare import compare_answer
    from Trainers.shared.self_correction.monitor import examples_from_records

    registry = load_registry()
    cases = []
    for example in examples_from_records(list(read_records(path)), path.name):
        calls = parse_message(example.golden).calls
        if not calls or not all(isinstance(c.arguments, dict) for c in calls):
            continue
        right = render_content(calls, "hermes")
        changed = [type(c)(c.name, {**c.arguments, "limit": 999}) for c in calls]
        cases += [(example, right), (example, render_content(changed, "hermes"))]
    start = time.perf_counter()
    matched = sum(compare_answer(e.golden, a, e.system, e.question, registry).match for e, a in cases)
    compare_s = time.perf_counter() - start
    start = time.perf_counter()
    for example, answer in cases:
        check_assistant_message({"role": "assistant", "content": answer}, registry, example.system)
    validate_s = time.perf_counter() - start
    return {
        "answers": len(cases),
        "matched": matched,
        "compare_s": round(compare_s, 3),
        "validate_only_s": round(validate_s, 3),
        "compare_per_s": round(len(cases) / compare_s),
        "ratio": round(compare_s / validate_s, 2),
    }


def bench_monitor(steps: int, eval_steps: int) -> dict:
    from Trainers.shared.config import load_config
    from Trainers.shared.tiny_model import build_tiny_model
    from Trainers.shared.train import run_training
    from tests.conftest import tool_record, write_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = str(build_tiny_model(tmp / "model"))
        records = [
            tool_record(f"Projects/{n}", f"Create a folder for {n}") for n in ("Alpha", "Beta", "Gamma", "Delta")
        ]
        data = write_jsonl(tmp / "sft.jsonl", records * 4)
        validation = write_jsonl(tmp / "val.jsonl", records)  # the same training data in both runs
        base = {"model_name": model, "local_file": data, "batch_size": 2, "max_steps": steps, "save_steps": 1000}
        monitor = {
            "eval_steps": eval_steps,
            "num_eval_samples": 2,
            "eval_max_tokens": 32,
            "validation_file": validation,
            "self_correction": True,
            "min_examples": 1,
            "generation_interval": eval_steps,
            "self_correction_dir": str(tmp / "sc"),
        }
        times = {}
        for name, extra in (("off", {}), ("on", monitor)):
            config = load_config("sft", None, {**base, **extra, "output_dir": str(tmp / name)})
            start = time.perf_counter()
            result = run_training(config)
            times[name] = time.perf_counter() - start
        log = [
            json.loads(line)
            for line in (result.run_dir / "logs" / "training_latest.jsonl").read_text().split("\n")
            if line
        ]
        generation = [sum(r["seconds"] for r in row["live_eval"]["results"]) for row in log if "live_eval" in row]
        return {
            "steps": steps,
            "evaluations": len(generation),
            "off_s": round(times["off"], 2),
            "on_s": round(times["on"], 2),
            "ratio": round(times["on"] / times["off"], 2),
            "generation_s_per_evaluation": round(sum(generation) / len(generation), 2),
            "files_written": len(list((tmp / "sc").glob("*.json"))),
        }


def main() -> int:
    parser = ArgumentParser(prog="bench_self_correction.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--eval-steps", type=int, default=4)
    args = parser.parse_args()
    if not args.dataset.is_file():
        parser.error(f"{args.dataset}: no such file")
    comparison = bench_compare(args.dataset)
    print(
        f"comparison: {comparison['answers']} answers ({comparison['matched']} right) in {comparison['compare_s']} s "
        f"= {comparison['compare_per_s']}/s; validator alone {comparison['validate_only_s']} s; "
        f"ratio {comparison['ratio']}x"
    )
    monitor = bench_monitor(args.steps, args.eval_steps)
    print(
        f"live monitor: {monitor['steps']} steps off {monitor['off_s']} s, on {monitor['on_s']} s "
        f"({monitor['evaluations']} evaluations, {monitor['files_written']} files): ratio {monitor['ratio']}x, "
        f"generation {monitor['generation_s_per_evaluation']} s per evaluation (timed inside the monitor)"
    )
    print(json.dumps({"comparison": comparison, "monitor": monitor}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
