"""Every tool-call format real models emit, on calls of BFCL's shape.

BFCL's own data ships in the bfcl-eval package, but that package pins numpy 1.26.4 and pulls
sentence-transformers (torch), faiss and eight vendor SDKs, too heavy for a test dependency; the
cases below copy the shape of its categories instead: simple, multiple, parallel and
parallel-multiple calls, dotted names (``math.hypot``), nested, list, number, boolean and
Unicode arguments."""

from __future__ import annotations

import json

import pytest

from Tools.schema.toolcalls import FORMATS, ToolCall, parse_message, render_content, render_message

BFCL_CASES = {
    "simple": [("calculate_triangle_area", {"base": 10, "height": 5, "unit": "units"})],
    "simple_dotted": [("math.hypot", {"x": 4, "y": 5, "z": 0})],
    "simple_nested": [
        (
            "restaurant.search",
            {
                "location": {"city": "Paris", "zip": "75001"},
                "cuisine": ["thai", "lao"],
                "open_now": True,
                "max_price": 35.5,
            },
        )
    ],
    "simple_unicode": [("translate_text", {"text": "Grüße aus Köln — ¿qué tal? 你好", "target": "ja"})],
    "simple_no_args": [("get_current_time", {})],
    "parallel": [
        ("spotify.play", {"artist": "Taylor Swift", "duration": 20}),
        ("spotify.play", {"artist": "Maroon 5", "duration": 15}),
    ],
    "parallel_multiple": [
        ("get_weather", {"city": "Boston", "unit": "celsius"}),
        ("calculate_bmi", {"weight": 70, "height": 1.75}),
        ("math.factorial", {"number": 5}),
    ],
    "arguments_quoting_markers": [
        ("note.write", {"text": 'a <tool_call> [TOOL_CALLS] to=functions.x ; {"name": 1} ```'})
    ],
}
CONTENT_FORMATS = [f for f in FORMATS if f not in ("openai", "ollama")]
PROSE = "Let me check that for you."


def _calls(case):
    return [ToolCall(name, arguments) for name, arguments in case]


def _parsed(message: dict):
    parsed = parse_message(json.loads(json.dumps(message)))  # through JSON, as on disk
    assert not [f for f in parsed.findings if f.severity == "error"], parsed.findings
    return parsed


@pytest.mark.parametrize("case", BFCL_CASES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_bfcl_calls_parse_exactly_in_every_format(fmt, case):
    calls = _calls(BFCL_CASES[case])
    if fmt == "bare_json" or len(calls) == 1 or fmt not in ("openai", "ollama"):
        parsed = _parsed(render_message(calls, fmt))
        assert parsed.format == fmt
        assert [(c.name, c.arguments) for c in parsed.calls] == BFCL_CASES[case]


@pytest.mark.parametrize("case", BFCL_CASES)
@pytest.mark.parametrize(
    "variant",
    [
        "prose_then_json",
        "prose_then_fence",
        "fence_then_prose",
        "llama_eot",
        "python_tag_eom",
        "harmony_end",
        "harmony_without_start",
        "harmony_after_analysis",
    ],
)
def test_bfcl_calls_in_the_variants_models_write(variant, case):
    calls = _calls(BFCL_CASES[case])
    content, text = {
        "prose_then_json": (f"{PROSE}\n\n{render_content(calls, 'bare_json')}", PROSE),
        "prose_then_fence": (f"{PROSE}\n```json\n{render_content(calls, 'bare_json')}\n```", PROSE),
        "fence_then_prose": (f"```json\n{render_content(calls, 'bare_json')}\n```\n{PROSE}", PROSE),
        "llama_eot": (render_content(calls, "llama") + "<|eot_id|>", ""),
        "python_tag_eom": (render_content(calls, "python_tag") + "<|eom_id|>", ""),
        "harmony_end": (render_content(calls, "harmony").replace("<|call|>", "<|end|>"), ""),
        "harmony_without_start": (render_content(calls, "harmony").replace("<|start|>assistant", ""), ""),
        "harmony_after_analysis": (
            "<|channel|>analysis<|message|>Need the tool.<|end|>" + render_content(calls, "harmony"),
            "<|channel|>analysis<|message|>Need the tool.<|end|>",
        ),
    }[variant]
    parsed = _parsed({"role": "assistant", "content": content})
    assert [(c.name, c.arguments) for c in parsed.calls] == BFCL_CASES[case]
    assert parsed.text == text


def test_the_recipient_before_the_channel_and_prose_formats():
    parsed = _parsed(
        {
            "role": "assistant",
            "content": "<|start|>assistant to=functions.get_weather<|channel|>commentary json"
            '<|message|>{"city": "Oslo"}<|call|>',
        }
    )
    assert (parsed.format, parsed.calls[0].name, parsed.calls[0].arguments) == (
        "harmony",
        "get_weather",
        {"city": "Oslo"},
    )
    assert (
        _parsed(
            {
                "role": "assistant",
                "content": "I'll call it.\n" + render_content(_calls(BFCL_CASES["parallel"]), "llama"),
            }
        ).format
        == "llama"
    )


@pytest.mark.parametrize("fmt", CONTENT_FORMATS)
def test_a_broken_call_attempt_is_a_finding_never_silence(fmt):
    """Cut each rendering inside its last JSON value: the evaluator must see a malformed call, not "no call"."""
    for case in ("simple", "parallel_multiple"):
        rendered = render_content(_calls(BFCL_CASES[case]), fmt)
        broken = rendered[: rendered.rindex("}")]
        for content in (broken, f"{PROSE}\n\n{broken}"):
            parsed = parse_message({"role": "assistant", "content": content})
            codes = {f.code for f in parsed.findings}
            assert codes & {"E_MALFORMED_CALL", "E_MALFORMED_ARGUMENTS"}, (fmt, content, parsed)


def test_json_that_is_not_a_call_stays_prose():
    for content in (
        'Bob is {"name": "Bob", "age": 3} in JSON.',
        "```python\nprint({'name': 1})\n```",
        '```json\n{"title": "Notes"}\n```',
        "Use [brackets] and {braces} freely.",
    ):
        parsed = parse_message({"role": "assistant", "content": content})
        assert not parsed.calls and not parsed.findings and parsed.text == content


def test_a_broken_example_before_the_real_call_does_not_hide_it():
    content = (
        'The format is {"name": "tool", "arguments": {...}}, so:\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    )
    parsed = parse_message({"role": "assistant", "content": content})
    assert (parsed.format, [c.name for c in parsed.calls], parsed.findings) == ("hermes", ["get_weather"], [])
    alone = parse_message({"role": "assistant", "content": content.split("\n")[0]})
    assert [f.code for f in alone.findings] == ["E_MALFORMED_CALL"] and not alone.calls
