"""Validate tool-calling datasets against the data contract.

    python Tools/validate_syngen.py FILE [FILE|DIR|GLOB ...] [--format text|json] [--strict] [--output FILE]

Exit codes: 0 every judged record passes, 1 findings, 2 unreadable input or bad usage.
The JSON report's shape is documented in docs/validate.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import (EXIT_FINDINGS, EXIT_OK, ArgumentParser, UsageError, die, expand_inputs, format_table,
                              printable)
from Tools.schema.issues import CODES, Finding
from Tools.schema.records import iter_jsonl, label_of, write_text_atomic
from Tools.schema.registry import ToolRegistry, load_registry
from Tools.schema.validate import record_passes, validate_record

REPORT_VERSION = 1
_LABEL_KEYS = {True: "true", False: "false", None: "unlabeled"}


@dataclass
class FileReport:
    path: str
    records: int = 0
    judged: int = 0
    passed: int = 0
    failed: int = 0
    labels: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)  # findings in positive and unlabeled records
    negative_codes: Counter = field(default_factory=Counter)
    negatives_judged: int = 0
    negatives_passing_every_check: int = 0
    negatives_structural_failures: int = 0
    findings: list = field(default_factory=list)
    findings_omitted: int = 0

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "records": self.records,
            "judged": self.judged,
            "passed": self.passed,
            "failed": self.failed,
            "labels": {k: self.labels.get(k, 0) for k in ("true", "false", "unlabeled")},
            "codes": dict(self.codes.most_common()),
            "negatives": {
                "judged": self.negatives_judged,
                "passing_every_check": self.negatives_passing_every_check,
                "structural_failures": self.negatives_structural_failures,
                "codes": dict(self.negative_codes.most_common()),
            },
            "findings": self.findings,
            "findings_omitted": self.findings_omitted,
        }


def validate_file(path: Path, registry: ToolRegistry, *, strict: bool = False, labels: str = "all",
                  max_issues: int | None = 50) -> FileReport:
    """Judge every record of one JSONL file. Raises OSError only if the file cannot be opened."""
    report = FileReport(str(path))
    kept = 0
    for line in iter_jsonl(path):
        report.records += 1
        record = line.record
        label = label_of(record) if line.error is None else None
        if labels != "all" and label is not (labels == "true"):
            continue
        findings = [line.error] if line.error else validate_record(record, registry)
        report.judged += 1
        report.labels[_LABEL_KEYS[label]] += 1
        passed = record_passes(findings, label, strict) if findings else True
        report.passed += passed
        report.failed += not passed
        if label is False:
            report.negatives_judged += 1
            report.negatives_structural_failures += not passed
            report.negatives_passing_every_check += not findings
        if not findings:
            continue
        (report.negative_codes if label is False else report.codes).update(f.code for f in findings)
        for finding in findings:
            if max_issues is None or kept < max_issues:
                kept += 1
                report.findings.append({"line": line.number, "label": label, **finding.to_dict()})
            else:
                report.findings_omitted += 1
    if not report.records:  # an empty file is not a clean dataset: it is a file that lost its data
        report.codes["E_EMPTY_FILE"] += 1
        report.findings.append({"line": None, "label": None, **Finding("E_EMPTY_FILE", "the file holds no record").to_dict()})
    return report


def build_report(reports: list[FileReport], registry: ToolRegistry, options: dict) -> dict:
    totals = FileReport("*")
    for r in reports:
        for name in ("records", "judged", "passed", "failed", "negatives_judged",
                     "negatives_passing_every_check", "negatives_structural_failures"):
            setattr(totals, name, getattr(totals, name) + getattr(r, name))
        totals.labels.update(r.labels)
        totals.codes.update(r.codes)
        totals.negative_codes.update(r.negative_codes)
    total = totals.to_dict()
    for key in ("path", "findings", "findings_omitted"):
        total.pop(key)
    return {
        "report": "validate_syngen",
        "version": REPORT_VERSION,
        "schema_hash": registry.schema_hash,
        "options": options,
        "files": [r.to_dict() for r in reports],
        "totals": total,
        "exit_code": EXIT_FINDINGS if totals.failed or any(not r.records for r in reports) else EXIT_OK,
    }


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
        rows.append((f["path"], f["judged"], f["passed"], f["failed"], lab["true"], lab["false"], lab["unlabeled"],
                     f["negatives"]["passing_every_check"]))
    out += ["", *format_table(rows)]
    totals = report["totals"]
    codes = set(totals["codes"]) | set(totals["negatives"]["codes"])
    if codes:
        code_rows = [("code", "severity", "positive/unlabeled", "label false", "meaning")]
        for code in sorted(codes, key=lambda c: -(totals["codes"].get(c, 0) + totals["negatives"]["codes"].get(c, 0))):
            code_rows.append((code, CODES[code].severity, totals["codes"].get(code, 0),
                              totals["negatives"]["codes"].get(code, 0), CODES[code].explanation))
        out += ["", *format_table(code_rows)]
    neg = totals["negatives"]
    if neg["judged"]:
        out.append(f"\nlabel:false records: {neg['judged']} judged, {neg['structural_failures']} structurally broken, "
                   f"{neg['passing_every_check']} pass every check (such negatives teach nothing)")
    out.append(f"Validated {totals['judged']} record(s) in {len(report['files'])} file(s): {totals['failed']} failed "
               f"(schema {report['schema_hash'][:12]}).")
    return "\n".join(out)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="validate_syngen.py",
        description="Validate tool-calling datasets: structure, tool-call syntax in every format, tool names, "
                    "arguments against the JSON Schema, the context object, and ids against the system prompt. "
                    "label:false records are judged too and reported in their own section; they fail the run only "
                    "when structurally broken.",
        epilog="Exit codes: 0 every judged record passes, 1 findings, 2 unreadable input or bad usage. "
               "The JSON report's shape is in docs/validate.md.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="JSONL files, directories (searched for *.jsonl) or globs")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text for people, json for machines")
    parser.add_argument("--strict", action="store_true", help="warnings fail records too")
    parser.add_argument("--summary-only", action="store_true", help="print the tables, not each finding")
    parser.add_argument("--max-issues", type=_count, default=50, metavar="N", help="findings listed per file; all are counted (default 50)")
    parser.add_argument("--schemas", type=Path, metavar="PATH", help="tool schema file (default Tools/tool_schemas.json)")
    parser.add_argument("--labels", choices=("all", "true", "false"), default="all", help="judge all records, or only label true / false ones")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the report (in --format) to FILE instead of stdout: a temporary file renamed into "
                             "place when complete, so a killed run never leaves a partial report")
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
            reports.append(validate_file(path, registry, strict=args.strict, labels=args.labels, max_issues=args.max_issues))
        except OSError as exc:
            die(f"{path}: {exc.strerror or exc}")
    options = {"strict": args.strict, "labels": args.labels, "max_issues": args.max_issues}
    report = build_report(reports, registry, options)
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
