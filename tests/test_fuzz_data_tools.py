"""Fuzz the data tools with mutated lines of the reference datasets, run as users run them.

Each reference set contributes a sample of lines, most of them mutated (byte flips, truncation, deep
nesting, lone surrogates, NaN, huge numbers, wrong types, hostile tool-call text). The validator,
interleaver and coverage CLIs must never print a traceback or hang, exit 0, 1 or 2, write a report
that parses, and account for every input line. Seeded, so a failure reproduces."""

from __future__ import annotations

import json
import random

import pytest

from conftest import run_tool
from test_parser_linear import PIECES

LINES_PER_FILE, TIMEOUT_S = 120, 60


def _mutate_structure(record, rng: random.Random):
    """A wrong type somewhere a reader looks."""
    if not isinstance(record, dict):
        return {"conversations": record}
    choice = rng.randrange(7)
    conversations = record.get("conversations")
    if choice == 0 or not isinstance(conversations, list) or not conversations:
        record["conversations"] = rng.choice(["text", 7, {"role": "user"}, [None], []])
        return record
    message = rng.choice(conversations)
    if not isinstance(message, dict):
        return record
    if choice == 1:
        message["content"] = rng.choice([5, ["a"], {"x": 1}, None])
    elif choice == 2:
        message["tool_calls"] = rng.choice(
            [{}, "x", [None], [{"function": [1]}], [{"function": {"name": 5, "arguments": "{"}}]]
        )
    elif choice == 3:
        message["role"] = rng.choice([None, 3, "robot", ""])
    elif choice == 4:
        record["label"] = rng.choice(["true", 1, None, [True]])
    elif choice == 5:
        message["role"] = "assistant"
        message["content"] = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40)))
    else:  # arguments nested deeper than the schema engine goes, in a native call and in text
        depth = rng.choice([300, 500])
        arguments = {"context": {}, "operations": json.loads("[" * depth + "]" * depth)}
        message.update(
            role="assistant",
            content=f"<tool_call>{json.dumps({'name': 'contentManager_batchContent', 'arguments': arguments})}</tool_call>",
            tool_calls=[{"function": {"name": "contentManager_batchContent", "arguments": json.dumps(arguments)}}],
        )
    return record


def _mutate(line: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:  # byte flips
        data = bytearray(line)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        return bytes(data)
    if kind == 1:
        return line[: rng.randrange(len(line))]
    if kind == 2:
        depth = rng.choice([400, 520, 1020, 1100, 5000])  # below, between and above the decoders' limits
        return line.rstrip(b"}") + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == 3:
        return line.replace(b'"role": "', rng.choice([b'"role": "\\ud800', b'"role": "\\udfff']), 1).replace(
            b'"name": "', b'"name": "\\ud83d', 1
        )
    if kind == 4:
        return line.rstrip(b"}") + rng.choice([b', "x": NaN}', b', "x": Infinity}', b', "x": -Infinity}'])
    if kind == 5:
        return line.rstrip(b"}") + rng.choice([b', "x": 1e999}', b', "x": ' + b"9" * 5000 + b"}", b', "x": -1e-999}'])
    try:
        record = json.loads(line)
    except ValueError:
        return line
    return json.dumps(_mutate_structure(record, rng)).encode()


def _count_lines(data: bytes) -> int:
    """Lines the readers judge: non-blank ones (the readers split on \\n and skip blank lines)."""
    return sum(1 for line in data.split(b"\n") if line.strip())


def _no_crash(result, allowed=(0, 1, 2)):
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in allowed, (result.returncode, result.stderr[-500:])
    if result.returncode == 2:
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr


@pytest.fixture(scope="module", params=[14, 16])
def fuzzed(request, reference_dir, tmp_path_factory):
    rng = random.Random(request.param)
    out = tmp_path_factory.mktemp("fuzz")
    files = {}
    for source in sorted((reference_dir / "datasets").glob("*.jsonl")):
        with open(source, "rb") as handle:
            lines = [line.rstrip(b"\n") for _, line in zip(range(2000), handle) if line.strip()]
        picked = rng.sample(lines, min(LINES_PER_FILE, len(lines)))
        mutated = [_mutate(line, rng) if rng.random() < 0.75 else line for line in picked]
        path = out / source.name
        data = b"\n".join(mutated) + b"\n"
        path.write_bytes(data)
        files[path] = _count_lines(data)
    return files


def test_validator_accounts_for_every_line(fuzzed, tmp_path):
    report_path = tmp_path / "report.json"
    result = run_tool(
        "Tools/validate_syngen.py",
        *fuzzed,
        "--format",
        "json",
        "--max-issues",
        "100000",
        "--output",
        report_path,
        timeout=TIMEOUT_S,
    )
    _no_crash(result, (0, 1))
    report = json.loads(report_path.read_text())
    for path, file_report in zip(fuzzed, report["files"]):
        assert file_report["records"] == fuzzed[path] == file_report["judged"], path.name
        assert file_report["passed"] + file_report["failed"] == file_report["judged"]
        assert {f["line"] for f in file_report["findings"]} <= set(range(1, fuzzed[path] + 2))
    text = run_tool("Tools/validate_syngen.py", *fuzzed, timeout=TIMEOUT_S)  # the text report prints every finding
    _no_crash(text, (0, 1))


def test_coverage_accounts_for_every_line(fuzzed):
    result = run_tool("Tools/analyze_tool_coverage.py", *fuzzed, "--json", timeout=TIMEOUT_S)
    _no_crash(result, (0,))
    report = json.loads(result.stdout)
    assert report["records"] + report["unreadable_lines"] == sum(fuzzed.values())
    _no_crash(run_tool("Tools/analyze_tool_coverage.py", *fuzzed, timeout=TIMEOUT_S), (0,))


def _strict_json(line: str):
    return json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in the interleaved output"))


def _readable_only(fuzzed, out) -> dict:
    """Each fuzzed file without its unreadable lines, so that the interleaver writes output too."""
    from Tools.schema.records import iter_jsonl

    files = {}
    for path in fuzzed:
        keep = {line.number for line in iter_jsonl(path) if line.error is None and isinstance(line.record, dict)}
        lines = [line for number, line in enumerate(path.read_bytes().split(b"\n"), 1) if number in keep]
        files[out / path.name] = len(lines)
        (out / path.name).write_bytes(b"".join(line + b"\n" for line in lines))
    return files


def test_interleaver_accounts_for_every_line(fuzzed, tmp_path):
    (tmp_path / "readable").mkdir()
    for path, lines_in in {**fuzzed, **_readable_only(fuzzed, tmp_path / "readable")}.items():
        check = run_tool("Tools/interleave_dataset.py", "--check", path, "--json", timeout=TIMEOUT_S)
        _no_crash(check, (0, 1))
        assert json.loads(check.stdout)["records"] == lines_in
        out = tmp_path / f"{path.parent.name}.{path.stem}.out.jsonl"
        result = run_tool("Tools/interleave_dataset.py", "--input", path, "-o", out, "--json", timeout=TIMEOUT_S)
        _no_crash(result)
        if result.returncode == 2:
            assert not out.exists()  # unreadable input, or one label missing: nothing written
            assert path.parent.name != "readable" or (
                "KTO needs both labels" in result.stderr or "nested too deeply" in result.stderr
            ), result.stderr
            continue
        summary = json.loads(result.stdout)
        written = [_strict_json(line) for line in out.read_text().splitlines()]
        side = out.with_name(out.stem + ".leftover.jsonl")
        leftover = [_strict_json(line) for line in side.read_text().splitlines()] if side.exists() else []
        assert len(written) + len(leftover) == lines_in == sum(summary["in"].values())
