"""memoryManager: workspaces, sessions, states and traces in <vault>/.workspaces/*.json.

The layout is the plugin's legacy JSON store (CLAUDESIDIAN_TOOLS.md section 4.6): one file per
workspace holding its sessions, each session holding its memory traces and states, plus an
index.json. Every write rewrites the whole workspace file through a temp file and a rename.
"""

from __future__ import annotations

import copy
import json
import re

from Tools.schema.context import generate_session_id, generate_workspace_id
from Tools.schema.records import write_json_atomic

from .handlers import Call, Reply, ToolError, tool
from .fs import walk
from .paths import is_hidden, is_store_id

STORE = ".workspaces"
_FIELD_PATH = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[\d+\])*")
_AUTO_KEY_FILES = ("index.md", "readme.md", "summary.md", "moc.md", "overview.md")


# -- storage -----------------------------------------------------------------------------------
def _rand(ex, prefix: str) -> str:
    return f"{prefix}_{ex.now_ms()}_{''.join(ex.rng.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=9))}"


def _store_path(ex, name: str):
    """A file of the store, confined like a user path (a symlinked .workspaces leading out is refused)."""
    return ex.resolve(f"{STORE}/{name}", data=True)[1]


def _file(ex, workspace_id):
    """The file of a workspace, or None when the id cannot name one (a path, '..', NUL, over 128 characters)."""
    if not is_store_id(workspace_id) or workspace_id == "index":
        return None
    return _store_path(ex, f"{workspace_id}.json")


def load_workspace(ex, workspace_id) -> dict | None:
    path = _file(ex, workspace_id)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    data["id"] = workspace_id  # a workspace is its file: an id written inside it never names another file
    return data


def all_workspaces(ex) -> list[dict]:
    folder = ex.root / STORE
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem != "index" and (ws := load_workspace(ex, path.stem)) is not None:
            found.append(ws)
    return found


def save_workspace(ex, ws: dict) -> None:
    path = _file(ex, ws.get("id"))
    if path is None:
        raise ToolError(f"Invalid workspace id: {ws.get('id')!r}", "E_WORKSPACE_ID_FORMAT")
    write_json_atomic(path, ws)
    index_path = _store_path(ex, "index.json")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        index = {}
    if not isinstance(index, dict) or not isinstance(index.get("workspaces"), dict):
        index = {}
    meta = index.setdefault("workspaces", {})
    meta[ws["id"]] = {k: ws.get(k) for k in ("id", "name", "description", "rootFolder", "created", "lastAccessed")}
    index["byName"] = {m["name"].lower(): i for i, m in meta.items() if isinstance(m.get("name"), str)}
    index["byDescription"] = {i: m.get("description") or "" for i, m in meta.items()}
    index["byFolder"] = {}
    for i, m in meta.items():
        index["byFolder"].setdefault(m.get("rootFolder") or "/", []).append(i)
    index.setdefault("sessionsByWorkspace", {})[ws["id"]] = list(ws.get("sessions", {}))
    write_json_atomic(index_path, index)


def new_workspace(ex, workspace_id: str, name: str, root_folder: str, **context) -> dict:
    now = ex.now_ms()
    return {
        "id": workspace_id,
        "name": name,
        "description": context.pop("description", ""),
        "rootFolder": root_folder,
        "created": now,
        "lastAccessed": now,
        "isActive": True,
        "context": {"purpose": "", "currentGoal": "", "workflows": [], "keyFiles": [], "preferences": "", **context},
        "sessions": {},
    }


def workspace_for(ex, workspace_id: str) -> dict:
    """The workspace a call runs in; 'default' is created on first use, as DefaultWorkspaceManager does."""
    ws = load_workspace(ex, workspace_id)
    if ws is None and workspace_id == "default":
        ws = new_workspace(ex, "default", "Default Workspace", "/", purpose="Default workspace for general use")
        save_workspace(ex, ws)
    if ws is None:
        raise ToolError(f"Workspace not found: {workspace_id}")
    return ws


def find_workspace(ex, key: str) -> dict | None:
    ws = load_workspace(ex, key)
    if ws is None and isinstance(key, str):
        ws = next((w for w in all_workspaces(ex) if str(w.get("name", "")).lower() == key.lower()), None)
    return ws


def new_session(ex, ws: dict, session_id: str, name: str = "Default Session", description: str = "", **extra) -> dict:
    session = {
        "id": session_id,
        "name": name,
        "description": description,
        "startTime": ex.now_ms(),
        "isActive": True,
        "memoryTraces": {},
        "states": {},
        **extra,
    }
    ws.setdefault("sessions", {})[session_id] = session
    return session


def find_session(ws: dict, key) -> dict | None:
    sessions = ws.get("sessions", {})
    if key in sessions:
        return sessions[key]
    return next(
        (s for s in sessions.values() if isinstance(key, str) and str(s.get("name", "")).lower() == key.lower()), None
    )


def add_trace(ex, session: dict, kind: str, content: str, metadata: dict | None = None) -> dict:
    trace = {
        "id": _rand(ex, "trace"),
        "timestamp": ex.now_ms(),
        "type": kind,
        "content": content,
        "metadata": metadata or {},
    }
    session.setdefault("memoryTraces", {})[trace["id"]] = trace
    return trace


def record_tool_call(ex, call: Call, envelope: dict) -> None:
    """ToolCallTraceService: a tool_call trace for every call, in the session's workspace."""
    try:
        ws = workspace_for(ex, call.workspace_id)
    except ToolError:
        return
    session = find_session(ws, call.session_id) or new_session(ex, ws, call.session_id)
    agent, _, mode = call.name.partition("_")
    params = {k: v for k, v in call.args.items() if k != "context"}
    add_trace(
        ex,
        session,
        "tool_call",
        f"{call.name} {'succeeded' if envelope.get('success') else 'failed'}",
        {
            "tool": call.name,
            "agent": agent,
            "mode": mode,
            "params": params,
            "success": bool(envelope.get("success")),
            "result": {"error": envelope.get("error")} if not envelope.get("success") else {},
        },
    )
    save_workspace(ex, ws)


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _root_folder(ex, raw) -> str:
    rel, path = ex.resolve(raw if isinstance(raw, str) else "")
    if path.exists() and not path.is_dir():
        raise ToolError(f"Root folder is a file, not a folder: {rel}")
    path.mkdir(parents=True, exist_ok=True)
    return rel or "/"


# -- workspaces --------------------------------------------------------------------------------
@tool("memoryManager_createWorkspace")
def create_workspace(ex, call: Call):
    a = call.args
    for key in ("name", "rootFolder", "purpose", "currentGoal"):
        if not isinstance(a.get(key), str) or not a[key].strip():
            raise ToolError(f"{key} is required", "E_MISSING_REQUIRED_ARG")
    workflows = a.get("workflows")
    if not isinstance(workflows, list) or not workflows:
        raise ToolError("At least one workflow is required", "E_MISSING_REQUIRED_ARG")
    for i, flow in enumerate(workflows):
        if not isinstance(flow, dict) or not all(isinstance(flow.get(k), str) for k in ("name", "when", "steps")):
            raise ToolError(f"Workflow {i} must have name, when and steps (steps is one string)", "E_ARG_VALUE")
    root = _root_folder(ex, a["rootFolder"])
    key_files = _strings(a.get("keyFiles"))
    for rel, is_dir, _ in sorted(walk(ex, "" if root == "/" else root, 1)):
        if not is_dir and rel.rsplit("/", 1)[-1].lower() in _AUTO_KEY_FILES and rel not in key_files:
            key_files.append(rel)
    context = {
        "purpose": a["purpose"],
        "currentGoal": a["currentGoal"],
        "workflows": [{k: f[k] for k in ("name", "when", "steps")} for f in workflows],
        "keyFiles": key_files,
        "preferences": a.get("preferences") or "",
    }
    if a.get("dedicatedAgentId"):
        from .agents import find_agent

        agent = find_agent(ex, a["dedicatedAgentId"])
        if agent is not None:
            context["dedicatedAgent"] = {"agentId": agent["id"], "agentName": agent["name"]}
    ws = new_workspace(
        ex,
        generate_workspace_id(ex.now_ms(), ex.rng),
        a["name"],
        root,
        description=a.get("description") or "",
        **context,
    )
    save_workspace(ex, ws)
    return {
        "workspaceId": ws["id"],
        "workspace": ws,
        "validationPrompt": f"Workspace '{ws['name']}' created. Load it with memoryManager_loadWorkspace "
        f"(id: {ws['id']}) to bind this session to it.",
    }


@tool("memoryManager_listWorkspaces")
def list_workspaces(ex, call: Call):
    sort_by = (
        call.args.get("sortBy") if call.args.get("sortBy") in ("name", "created", "lastAccessed") else "lastAccessed"
    )
    items = [
        {k: ws.get(k) for k in ("id", "name", "description", "rootFolder", "created", "lastAccessed")}
        for ws in all_workspaces(ex)
    ]
    items.sort(
        key=lambda w: str(w.get(sort_by) or "").lower() if sort_by == "name" else w.get(sort_by) or 0,
        reverse=call.args.get("order", "desc") != "asc",
    )
    limit = call.args.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        items = items[:limit]
    return {"workspaces": items, "total": len(items)}


def _under(ex, root) -> list[tuple[str, int]]:
    """Visible files under a workspace's root folder (which comes from the store, so it is checked too)."""
    try:
        rel, folder = ex.resolve(root if isinstance(root, str) else "")
    except ToolError:
        return []
    return (
        [(p, st.st_mtime_ns) for p, is_dir, st in walk(ex, rel) if not is_dir and not is_hidden(p)]
        if folder.is_dir()
        else []
    )


@tool("memoryManager_loadWorkspace")
def load_workspace_mode(ex, call: Call):
    key = call.args.get("id")
    ws = find_workspace(ex, key) if isinstance(key, str) and key else None
    if ws is None:
        raise ToolError(f"Workspace '{key}' not found (searched by both name and ID)")
    ws["lastAccessed"] = ex.now_ms()
    save_workspace(ex, ws)
    ex.session_workspace[call.session_id] = ws["id"]  # later calls of this session default to it
    call.workspace_id = ws["id"]
    limit = call.args.get("limit", 3)
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 3
    ctx = ws.get("context", {})
    files = _under(ex, ws.get("rootFolder", "/"))
    sessions = sorted(ws.get("sessions", {}).values(), key=lambda s: -(s.get("startTime") or 0))
    states = sorted(
        ((st, s["id"]) for s in sessions for st in s.get("states", {}).values()),
        key=lambda p: -(p[0].get("created") or 0),
    )
    data = {
        "context": f"Workspace '{ws['name']}': {ctx.get('purpose', '')} Current goal: {ctx.get('currentGoal', '')}".strip(),
        "workflows": ctx.get("workflows", []),
        "workspaceStructure": sorted(rel for rel, _ in files),
        "recentFiles": [rel for rel, _ in sorted(files, key=lambda f: -f[1])[:limit]],
        "keyFiles": ctx.get("keyFiles", []),
        "preferences": ctx.get("preferences", ""),
        "sessions": [{"id": s["id"], "name": s.get("name"), "startTime": s.get("startTime")} for s in sessions[:limit]],
        "states": [
            {"id": st["id"], "name": st.get("name"), "sessionId": sid, "created": st.get("created")}
            for st, sid in states[:limit]
        ],
        "pagination": {"limit": limit, "totalSessions": len(sessions), "totalStates": len(states)},
    }
    if ctx.get("dedicatedAgent"):
        data["agent"] = ctx["dedicatedAgent"]
    return Reply(data, {"workspaceContext": {"workspaceId": ws["id"], "workspacePath": [ws.get("rootFolder", "/")]}})


def _walk(target, path: str, create: bool):
    """Parent container and last key of a dot/bracket path; KeyError/IndexError when it does not exist."""
    keys = [int(k[1:-1]) if k.startswith("[") else k for k in re.findall(r"\[\d+\]|[^.\[\]]+", path)]
    for key in keys[:-1]:
        if isinstance(key, str) and isinstance(target, dict) and key not in target and create:
            target[key] = {}
        target = target[key]
    return target, keys[-1]


@tool("memoryManager_updateWorkspace")
def update_workspace(ex, call: Call):
    ws = load_workspace(ex, call.args.get("workspaceId"))
    if ws is None:
        raise ToolError(f"Workspace not found: {call.args.get('workspaceId')}")
    field_path, value = call.args.get("fieldPath"), call.args.get("newValue")
    if not isinstance(field_path, str) or not _FIELD_PATH.fullmatch(field_path):
        raise ToolError(f"Invalid field path: {field_path}", "E_ARG_VALUE")
    if field_path in ("id", "sessions") or field_path.startswith("sessions"):
        raise ToolError(f"Invalid field path: {field_path} cannot be changed with updateWorkspace", "E_ARG_VALUE")
    updated = copy.deepcopy(ws)
    try:
        parent, key = _walk(updated, field_path, create=True)
        old = parent.get(key) if isinstance(parent, dict) else parent[key]
        if old == value:
            return {
                "updated": False,
                "message": "No changes detected",
                "oldValue": old,
                "newValue": value,
                "workspace": ws,
            }
        if field_path == "rootFolder":
            value = _root_folder(ex, value)
        parent[key] = value
    except (KeyError, IndexError, TypeError):
        raise ToolError(f"Invalid field path: {field_path} does not exist in the workspace", "E_ARG_VALUE") from None
    updated["lastAccessed"] = ex.now_ms()
    save_workspace(ex, updated)
    return {"updated": True, "oldValue": old, "newValue": value, "workspace": updated}


# -- sessions ----------------------------------------------------------------------------------
@tool("memoryManager_createSession")
def create_session(ex, call: Call):
    a = call.args
    ws = workspace_for(ex, call.workspace_id)
    session_id = (
        a.get("newSessionId")
        if isinstance(a.get("newSessionId"), str) and a["newSessionId"]
        else generate_session_id(ex.now_ms(), ex.rng)
    )
    session = new_session(
        ex,
        ws,
        session_id,
        a.get("name") or f"Session {ex.now_ms()}",
        a.get("description") or "",
        sessionGoal=a.get("sessionGoal") or "",
        tags=_strings(a.get("tags")),
        previousSessionId=a.get("previousSessionId"),
    )
    if a.get("generateContextTrace", True) is not False:
        add_trace(
            ex,
            session,
            "context",
            f"Session '{session['name']}' started. Goal: {session['sessionGoal'] or 'none given'}",
            {"contextDepth": a.get("contextDepth", "standard")},
        )
    save_workspace(ex, ws)
    return {
        "sessionId": session_id,
        "name": session["name"],
        "workspaceId": ws["id"],
        "startTime": session["startTime"],
    }


def _summary(session: dict) -> dict:
    return {
        "id": session["id"],
        "name": session.get("name"),
        "description": session.get("description", ""),
        "startTime": session.get("startTime"),
        "isActive": session.get("isActive", True),
        "traceCount": len(session.get("memoryTraces", {})),
        "stateCount": len(session.get("states", {})),
    }


@tool("memoryManager_listSessions")
def list_sessions(ex, call: Call):
    ws = workspace_for(ex, call.workspace_id)
    sessions = sorted(
        ws.get("sessions", {}).values(),
        key=lambda s: str(s.get("name", "")).lower(),
        reverse=call.args.get("order") == "desc",
    )
    limit = call.args.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        sessions = sessions[:limit]
    return {"sessions": [_summary(s) for s in sessions], "total": len(ws.get("sessions", {})), "workspaceId": ws["id"]}


@tool("memoryManager_loadSession")
def load_session(ex, call: Call):
    a = call.args
    key = a.get("targetSessionId") or a.get("sessionId")
    ws = workspace_for(ex, call.workspace_id)
    session = find_session(ws, key)
    if session is None:
        raise ToolError(f"Session '{key}' not found in workspace {ws['id']}")
    traces = sorted(session.get("memoryTraces", {}).values(), key=lambda t: -(t.get("timestamp") or 0))
    data = {"session": _summary(session), "traces": traces[:10]}
    if a.get("createContinuationSession", True) is not False:
        cont = new_session(
            ex,
            ws,
            generate_session_id(ex.now_ms(), ex.rng),
            a.get("sessionName") or f"Continuation of {session.get('name')}",
            a.get("sessionDescription") or session.get("description", ""),
            previousSessionId=session["id"],
        )
        add_trace(
            ex,
            cont,
            "session_restoration",
            f"Restored session '{session.get('name')}'",
            {"restoredSessionId": session["id"]},
        )
        save_workspace(ex, ws)
        data["newSessionId"] = cont["id"]
    return data


@tool("memoryManager_updateSession")
def update_session(ex, call: Call):
    a = call.args
    changes = {k: a[k] for k in ("name", "description", "sessionGoal") if isinstance(a.get(k), str)}
    if not changes:
        raise ToolError("No updates provided for session", "E_MISSING_REQUIRED_ARG")
    ws = workspace_for(ex, call.workspace_id)
    key = a.get("targetSessionId") or a.get("sessionId") or call.session_id
    session = find_session(ws, key)
    if session is None:
        raise ToolError(f"Session '{key}' not found in workspace {ws['id']}")
    session.update(changes)
    save_workspace(ex, ws)
    return {"session": _summary(session), "updated": sorted(changes)}


# -- states ------------------------------------------------------------------------------------
@tool("memoryManager_createState")
def create_state(ex, call: Call):
    a = call.args
    for key in ("name", "conversationContext", "activeTask", "reasoning"):
        if not isinstance(a.get(key), str) or not a[key].strip():
            raise ToolError(f"{key} is required", "E_MISSING_REQUIRED_ARG")
    ws = workspace_for(ex, call.workspace_id)
    session_id = a.get("targetSessionId") or call.session_id
    session = find_session(ws, session_id) or new_session(ex, ws, session_id)
    now, state_id = ex.now_ms(), _rand(ex, "state")
    files, steps, tags = _strings(a.get("activeFiles")), _strings(a.get("nextSteps")), _strings(a.get("tags"))
    snapshot = {
        "id": state_id,
        "name": a["name"],
        "workspaceId": ws["id"],
        "created": now,
        "sessionId": session["id"],
        "timestamp": now,
        "description": a.get("description") or f"{a['activeTask']} - {a['reasoning']}",
        "context": {
            "workspaceContext": ws.get("context", {}),
            "conversationContext": a["conversationContext"],
            "activeTask": a["activeTask"],
            "activeFiles": files,
            "nextSteps": steps,
            "reasoning": a["reasoning"],
        },
        "state": {
            "workspace": {k: v for k, v in ws.items() if k != "sessions"},
            "recentTraces": [t["id"] for t in list(session.get("memoryTraces", {}).values())[-5:]],
            "contextFiles": files,
            "metadata": {
                "tags": tags,
                "reason": a.get("reason") or "",
                "includeSummary": bool(a.get("includeSummary")),
            },
        },
    }
    session.setdefault("states", {})[state_id] = {"id": state_id, "name": a["name"], "created": now, "state": snapshot}
    save_workspace(ex, ws)
    return {"stateId": state_id, "name": a["name"], "sessionId": session["id"], "workspaceId": ws["id"], "created": now}


def _state_view(entry: dict, with_context: bool) -> dict:
    snap = entry.get("state") or entry.get("snapshot") or {}  # 'snapshot' before December 2025
    view = {
        "id": entry["id"],
        "name": entry.get("name"),
        "created": entry.get("created"),
        "description": snap.get("description", ""),
        "tags": snap.get("state", {}).get("metadata", {}).get("tags", []),
    }
    if with_context:
        view["context"] = snap.get("context", {})
    return view


@tool("memoryManager_listStates")
def list_states(ex, call: Call):
    a = call.args
    ws = workspace_for(ex, call.workspace_id)
    session = find_session(ws, a.get("sessionId") or call.session_id)
    entries = list((session or {}).get("states", {}).values())
    entries.sort(key=lambda e: e.get("created") or 0, reverse=a.get("order", "desc") != "asc")
    size = (
        a.get("pageSize")
        if isinstance(a.get("pageSize"), int) and a.get("pageSize", 0) >= 1
        else (a.get("limit") or len(entries) or 1)
    )
    page = a.get("page") if isinstance(a.get("page"), int) and a.get("page", 0) >= 0 else 0
    chosen = [_state_view(e, bool(a.get("includeContext"))) for e in entries[page * size : (page + 1) * size]]
    tags = set(_strings(a.get("tags")))
    if tags:  # the plugin filters after paginating, so a page can come back short
        chosen = [s for s in chosen if tags & set(s["tags"])]
    return {"states": chosen, "total": len(entries), "page": page, "pageSize": size}


def _find_state(session: dict | None, key) -> dict | None:
    states = (session or {}).get("states", {})
    if key in states:
        return states[key]
    return next(
        (s for s in states.values() if isinstance(key, str) and str(s.get("name", "")).lower() == key.lower()), None
    )


@tool("memoryManager_loadState")
def load_state(ex, call: Call):
    a = call.args
    ws = workspace_for(ex, call.workspace_id)
    session = find_session(ws, call.session_id)
    entry = _find_state(session, a.get("stateId"))
    if entry is None:
        raise ToolError(f"State '{a.get('stateId')}' not found in session {call.session_id}")
    snap = entry.get("state") or entry.get("snapshot") or {}
    target = session
    if a.get("continueExistingSession") is False:
        target = new_session(
            ex,
            ws,
            generate_session_id(ex.now_ms(), ex.rng),
            a.get("sessionName") or f"Continuation of {entry.get('name')}",
            a.get("sessionDescription") or "",
            previousSessionId=session["id"],
        )
    add_trace(
        ex,
        target,
        "session_restoration",
        f"Restored state '{entry.get('name')}'",
        {"stateId": entry["id"], "restorationGoal": a.get("restorationGoal") or ""},
    )
    save_workspace(ex, ws)
    return {
        "stateId": entry["id"],
        "name": entry.get("name"),
        "sessionId": target["id"],
        "restoredContext": snap.get("context", {}),
        "description": snap.get("description", ""),
    }


@tool("memoryManager_updateState")
def update_state(ex, call: Call):
    a = call.args
    if not isinstance(a.get("stateId"), str) or not a["stateId"]:
        raise ToolError("State ID is required", "E_MISSING_REQUIRED_ARG")
    ws = workspace_for(ex, call.workspace_id)
    entry = next((e for s in ws.get("sessions", {}).values() if (e := _find_state(s, a["stateId"]))), None)
    if entry is None:
        raise ToolError(f"State '{a['stateId']}' not found in workspace {ws['id']}")
    snap = entry.setdefault("state", entry.pop("snapshot", {}))
    if isinstance(a.get("name"), str) and a["name"]:
        entry["name"] = snap["name"] = a["name"]
    if isinstance(a.get("description"), str):
        snap["description"] = a["description"]
    meta = snap.setdefault("state", {}).setdefault("metadata", {})
    tags = [t for t in meta.get("tags", []) if t not in set(_strings(a.get("removeTags")))]
    meta["tags"] = tags + [t for t in _strings(a.get("addTags")) if t not in tags]
    save_workspace(ex, ws)
    return _state_view(entry, False)
