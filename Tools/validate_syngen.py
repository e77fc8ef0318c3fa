"""Validate tool-calling datasets against the data contract.

    python Tools/validate_syngen.py FILE [FILE|DIR|GLOB ...] [--format text|json] [--strict] [--output FILE]

Exit codes: 0 every judged record passes, 1 findings, 2 unreadable input or bad usage.
The JSON report's shape is documented in docs/validate.md; the logic is Tools/schema/report.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser, UsageError, die, expand_inputs, format_table, printable
from Tools.schema.issues import CODES
from Tools.schema.records import write_text_atomic
from Tools.schema.registry import load_registry
from Tools.schema.report import build_report, validate_file, write_split


def format_text(report: dict, summary_only: bool) -> str:
    out = []
    for f in report["files"]:
        if not summary_only:
            for item in f["findings"]:
                where = f"{f['path']}:{item['line']}" if item["line"] is not None else f["path"]
                if item["message_index"] is not None:
                    where += f" msg {item['message_index']}"
                label = {True: "", False: " (label false)", None: ""}[item["label"]]
                tool = f" {item['tool']}:" if item["tool"] else ""
                out.append(f"{where}{label} {item['code']}{tool} {item['message']}")
            if f["findings_omitted"]:
                out.append(f"{f['path']}: {f['findings_omitted']} more findings not shown (raise --max-issues)")
    rows = [("file", "records", "passed", "failed", "true", "false", "unlabeled", "neg. passing all checks")]
    for f in report["files"]:
        lab = f["labels"]
        rows.append(
            (
                f["path"],
                f["judged"],
                f["passed"],
                f["failed"],
                lab["true"],
                lab["false"],
                lab["unlabeled"],
                f["negatives"]["passing_every_check"],
            )
        )
    out += ["", *format_table(rows)]
    totals = report["totals"]
    codes = set(totals["codes"]) | set(totals["negatives"]["codes"])
    if codes:
        code_rows = [("code", "severity", "positive/unlabeled", "label false", "meaning")]
        for code in sorted(codes, key=lambda c: -(totals["codes"].get(c, 0) + totals["negatives"]["codes"].get(c, 0))):
            code_rows.append(
                (
                    code,
                    CODES[code].severity,
                    totals["codes"].get(code, 0),
                    totals["negatives"]["codes"].get(code, 0),
                    CODES[code].explanation,
                )
            )
        out += ["", *format_table(code_rows)]
    neg = totals["negatives"]
    if neg["judged"]:
        out.append(
            f"\nlabel:false records: {neg['judged']} judged, {neg['structural_failures']} structurally broken, "
            f"{neg['passing_every_check']} pass every check (such negatives teach nothing)"
        )
    out.append(
        f"Validated {totals['judged']} record(s) in {len(report['files'])} file(s): {totals['failed']} failed "
        f"(schema {report['schema_hash'][:12]})."
    )
    return "\n".join(out)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="validate_syngen.py",
        description="Validate tool-calling datasets: structure, tool-call syntax in every format, tool names, "
        "arguments against the JSON Schema, the context object, and ids against the system prompt. "
        "label:false records are judged too and reported in their own section; they fail the run only "
        "when structurally broken.",
        epilog="Exit codes: 0 every judged record passes, 1 findings, 2 unreadable input or bad usage. "
        "The JSON report's shape is in docs/validate.md.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="JSONL files, directories (searched for *.jsonl) or globs"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text for people, json for machines")
    parser.add_argument("--strict", action="store_true", help="warnings fail records too")
    parser.add_argument("--summary-only", action="store_true", help="print the tables, not each finding")
    parser.add_argument(
        "--max-issues",
        type=_count,
        default=50,
        metavar="N",
        help="findings listed per file; all are counted (default 50)",
    )
    parser.add_argument(
        "--schemas", type=Path, metavar="PATH", help="tool schema file (default Tools/tool_schemas.json)"
    )
    parser.add_argument(
        "--labels",
        choices=("all", "true", "false"),
        default="all",
        help="judge all records, or only label true / false ones",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write the report (in --format) to FILE instead of stdout: a temporary file renamed into "
        "place when complete, so a killed run never leaves a partial report",
    )
    parser.add_argument(
        "--write-valid", type=Path, metavar="OUT", help="also write the judged records that pass to OUT (JSONL)"
    )
    parser.add_argument(
        "--write-invalid", type=Path, metavar="OUT", help="also write the judged records that fail to OUT (JSONL)"
    )
    return parser


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    gc.disable()  # a short-lived batch job: reference counting frees everything; the cycle collector only costs time
    # argparse rather than typer here: the validator runs in pre-commit hooks and CI over every file,
    # and typer's import (with pydantic) would double the command's start-up time.
    args = build_parser().parse_args(argv)
    try:
        files = expand_inputs(args.paths)
        registry = load_registry(args.schemas)
    except UsageError as exc:
        die(str(exc))
    except (OSError, ValueError, KeyError) as exc:
        die(f"cannot load tool schemas {args.schemas}: {exc}")
    reports = []
    for path in files:
        try:
            reports.append(
                validate_file(path, registry, strict=args.strict, labels=args.labels, max_issues=args.max_issues)
            )
        except OSError as exc:
            die(f"{path}: {exc.strerror or exc}")
    options = {"strict": args.strict, "labels": args.labels, "max_issues": args.max_issues}
    report = build_report(reports, registry, options)
    if args.write_valid or args.write_invalid:
        try:
            counts = write_split(files, registry, args.write_valid, args.write_invalid, args.strict, args.labels)
        except OSError as exc:
            die(f"cannot write {exc.filename}: {exc.strerror or exc}")
        for out, count, kind in ((args.write_valid, counts[0], "passing"), (args.write_invalid, counts[1], "failing")):
            if out:
                print(f"wrote {count} {kind} record(s) to {out}", file=sys.stderr)
    text = json.dumps(report, ensure_ascii=False) if args.format == "json" else format_text(report, args.summary_only)
    text = printable(text) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            write_text_atomic(args.output, text)
        except OSError as exc:
            die(f"cannot write {args.output}: {exc.strerror or exc}")
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
