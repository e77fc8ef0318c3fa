"""agentManager (custom agents in the plugin's settings file), the hidden commandManager, get_tools.

Custom agents live where the plugin keeps them: <vault>/.obsidian/plugins/claudesidian-mcp/data.json,
under customPrompts.prompts[]. The modes that call a language model need a provider: give the
executor an `llm` callable to run them; without one they return a clear error.
"""

from __future__ import annotations

import json

from Tools.schema.records import write_json_atomic

from .content import OPERATIONS
from .handlers import Call, ToolError, tool
from .fs import read_text

NO_PROVIDER = (
    "{mode} needs a model provider: none is configured for this vault executor "
    "(pass llm= to VaultExecutor, or run the call against the real plugin with --mcp-command)"
)


def _settings(ex) -> dict:
    try:
        data = json.loads(ex.settings_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    prompts = data.setdefault("customPrompts", {"enabled": True, "prompts": []})
    prompts.setdefault("prompts", [])
    return data


def _prompts(settings: dict) -> list[dict]:
    return settings["customPrompts"]["prompts"]


def find_agent(ex, key, settings: dict | None = None) -> dict | None:
    prompts = _prompts(settings or _settings(ex))
    return next((p for p in prompts if p.get("id") == key), None) or next(
        (p for p in prompts if isinstance(key, str) and str(p.get("name", "")).lower() == key.lower()), None
    )


def _agent_or_error(ex, settings: dict, key) -> dict:
    if not isinstance(key, str) or not key:
        raise ToolError("Agent id is required", "E_MISSING_REQUIRED_ARG")
    agent = find_agent(ex, key, settings)
    if agent is None:
        raise ToolError(f"Agent '{key}' not found")
    return agent


def _name_taken(settings: dict, name: str, other_than: str | None = None) -> None:
    if any(p.get("name", "").lower() == name.lower() and p.get("id") != other_than for p in _prompts(settings)):
        raise ToolError(f'A prompt with the name "{name}" already exists')


@tool("agentManager_listAgents")
def list_agents(ex, call: Call):
    prompts = _prompts(_settings(ex))
    shown = [p for p in prompts if p.get("isEnabled", True)] if call.args.get("enabledOnly") else prompts
    return {
        "prompts": shown,
        "totalCount": len(prompts),
        "enabledCount": sum(1 for p in prompts if p.get("isEnabled", True)),
    }


@tool("agentManager_getAgent")
def get_agent(ex, call: Call):
    key = call.args.get("id") or call.args.get("name")
    if not key:
        raise ToolError("Either id or name is required", "E_MISSING_REQUIRED_ARG")
    return _agent_or_error(ex, _settings(ex), key)


@tool("agentManager_createAgent")
def create_agent(ex, call: Call):
    a, settings = call.args, _settings(ex)
    for key in ("name", "description", "prompt"):
        if not isinstance(a.get(key), str) or not a[key].strip():
            raise ToolError(f"{key} is required", "E_MISSING_REQUIRED_ARG")
    _name_taken(settings, a["name"])
    rand = "".join(ex.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=9))
    agent = {
        "id": f"prompt_{ex.now_ms()}_{rand}",
        "name": a["name"],
        "description": a["description"],
        "prompt": a["prompt"],
        "isEnabled": a.get("isEnabled", True) is not False,
    }
    _prompts(settings).append(agent)
    write_json_atomic(ex.settings_path, settings)
    return agent


@tool("agentManager_updateAgent")
def update_agent(ex, call: Call):
    a, settings = call.args, _settings(ex)
    agent = _agent_or_error(ex, settings, a.get("id"))
    changes = {k: a[k] for k in ("name", "description", "prompt") if isinstance(a.get(k), str)}
    if isinstance(a.get("isEnabled"), bool):
        changes["isEnabled"] = a["isEnabled"]
    if not changes:
        raise ToolError("No updates provided for agent", "E_MISSING_REQUIRED_ARG")
    if "name" in changes:
        _name_taken(settings, changes["name"], agent["id"])
    agent.update(changes)
    write_json_atomic(ex.settings_path, settings)
    return agent


@tool("agentManager_deleteAgent")
def delete_agent(ex, call: Call):
    settings = _settings(ex)
    agent = _agent_or_error(ex, settings, call.args.get("id"))
    _prompts(settings).remove(agent)
    write_json_atomic(ex.settings_path, settings)
    return {"deleted": True, "id": agent["id"], "name": agent["name"]}


@tool("agentManager_toggleAgent")
def toggle_agent(ex, call: Call):
    settings = _settings(ex)
    agent = _agent_or_error(ex, settings, call.args.get("id"))
    agent["isEnabled"] = not agent.get("isEnabled", True)
    write_json_atomic(ex.settings_path, settings)
    return agent


def _llm(ex, mode: str):
    if ex.llm is None:
        raise ToolError(NO_PROVIDER.format(mode=mode), "E_PROVIDER_REQUIRED")
    return ex.llm


@tool("agentManager_listModels")
def list_models(ex, call: Call):
    llm = _llm(ex, "listModels")
    name = getattr(llm, "model_name", getattr(llm, "__name__", "custom"))
    return {"models": [{"provider": "custom", "id": name, "name": name}]}


def _run_prompt(ex, spec: dict) -> dict:
    llm = _llm(ex, "executePrompt")
    system = ""
    if spec.get("agent"):
        agent = find_agent(ex, spec["agent"])
        if agent is None:
            raise ToolError(f"Agent '{spec['agent']}' not found")
        system = agent.get("prompt", "")
    parts = []
    for raw in spec.get("filepaths") or []:
        rel, path = ex.resolve(raw)
        if not path.is_file():
            raise ToolError(f"File not found: {rel}")
        parts.append(f"--- {rel} ---\n{read_text(path)}")
    prompt = "\n\n".join(parts + [str(spec.get("prompt", ""))])
    response = str(llm(prompt, system=system, model=spec.get("model")))
    result = {
        "response": response if spec.get("returnContent", True) is not False else None,
        "model": spec.get("model"),
    }
    action = spec.get("action")
    if isinstance(action, dict) and action.get("type"):
        op = OPERATIONS.get(action["type"])
        if op is None:
            raise ToolError(f"Unknown action type: {action['type']}", "E_ARG_VALUE")
        params = {
            "filePath": action.get("targetPath") or action.get("filePath"),
            "content": response,
            "oldContent": action.get("oldContent"),
            "newContent": response,
            "startLine": action.get("position"),
            "endLine": action.get("position"),
        }
        result["actionPerformed"] = {"type": action["type"], "result": op(ex, params)}
    return result


@tool("agentManager_executePrompt")
def execute_prompt(ex, call: Call):
    return _run_prompt(ex, call.args)


@tool("agentManager_batchExecutePrompt")
def batch_execute_prompt(ex, call: Call):
    _llm(ex, "batchExecutePrompt")
    results = []
    for spec in call.args.get("prompts") or []:
        try:
            results.append({"success": True, **_run_prompt(ex, spec if isinstance(spec, dict) else {"prompt": spec})})
        except ToolError as exc:
            results.append({"success": False, "error": str(exc)})
    data = {"results": results}
    if call.args.get("mergeResponses"):
        data["merged"] = "\n\n".join(r["response"] or "" for r in results if r.get("success"))
    return data


@tool("agentManager_generateImage")
def generate_image(ex, call: Call):
    raise ToolError(
        "generateImage needs an image provider (Google Imagen): none is configured for this vault executor",
        "E_PROVIDER_REQUIRED",
    )


@tool("commandManager_listCommands")
@tool("commandManager_executeCommand")
def hidden_command(ex, call: Call):
    # the plugin registers commandManager with 0 modes (config/toolVisibility.ts), so every call fails
    raise ToolError(f"Tool {call.name} is not available: commandManager is hidden by the plugin", "E_HIDDEN_TOOL")


@tool("get_tools")
def get_tools(ex, call: Call):
    wanted = call.args.get("tools") or []
    visible = {t.name: t for t in ex.registry.visible() if t.name != "get_tools"}
    if not wanted:
        overview = {}
        for spec in visible.values():
            overview.setdefault(spec.agent, []).append(spec.mode)
        return {
            "agents": overview,
            "instruction": "Request tools by agent_mode name, e.g. contentManager_createContent.",
        }
    found, missing = [], []
    for name in wanted:
        spec = visible.get(name) if isinstance(name, str) else None
        if spec is None:
            missing.append(name)
            continue
        schema = dict(spec.parameters)
        schema["properties"] = {
            k: v
            for k, v in schema.get("properties", {}).items()
            if k not in ("context", "workspaceContext", "sessionId")
        }
        schema["required"] = [r for r in schema.get("required", []) if r not in ("context", "sessionId")]
        found.append({"name": spec.name, "description": spec.description, "inputSchema": schema})
    if not found:
        raise ToolError(
            f"No valid tools found. Requested: {', '.join(map(str, missing))}. "
            "Call get_tools with an empty list for an overview.",
            "E_UNKNOWN_TOOL",
        )
    return {
        "tools": found,
        "notFound": missing,
        "instruction": "Add a context object with all 7 fields (sessionId, workspaceId, sessionDescription, "
        "sessionMemory, toolContext, primaryGoal, subgoal) to every call.",
    }
