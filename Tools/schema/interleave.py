"""KTO-ready order: strict True/False alternation (interleave, write_interleaved) and the check
that a file has it (check_kto_ready).

Why: TRL's KTO trainer estimates its KL term inside each batch and needs both labels in every
batch; with sequential sampling, strict alternation guarantees that for any batch size >= 2.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .records import iter_jsonl, label_of, write_jsonl_files_atomic

BALANCE_MODES = ("none", "truncate", "oversample")


@dataclass
class KtoCheck:
    """Is a file KTO-ready? Strict alternation, both labels, every record labelled and readable."""

    path: str
    records: int = 0
    true: int = 0
    false: int = 0
    unlabeled: int = 0
    unreadable: int = 0
    same_label_neighbours: int = 0
    longest_run: int = 0
    longest_run_label: bool | None = None
    longest_run_start_line: int | None = None
    first_label: bool | None = None

    @property
    def ready(self) -> bool:
        return (
            self.true > 0
            and self.false > 0
            and not self.unlabeled
            and not self.unreadable
            and self.same_label_neighbours == 0
        )

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.records:
            return ["the file holds no record"]
        if self.unreadable:
            found.append(f"{self.unreadable} unreadable line(s)")
        if self.unlabeled:
            found.append(f"{self.unlabeled} record(s) without a boolean label")
        if not (self.true and self.false):
            found.append("only one label is present: KTO needs both")
        if self.same_label_neighbours:
            found.append(
                f"{self.same_label_neighbours} same-label neighbour(s); longest run: "
                f"{self.longest_run} x {str(self.longest_run_label).lower()} from line {self.longest_run_start_line}"
            )
        return found

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "ready": self.ready,
            "problems": self.problems,
            "balance": round(self.true / self.false, 4) if self.false else None,
        }


def check_kto_ready(path: str | Path) -> KtoCheck:
    report = KtoCheck(str(path))
    previous, run, run_start = None, 0, None
    for line in iter_jsonl(path):
        report.records += 1
        if line.error or not isinstance(line.record, dict):
            report.unreadable += 1
            continue
        label = label_of(line.record)
        if label is None:
            report.unlabeled += 1
            continue
        if report.first_label is None:
            report.first_label = label
        report.true += label
        report.false += not label
        if label == previous:
            report.same_label_neighbours += 1
            run += 1
        else:
            previous, run, run_start = label, 1, line.number
        if run > report.longest_run:
            report.longest_run, report.longest_run_label, report.longest_run_start_line = run, label, run_start
    return report


@dataclass
class InterleaveResult:
    records: list = field(default_factory=list)
    leftover: list = field(default_factory=list)  # surplus and unlabeled records, kept in a side file
    positives_in: int = 0
    negatives_in: int = 0
    unlabeled_in: int = 0
    surplus: int = 0
    surplus_label: bool | None = None
    dropped: int = 0
    oversampled: int = 0


def interleave(
    positives: list[dict],
    negatives: list[dict],
    balance: str = "none",
    shuffle: bool = False,
    seed: int = 42,
    unlabeled: list[dict] | None = None,
) -> InterleaveResult:
    """Alternate True, False, True, ... The surplus of the larger class is kept aside (none),
    dropped and counted (truncate), or matched by repeating the smaller class (oversample)."""
    if balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}, not {balance!r}")
    if not positives or not negatives:
        raise ValueError(f"KTO needs both labels: got {len(positives)} true and {len(negatives)} false records")
    positives = [{**r, "label": True} for r in positives]
    negatives = [{**r, "label": False} for r in negatives]
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(positives)
        rng.shuffle(negatives)
    result = InterleaveResult(
        positives_in=len(positives),
        negatives_in=len(negatives),
        unlabeled_in=len(unlabeled or []),
        leftover=list(unlabeled or []),
    )
    larger, smaller = (positives, negatives) if len(positives) >= len(negatives) else (negatives, positives)
    surplus = larger[len(smaller) :]
    if balance == "oversample" and surplus:
        pool = smaller[:]
        rng.shuffle(pool)  # repeat the smaller class evenly, in a seeded order
        extra = [pool[i % len(pool)] for i in range(len(surplus))]
        result.oversampled = len(extra)
        smaller = smaller + extra
    elif surplus:
        result.surplus, result.surplus_label = len(surplus), surplus[0]["label"]
        larger = larger[: len(smaller)]
        if balance == "truncate":
            result.dropped = len(surplus)
        else:
            result.leftover = surplus + result.leftover
    pos, neg = (larger, smaller) if larger[0]["label"] else (smaller, larger)
    for p, n in zip(pos, neg):
        result.records.extend((p, n))
    return result


def write_interleaved(result: InterleaveResult, output: Path) -> dict:
    """Write an interleave() result: the records to output, the leftover to OUT.leftover.jsonl (or
    remove a leftover file an earlier run left there), both complete before either is renamed into
    place; then check the written file. Returns the counts and the check."""
    output = Path(output)
    side = leftover_path(output)
    written = write_jsonl_files_atomic({side: result.leftover or None, output: result.records})[output]
    verify = check_kto_ready(output)
    return {
        "records": written,
        "true": verify.true,
        "false": verify.false,
        "leftover": len(result.leftover),
        "leftover_file": str(side) if result.leftover else None,
        "verified": verify.ready and verify.true + verify.false == written,
        "problems": verify.problems,
    }


def leftover_path(output: Path) -> Path:
    return output.with_name(output.stem + ".leftover.jsonl")
