"""Parse and render tool calls in every format found in the wild.

Formats (the names used in reports):
- ``openai``: ``message["tool_calls"] = [{id, type, function: {name, arguments: "<json string>"}}]``
- ``ollama``: the same list with ``arguments`` as an object (Ollama's native API)
- ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` in content (Qwen, Hermes)
- ``mistral``: ``[TOOL_CALLS] [{"name": ..., "arguments": {...}, "id": ...}]`` (also ``[TOOL_CALLS]name[ARGS]{...}``)
- ``text``: ``tool_call: name`` / ``arguments: {...}`` lines, optionally followed by ``Result: {...}`` and prose
- ``bare_json``: ``{"name": ..., "arguments": {...}}`` (or a list of them), the whole content or after
  prose, bare or in a ```json fence (flagged W_BARE_JSON_CALL)
- ``harmony``: gpt-oss, ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}<|call|>``
- ``llama``: Llama 3.x JSON, ``{"name": ..., "parameters": {...}}``, parallel calls separated by ``; ``
- ``python_tag``: the same after ``<|python_tag|>`` (Llama 3.1); both may end in ``<|eot_id|>`` / ``<|eom_id|>``

``parse_message`` never raises; whatever cannot be parsed becomes a Finding, and text that starts a
call but does not parse is E_MALFORMED_CALL. Rendering a list of calls in a format and parsing it
back gives the same calls. Parsing is linear in the text's length, whatever the text
(tests/test_parser_linear.py, benchmarks/bench_parser.py).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field

from .fastjson import NotRepresentable, TooDeep, check_unicode, loads
from .issues import Finding

FORMATS = ("openai", "ollama", "hermes", "mistral", "text", "bare_json", "harmony", "llama", "python_tag")
_DECODER = json.JSONDecoder(strict=False)
_WINDOW, _NEAR_END = 256, 8
_JSON_START = frozenset('{["-0123456789tfn')
_WS = re.compile(r"\s*")
_HERMES_OPEN, _HERMES_CLOSE = "<tool_call>", "</tool_call>"
_HARMONY_TO_TEXT, _HARMONY_MESSAGE, _HARMONY_ENDS = "to=functions.", "<|message|>", ("<|call|>", "<|end|>")
_HARMONY_TO = re.compile(r"to=functions\.([A-Za-z_][\w.\-]*)")
_MISTRAL = "[TOOL_CALLS]"
_TEXT_MARKER = re.compile(r"(?m)^[ \t]*tool_call:[ \t]*([^\n]*)")
_TEXT_ARGS = re.compile(r"[ \t]*\n[ \t]*arguments:[ \t]*")
_RESULT = re.compile(r"\s*Result:[ \t]*")
_NAME_RE = re.compile(r"[A-Za-z_][\w.\-]*")
# name, an optional [CALL_ID]id (no "[" inside, so a failed match stops at the next marker), [ARGS]
_MISTRAL_ARGS = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*(?:\[CALL_ID\][^\[]*)?\[ARGS\]")


@dataclass
class ToolCall:
    """One call: a tool name and its arguments (None when they could not be parsed)."""

    name: str
    arguments: dict | None
    id: str | None = None


@dataclass
class ParsedMessage:
    calls: list[ToolCall] = field(default_factory=list)
    format: str | None = None
    text: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def has_calls(self) -> bool:
        return bool(self.calls)


# -- parsing -----------------------------------------------------------------------------------
def _json_at(text: str, pos: int):
    """Decode one JSON value starting at pos (after whitespace); return (value, end) or None.

    Decodes a growing window rather than the rest of the text: json's errors count the lines before
    the error position, so failing on the whole text would cost time in its length at every marker.
    A window is grown only when the value may run past it (the decoder stopped near its end)."""
    pos = _WS.match(text, pos).end()
    if text[pos : pos + 1] not in _JSON_START:  # the common hostile case, answered without raising
        return None
    size = _WINDOW
    while True:
        window = text[pos : pos + size]
        cut = pos + size < len(text)
        try:
            value, end = _DECODER.raw_decode(window)
            check_unicode(window[:end], value)  # what cannot be written as UTF-8 is no call
        except (RecursionError, NotRepresentable, TooDeep):
            return None
        except ValueError as exc:
            if not (cut and (exc.pos >= len(window) - _NEAR_END or exc.msg.startswith("Unterminated string"))):
                return None
        else:
            if not cut or end < len(window) - _NEAR_END:
                return value, pos + end
        size *= 4


def _arguments(value, name: str, index: int | None, findings: list[Finding]) -> dict | None:
    if isinstance(value, str):
        try:
            value = loads(value)
        except ValueError as exc:
            findings.append(
                Finding("E_MALFORMED_ARGUMENTS", f"arguments are not valid JSON: {exc}", index, name or None)
            )
            return None
    if isinstance(value, dict):
        return value
    findings.append(
        Finding("E_MALFORMED_ARGUMENTS", f"arguments are {type(value).__name__}, not an object", index, name or None)
    )
    return None


def _call_from_object(obj, index: int | None, findings: list[Finding], default_id=None) -> ToolCall | None:
    """A {"name", "arguments"|"parameters", "id"?} object as a call; problems become findings."""
    if not isinstance(obj, dict):
        findings.append(Finding("E_MALFORMED_CALL", f"a tool call is {type(obj).__name__}, not an object", index))
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        findings.append(Finding("E_EMPTY_TOOL_NAME", f"tool name is {name!r}", index))
        name = ""
    raw = obj["arguments"] if "arguments" in obj else obj.get("parameters", {})
    call_id = obj.get("id", default_id)
    return ToolCall(name.strip(), _arguments(raw, name, index, findings), call_id if isinstance(call_id, str) else None)


def _parse_structured(tool_calls, index: int | None) -> ParsedMessage:
    parsed = ParsedMessage()
    if not isinstance(tool_calls, list) or not tool_calls:
        parsed.findings.append(Finding("E_TOOL_CALLS_TYPE", "'tool_calls' must be a non-empty list", index))
        return parsed
    string_args = object_args = 0
    for item in tool_calls:
        if not isinstance(item, dict):
            parsed.findings.append(
                Finding("E_TOOL_CALLS_TYPE", f"a tool_calls item is {type(item).__name__}, not an object", index)
            )
            continue
        function = item.get("function", item)
        if isinstance(function, dict):
            raw = function.get("arguments")
            string_args += isinstance(raw, str)
            object_args += isinstance(raw, dict)
        call = _call_from_object(function, index, parsed.findings, item.get("id"))
        if call is not None:
            parsed.calls.append(call)
    parsed.format = "ollama" if object_args > string_args else "openai"
    return parsed


def _parse_hermes(text: str, index, parsed: ParsedMessage) -> str:
    prose, pos = [], 0
    while (start := text.find(_HERMES_OPEN, pos)) != -1:
        prose.append(text[pos:start])
        decoded = _json_at(text, start + len(_HERMES_OPEN))
        if decoded is None:
            parsed.findings.append(Finding("E_MALFORMED_CALL", "<tool_call> is not followed by a JSON object", index))
            next_open = text.find(_HERMES_OPEN, start + len(_HERMES_OPEN))
            limit = len(text) if next_open == -1 else next_open
            end = text.find(_HERMES_CLOSE, start, limit)  # only up to the next call, so each search is bounded
            pos = limit if end == -1 else end + len(_HERMES_CLOSE)
            continue
        value, end = decoded
        call = _call_from_object(value, index, parsed.findings)
        if call is not None:
            parsed.calls.append(call)
        end = _WS.match(text, end).end()
        pos = end + len(_HERMES_CLOSE) if text.startswith(_HERMES_CLOSE, end) else end
    prose.append(text[pos:])
    return "".join(prose)


def _parse_mistral(text: str, index, parsed: ParsedMessage) -> str:
    prose, pos = [], 0
    while (start := text.find(_MISTRAL, pos)) != -1:
        prose.append(text[pos:start])
        pos = _WS.match(text, start + len(_MISTRAL)).end()
        decoded = _json_at(text, pos) if text.startswith("[", pos) else None
        if decoded is not None and isinstance(decoded[0], list) and decoded[0]:
            for obj in decoded[0]:
                call = _call_from_object(obj, index, parsed.findings)
                if call is not None:
                    parsed.calls.append(call)
            pos = decoded[1]
            continue
        # the newer form: [TOOL_CALLS]name[ARGS]{...}
        head = _MISTRAL_ARGS.match(text, pos)
        decoded = _json_at(text, head.end()) if head else None
        if decoded is None:
            parsed.findings.append(Finding("E_MALFORMED_CALL", "[TOOL_CALLS] is not followed by a call list", index))
            next_marker = text.find(_MISTRAL, pos)
            pos = len(text) if next_marker == -1 else next_marker
            continue
        name = head.group(1)
        parsed.calls.append(ToolCall(name, _arguments(decoded[0], name, index, parsed.findings)))
        pos = decoded[1]
    prose.append(text[pos:])
    return "".join(prose)


def _parse_text(text: str, index, parsed: ParsedMessage) -> str:
    prose, pos = [], 0
    for marker in _TEXT_MARKER.finditer(text):
        if marker.start() < pos:
            continue
        name = marker.group(1).strip()
        args = _TEXT_ARGS.match(text, marker.end())
        if args is None:
            if _NAME_RE.fullmatch(name):
                parsed.findings.append(
                    Finding("E_MALFORMED_CALL", f"'tool_call: {name}' has no 'arguments:' line", index, name)
                )
            continue  # prose that merely starts a line with "tool_call:"
        prose.append(text[pos : marker.start()])
        if not name:
            parsed.findings.append(Finding("E_EMPTY_TOOL_NAME", "tool_call: has an empty tool name", index))
        decoded = _json_at(text, args.end())
        if decoded is None:
            parsed.findings.append(
                Finding("E_MALFORMED_ARGUMENTS", "arguments: is not followed by valid JSON", index, name or None)
            )
            parsed.calls.append(ToolCall(name, None))
            line_end = text.find("\n", args.end())
            pos = len(text) if line_end == -1 else line_end
            continue
        parsed.calls.append(ToolCall(name, _arguments(decoded[0], name, index, parsed.findings)))
        pos = decoded[1]
        result = _RESULT.match(text, pos)
        if result and (value := _json_at(text, result.end())) is not None:
            pos = value[1]
    prose.append(text[pos:])
    return "".join(prose)


_JSON_CALL_START = re.compile(r'<\|python_tag\|>|```|\[\s*\{\s*"name"\s*:|\{\s*"name"\s*:')
_LLAMA_END = ("<|eot_id|>", "<|eom_id|>")


def _is_call_object(value) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and ("arguments" in value or "parameters" in value)
    )


def _call_sequence(text: str, pos: int):
    """JSON calls from pos: one object, a list of them, or several separated by ';' (Llama 3.x),
    optionally closed by <|eot_id|>. Returns (items, end), ([], end) for JSON that is no call, or None."""
    items = []
    while True:
        decoded = _json_at(text, pos)
        if decoded is None:
            return (items, pos) if items else None
        value, after = decoded
        found = value if isinstance(value, list) and value else [value]
        if not all(_is_call_object(item) for item in found):
            return (items, pos) if items else ([], after)
        items += found
        pos = _WS.match(text, after).end()
        if text.startswith(";", pos):
            pos += 1
            continue
        for token in _LLAMA_END:
            if text.startswith(token, pos):
                pos += len(token)
        return items, pos


def _parse_json_calls(text: str, index, parsed: ParsedMessage) -> str:
    """Calls written as JSON rather than in a marked format: the whole message, or after prose, bare or in a
    ```json fence; after <|python_tag|>; several separated by '; ' (Llama 3.x). A candidate that does not
    decode is one E_MALFORMED_CALL and ends the search, so hostile text costs one failed decode at most."""
    prose, pos, formats = [], 0, set()
    for match in _JSON_CALL_START.finditer(text):
        if match.start() < pos:
            continue
        token = match.group()
        if token == "```":
            body = _WS.match(text, match.end() + 4 if text.startswith("json", match.end()) else match.end()).end()
            found = _call_sequence(text, body) if text[body : body + 1] in ("{", "[") else ([], body)
            if found is None and not _JSON_CALL_START.match(text, body):
                found = ([], body)  # broken JSON that names no tool: a code block, not a call attempt
            if found and not found[0]:
                close = text.find("```", match.end())
                pos = len(text) if close == -1 else close + 3  # its inside is never searched again
                continue
            if found:
                close = _WS.match(text, found[1]).end()
                span_end = close + 3 if text.startswith("```", close) else found[1]
        else:
            found = _call_sequence(text, match.end() if token == "<|python_tag|>" else match.start())
            span_end = found[1] if found else None
        if found is None:
            parsed.findings.append(
                Finding("E_MALFORMED_CALL", f"{token.strip()!r} starts a JSON tool call that does not parse", index)
            )
            break
        items, after = found
        if not items:
            pos = after  # JSON that is not a call (prose may quote some): skip it whole
            continue
        prose.append(text[pos : match.start()])
        for item in items:
            call = _call_from_object(item, index, parsed.findings)
            if call is not None:
                parsed.calls.append(call)
        formats.add(
            "python_tag"
            if token == "<|python_tag|>"
            else "llama"
            if token != "```" and all("parameters" in i and "arguments" not in i for i in items)
            else "bare_json"
        )
        pos = span_end
    if not parsed.calls:
        return text
    prose.append(text[pos:])
    parsed.format = "bare_json" if "bare_json" in formats or len(formats) > 1 else formats.pop()
    if parsed.format == "bare_json":
        parsed.findings.append(
            Finding("W_BARE_JSON_CALL", "tool call written as bare JSON", index, parsed.calls[0].name)
        )
    return "".join(prose)


def _parse_harmony(text: str, index, parsed: ParsedMessage) -> str:
    """gpt-oss harmony: [<|start|>assistant]<|channel|>commentary to=functions.NAME [<|constrain|>json]
    <|message|>{...}<|call|> (or <|end|>), once per call; the recipient may also stand before <|channel|>."""
    prose, pos, low = [], 0, 0
    for match in _HARMONY_TO.finditer(text):
        if match.start() < pos:
            continue
        name, start, low = match.group(1), max(pos, low), match.end()  # header searches never look back past low
        following = text.find(_HARMONY_TO_TEXT, match.end())
        limit = len(text) if following == -1 else following
        message = text.find(_HARMONY_MESSAGE, match.end(), limit)  # bounded by the next call's header
        decoded = _json_at(text, message + len(_HARMONY_MESSAGE)) if message != -1 else None
        if decoded is None:
            parsed.findings.append(
                Finding("E_MALFORMED_CALL", f"harmony call to functions.{name} has no JSON <|message|>", index, name)
            )
            continue
        header = text.rfind("<|start|>", start, match.start())
        if (
            header == -1 or text.find(_HARMONY_MESSAGE, header, match.start()) != -1
        ):  # that <|start|> began an earlier message
            header = text.rfind("<|channel|>", start, match.start())
        prose.append(text[pos : header if header != -1 else match.start()])
        parsed.calls.append(ToolCall(name, _arguments(decoded[0], name, index, parsed.findings)))
        pos = decoded[1]
        for token in _HARMONY_ENDS:
            if text.startswith(token, pos):
                pos += len(token)
                break
    prose.append(text[pos:])
    return "".join(prose)


def _first_marker(text: str) -> list[tuple[int, str, object]]:
    """Candidate formats ordered by where their marker first appears: a call's own format comes
    before any marker that merely occurs inside its arguments."""
    found = []
    for name, marker, parser in (
        ("hermes", _HERMES_OPEN, _parse_hermes),
        ("mistral", _MISTRAL, _parse_mistral),
        ("text", "tool_call:", _parse_text),
        ("harmony", _HARMONY_TO_TEXT, _parse_harmony),
    ):
        position = text.find(marker)
        if position != -1:
            found.append((position, name, parser))
    # substring tests first: they are much faster than the regex on the prose most messages are
    json_start = ('"name"' in text or "```" in text or "<|python_tag|>" in text) and _JSON_CALL_START.search(text)
    if json_start:
        found.append((json_start.start(), "bare_json", _parse_json_calls))
    return sorted(found, key=lambda item: item[0])


def parse_content(text, index: int | None = None) -> ParsedMessage:
    """Tool calls written into a message's text, in the format whose marker comes first. A format that
    finds only broken calls gives way to a later one that finds calls (a quoted, broken example before
    the real call); when none finds a call, the first one's findings stand."""
    if not isinstance(text, str) or not text:
        return ParsedMessage(text=text if isinstance(text, str) else "")
    first_broken = None
    for _, name, parser in _first_marker(text):
        parsed = ParsedMessage()
        prose = parser(text, index, parsed)
        if parsed.calls or parsed.findings:
            parsed.format = parsed.format or name
            parsed.text = prose.strip()
            if parsed.calls:
                return parsed
            first_broken = first_broken or parsed
    return first_broken or ParsedMessage(text=text)


def parse_message(message: dict, index: int | None = None) -> ParsedMessage:
    """Every tool call of one assistant message: native ``tool_calls`` first, else its content."""
    try:
        tool_calls = message.get("tool_calls")
        content = message.get("content")
        if tool_calls is not None:
            parsed = _parse_structured(tool_calls, index)
            parsed.text = content.strip() if isinstance(content, str) else ""
            return parsed
        return parse_content(content, index)
    except Exception as exc:  # parsing must never take a run down; say what happened instead
        return ParsedMessage(
            findings=[Finding("E_MALFORMED_CALL", f"unparseable tool call ({type(exc).__name__}: {exc})", index)]
        )


# -- rendering ---------------------------------------------------------------------------------
def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def new_call_id(rng: random.Random | None = None) -> str:
    """A 9-character [a-z0-9] call id, the form Mistral's tokenizer accepts and OpenAI tolerates."""
    return "".join((rng or random).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=9))


def render_content(calls: list[ToolCall], fmt: str) -> str:
    """Calls as message text in a content format (every format of FORMATS but openai and ollama)."""
    objects = [{"name": c.name, "arguments": c.arguments or {}} for c in calls]
    if fmt == "hermes":
        return "\n".join(f"{_HERMES_OPEN}\n{_dumps(o)}\n{_HERMES_CLOSE}" for o in objects)
    if fmt == "mistral":
        return _MISTRAL + " " + _dumps([{**o, "id": c.id} if c.id else o for o, c in zip(objects, calls)])
    if fmt == "text":
        return "\n\n".join(f"tool_call: {o['name']}\narguments: {_dumps(o['arguments'])}" for o in objects)
    if fmt == "bare_json":
        return _dumps(objects[0] if len(objects) == 1 else objects)
    if fmt == "harmony":
        return "".join(
            f"<|start|>assistant<|channel|>commentary to=functions.{o['name']} <|constrain|>json"
            f"<|message|>{_dumps(o['arguments'])}<|call|>"
            for o in objects
        )
    if fmt in ("llama", "python_tag"):
        body = "; ".join(_dumps({"name": o["name"], "parameters": o["arguments"]}) for o in objects)
        return "<|python_tag|>" + body if fmt == "python_tag" else body
    raise ValueError(f"unknown content format {fmt!r}; expected one of {', '.join(FORMATS[2:])}")


def render_message(calls: list[ToolCall], fmt: str, content: str | None = None) -> dict:
    """An assistant message carrying the calls in any format of FORMATS."""
    if fmt == "openai":
        return {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": c.id or new_call_id(),
                    "type": "function",
                    "function": {"name": c.name, "arguments": _dumps(c.arguments or {})},
                }
                for c in calls
            ],
        }
    if fmt == "ollama":
        return {
            "role": "assistant",
            "content": content or "",
            "tool_calls": [{"function": {"name": c.name, "arguments": c.arguments or {}}} for c in calls],
        }
    body = render_content(calls, fmt)
    return {"role": "assistant", "content": f"{content}\n\n{body}" if content else body}


def to_openai_tool_calls(calls: list[ToolCall]) -> list[dict]:
    """The OpenAI ``tool_calls`` list for calls (what chat templates expect)."""
    return render_message(calls, "openai")["tool_calls"]
