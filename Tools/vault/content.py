"""contentManager: read, create and in-place edits of one note, and batchContent.

Faithful to the plugin by default, including what surprises people (docs/vault.md lists each):
replaceContent/deleteContent fall back to a very loose fuzzy match, replacement text is a
JavaScript replacement string, and append/prepend add no newline. strict semantics turn these off.
"""

from __future__ import annotations

import re

from .handlers import Call, ToolError, tool
from .fs import read_text, write_text
from .fuzzy import PatternTooLong, match_main

_JS_DOLLAR = re.compile(r"\$([$&`'])")


def js_replace(text: str, spans: list[tuple[int, int]], replacement: str, literal: bool = False) -> str:
    """String.prototype.replace for a pattern without groups: $$ $& $` $' are expanded, $1 stays as is."""
    out, last = [], 0
    for start, end in spans:
        if literal:
            expanded = replacement
        else:

            def one(m, start=start, end=end):
                return {"$": "$", "&": text[start:end], "`": text[:start], "'": text[end:]}[m.group(1)]

            expanded = _JS_DOLLAR.sub(one, replacement)
        out.append(text[last:start])
        out.append(expanded)
        last = end
    out.append(text[last:])
    return "".join(out)


def _note(ex, raw, prefix: str):
    if not isinstance(raw, str) or not raw:
        raise ToolError(f"{prefix}File path is required", "E_MISSING_REQUIRED_ARG")
    rel, path = ex.resolve(raw)
    if not path.exists():
        raise ToolError(f"{prefix}File not found: {rel}")
    if not path.is_file():
        raise ToolError(f"{prefix}Not a file: {rel}")
    return rel, path


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- the single operations (batchContent runs the same functions) -----------------------------
def op_read(ex, p: dict) -> dict:
    limit, offset, numbered = p.get("limit"), p.get("offset"), bool(p.get("includeLineNumbers"))
    ranged = _number(limit) and _number(offset)
    prefix = "Error reading content: " + ("Error reading lines: " if ranged or numbered else "")
    rel, path = _note(ex, p.get("filePath"), prefix + "Error reading file: ")
    content = read_text(path)
    data = {"content": content, "filePath": rel, "lineNumbersIncluded": numbered}
    if ranged or numbered:
        lines = content.split("\n")
        start, end = 1, len(lines)
        if ranged:
            start, end = max(1, int(offset)), min(len(lines), int(offset) + int(limit) - 1)
            if start > end:
                raise ToolError(prefix + "Start line cannot be greater than end line")
            data.update(startLine=start, endLine=end)
        chosen = lines[start - 1 : end]
        data["content"] = (
            "\n".join(f"{start + i}: {line}" for i, line in enumerate(chosen)) if numbered else "\n".join(chosen)
        )
    return data


def op_create(ex, p: dict) -> dict:
    prefix = "Error creating file: Error creating file: "
    content = p.get("content")
    if content is None:
        raise ToolError("Content is required", "E_MISSING_REQUIRED_ARG")
    if not isinstance(p.get("filePath"), str) or not p["filePath"]:
        raise ToolError("File path is required", "E_MISSING_REQUIRED_ARG")
    rel, path = ex.resolve(p["filePath"])
    if path.exists() or not rel:
        raise ToolError(f"{prefix}File already exists: {rel}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, str(content))
    except OSError as exc:
        raise ToolError(f"{prefix}{exc.strerror}: {rel}") from None
    return {"filePath": rel, "created": ex.now_ms()}


def _add(ex, p: dict, prepend: bool) -> dict:
    verb = "prepend" if prepend else "append"
    rel, path = _note(ex, p.get("filePath"), f"Error {verb}ing content: Error {verb}ing to file: ")
    content, old = str(p.get("content", "")), read_text(path)
    if ex.strict and content and old:
        # strict: keep the new text on its own line instead of gluing it to the old text
        if prepend and not content.endswith("\n") and not old.startswith("\n"):
            content += "\n"
        elif not prepend and not old.endswith("\n") and not content.startswith("\n"):
            content = "\n" + content
    new = content + old if prepend else old + content
    write_text(path, new)
    return {"filePath": rel, f"{verb}edLength": len(content), "totalLength": len(new)}


def op_append(ex, p: dict) -> dict:
    return _add(ex, p, prepend=False)


def op_prepend(ex, p: dict) -> dict:
    return _add(ex, p, prepend=True)


def _replace(ex, p: dict, old_key: str, new_text: str, prefix: str, count_key: str) -> dict:
    rel, path = _note(ex, p.get("filePath"), prefix)
    old = p.get(old_key)
    if not isinstance(old, str) or not old:
        raise ToolError(f"{prefix}{old_key} is required", "E_MISSING_REQUIRED_ARG")
    content = read_text(path)
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(old), content)]
    if not spans:
        threshold = p.get("similarityThreshold", 0.95)
        threshold = float(threshold) if _number(threshold) else 0.95
        if ex.strict:
            raise ToolError(f"{prefix}Content to replace not found in file (strict semantics: exact match only)")
        try:
            at = match_main(content, old, 0, threshold=threshold, distance=1000)
        except PatternTooLong:
            raise ToolError(f"{prefix}Pattern too long for this browser.") from None
        if at < 0:
            raise ToolError(
                f"{prefix}Content to replace not found in file, even with fuzzy matching at "
                f"{round(threshold * 100)}% threshold"
            )
        spans = [(at, min(len(content), at + len(old)))]
    write_text(path, js_replace(content, spans, new_text, literal=ex.strict))
    return {"filePath": rel, count_key: len(spans)}


def op_replace(ex, p: dict) -> dict:
    new = p.get("newContent")
    if not isinstance(new, str):
        raise ToolError("Error replacing content: newContent is required", "E_MISSING_REQUIRED_ARG")
    return _replace(ex, p, "oldContent", new, "Error replacing content: ", "replacements")


def op_delete(ex, p: dict) -> dict:
    return _replace(ex, p, "content", "", "Error deleting content: ", "deletions")


def op_replace_by_line(ex, p: dict) -> dict:
    prefix = "Error replacing lines: "
    rel, path = _note(ex, p.get("filePath"), prefix)
    start, end, new = p.get("startLine"), p.get("endLine"), p.get("newContent")
    if not (_number(start) and _number(end)) or not isinstance(new, str):
        raise ToolError(f"{prefix}startLine, endLine and newContent are required", "E_MISSING_REQUIRED_ARG")
    lines = read_text(path).split("\n")
    start, end = max(1, int(start)), min(len(lines), int(end))
    if start > end:
        raise ToolError(f"{prefix}Start line cannot be greater than end line")
    lines[start - 1 : end] = new.split("\n")
    write_text(path, "\n".join(lines))
    return {"filePath": rel, "linesReplaced": end - start + 1}


def op_find_replace(ex, p: dict) -> dict:
    prefix = "Error in find and replace: "
    rel, path = _note(ex, p.get("filePath"), prefix)
    find, repl = p.get("findText"), p.get("replaceText")
    if not isinstance(find, str) or not find or not isinstance(repl, str):
        raise ToolError(f"{prefix}findText and replaceText are required", "E_MISSING_REQUIRED_ARG")
    pattern = re.escape(find)
    if p.get("wholeWord"):
        pattern = rf"\b{pattern}\b"
    flags = re.ASCII | (0 if p.get("caseSensitive", True) is not False else re.IGNORECASE)  # JS \b is ASCII
    matches = re.finditer(pattern, content := read_text(path), flags)
    spans = (
        [(m.start(), m.end()) for m in matches]
        if p.get("replaceAll")
        else [(m.start(), m.end()) for m in [next(matches, None)] if m]
    )
    if spans:
        write_text(path, js_replace(content, spans, repl, literal=ex.strict))
    return {"filePath": rel, "replacements": len(spans)}


OPERATIONS = {
    "read": op_read,
    "create": op_create,
    "append": op_append,
    "prepend": op_prepend,
    "replace": op_replace,
    "replaceByLine": op_replace_by_line,
    "delete": op_delete,
    "findReplace": op_find_replace,
}
# batchContent checks these for truthiness up front, so an empty content or replaceText is refused
_BATCH_FIELDS = {
    "read": (),
    "create": ("content",),
    "append": ("content",),
    "prepend": ("content",),
    "replace": ("oldContent", "newContent"),
    "replaceByLine": ("startLine", "endLine", "newContent"),
    "delete": ("content",),
    "findReplace": ("findText", "replaceText"),
}

for _name, _op in [
    ("readContent", op_read),
    ("createContent", op_create),
    ("appendContent", op_append),
    ("prependContent", op_prepend),
    ("replaceContent", op_replace),
    ("deleteContent", op_delete),
    ("replaceByLine", op_replace_by_line),
    ("findReplaceContent", op_find_replace),
]:
    tool(f"contentManager_{_name}")(lambda ex, call, _op=_op: _op(ex, call.args))


@tool("contentManager_batchContent")
def batch_content(ex, call: Call):
    operations = call.args.get("operations")
    if not isinstance(operations, list) or not operations:
        raise ToolError("Operations array is required and cannot be empty", "E_MISSING_REQUIRED_ARG")
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("type") not in OPERATIONS:
            raise ToolError(
                f"Invalid operation at index {i}: type must be one of {', '.join(OPERATIONS)}", "E_ARG_VALUE"
            )
        params = op.get("params")
        if not isinstance(params, dict) or not params.get("filePath"):
            raise ToolError(f"Invalid operation at index {i}: params.filePath is required", "E_MISSING_REQUIRED_ARG")
        missing = [f for f in _BATCH_FIELDS[op["type"]] if not params.get(f)]
        if missing:
            raise ToolError(
                f"Invalid operation at index {i}: {op['type']} requires {', '.join(missing)}", "E_MISSING_REQUIRED_ARG"
            )
    results = []
    for op in operations:  # sequential, no rollback: earlier writes stay when a later one fails
        entry = {"type": op["type"], "filePath": op["params"]["filePath"]}
        try:
            results.append({"success": True, "data": OPERATIONS[op["type"]](ex, op["params"]), **entry})
        except ToolError as exc:
            results.append({"success": False, "error": str(exc), **entry})
    return {"results": results}
