"""python -m Evaluator.benchmark: the runner's concurrency and the evaluator's own cost per case,
measured side by side against a loopback OpenAI-compatible double that answers after 100 ms."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from Tools.cli_common import ArgumentParser


def _answer(body: dict) -> dict:
    question = body["messages"][-1]["content"]
    context = {
        "sessionId": "session_1735689600000_k3v9x2m7q",
        "workspaceId": "ws_1735689600000_garden001",
        "sessionDescription": "Benchmark",
        "sessionMemory": f"The user asked: {question[:60]}",
        "toolContext": "benchmark",
        "primaryGoal": "answer",
        "subgoal": "call",
    }
    call = {"name": "contentManager_readContent", "arguments": {"context": context, "filePath": "Garden/todo.md"}}
    return {"role": "assistant", "content": f"<tool_call>\n{json.dumps(call)}\n</tool_call>"}


def measure(cases: int = 200, concurrencies=(1, 8), delay: float = 0.1) -> dict:
    from Tools.schema.registry import load_registry

    from .backends import make_client
    from .prompt_sets import load_prompt_set
    from .protocol_doubles import OpenAIDouble
    from .reporting import build_report, render_markdown
    from .runner import RunSettings, run_prompt_set

    registry = load_registry()
    base = load_prompt_set("tool_prompts")
    pool = [dataclasses.replace(base.cases[i % len(base.cases)], id=f"case-{i}") for i in range(cases)]
    results = {}
    with OpenAIDouble(_answer, delay=delay) as double:
        client = make_client("vllm", "double-model", base_url=double.url, timeout=30)
        client.chat([{"role": "user", "content": "warm-up"}])
        for concurrency in concurrencies:
            settings = RunSettings(concurrency=concurrency, max_tokens=64, timeout=30)
            outcome = run_prompt_set(client, pool, registry, settings, progress=False)
            started = time.perf_counter()
            report = build_report(
                client=client,
                prompt_set=base,
                registry=registry,
                settings=settings,
                outcome=outcome,
                started_at=time.time(),
            )
            json.dumps(report)
            render_markdown(report)
            report_ms = (time.perf_counter() - started) * 1000
            score_ms = sum(r["score_ms"] for r in outcome.results)
            results[concurrency] = {
                "wall_s": round(outcome.wall_s, 2),
                "failed": report["summary"]["requests_failed"],
                "own_ms_per_case": round((score_ms + report_ms) / cases, 3),
            }
    low, high = concurrencies[0], concurrencies[-1]
    return {
        "cases": cases,
        "delay_s": delay,
        "runs": results,
        "speedup": round(results[low]["wall_s"] / results[high]["wall_s"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m Evaluator.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.1, help="the double's answer time in seconds")
    args = parser.parse_args(argv)
    result = measure(args.cases, (1, args.concurrency), args.delay)
    for concurrency, run in result["runs"].items():
        print(
            f"concurrency {concurrency}: {run['wall_s']} s for {result['cases']} cases, {run['failed']} failed, "
            f"evaluator's own time {run['own_ms_per_case']} ms/case"
        )
    print(f"speedup at concurrency {args.concurrency} over 1: {result['speedup']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
