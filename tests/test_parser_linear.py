"""The tool-call parser stays linear in its input on hostile text.

Each example repeats a random unit of markers, fences, brackets and whitespace runs up to 100 KB-1 MB
and times one parse against json.loads of a JSON document of the same size. The bound is generous
(machines differ, CI shares cores) but far below what a quadratic parser takes at these sizes
(the parser this replaced took 52 s on a fence followed by 4,000 spaces)."""

from __future__ import annotations

import json
import time
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from Tools.schema.toolcalls import parse_message

# every marker and delimiter the parser looks for, and the prefixes of each call form
PIECES = [
    "```",
    "```json",
    "```json\n",
    " ",
    "\t",
    "\n",
    "x",
    ",",
    ":",
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    "<tool_call>",
    "</tool_call>",
    "[TOOL_CALLS]",
    "[TOOL_CALLS]x",
    "[TOOL_CALLS] [",
    "[ARGS]",
    "[CALL_ID]",
    "tool_call: ",
    "tool_call: x\narguments: ",
    "\narguments: ",
    "Result: ",
    '{"name": "x", "arguments": ',
    '{"name": "x", "parameters": {',
    '"name"',
    '{"a": "',
    "<|python_tag|>",
    "<|eot_id|>",
    "; ",
    "<|start|>assistant",
    "<|channel|>commentary to=functions.x ",
    "<|constrain|>json",
    "<|message|>",
    "<|call|>",
    "<|end|>",
    "to=functions.",
    "Sure, here it is: ",
]
SLOW_FACTOR, SLACK_S = 300, 0.1

whitespace_runs = st.sampled_from([" ", "\n", "\t", " \n"]).flatmap(lambda c: st.integers(1, 5000).map(lambda n: c * n))
pieces = st.sampled_from(PIECES) | whitespace_runs
units = st.lists(pieces, min_size=1, max_size=6).map("".join)


@lru_cache(maxsize=None)
def _json_seconds(size: int) -> float:
    """Best of three json.loads of a list of small call objects about size characters long."""
    item = json.dumps({"name": "vaultManager_createFolder", "arguments": {"path": "Projects/A", "n": 1}})
    doc = "[" + ",".join([item] * max(1, size // (len(item) + 1))) + "]"
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        json.loads(doc)
        best = min(best, time.perf_counter() - start)
    return best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    prefix=st.lists(pieces, max_size=3).map("".join),
    unit=units,
    suffix=st.lists(pieces, max_size=3).map("".join),
    size_kb=st.sampled_from([100, 300, 1000]),
)
def test_parse_time_is_linear_on_pathological_input(prefix, unit, suffix, size_kb):
    text = prefix + unit * max(1, size_kb * 1000 // len(unit)) + suffix
    start = time.perf_counter()
    parse_message({"role": "assistant", "content": text})
    took = time.perf_counter() - start
    bound = SLOW_FACTOR * _json_seconds(len(text) // 1000 * 1000) + SLACK_S
    assert took < bound, f"{took:.3f}s on {len(text):,} chars of {unit[:60]!r} (bound {bound:.3f}s)"


def test_the_reported_inputs_are_fast():
    for text in (
        "```" + " " * 4000 + "x",
        "```json" + " " * 4000 + "```x",
        "[TOOL_CALLS]x" * 150_000,
        "tool_call: x\narguments: \n" * 80_000,
        "<tool_call>x" * 150_000,
    ):
        start = time.perf_counter()
        parsed = parse_message({"role": "assistant", "content": text})
        took = time.perf_counter() - start
        assert took < SLOW_FACTOR * _json_seconds(len(text) // 1000 * 1000) + SLACK_S, (text[:30], took)
        assert parsed.findings or not parsed.calls  # hostile text is reported, never taken for a call
