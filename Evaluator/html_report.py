"""python -m Evaluator.html_report INPUT [INPUT ...] -o report.html: one self-contained HTML page of charts.

INPUT is an evaluator report (``Evaluator.cli --output``, a BFCL run too), a closed-loop report
(``Tools/closed_loop.py``'s ``report.json``: its models, its per-model evaluator reports and its
training logs) or a training run log (``logs/training_*.jsonl``). Two or more evaluator reports
are compared side by side (before / after). Charts: pass rates, BFCL accuracy per category, per-tool
and per-code heat maps, latency percentiles, training loss curves. plotly draws them; its
JavaScript is inlined, so the page opens offline.
"""

from __future__ import annotations

import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die

CLOSED_LOOP_METRICS = [
    ("parseable tool call", "parse_rate"),
    ("schema-valid call", "valid_rate"),
    ("expected tool called", "expected_tool_rate"),
    ("schema-valid call to the expected tool", "valid_expected_tool_rate"),
    ("argument accuracy", "argument_accuracy"),
    ("evaluator pass@1", "pass_rate"),
    ("multi-turn episodes passed", "episode_rate"),
]
LOSS_KEYS = ("loss", "eval_loss")


@dataclass
class Inputs:
    reports: list[tuple[str, dict]] = field(default_factory=list)  # (label, evaluator report)
    loops: list[tuple[str, dict]] = field(default_factory=list)  # (label, closed-loop report)
    runlogs: list[Path] = field(default_factory=list)
    episodes: list[tuple[str, dict]] = field(default_factory=list)  # (label, episode report of Evaluator.episodes)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None


def _is_report(data) -> bool:
    return (
        isinstance(data, dict)
        and {"metadata", "summary", "cases"} <= data.keys()
        and isinstance(data["metadata"], dict)
        and isinstance(data["summary"], dict)
    )


def _is_episode_report(data) -> bool:
    return (
        isinstance(data, dict)
        and data.get("kind") == "episodes"
        and isinstance(data.get("summary"), dict)
        and isinstance(data["summary"].get("per_episode"), list)
    )


def load_inputs(paths: list[Path]) -> Inputs:
    """Sort each file into its kind; a UsageError for a file of none."""
    found = Inputs()
    for path in paths:
        if path.suffix == ".jsonl":
            if not path.is_file():
                raise UsageError(f"{path}: no such run log")
            found.runlogs.append(path)
            continue
        data = _read_json(path)
        if _is_report(data):
            found.reports.append((path.stem, data))
        elif _is_episode_report(data):
            found.episodes.append((path.stem, data))
        elif isinstance(data, dict) and isinstance(data.get("models"), dict) and "stages" in data:
            found.loops.append((path.parent.name, data))
            # the loop's own evaluator reports (in the order written) and training logs lie beside it
            for report in sorted((path.parent / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime):
                if _is_report(loaded := _read_json(report)):
                    found.reports.append((report.stem, loaded))
            found.runlogs += sorted(
                p for p in path.parent.glob("*_runs/*/logs/training_*.jsonl") if p.name != "training_latest.jsonl"
            )
        else:
            raise UsageError(
                f"{path}: neither an evaluator or episode report, a closed-loop report.json nor a run log (.jsonl)"
            )
    if not (found.reports or found.loops or found.runlogs or found.episodes):
        raise UsageError("nothing to draw: name at least one report or run log")
    return found


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def loss_curves(path: Path) -> dict[str, tuple[list, list]]:
    """metric -> (steps, values) of one JSONL run log; unreadable lines are skipped."""
    from Tools.schema.records import iter_jsonl

    curves: dict[str, tuple[list, list]] = {}
    for line in iter_jsonl(path):
        record = line.record if line.error is None else None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            continue
        for key in LOSS_KEYS:
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                steps, values = curves.setdefault(key, ([], []))
                steps.append(record["step"])
                values.append(value)
    return curves


def build_figures(inputs: Inputs) -> list[tuple[str, object]]:
    """(title, plotly figure) for every chart the inputs support, in reading order."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise UsageError('the HTML report needs plotly: pip install -e ".[report]"') from None

    figures = []
    labels = _unique([label for label, _ in inputs.reports])
    reports = [r for _, r in inputs.reports]
    summaries = [r["summary"] for r in reports]

    def bar_layout(fig, title, percent=True):
        fig.update_layout(
            title=title,
            barmode="group",
            height=420,
            margin=dict(t=60, b=120),
            yaxis=dict(tickformat=".0%", range=[0, 1.05]) if percent else {},
        )
        return fig

    for label, loop in inputs.loops:
        models = list(loop["models"])
        fig = go.Figure(
            [
                go.Bar(
                    name=model,
                    x=[t for t, _ in CLOSED_LOOP_METRICS],
                    y=[loop["models"][model].get(key) for _, key in CLOSED_LOOP_METRICS],
                    texttemplate="%{y:.0%}",
                )
                for model in models
            ]
        )
        figures.append((f"Closed loop ({label}): before and after training", bar_layout(fig, "Held-out tool cases")))
    if reports:
        metrics = [("pass@1", "pass_at_1")] + (
            [("BFCL accuracy (mean of categories)", "accuracy")] if any("accuracy" in s for s in summaries) else []
        )
        fig = go.Figure(
            [
                go.Bar(name=title, x=labels, y=[s.get(key) for s in summaries], texttemplate="%{y:.1%}")
                for title, key in metrics
            ]
        )
        figures.append(("Pass rates", bar_layout(fig, "Pass rate per run")))
    categories = list(dict.fromkeys(c for s in summaries for c in s.get("per_category", {})))
    if categories:
        fig = go.Figure(
            [
                go.Bar(
                    name=label,
                    x=categories,
                    texttemplate="%{y:.0%}",
                    y=[s.get("per_category", {}).get(c, {}).get("rate") for c in categories],
                )
                for label, s in zip(labels, summaries)
            ]
        )
        figures.append(("BFCL accuracy per category", bar_layout(fig, "BFCL accuracy per category")))
    tools = sorted({t for s in summaries for t in s.get("per_tool", {})})
    if tools:
        z = [[s.get("per_tool", {}).get(t, {}).get("rate") for s in summaries] for t in tools]
        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=labels,
                y=tools,
                zmin=0,
                zmax=1,
                colorscale="RdYlGn",
                texttemplate="%{z:.0%}",
                colorbar=dict(tickformat=".0%"),
            )
        )
        fig.update_layout(
            title="Pass rate per expected tool", height=max(360, 22 * len(tools) + 140), margin=dict(l=260)
        )
        figures.append(("Per-tool pass rate", fig))
    codes = sorted({c for s in summaries for c in s.get("failure_codes", {})})
    if codes:
        z = [[s.get("failure_codes", {}).get(c, {}).get("count", 0) for s in summaries] for c in codes]
        fig = go.Figure(go.Heatmap(z=z, x=labels, y=codes, colorscale="Reds", texttemplate="%{z}"))
        fig.update_layout(title="Failures per code (count)", height=max(360, 22 * len(codes) + 140), margin=dict(l=300))
        figures.append(("Per-code failures", fig))
    if reports:
        quantiles = ["p50", "p90", "p99", "max"]
        fig = go.Figure(
            [
                go.Bar(name=label, x=quantiles, y=[s.get("latency_s", {}).get(q) for q in quantiles])
                for label, s in zip(labels, summaries)
            ]
        )
        figures.append(("Latency percentiles", bar_layout(fig, "Latency per request (s)", percent=False)))
    episode_labels = _unique([label for label, _ in inputs.episodes])
    episode_ids = list(dict.fromkeys(e.get("id") for _, r in inputs.episodes for e in r["summary"]["per_episode"]))
    if episode_ids:

        def rate(summary, episode_id):
            row = next((e for e in summary["per_episode"] if e.get("id") == episode_id), None)
            return row["passed"] / row["runs"] if row and row.get("runs") else None

        fig = go.Figure(
            [
                go.Bar(
                    name=label, x=episode_ids, y=[rate(r["summary"], i) for i in episode_ids], texttemplate="%{y:.0%}"
                )
                for label, (_, r) in zip(episode_labels, inputs.episodes)
            ]
        )
        figures.append(("Episodes: pass rate per episode", bar_layout(fig, "Multi-turn episodes passed (all runs)")))
    traces = []
    for path in inputs.runlogs:
        run = "/".join(p.name for p in path.parents[2:0:-1] if p.name) or path.stem  # e.g. sft_runs/20250101_120000
        for key, (steps, values) in loss_curves(path).items():
            traces.append(go.Scatter(x=steps, y=values, mode="lines+markers", name=f"{run} {key}"))
    if traces:
        fig = go.Figure(traces)
        fig.update_layout(title="Training loss", xaxis_title="step", yaxis_title="loss", height=420)
        figures.append(("Training loss", fig))
    return figures


def _header(inputs: Inputs) -> str:
    rows = []
    for label, r in zip(_unique([label for label, _ in inputs.reports]), [r for _, r in inputs.reports]):
        meta, s = r["metadata"], r["summary"]
        rate = s.get("accuracy", s.get("pass_at_1"))
        rows.append(
            [
                label,
                meta.get("model"),
                meta.get("backend"),
                (meta.get("prompt_set") or {}).get("name"),
                s.get("cases"),
                "-" if rate is None else f"{rate:.1%}",
                meta.get("started_at"),
            ]
        )
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("run", "model", "backend", "prompt set", "cases", "pass rate", "started"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(inputs: Inputs, title: str = "Evaluation report") -> tuple[str, int]:
    """(the page, the number of charts)."""
    import plotly.offline

    figures = build_figures(inputs)
    charts = "\n".join(
        f'<section class="chart"><h2>{html.escape(name)}</h2>'
        + fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        + "</section>"
        for name, fig in figures
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1>
{_header(inputs)}
{charts}
</body></html>
"""
    return page, len(figures)


def write_html(
    path: Path,
    reports: list[tuple[str, dict]] = (),
    *,
    loops=(),
    runlogs=(),
    episodes=(),
    title: str = "Evaluation report",
) -> int:
    """Write the page (temp file + rename); returns the number of charts."""
    from Tools.schema.records import write_text_atomic

    page, count = render_html(Inputs(list(reports), list(loops), list(runlogs), list(episodes)), title)
    try:
        write_text_atomic(path, page)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return count


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m Evaluator.html_report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        help="evaluator or episode reports (two or more: compared), a closed-loop report.json, run logs (.jsonl)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    parser.add_argument("--title", default="Evaluation report")
    args = parser.parse_args(argv)
    try:
        inputs = load_inputs(args.inputs)
        count = write_html(
            args.output,
            inputs.reports,
            loops=inputs.loops,
            runlogs=inputs.runlogs,
            episodes=inputs.episodes,
            title=args.title,
        )
    except UsageError as exc:
        die(str(exc))
    except (TypeError, AttributeError, ValueError) as exc:  # a report edited by hand, or of another version
        die(f"a report holds a field of an unexpected shape ({exc.__class__.__name__}: {exc})")
    print(f"{args.output}: {count} charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
