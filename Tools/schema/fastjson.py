"""JSON decoding for the data tools: orjson where the input is strict JSON (about 2x faster than
the standard library on the reference sets), the standard library's lenient decoder as the fallback
for strings with raw control characters, which the earlier datasets contain."""
from __future__ import annotations

import json

import orjson

_LENIENT = json.JSONDecoder(strict=False)


def loads(data: bytes | str):
    """Decode one JSON document; raises ValueError (UnicodeDecodeError for invalid UTF-8 bytes)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8") if isinstance(data, bytes) else data  # raises on invalid UTF-8
        return _LENIENT.decode(text)
