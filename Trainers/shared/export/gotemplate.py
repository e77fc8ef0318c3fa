"""Render the subset of Go's ``text/template`` that the Ollama TEMPLATEs written here use.

Ollama renders a Modelfile's TEMPLATE with Go's text/template; no Go runtime is available here, so
the export checks its TEMPLATE with this renderer, written from the text/template documentation:
trim markers ``{{-``/``-}}``, comments, ``if``/``else if``/``else``/``end``, ``range`` (with
``$i, $v :=``), variable declaration and assignment, field chains (``.A.B``, ``$.A``, ``$v.A``),
parenthesised calls, and the functions ``eq ne lt le and or not len slice json``. Anything else
raises TemplateError, so a template that leaves the subset is refused rather than misread.

Values follow Ollama's data model: the root has System, Messages (Role, Content, ToolCalls with
Function.Name and Function.Arguments) and Tools; maps and lists print as compact JSON, as Ollama's
argument and tool types print themselves.
"""
from __future__ import annotations

import json
import re

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(-?\d+)|(\$\w*(?:\.\w+)*)|((?:\.\w+)+|\.)|(\w+))')


class TemplateError(ValueError):
    pass


def _lex(source: str) -> list[tuple[str, str]]:
    """('text', s) and ('action', body) items, trim markers applied."""
    items, pos = [], 0
    for match in _ACTION.finditer(source):
        text = source[pos:match.start()]
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        items.append(("text", text))
        body = match.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            items.append(("action", body))
        pos = match.end()
        if match.group(3):
            while pos < len(source) and source[pos] in " \t\r\n":
                pos += 1
    items.append(("text", source[pos:]))
    return [i for i in items if i != ("text", "")]


def _parse(items: list, pos: int = 0, stop=("end",)) -> tuple[list, int, str | None]:
    """A node list up to one of stop (returned as the third value)."""
    nodes = []
    while pos < len(items):
        kind, body = items[pos]
        pos += 1
        if kind == "text":
            nodes.append(("text", body))
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in stop or (word == "else" and "else" in stop):
            return nodes, pos - 1, body
        if word == "if":
            nodes.append(_parse_if(items, pos, body[2:].strip()))
            pos = nodes[-1][-1]
        elif word == "range":
            spec = body[5:].strip()
            names, pipe = [], spec
            if ":=" in spec:
                left, pipe = spec.split(":=", 1)
                names = [n.strip() for n in left.split(",")]
            inner, pos, closing = _parse(items, pos, ("end",))
            if closing != "end":
                raise TemplateError("range without end")
            nodes.append(("range", names, pipe.strip(), inner))
            pos += 1
        elif re.match(r"\$\w+\s*:?=", body):
            name, op, pipe = re.match(r"(\$\w+)\s*(:?=)\s*(.*)", body, re.S).groups()
            nodes.append(("set", name, pipe, op == ":="))
        elif word in ("end", "else", "define", "template", "block", "with"):
            raise TemplateError(f"unsupported or misplaced action {{{{{body}}}}}")
        else:
            nodes.append(("print", body))
    if stop != ("<eof>",):
        raise TemplateError(f"missing {{{{end}}}} (stopped at {stop})")
    return nodes, pos, None


def _parse_if(items, pos, condition):
    branches = []
    while True:
        inner, pos, closing = _parse(items, pos, ("end", "else"))
        branches.append((condition, inner))
        pos += 1
        if closing == "end":
            return ("if", branches, pos)
        rest = closing[4:].strip()
        if rest.startswith("if "):
            condition = rest[3:].strip()
        elif not rest:
            condition = None
        else:
            raise TemplateError(f"unsupported {{{{{closing}}}}}")


def _go_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _truth(value) -> bool:
    return bool(value)


def _format(value) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _go_json(value)
    return str(value)


_FUNCS = {
    "eq": lambda a, *b: any(a == x for x in b), "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "not": lambda a: not _truth(a), "len": len,
    "slice": lambda a, *i: a[i[0]:i[1]] if len(i) > 1 else a[i[0]:] if i else a, "json": _go_json,
}


class _Scope:
    def __init__(self, root):
        self.frames = [{"$": root}]

    def get(self, name):
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable {name}")

    def assign(self, name, value):
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"assignment to undeclared variable {name}")


def _field(value, chain: str):
    for part in filter(None, chain.split(".")):
        if not isinstance(value, dict):
            raise TemplateError(f"can't evaluate field {part} in {type(value).__name__}")
        value = value.get(part)
    return value


def _evaluate(pipe: str, dot, scope: _Scope):
    tokens = []
    for m in _TOKEN.finditer(pipe):
        tokens.append(next((i, g) for i, g in enumerate(m.groups()) if g is not None))
    consumed = "".join(m.group(0) for m in _TOKEN.finditer(pipe))
    if consumed.strip() != pipe.strip() or "|" in pipe:
        raise TemplateError(f"unsupported expression {pipe!r}")
    value, rest = _command(tokens, dot, scope)
    if rest:
        raise TemplateError(f"unexpected tokens in {pipe!r}")
    return value


def _operand(tokens, dot, scope):
    kind, text = tokens[0]
    rest = tokens[1:]
    if kind == 0:  # ( ... )
        value, rest = _command(rest, dot, scope)
        if not rest or rest[0][0] != 1:
            raise TemplateError("unbalanced parenthesis")
        return value, rest[1:]
    if kind == 2:
        return json.loads(text), rest
    if kind == 3:
        return int(text), rest
    if kind == 4:
        name, _, chain = text.partition(".")
        return _field(scope.get(name), chain), rest
    if kind == 5:
        return _field(dot, text), rest
    if text in ("true", "false"):
        return text == "true", rest
    raise TemplateError(f"function {text!r} used as a value")


def _command(tokens, dot, scope):
    if not tokens:
        raise TemplateError("empty expression")
    kind, text = tokens[0]
    if kind != 6 or text in ("true", "false"):
        return _operand(tokens, dot, scope)
    if text not in _FUNCS and text not in ("and", "or"):
        raise TemplateError(f"function {text!r} is not in the supported subset")
    args, rest = [], tokens[1:]
    while rest and rest[0][0] != 1:
        value, rest = _operand(rest, dot, scope)
        args.append(value)
    if text == "and":
        return next((a for a in args if not _truth(a)), args[-1]), rest
    if text == "or":
        return next((a for a in args if _truth(a)), args[-1]), rest
    return _FUNCS[text](*args), rest


def _run(nodes, dot, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "print":
            out.append(_format(_evaluate(node[1], dot, scope)))
        elif kind == "set":
            _, name, pipe, declare = node
            value = _evaluate(pipe, dot, scope)
            if declare:
                scope.frames[-1][name] = value
            else:
                scope.assign(name, value)
        elif kind == "if":
            for condition, inner in node[1]:
                if condition is None or _truth(_evaluate(condition, dot, scope)):
                    scope.frames.append({})
                    _run(inner, dot, scope, out)
                    scope.frames.pop()
                    break
        elif kind == "range":
            _, names, pipe, inner = node
            items = _evaluate(pipe, dot, scope) or []
            pairs = list(items.items()) if isinstance(items, dict) else list(enumerate(items))
            for key, item in pairs:
                frame = {}
                if len(names) == 2:
                    frame = {names[0]: key, names[1]: item}
                elif len(names) == 1:
                    frame = {names[0]: item}
                scope.frames.append(frame)
                _run(inner, item, scope, out)
                scope.frames.pop()


def render(template: str, data: dict) -> str:
    """template rendered with data (Ollama's shape: System, Messages, Tools)."""
    nodes, _, _ = _parse(_lex(template), 0, ("<eof>",))
    out: list[str] = []
    _run(nodes, data, _Scope(data), out)
    return "".join(out)


def referenced_fields(template: str) -> set[str]:
    """Top-level fields the template reads (Ollama enables tools when it reads .Tools)."""
    return {m.group(1) for m in re.finditer(r"(?<![\w$])\$?\.(\w+)", " ".join(b for k, b in _lex(template) if k == "action"))}


def ollama_values(messages: list[dict], tools: list[dict] | None = None) -> dict:
    """OpenAI-style chat messages as the values Ollama hands its template: system messages are
    joined into System (and kept in Messages), tool-call arguments become objects."""
    values = []
    for m in messages:
        calls = [{"Function": {"Name": c["function"]["name"],
                               "Arguments": json.loads(c["function"]["arguments"]) if isinstance(c["function"]["arguments"], str)
                               else c["function"]["arguments"]}} for c in m.get("tool_calls") or []]
        values.append({"Role": m["role"], "Content": m.get("content") or "", "ToolCalls": calls})
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return {"System": system, "Messages": values, "Tools": tools or []}
