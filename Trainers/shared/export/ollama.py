"""Ollama's side of an export, checked with Ollama's own rules instead of a look-alike.

- ``render``: a Modelfile TEMPLATE rendered by ``ollama_check/`` (Go's own text/template, with the
  data, message collation, tool struct and tag detection of Ollama; see its main.go). It is built
  once with ``go build`` into a cache folder; ``GoMissing`` when Go is not installed.
- ``parse_tool_calls``: Ollama's tool-call parser (tools/tools.go) ported rule for rule: find the
  tag, then the earliest (longest) tool name, then the first balanced JSON object; its ``name`` +
  ``arguments``/``parameters`` (an object or a JSON string), or an object keyed by the tool's name,
  or else the whole object, are the arguments. A call without arguments is not a call.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

GO_SOURCE = Path(__file__).resolve().parent / "ollama_check"
CACHE_DIR = Path(__file__).resolve().parents[3] / ".cache" / "ollama_check"


class GoMissing(RuntimeError):
    """The Go check cannot run here (no Go, or the checker does not build)."""


@dataclass
class Rendered:
    tag: str  # the tool-call tag Ollama detects in the template
    reads_tools: bool  # Ollama offers tools to this model only when its template names .Tools
    prompt: str
    error: str = ""


def build_checker(cache_dir: Path | None = None) -> Path:
    """The ollama_check binary, built with ``go build`` when its source changed (cached by hash)."""
    go = shutil.which("go")
    if not go:
        raise GoMissing(
            "Go is not installed (apt-get install golang-go), so the Modelfile TEMPLATE cannot be "
            "checked with Go's text/template"
        )
    digest = hashlib.sha256(b"".join((GO_SOURCE / n).read_bytes() for n in ("go.mod", "main.go"))).hexdigest()[:16]
    cache = Path(cache_dir or CACHE_DIR)
    binary = cache / f"ollama_check-{digest}"
    if binary.is_file():
        return binary
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    env.setdefault("GOCACHE", str(cache / "gocache"))
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            built = Path(tmp) / "ollama_check"
            done = subprocess.run(
                [go, "build", "-o", str(built), "."], cwd=GO_SOURCE, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise GoMissing(f"go build of {GO_SOURCE} failed: {done.stderr.strip()[-1000:]}")
            os.replace(built, binary)
    except OSError as exc:
        raise GoMissing(f"cannot build the Go checker in {cache}: {exc}") from None
    return binary


def render(template: str, messages: list[dict], tools: list | None = None, binary: Path | None = None) -> Rendered:
    """template rendered as Ollama renders it for an OpenAI-style request (messages, tools)."""
    request = json.dumps({"template": template, "messages": messages, "tools": tools or []})
    done = subprocess.run([str(binary or build_checker())], input=request, capture_output=True, text=True, timeout=60)
    try:
        out = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"ollama_check failed ({done.returncode}): {done.stderr.strip()[-500:]}") from None
    return Rendered(out["tag"], out["reads_tools"], out["prompt"], out.get("error", ""))


# -- Ollama's tool-call parser -------------------------------------------------------------------
def _find_tool(names: list[str], buffer: str) -> tuple[str | None, int]:
    longest = max(map(len, names), default=0)
    for i in range(1, min(len(buffer), longest) + 1):  # a name still being written: wait for more
        tail = buffer[-i:]
        if any(len(tail) < len(n) and n.startswith(tail) for n in names):
            return None, 0
    found, start = None, -1
    for name in names:
        pos = buffer.find(name)
        if pos == -1 or (start != -1 and (pos > start or (pos == start and len(name) <= len(found)))):
            continue
        found, start = name, pos
    return (found, start + len(found)) if found else (None, 0)


def _find_object(name: str, obj: dict) -> tuple[dict | None, bool]:
    def as_map(key):
        value = obj.get(key)
        if isinstance(value, dict):
            return value, True
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                return None, False
            return (parsed, True) if isinstance(parsed, dict) else (None, False)
        return None, False

    if "name" in obj:
        for key in ("arguments", "parameters"):
            args, ok = as_map(key)
            if ok:
                return args, True
        return None, True
    args, ok = as_map(name)
    if ok:
        return args, True
    for value in obj.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, dict):
                args, ok = _find_object(name, child)
                if ok:
                    return args, True
    return None, False


def _find_arguments(name: str, buffer: str) -> tuple[dict | None, int]:
    start, braces, in_string, escaped = -1, 0, False, False
    for i, c in enumerate(buffer):
        if escaped:
            escaped = False
            continue
        if c == "\\":
            escaped = True
            continue
        if c == '"':
            in_string = not in_string
            continue
        if in_string:
            continue
        if c == "{":
            if braces == 0:
                start = i
            braces += 1
        elif c == "}":
            braces -= 1
            if braces == 0 and start != -1:
                try:
                    data = json.loads(buffer[start : i + 1])
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    start = -1
                    continue
                args, found = _find_object(name, data)
                return (args, i) if found else (data, i)
            braces = max(braces, 0)
    return None, 0


def parse_tool_calls(text: str, tag: str, tool_names: list[str]) -> tuple[list[tuple[str, dict]], str]:
    """(calls as (name, arguments), content) that Ollama returns for a complete answer text."""
    at = text.find(tag)
    content, buffer = (text, "") if at == -1 else (text[:at], text[at:])
    if tag in ("{", "[") and content.strip():
        return [], text
    if at == -1:
        return [], content
    calls = []
    while True:
        name, end = _find_tool(tool_names, buffer)
        if name is None:
            break
        args, i = _find_arguments(name, buffer)
        if args is None:
            break
        calls.append((name, args))
        buffer = buffer[max(end, i) :]
    if tag in ("{", "[") and not calls:
        content += buffer
    return calls, content
