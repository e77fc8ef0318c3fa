"""Make KTO-ready datasets: strict True/False alternation, with nothing dropped silently.

    python Tools/interleave_dataset.py POSITIVES.jsonl NEGATIVES.jsonl -o OUT.jsonl
    python Tools/interleave_dataset.py --input MIXED.jsonl --output OUT.jsonl [--balance none|truncate|oversample]
    python Tools/interleave_dataset.py --check FILE

The logic is Tools/schema/interleave.py; this file parses flags and prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import EXIT_FINDINGS, EXIT_OK, ArgumentParser, UsageError, die
from Tools.schema.interleave import (
    BALANCE_MODES,
    KtoCheck,
    check_kto_ready,
    interleave,
    leftover_path,
    write_interleaved,
)
from Tools.schema.records import iter_jsonl, label_of


def _load(path: Path) -> list[dict]:
    records, bad = [], []
    for line in iter_jsonl(path):
        if line.error or not isinstance(line.record, dict):
            bad.append(line.number)
        else:
            records.append(line.record)
    if bad:
        raise UsageError(
            f"{path}: {len(bad)} unreadable line(s) (first at line {bad[0]}); "
            f"nothing was written. Run Tools/validate_syngen.py on it to see why"
        )
    return records


def _split(records: list[dict], path: Path, expected: bool | None = None):
    positives, negatives, unlabeled = [], [], []
    for record in records:
        label = label_of(record)
        if expected is not None and label is not None and label is not expected:
            raise UsageError(
                f"{path} holds a record labelled {str(label).lower()}, but it was given as the "
                f"{'positives' if expected else 'negatives'} file"
            )
        label = expected if expected is not None else label
        (unlabeled if label is None else positives if label else negatives).append(record)
    return positives, negatives, unlabeled


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="interleave_dataset.py",
        description="Interleave KTO data so labels strictly alternate True/False, or check that a file does. "
        "Surplus and unlabeled records go to OUT.leftover.jsonl unless --balance says otherwise; "
        "every count is printed.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="POSITIVES.jsonl NEGATIVES.jsonl")
    parser.add_argument("--input", "-i", type=Path, help="one file with both labels")
    parser.add_argument("--output", "-o", type=Path, help="the interleaved file to write")
    parser.add_argument(
        "--balance",
        choices=BALANCE_MODES,
        default="none",
        help="none: keep the surplus aside in OUT.leftover.jsonl; truncate: drop it (counted); "
        "oversample: repeat the smaller class",
    )
    parser.add_argument("--shuffle", action="store_true", help="shuffle each class before pairing")
    parser.add_argument("--seed", type=int, default=42, help="seed for --shuffle and --balance oversample")
    parser.add_argument(
        "--check", type=Path, metavar="FILE", help="only report whether FILE is KTO-ready (exit 0 yes, 1 no)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _print_check(report: KtoCheck, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict()))
        return
    verdict = "KTO-ready" if report.ready else "NOT KTO-ready"
    print(
        f"{report.path}: {verdict}: {report.records} records, {report.true} true / {report.false} false, "
        f"{report.unlabeled} unlabeled, longest same-label run {report.longest_run}"
    )
    for problem in report.problems:
        print(f"  - {problem}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.check:
            if args.files or args.input or args.output:
                raise UsageError("--check takes one file and nothing else")
            if not args.check.is_file():
                raise UsageError(f"{args.check}: no such file")
            report = check_kto_ready(args.check)
            _print_check(report, args.json)
            return EXIT_OK if report.ready else EXIT_FINDINGS
        if args.output is None:
            raise UsageError("--output is required (or use --check FILE)")
        if args.input:
            if args.files:
                raise UsageError("give either --input MIXED.jsonl or POSITIVES NEGATIVES, not both")
            sources = [args.input]
        elif len(args.files) == 2:
            sources = [Path(f) for f in args.files]
        else:
            raise UsageError("give POSITIVES.jsonl NEGATIVES.jsonl, or --input MIXED.jsonl")
        for source in sources:
            if not source.is_file():
                raise UsageError(f"{source}: no such file")
            if source.resolve() == args.output.resolve():
                raise UsageError(f"{args.output} is also an input; write to another file")
        if args.input:
            positives, negatives, unlabeled = _split(_load(args.input), args.input)
        else:
            positives, _, unlabeled = _split(_load(sources[0]), sources[0], True)
            _, negatives, more = _split(_load(sources[1]), sources[1], False)
            unlabeled += more
        result = interleave(positives, negatives, args.balance, args.shuffle, args.seed, unlabeled)
        out = write_interleaved(result, args.output)
    except (UsageError, ValueError) as exc:
        die(str(exc))
    written, side = out["records"], leftover_path(args.output)
    summary = {
        "in": {"true": result.positives_in, "false": result.negatives_in, "unlabeled": result.unlabeled_in},
        "out": {"records": written, "true": out["true"], "false": out["false"]},
        "leftover": {
            "records": len(result.leftover),
            "file": out["leftover_file"],
            "surplus": result.surplus if args.balance == "none" else 0,
            "unlabeled": result.unlabeled_in,
        },
        "dropped": result.dropped,
        "oversampled": result.oversampled,
        "surplus_label": result.surplus_label,
        "verified_kto_ready": out["verified"],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"in: {result.positives_in} true, {result.negatives_in} false, {result.unlabeled_in} unlabeled")
        print(
            f"out: {written} records ({out['true']} true / {out['false']} false), strictly alternating: {out['verified']}"
        )
        if result.surplus:
            label = str(result.surplus_label).lower()
            action = {"none": f"kept aside in {side}", "truncate": "dropped (--balance truncate)"}[args.balance]
            print(f"surplus: {result.surplus} {label} record(s) {action}")
        if result.oversampled:
            print(f"oversampled: {result.oversampled} repeated record(s) of the smaller class")
        if result.unlabeled_in:
            print(f"unlabeled: {result.unlabeled_in} record(s) kept aside in {side}")
    if not out["verified"]:
        die(f"{args.output} failed verification after writing: {'; '.join(out['problems'])}", EXIT_FINDINGS)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
