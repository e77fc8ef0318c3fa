"""JSON decoding for the data tools: orjson where the input is strict JSON (about 2x faster than
the standard library on the reference sets), the standard library's lenient decoder as the fallback
for strings with raw control characters, which the earlier datasets contain.

Both paths accept only what can be written back as JSON and UTF-8: NaN, Infinity, numbers too
large for a double, lone surrogate escapes (``"\\ud800"``) and nesting deeper than MAX_DEPTH (the
standard library's encoder stops near 1,000 levels, orjson's decoder at 1,024) are refused, so no
tool can read a record it cannot write out again."""
from __future__ import annotations

import json
import math
import re

import orjson


MAX_DEPTH = 512


class NotRepresentable(ValueError):
    """The text decodes, but to something JSON or UTF-8 cannot carry (a lone surrogate)."""


class TooDeep(ValueError):
    """The text nests arrays and objects deeper than MAX_DEPTH."""


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is too large for a double")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_LENIENT = json.JSONDecoder(strict=False, parse_float=_finite, parse_constant=_no_constant)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(data: bytes | str):
    """Decode one JSON document; raises ValueError (UnicodeDecodeError for invalid UTF-8 bytes,
    NotRepresentable for a lone surrogate, TooDeep past MAX_DEPTH levels)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8") if isinstance(data, bytes) else data  # raises on invalid UTF-8
        try:
            value = _LENIENT.decode(text)
        except RecursionError:
            raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        check_decoded(text, value)
        return value
    check_depth(data, value)
    return value


def check_decoded(text: str, value) -> None:
    """Raise NotRepresentable or TooDeep when value, decoded from text, could not be written back."""
    check_depth(text, value)
    if _SURROGATE_ESCAPE.search(text):  # only then can a decoded string hold a lone surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NotRepresentable(f"lone surrogate {exc.object[exc.start:exc.end]!a}: not valid Unicode") from None


def check_depth(text: bytes | str, value) -> None:
    """Raise TooDeep when value nests deeper than MAX_DEPTH; the walk runs only when text holds
    that many brackets at all, so ordinary records cost two counts."""
    open_ = (b"[", b"{") if isinstance(text, bytes) else ("[", "{")
    if text.count(open_[0]) + text.count(open_[1]) <= MAX_DEPTH:
        return
    stack = [(value, 1)]
    while stack:  # iterative, so the check itself cannot overflow the stack
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
