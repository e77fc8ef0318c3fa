"""The run report: JSON (metadata, summary, every case with its raw response) and Markdown."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from Tools.errors import UsageError
from Tools.schema.issues import CODES

from .scoring import STAGES

REPORT_VERSION = 1


def _toolkit_version() -> str:
    try:
        from importlib.metadata import version

        return version("claudesidian-toolkit")
    except Exception:  # not installed with pip install -e: the source tree is still the toolkit
        return "0.1.0+source"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _rate(passed: int, total: int) -> float | None:
    return round(passed / total, 4) if total else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 4)


def latency_summary(latencies: list[float]) -> dict:
    return {
        "p50": _percentile(latencies, 50),
        "p90": _percentile(latencies, 90),
        "p99": _percentile(latencies, 99),
        "max": max(latencies, default=None),
        "mean": round(sum(latencies) / len(latencies), 4) if latencies else None,
    }


def summarize(results: list[dict], repeats: int) -> dict:
    """Rates per stage, tool, tag and failure code; pass@1 and pass^k; latency percentiles."""
    by_case: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_case[r["id"]].append(r)
    attempts = len(results)
    passed = sum(r["passed"] for r in results)
    complete = [rs for rs in by_case.values() if len(rs) == repeats]
    stages = {}
    for stage in STAGES:
        applicable = [r["stages"][stage] for r in results if r["stages"].get(stage) is not None]
        stages[stage] = {
            "applicable": len(applicable),
            "passed": sum(applicable),
            "rate": _rate(sum(applicable), len(applicable)),
        }
    per_tool: dict[str, Counter] = defaultdict(Counter)
    per_tag: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        for tool in r["expected_tools"] or ["(no call expected)"]:
            per_tool[tool]["attempts"] += 1
            per_tool[tool]["passed"] += r["passed"]
        for tag in r["tags"] or ["(untagged)"]:
            per_tag[tag]["attempts"] += 1
            per_tag[tag]["passed"] += r["passed"]
    codes: dict[str, dict] = {}
    for r in results:
        for f in r["findings"]:
            entry = codes.setdefault(
                f["code"],
                {
                    "count": 0,
                    "severity": f["severity"],
                    "explanation": CODES[f["code"]].explanation,
                    "example": {"id": r["id"], "attempt": r["attempt"], "message": f["message"]},
                },
            )
            entry["count"] += 1
    latencies = [r["latency_s"] for r in results if r["error"] is None]
    score_ms = [r["score_ms"] for r in results]

    def table(counter_map):
        return {
            k: {"attempts": c["attempts"], "passed": c["passed"], "rate": _rate(c["passed"], c["attempts"])}
            for k, c in sorted(counter_map.items())
        }

    return {
        "cases": len(by_case),
        "attempts": attempts,
        "passed_attempts": passed,
        "pass_at_1": _rate(passed, attempts),
        f"pass_hat_{repeats}": _rate(sum(all(r["passed"] for r in rs) for rs in complete), len(complete)),
        "requests_failed": sum(r["error"] is not None for r in results),
        "retries": sum(r["retries"] for r in results),
        "stages": stages,
        "formats": dict(Counter(r["format"] or "none" for r in results if r["error"] is None).most_common()),
        "per_tool": table(per_tool),
        "per_tag": table(per_tag),
        "failure_codes": dict(sorted(codes.items(), key=lambda kv: -kv[1]["count"])),
        "latency_s": latency_summary(latencies),
        "score_ms_mean": round(sum(score_ms) / len(score_ms), 3) if score_ms else None,
        "slowest": [
            {"id": r["id"], "attempt": r["attempt"], "latency_s": r["latency_s"], "passed": r["passed"]}
            for r in sorted(results, key=lambda r: -r["latency_s"])[:5]
        ],
    }


def run_metadata(*, client, settings, outcome, started_at: float) -> dict:
    """What every report says about the run: model, backend, toolkit, settings, time."""
    return {
        "report_version": REPORT_VERSION,
        "model": client.model,
        "backend": client.backend,
        "endpoint": client.endpoint,
        "adapter": getattr(client, "adapter", None),
        "toolkit_version": _toolkit_version(),
        "toolkit_commit": _git_commit(),
        "settings": settings.to_dict(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
        "wall_s": round(outcome.wall_s, 3),
        "interrupted": outcome.interrupted,
    }


def build_report(*, client, prompt_set, registry, settings, outcome, started_at: float) -> dict:
    metadata = run_metadata(client=client, settings=settings, outcome=outcome, started_at=started_at) | {
        "prompt_set": {
            "name": prompt_set.name,
            "path": str(prompt_set.path),
            "sha256": prompt_set.sha256,
            "cases": len(prompt_set.cases),
        },
        "schema_hash": registry.schema_hash,
    }
    summary = summarize(outcome.results, settings.repeats) | {"not_run": len(outcome.not_run)}
    # not_run: the (case, attempt) jobs an interrupt left unasked or unfinished
    return {"metadata": metadata, "summary": summary, "cases": outcome.results, "not_run": outcome.not_run}


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return lines


def render_markdown(report: dict, top_codes: int = 10) -> str:
    meta, s = report["metadata"], report["summary"]
    k = meta["settings"]["repeats"]
    lines = [
        f"# Evaluation: {meta['model']}",
        "",
        f"Backend `{meta['backend']}` at `{meta['endpoint']}`; prompt set `{meta['prompt_set']['name']}` "
        f"({meta['prompt_set']['cases']} cases, sha256 `{meta['prompt_set']['sha256'][:12]}`); schema "
        f"`{meta['schema_hash'][:12]}`; toolkit {meta['toolkit_version']} "
        f"(`{(meta['toolkit_commit'] or 'unknown')[:10]}`); started {meta['started_at']}, {meta['wall_s']} s."
        + (
            f" **Interrupted: partial results, {s.get('not_run', 0)} attempts not run.**" if meta["interrupted"] else ""
        ),
        "",
        "## Summary",
        "",
    ]
    rows = [
        ["cases", s["cases"]],
        ["attempts", s["attempts"]],
        ["pass@1", _pct(s["pass_at_1"])],
        [f"pass^{k}", _pct(s.get(f"pass_hat_{k}"))],
        ["failed requests", s["requests_failed"]],
        ["retries", s["retries"]],
        ["latency p50 / p90 / max (s)", f"{s['latency_s']['p50']} / {s['latency_s']['p90']} / {s['latency_s']['max']}"],
        ["call formats", ", ".join(f"{f} {n}" for f, n in s["formats"].items()) or "-"],
    ]
    lines += _md_table(["metric", "value"], rows) + ["", "## Stages", ""]
    lines += _md_table(
        ["stage", "passed", "applicable", "rate"],
        [[st, v["passed"], v["applicable"], _pct(v["rate"])] for st, v in s["stages"].items() if v["applicable"]],
    )
    for title, key in (("Per tool", "per_tool"), ("Per tag", "per_tag")):
        lines += ["", f"## {title}", ""]
        lines += _md_table(
            [key.split("_")[1], "passed", "attempts", "rate"],
            [[name, v["passed"], v["attempts"], _pct(v["rate"])] for name, v in s[key].items()],
        )
    lines += ["", "## Top failure codes", ""]
    codes = list(s["failure_codes"].items())[:top_codes]
    if codes:
        lines += _md_table(
            ["code", "count", "meaning", "example"],
            [
                [f"`{c}`", v["count"], v["explanation"], f"{v['example']['id']}: {v['example']['message'][:120]}"]
                for c, v in codes
            ],
        )
    else:
        lines.append("None.")
    lines += ["", "## Slowest cases", ""]
    lines += _md_table(
        ["case", "attempt", "latency (s)", "passed"],
        [[x["id"], x["attempt"], x["latency_s"], "yes" if x["passed"] else "no"] for x in s["slowest"]],
    )
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def sigint_ignored():
    """Ctrl-C does nothing while the block runs (signals reach only the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def write_reports(report: dict, output: Path, markdown_path: Path | None, render) -> None:
    """The JSON report and, when asked, its Markdown (render(report)), each written whole or not at all."""
    from Tools.schema.records import write_json_atomic, write_text_atomic

    try:
        write_json_atomic(output, report)
        if markdown_path:
            write_text_atomic(markdown_path, render(report))
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc}") from None
