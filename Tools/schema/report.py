"""A file's validation report: every record of a JSONL file judged (validate_file), the reports of
several files in one JSON document (build_report; its shape is in docs/validate.md), and the
passing / failing records copied apart (write_split)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from Tools.errors import EXIT_FINDINGS, EXIT_OK

from .issues import Finding
from .records import iter_jsonl, label_of, write_jsonl_atomic
from .registry import ToolRegistry
from .validate import record_passes, validate_record

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


def validate_file(
    path: Path, registry: ToolRegistry, *, strict: bool = False, labels: str = "all", max_issues: int | None = 50
) -> FileReport:
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
        report.findings.append(
            {"line": None, "label": None, **Finding("E_EMPTY_FILE", "the file holds no record").to_dict()}
        )
    return report


def build_report(reports: list[FileReport], registry: ToolRegistry, options: dict) -> dict:
    totals = FileReport("*")
    for r in reports:
        for name in (
            "records",
            "judged",
            "passed",
            "failed",
            "negatives_judged",
            "negatives_passing_every_check",
            "negatives_structural_failures",
        ):
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


def write_split(
    files: list[Path],
    registry: ToolRegistry,
    valid_out: Path | None,
    invalid_out: Path | None,
    strict: bool = False,
    labels: str = "all",
) -> tuple[int, int]:
    """Copy the judged records that pass to valid_out and those that fail to invalid_out, in file
    order (each written whole: temp file + rename). Unreadable lines are in neither. Returns the counts."""
    valid, invalid = [], []
    for path in files:
        for line in iter_jsonl(path):
            if line.error or not isinstance(line.record, dict):
                continue
            label = label_of(line.record)
            if labels != "all" and label is not (labels == "true"):
                continue
            findings = validate_record(line.record, registry)
            (valid if record_passes(findings, label, strict) else invalid).append(line.record)
    for out, records in ((valid_out, valid), (invalid_out, invalid)):
        if out:
            write_jsonl_atomic(out, records)
    return len(valid), len(invalid)
