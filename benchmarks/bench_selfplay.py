"""Self-play speed, measured side by side in one run.

    python benchmarks/bench_selfplay.py [--examples 48] [--delay 0.1] [--concurrency 8] [--teacher 10000]

1. Concurrency: the 3-prompt generator (three requests per example) against a loopback
   OpenAI-compatible server that answers every request after --delay seconds (the answers are the
   template teacher's, so they are real examples, judged and written as usual), once at
   --concurrency 1 and once at --concurrency N. Goal: N=8 gives at least 6x the throughput.
2. The template teacher writing the shipped-dataset kind of records (scene, answer, judge, JSONL
   line): examples per second, wall and CPU time. Goal: at least 5,000 per second.
The exit code is 1 when a goal is missed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser, format_table  # noqa: E402


def concurrency_runs(examples: int, delay: float, levels=(1, 8)) -> dict:
    from Evaluator.backends import make_client
    from Evaluator.protocol_doubles import OpenAIDouble, client_answer
    from SelfPlay.generator import SelfPlayGenerator
    from SelfPlay.teacher import TemplateClient

    runs = {}
    with (
        OpenAIDouble(client_answer(TemplateClient(seed=0)), delay=delay) as double,
        tempfile.TemporaryDirectory(prefix="bench-selfplay-") as tmp,
    ):
        client = make_client("openai", "double-model", base_url=double.url, timeout=30)
        client.chat([{"role": "user", "content": "warm-up"}])
        for level in levels:
            generator = SelfPlayGenerator(client, seed=1)
            summary = generator.generate_batch(examples, Path(tmp) / f"c{level}.jsonl", concurrency=level)
            runs[level] = {
                "wall_s": summary.wall_s,
                "examples_per_s": summary.completed / summary.wall_s,
                "written": summary.written,
                "failed": summary.failed,
            }
    return runs


def teacher_rate(count: int) -> dict:
    from SelfPlay.teacher import Teacher
    from Tools.schema.records import write_jsonl_atomic

    teacher = Teacher(seed=1)
    teacher.sft_records(200)  # warm caches (vault model, compiled validators)
    with tempfile.TemporaryDirectory(prefix="bench-teacher-") as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        written = write_jsonl_atomic(Path(tmp) / "sft.jsonl", teacher.sft_records(count))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"records": written, "wall_s": wall, "cpu_s": cpu, "per_s_wall": written / wall, "per_s_cpu": written / cpu}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="bench_selfplay", description="Self-play throughput: concurrency and the template teacher."
    )
    parser.add_argument("--examples", type=int, default=48, help="examples per concurrency level (default 48)")
    parser.add_argument("--delay", type=float, default=0.1, help="the server's answer time in seconds (default 0.1)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--teacher", type=int, default=10000, help="teacher records to write (default 10,000)")
    args = parser.parse_args(argv)
    runs = concurrency_runs(args.examples, args.delay, (1, args.concurrency))
    low, high = runs[1], runs[args.concurrency]
    speedup = high["examples_per_s"] / low["examples_per_s"]
    rows = [("concurrency", "wall s", "examples/s", "written", "failed")]
    rows += [
        (level, f"{r['wall_s']:.2f}", f"{r['examples_per_s']:.2f}", r["written"], r["failed"])
        for level, r in runs.items()
    ]
    print(
        f"3-prompt self-play, {args.examples} examples (3 requests each) against a server answering after {args.delay * 1000:.0f} ms:"
    )
    print("\n".join(format_table(rows)))
    print(f"speedup at concurrency {args.concurrency} over 1: {speedup:.2f}x (goal: at least 6x)")
    teacher = teacher_rate(args.teacher)
    print(
        f"\ntemplate teacher: {teacher['records']:,} records written in {teacher['wall_s']:.2f} s wall / "
        f"{teacher['cpu_s']:.2f} s CPU: {teacher['per_s_wall']:,.0f} examples/s wall, {teacher['per_s_cpu']:,.0f} "
        "examples/s CPU (goal: at least 5,000/s)"
    )
    ok = speedup >= 6 and teacher["per_s_wall"] >= 5000 and low["failed"] == high["failed"] == 0
    print("goals:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
