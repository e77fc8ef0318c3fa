"""JSON decoding for the data tools: orjson where the input is strict JSON (about 2x faster than
the standard library on the reference sets), the standard library's lenient decoder as the fallback
for strings with raw control characters, which the earlier datasets contain.

Both paths refuse what JSON or UTF-8 cannot carry: NaN, Infinity, numbers too large for a double
and lone surrogate escapes (``"\\ud800"``); nesting past the decoders' limits (orjson 1,024 levels,
the standard library about 1,000) is TooDeep rather than a RecursionError."""

from __future__ import annotations

import json
import math
import re

import orjson


class NotRepresentable(ValueError):
    """The text decodes, but to something JSON or UTF-8 cannot carry (a lone surrogate)."""


class TooDeep(ValueError):
    """The text nests arrays and objects deeper than the decoder can follow."""


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
    NotRepresentable for a lone surrogate, TooDeep past the decoders' nesting limits)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8") if isinstance(data, bytes) else data  # raises on invalid UTF-8
        try:
            value = _LENIENT.decode(text)
        except RecursionError:
            raise TooDeep("JSON nested deeper than the decoder can follow (about 1,000 levels)") from None
        check_unicode(text, value)
        return value


def check_unicode(text: str, value) -> None:
    """Raise NotRepresentable when value, decoded from text, holds a lone surrogate."""
    if _SURROGATE_ESCAPE.search(text):  # only then can a decoded string hold one
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NotRepresentable(f"lone surrogate {exc.object[exc.start : exc.end]!a}: not valid Unicode") from None
        except RecursionError:
            raise TooDeep("JSON nested too deeply to check") from None
