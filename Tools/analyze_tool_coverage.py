"""Which tools a dataset teaches, in which formats, with how many positives and negatives.

    python Tools/analyze_tool_coverage.py FILE [FILE|DIR|GLOB ...] [--json]

Works on every tool-call format the data contract parses (Tools/schema/toolcalls.py: OpenAI, Ollama,
Hermes, Mistral, text, harmony, Llama JSON and <|python_tag|>, bare JSON).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import EXIT_OK, ArgumentParser, UsageError, die, expand_inputs
from Tools.schema.records import iter_jsonl, label_of, messages
from Tools.schema.registry import ToolRegistry, load_registry
from Tools.schema.toolcalls import parse_message


@dataclass
class ToolStats:
    examples: int = 0  # records that call the tool at least once
    calls: int = 0
    positives: int = 0
    negatives: int = 0
    unlabeled: int = 0
    formats: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "examples": self.examples,
            "calls": self.calls,
            "positives": self.positives,
            "negatives": self.negatives,
            "unlabeled": self.unlabeled,
            "formats": dict(self.formats),
        }


@dataclass
class Coverage:
    records: int = 0
    records_with_calls: int = 0
    unreadable: int = 0
    tools: dict = field(default_factory=lambda: defaultdict(ToolStats))

    def add_record(self, record: dict) -> None:
        self.records += 1
        label = label_of(record)
        seen: set[str] = set()
        for message in messages(record):
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            parsed = parse_message(message)
            for call in parsed.calls:
                if not call.name:
                    continue
                stats = self.tools[call.name]
                stats.calls += 1
                stats.formats[parsed.format] += 1
                if call.name not in seen:
                    seen.add(call.name)
                    stats.examples += 1
                    if label is True:
                        stats.positives += 1
                    elif label is False:
                        stats.negatives += 1
                    else:
                        stats.unlabeled += 1
        self.records_with_calls += bool(seen)

    def report(self, registry: ToolRegistry) -> dict:
        agents: dict[str, dict] = {}
        for agent, names in registry.agents().items():
            agents[agent] = {
                name: self.tools[name].to_dict() if name in self.tools else ToolStats().to_dict() for name in names
            }
        unknown = {name: stats.to_dict() for name, stats in sorted(self.tools.items()) if name not in registry}
        never = [t.name for t in registry.visible() if t.name not in self.tools]
        positive_never = [t.name for t in registry.visible() if self.tools.get(t.name, ToolStats()).positives == 0]
        return {
            "report": "tool_coverage",
            "schema_hash": registry.schema_hash,
            "records": self.records,
            "callable_tools": len(registry.visible()),
            "records_with_calls": self.records_with_calls,
            "unreadable_lines": self.unreadable,
            "agents": agents,
            "never_covered": never,
            "no_positive_example": positive_never,
            "unknown_tools": unknown,
            "formats": dict(sum((s.formats for s in self.tools.values()), Counter())),
        }


def analyze(paths: list[Path], registry: ToolRegistry) -> dict:
    coverage = Coverage()
    for path in paths:
        for line in iter_jsonl(path):
            if line.error or not isinstance(line.record, dict):
                coverage.unreadable += 1
            else:
                coverage.add_record(line.record)
    result = coverage.report(registry)
    result["files"] = [str(p) for p in paths]
    return result


def print_report(report: dict) -> None:
    """A rich table per agent, then unknown and uncovered tools."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)  # piped output: no wrapped tool names
    table = Table(title=f"Tool coverage ({report['records']} records, {report['records_with_calls']} with tool calls)")
    for column in ("agent", "tool", "examples", "calls", "true", "false", "unlabeled", "formats"):
        table.add_column(
            column, justify="right" if column in ("examples", "calls", "true", "false", "unlabeled") else "left"
        )
    for agent, tools in report["agents"].items():
        for i, (name, s) in enumerate(tools.items()):
            formats = ", ".join(f"{k} {v}" for k, v in sorted(s["formats"].items())) or "-"
            style = "dim" if not s["calls"] else None
            table.add_row(
                agent if i == 0 else "",
                name.split("_", 1)[-1],
                str(s["examples"]),
                str(s["calls"]),
                str(s["positives"]),
                str(s["negatives"]),
                str(s["unlabeled"]),
                formats,
                style=style,
                end_section=i == len(tools) - 1,
            )
    console.print(table)
    if report["unknown_tools"]:
        console.print("[bold]Unknown tools used[/] (not in Tools/tool_schemas.json):")
        for name, s in report["unknown_tools"].items():
            console.print(
                f"  {name}: {s['calls']} call(s), {s['positives']} true / {s['negatives']} false / {s['unlabeled']} unlabeled"
            )
    console.print(f"{report['unreadable_lines']} unreadable line(s)")
    console.print(
        f"Never covered ({len(report['never_covered'])} of {report['callable_tools']} callable tools): "
        + (", ".join(report["never_covered"]) or "none")
    )
    console.print(f"No positive example: {len(report['no_positive_example'])} tool(s)")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="analyze_tool_coverage.py",
        description="Per agent and tool: examples, positives and negatives, formats seen, "
        "tools never covered and unknown tools used.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="JSONL files, directories or globs")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--schemas", type=Path, metavar="PATH", help="tool schema file (default Tools/tool_schemas.json)"
    )
    args = parser.parse_args(argv)
    try:
        files = expand_inputs(args.paths)
        registry = load_registry(args.schemas)
        report = analyze(files, registry)
    except UsageError as exc:
        die(str(exc))
    except (OSError, ValueError, KeyError) as exc:
        die(str(exc))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
