import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from Tools.schema.toolcalls import FORMATS, ToolCall, parse_content, parse_message, render_message

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
arguments = st.dictionaries(st.text(max_size=12), json_values, max_size=5)
calls = st.lists(
    st.builds(ToolCall, names, arguments, st.none() | st.from_regex(r"[a-z0-9]{9}", fullmatch=True)),
    min_size=1,
    max_size=3,
)
CARRIES_ID = {"openai", "mistral"}


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None)
@given(calls=calls)
def test_render_then_parse_is_identity(fmt, calls):
    if fmt == "bare_json" and len(calls) > 1:
        calls = calls[:1]
    message = json.loads(json.dumps(render_message(calls, fmt)))  # through JSON, as on disk
    parsed = parse_message(message)
    assert parsed.format == fmt
    assert [(c.name, c.arguments) for c in parsed.calls] == [(c.name, c.arguments) for c in calls]
    assert not [f for f in parsed.findings if f.severity == "error"]
    if fmt in CARRIES_ID:
        assert [c.id for c in parsed.calls if c.id] == [c.id for c in calls if c.id] or fmt == "openai"


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=300) | st.text(alphabet='{}[]"\\:tool_call<>/TOOLS ARGnme,aru\n', max_size=200))
def test_parsing_never_raises_on_arbitrary_text(text):
    for prefix in ("", "tool_call: x\narguments: ", "<tool_call>", "[TOOL_CALLS] ", "[TOOL_CALLS]x[ARGS]"):
        parse_content(prefix + text)
        parse_message({"role": "assistant", "content": prefix + text})


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_parse_message_never_raises_on_odd_structures(value):
    parse_message({"role": "assistant", "content": None, "tool_calls": value})
    parse_message({"role": "assistant", "content": None, "tool_calls": [{"function": value}]})


def test_text_format_with_results_prose_and_several_calls():
    content = (
        'Let me look.\ntool_call: vaultLibrarian_searchContent\narguments: {"context": {}, "query": "Q3"}\n\n'
        'Result: {"success": true, "data": {"matches": ["tool_call: not a call"]}}\n\nFound it.\n\n'
        'tool_call: vaultManager_openNote\narguments: {"path": "Q3.md"}\n\nResult: {"success": true}\n\nOpened.'
    )
    parsed = parse_content(content)
    assert parsed.format == "text"
    assert [c.name for c in parsed.calls] == ["vaultLibrarian_searchContent", "vaultManager_openNote"]
    assert "Found it." in parsed.text and "Opened." in parsed.text


def test_escaped_backslash_at_end_of_string_is_not_unterminated():
    # the earlier validator reported this as an unterminated JSON block
    for content in (
        'tool_call: contentManager_readContent\narguments: {"filePath": "C:\\\\"}',
        '[TOOL_CALLS] [{"name": "contentManager_readContent", "arguments": {"filePath": "C:\\\\"}}]',
    ):
        parsed = parse_content(content)
        assert parsed.calls[0].arguments == {"filePath": "C:\\"}
        assert not parsed.findings


def test_prose_mentioning_tool_call_is_plain_text():
    parsed = parse_content("The old format wrote tool_call: before each call; we no longer do that.")
    assert not parsed.calls and not parsed.findings and parsed.format is None


def test_empty_tool_name_is_a_finding_not_a_crash():
    parsed = parse_content('tool_call: \narguments: {"path": "x"}')
    assert [f.code for f in parsed.findings] == ["E_EMPTY_TOOL_NAME"]
    parsed = parse_message(
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": None, "arguments": "{}"}}]}
    )
    assert [f.code for f in parsed.findings] == ["E_EMPTY_TOOL_NAME"]


def test_malformed_arguments_and_markers():
    assert [
        f.code
        for f in parse_message(
            {
                "role": "assistant",
                "tool_calls": [{"id": "x", "type": "function", "function": {"name": "a", "arguments": "{broken"}}],
            }
        ).findings
    ] == ["E_MALFORMED_ARGUMENTS"]
    assert [f.code for f in parse_content("<tool_call>not json</tool_call>").findings] == ["E_MALFORMED_CALL"]
    assert [f.code for f in parse_content("[TOOL_CALLS] nonsense").findings] == ["E_MALFORMED_CALL"]
    assert [f.code for f in parse_content("tool_call: vaultManager_createFolder\nthen nothing").findings] == [
        "E_MALFORMED_CALL"
    ]
    assert [f.code for f in parse_message({"role": "assistant", "tool_calls": []}).findings] == ["E_TOOL_CALLS_TYPE"]


def test_hermes_without_closing_tag_and_mistral_args_form():
    parsed = parse_content('<tool_call>\n{"name": "vaultManager_createFolder", "arguments": {"path": "A"}}')
    assert parsed.calls[0].arguments == {"path": "A"}
    parsed = parse_content('[TOOL_CALLS]vaultManager_createFolder[ARGS]{"path": "B"}')
    assert (parsed.format, parsed.calls[0].name, parsed.calls[0].arguments) == (
        "mistral",
        "vaultManager_createFolder",
        {"path": "B"},
    )


def test_bare_json_is_detected_and_flagged():
    parsed = parse_content('```json\n{"name": "vaultManager_createFolder", "arguments": {"path": "A"}}\n```')
    assert parsed.format == "bare_json" and parsed.calls[0].name == "vaultManager_createFolder"
    assert [f.code for f in parsed.findings] == ["W_BARE_JSON_CALL"]
    assert not parse_content('{"title": "not a call"}').calls


def test_ollama_and_openai_are_told_apart_by_argument_type():
    args = {"path": "A"}
    assert (
        parse_message({"role": "assistant", "tool_calls": [{"function": {"name": "t", "arguments": args}}]}).format
        == "ollama"
    )
    assert (
        parse_message(
            {"role": "assistant", "tool_calls": [{"function": {"name": "t", "arguments": json.dumps(args)}}]}
        ).format
        == "openai"
    )


CONTENT_FORMATS = [f for f in FORMATS if f not in ("openai", "ollama")]
prose = st.text(
    alphabet=st.characters(blacklist_characters='{}[]<>|`"\\:;', blacklist_categories=("Cs",)), min_size=1, max_size=80
)


@pytest.mark.parametrize("fmt", CONTENT_FORMATS)
@settings(max_examples=40, deadline=None)
@given(calls=calls, text=prose)
def test_calls_after_prose_render_then_parse_is_identity(fmt, calls, text):
    if not text.strip():
        text = "Sure."
    message = json.loads(json.dumps(render_message(calls, fmt, content=text)))
    parsed = parse_message(message)
    assert [(c.name, c.arguments) for c in parsed.calls] == [(c.name, c.arguments) for c in calls]
    assert parsed.text == text.strip()
    assert not [f for f in parsed.findings if f.severity == "error"]
