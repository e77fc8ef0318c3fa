"""vaultLibrarian: searchContent, searchDirectory, searchMemory and the batch universal search.

Read-only. Dot-files and dot-folders are invisible, as they are to Obsidian's index. Note text is
cached per file by (mtime, size), so repeated searches over a large vault only stat the files.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .handlers import Call, Reply, ToolError, tool
from .fs import read_text, walk
from .patterns import BoundedPattern, glob_pattern

_FRONTMATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---\s*(?:\r?\n|\Z)", re.S)
_INLINE_TAG = re.compile(r"(?<![\w#])#([A-Za-z][\w/\-]*)")


def fuzzy_score(query: str, text: str) -> float | None:
    """Obsidian-style prepareFuzzySearch, normalised to 0..1: query characters in order in text."""
    q = [c for c in query.lower() if not c.isspace()]
    t = text.lower()
    if not q:
        return None
    pos, first, gaps = 0, -1, 0
    for ch in q:
        found = t.find(ch, pos)
        if found < 0:
            return None
        if first < 0:
            first = found
        elif found > pos:
            gaps += found - pos
        pos = found + 1
    raw = -(gaps + first * 0.5)  # Obsidian's scores are <= 0; normalised as 1 + score/100
    return max(0.0, min(1.0, 1 + raw / 100))


def _cached_note(ex, rel: str, st) -> tuple[str, str]:
    cache = ex.__dict__.setdefault("_note_cache", {})
    key = (st.st_mtime_ns, st.st_size)
    hit = cache.get(rel)
    if hit is None or hit[0] != key:
        text = read_text(ex.root / rel)
        hit = cache[rel] = (key, text, text.lower())
    return hit[1], hit[2]


def _path_filter(ex, paths):
    """The searchContent paths filter: literal prefixes or globs; None = the whole vault."""
    if not isinstance(paths, list) or not paths:
        return None
    tests = []
    for raw in paths:
        if not isinstance(raw, str):
            continue
        rel, _ = ex.resolve(raw)  # globs too: a '..' or a NUL is refused, not just left unmatched
        if any(c in rel for c in "*?["):
            tests.append(glob_pattern(ex, rel).search)
            continue
        if not rel:
            return None
        tests.append(lambda p, rel=rel: p.startswith(rel))  # the plugin's literal prefix match
    return lambda p: any(t(p) for t in tests)


def frontmatter(text: str) -> dict:
    match = _FRONTMATTER.match(text)
    if not match:
        return {}
    try:
        import yaml

        data = yaml.safe_load(match.group(1))
    except Exception:  # a broken block is just no frontmatter, as in Obsidian's cache
        return {}
    return (
        {k: v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v) for k, v in data.items()}
        if isinstance(data, dict)
        else {}
    )


def _snippet(text: str, at: int, length: int, size: int) -> str:
    half = size // 2
    start, end = max(0, at - half), min(len(text), at + length + half)
    return ("..." if start > 0 else "") + text[start:end] + ("..." if end < len(text) else "")


def _int(value, default: int, low: int, high: int) -> int:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return default
    return max(low, min(high, int(value)))


def search_content(
    ex, query: str, limit: int = 10, include_content: bool = True, snippet: int = 200, paths=None
) -> list[dict]:
    lower_query = query.lower().strip()
    words = [w for w in re.split(r"\s+", lower_query) if len(w) > 2]
    allowed = _path_filter(ex, paths)
    hits = []
    for rel, is_dir, st in walk(ex):
        if is_dir or not rel.endswith(".md") or (allowed is not None and not allowed(rel)):
            continue
        name = rel.rsplit("/", 1)[-1][:-3]
        name_score = fuzzy_score(lower_query, name)
        keyword, at, length = None, 0, 0
        if include_content:
            text, lower = _cached_note(ex, rel, st)
            found = lower.find(lower_query)
            if found >= 0:
                keyword, at, length = 0.9, found, len(lower_query)
            elif words:
                positions = [p for p in (lower.find(w) for w in words) if p >= 0]
                if positions:
                    keyword, at = max(0.3, 0.8 * len(positions) / len(words)), min(positions)
        if keyword is None and name_score is None:
            continue
        if keyword is not None and name_score is not None:
            score, method = 0.6 * keyword + 0.4 * name_score, "combined"
        elif keyword is not None:
            score, method = keyword, "keyword"
        else:
            score, method = name_score, "fuzzy"
        hits.append((score, rel, st, at, length, method))
    hits.sort(key=lambda h: (-h[0], h[1]))
    results = []
    for score, rel, st, at, length, method in hits[:limit]:
        text, _ = _cached_note(ex, rel, st)
        parent = rel.rsplit("/", 1)[0] if "/" in rel else "/"
        results.append(
            {
                "filePath": rel,
                "title": rel.rsplit("/", 1)[-1][:-3],
                "content": _snippet(text, at, length, snippet) if include_content else "",
                "score": round(score, 4),
                "searchMethod": method,
                "frontmatter": frontmatter(text),
                "metadata": {"fileExtension": "md", "parentFolder": parent, "modifiedTime": int(st.st_mtime * 1000)},
            }
        )
    return results


@tool("vaultLibrarian_searchContent")
def search_content_mode(ex, call: Call):
    a = call.args
    query = a.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ToolError("Query parameter is required and cannot be empty", "E_MISSING_REQUIRED_ARG")
    results = search_content(
        ex,
        query,
        _int(a.get("limit"), 10, 1, 50),
        a.get("includeContent", True) is not False,
        _int(a.get("snippetLength"), 200, 50, 1000),
        a.get("paths"),
    )
    return Reply(None, {"results": results, "totalResults": len(results), "query": query})


def _iso_ms(value) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ToolError(f"Invalid date in dateRange: {value}", "E_ARG_VALUE") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp() * 1000)


@tool("vaultLibrarian_searchDirectory")
def search_directory(ex, call: Call):
    a = call.args
    query, paths = a.get("query"), a.get("paths")
    if not isinstance(query, str) or not query.strip() or not isinstance(paths, list) or not paths:
        raise ToolError(
            "searchDirectory needs a non-empty query and at least one entry in paths", "E_MISSING_REQUIRED_ARG"
        )
    kind = a.get("searchType") if a.get("searchType") in ("files", "folders") else "both"
    depth = _int(a.get("depth"), 0, 1, 10) or None
    types = {t.lower().lstrip(".") for t in a.get("fileTypes") or [] if isinstance(t, str)}
    pattern = BoundedPattern(ex, a["pattern"]) if isinstance(a.get("pattern"), str) and a["pattern"] else None
    date_range = a.get("dateRange") if isinstance(a.get("dateRange"), dict) else {}
    after, before = _iso_ms(date_range.get("start")), _iso_ms(date_range.get("end"))
    seen: dict[str, tuple] = {}
    for raw in paths:
        if not isinstance(raw, str):
            continue
        rel, folder = ex.resolve(raw)
        if any(c in rel for c in "*?["):
            glob = glob_pattern(ex, rel)
            found = ((p, d, st) for p, d, st in walk(ex) if glob.search(p))
        else:
            found = walk(ex, rel, depth) if folder.is_dir() else ()  # a missing folder is no error
        for item in found:
            seen.setdefault(item[0], item)
    results = []
    for rel, is_dir, st in seen.values():
        if (kind == "files" and is_dir) or (kind == "folders" and not is_dir):
            continue
        name = rel.rsplit("/", 1)[-1]
        ext = "" if is_dir or "." not in name else name.rsplit(".", 1)[-1].lower()
        modified = int(st.st_mtime * 1000)
        if (
            (types and (is_dir or ext not in types))
            or (pattern and not pattern.search(rel))
            or (after is not None and modified < after)
            or (before is not None and modified > before)
        ):
            continue
        score = fuzzy_score(query, name.rsplit(".", 1)[0] if ext else name)
        if score is None:
            path_score = fuzzy_score(query, rel)
            if path_score is None:
                continue
            score = path_score * 0.8
        snippet = ""
        if not is_dir and ext == "md" and a.get("includeContent", True) is not False:
            snippet = _cached_note(ex, rel, st)[0][:200]
        results.append(
            {
                "path": rel,
                "name": name,
                "type": "folder" if is_dir else "file",
                "score": round(score, 4),
                "searchMethod": "fuzzy",
                "snippet": snippet,
                "metadata": {
                    "fileType": ext,
                    "created": int(st.st_ctime * 1000),
                    "modified": modified,
                    "size": 0 if is_dir else st.st_size,
                },
            }
        )
    results.sort(key=lambda r: (-r["score"], r["path"]))
    results = results[: _int(a.get("limit"), 20, 1, 100)]
    return Reply(None, {"results": results, "totalResults": len(results), "query": query})


def search_memory(ex, query: str, workspace_id: str | None, types, limit: int) -> list[dict]:
    from .memory import all_workspaces, load_workspace

    q = query.lower()
    chosen = (
        [load_workspace(ex, workspace_id)] if workspace_id and load_workspace(ex, workspace_id) else all_workspaces(ex)
    )
    out = []

    def hit(kind, text, **fields):
        if q in text.lower():
            out.append({"type": kind, "score": 1.0 if text.lower().startswith(q) else 0.8, **fields})

    for ws in chosen:
        if "workspaces" in types:
            hit(
                "workspace",
                f"{ws.get('name', '')} {ws.get('description', '')} {ws.get('context', {}).get('purpose', '')}",
                id=ws["id"],
                name=ws.get("name"),
                workspaceId=ws["id"],
            )
        for session in ws.get("sessions", {}).values():
            if "sessions" in types:
                hit(
                    "session",
                    f"{session.get('name', '')} {session.get('description', '')}",
                    id=session["id"],
                    name=session.get("name"),
                    workspaceId=ws["id"],
                    timestamp=session.get("startTime"),
                )
            for state in session.get("states", {}).values():
                snap = state.get("state") or state.get("snapshot") or {}
                if "states" in types:
                    hit(
                        "state",
                        f"{state.get('name', '')} {snap.get('description', '')}",
                        id=state["id"],
                        name=state.get("name"),
                        workspaceId=ws["id"],
                        sessionId=session["id"],
                        timestamp=state.get("created"),
                    )
            for trace in session.get("memoryTraces", {}).values():
                kind = "toolCalls" if trace.get("type") == "tool_call" else "traces"
                if kind in types:
                    hit(
                        "trace",
                        str(trace.get("content", "")),
                        id=trace["id"],
                        traceType=trace.get("type"),
                        content=trace.get("content"),
                        workspaceId=ws["id"],
                        sessionId=session["id"],
                        timestamp=trace.get("timestamp"),
                    )
    out.sort(key=lambda r: (-r["score"], -(r.get("timestamp") or 0)))
    return out[:limit]


_MEMORY_TYPES = ("traces", "toolCalls", "sessions", "states", "workspaces")


@tool("vaultLibrarian_searchMemory")
def search_memory_mode(ex, call: Call):
    a = call.args
    query = a.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ToolError("Query parameter is required and cannot be empty", "E_MISSING_REQUIRED_ARG")
    types = [t for t in a.get("memoryTypes") or _MEMORY_TYPES if t in _MEMORY_TYPES] or list(_MEMORY_TYPES)
    workspace = a.get("workspaceId") if a.get("workspaceId") not in (None, "", "global-workspace") else None
    results = search_memory(ex, query, workspace, set(types), _int(a.get("limit"), 20, 1, 100))
    return {"results": results, "totalResults": len(results), "query": query}


_CATEGORIES = ("files", "folders", "content", "workspaces", "sessions", "states", "memory_traces", "tags", "properties")


def _universal(ex, search: dict) -> dict:
    query = search.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ToolError("Each search needs a non-empty query", "E_MISSING_REQUIRED_ARG")
    limit = _int(search.get("limit"), 5, 1, 20)
    excluded = set(search.get("excludeCategories") or [])
    categories = [c for c in _CATEGORIES if c not in excluded]
    allowed = _path_filter(ex, search.get("paths"))
    q = query.lower()
    found: dict[str, list] = {}
    entries = [(rel, d, st) for rel, d, st in walk(ex) if allowed is None or allowed(rel)]
    for cat in ("files", "folders"):
        if cat in categories:
            scored = [(fuzzy_score(q, rel.rsplit("/", 1)[-1]), rel) for rel, d, _ in entries if d == (cat == "folders")]
            found[cat] = [
                {"path": rel, "score": round(s, 4)}
                for s, rel in sorted((x for x in scored if x[0] is not None), key=lambda x: (-x[0], x[1]))[:limit]
            ]
    if "content" in categories:
        found["content"] = [
            {"path": r["filePath"], "score": r["score"], "snippet": r["content"]}
            for r in search_content(
                ex, query, limit, search.get("includeContent", True) is not False, 200, search.get("paths")
            )
        ]
    memory_map = {"workspaces": "workspaces", "sessions": "sessions", "states": "states", "memory_traces": "traces"}
    for cat, kind in memory_map.items():
        if cat in categories:
            found[cat] = search_memory(ex, query, None, {kind}, limit)
    if "tags" in categories or "properties" in categories:
        tags, props = [], []
        for rel, d, st in entries:
            if d or not rel.endswith(".md"):
                continue
            text, _ = _cached_note(ex, rel, st)
            meta = frontmatter(text)
            note_tags = (
                meta.get("tags")
                if isinstance(meta.get("tags"), list)
                else [meta["tags"]]
                if isinstance(meta.get("tags"), str)
                else []
            )
            note_tags = [str(t) for t in note_tags] + _INLINE_TAG.findall(text)
            if any(q.lstrip("#") in t.lower() for t in note_tags):
                tags.append({"path": rel, "tags": sorted(set(note_tags)), "score": 0.9})
            if any(q in f"{k}: {v}".lower() for k, v in meta.items()):
                props.append({"path": rel, "properties": meta, "score": 0.8})
        if "tags" in categories:
            found["tags"] = tags[:limit]
        if "properties" in categories:
            found["properties"] = props[:limit]
    prioritized = [c for c in search.get("prioritizeCategories") or [] if c in found]
    order = prioritized + [c for c in found if c not in prioritized]
    return {
        "query": query,
        "categories": {c: found[c] for c in order},
        "totalResults": sum(len(v) for v in found.values()),
    }


@tool("vaultLibrarian_batch")
def batch_search(ex, call: Call):
    searches = call.args.get("searches")
    if not isinstance(searches, list) or not searches:
        raise ToolError("searches must be a non-empty array", "E_MISSING_REQUIRED_ARG")
    results = []
    for search in searches[:100]:
        try:
            results.append({"success": True, **_universal(ex, search if isinstance(search, dict) else {})})
        except ToolError as exc:
            results.append({"success": False, "error": str(exc)})
    if call.args.get("mergeResults"):
        merged = [
            dict(item, category=cat, query=r["query"])
            for r in results
            if r["success"]
            for cat, items in r["categories"].items()
            for item in items
        ]
        merged.sort(key=lambda m: -m.get("score", 0))
        return {"merged": merged, "totalResults": len(merged)}
    return {"results": results}
