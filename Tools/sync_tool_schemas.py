"""Regenerate Tools/tool_schemas.json from the schemas the plugin's modes advertise.

    python Tools/sync_tool_schemas.py --from ../shared/reference/schemas/claudesidian_modes_2025-12-05.json

The plugin's own schema bugs are fixed here, each for a reason given in docs/tool-schemas.md:
- ``sessionId`` is dropped from every ``required`` list (the server fills it in from
  ``context.sessionId``; it is not even a property of most modes);
- loadSession's advertised schema is a copy of createSession's; it is replaced by the parameters
  the mode really reads;
- ``context`` becomes the first, required property of every tool, batchContent included, with
  ``sessionMemory`` non-empty;
- unknown parameters are refused (``additionalProperties: false``) so that invented parameters
  are caught in training data;
- ``get_tools`` (the chat view's meta-tool) is added with its real ``tools`` argument;
- commandManager's modes are kept but marked ``hidden`` (the plugin hides them from clients).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import typer

from Tools.schema.context import CONTEXT_FIELDS
from Tools.schema.registry import DEFAULT_SCHEMA_PATH, ToolRegistry

HIDDEN_AGENTS = {"commandManager"}

LOAD_SESSION_PROPERTIES = {
    "sessionId": {"type": "string", "description": "ID (or name) of the session to load"},
    "targetSessionId": {
        "type": "string",
        "description": "Alternative to sessionId: ID (or name) of the session to load",
    },
    "sessionName": {"type": "string", "description": "Name for the continuation session"},
    "sessionDescription": {"type": "string", "description": "Description for the continuation session"},
    "createContinuationSession": {
        "type": "boolean",
        "default": True,
        "description": "Create a new session that continues the loaded one",
    },
}

GET_TOOLS_DESCRIPTION = (
    "Return the JSON schemas of the named tools (agent_mode names such as 'contentManager_createContent'); "
    "an empty list returns an overview of every agent and its modes. Every later call must include the "
    "7-field context object."
)


def context_schema(template: dict) -> dict:
    schema = copy.deepcopy(template)
    schema["required"] = list(CONTEXT_FIELDS)
    schema["properties"]["sessionMemory"]["minLength"] = 1
    schema["additionalProperties"] = False
    return schema


def convert_mode(name: str, entry: dict, context: dict) -> dict:
    schema = copy.deepcopy(entry["schema"])
    properties = schema.get("properties", {})
    if name == "memoryManager_loadSession":
        kept = {k: properties[k] for k in ("workspaceContext",) if k in properties}
        properties = {**LOAD_SESSION_PROPERTIES, **kept}
        required = ["sessionId"]
    else:
        required = [r for r in schema.get("required", []) if r not in ("sessionId", "context")]
    properties.pop("context", None)
    agent, mode = name.split("_", 1)
    return {
        "name": name,
        "agent": agent,
        "mode": mode,
        "description": entry.get("description", ""),
        "hidden": agent in HIDDEN_AGENTS,
        "parameters": {
            "type": "object",
            "properties": {"context": context, **properties},
            "required": ["context", *required],
            "additionalProperties": False,
        },
    }


def build_document(modes: dict, source_name: str) -> dict:
    template = next(
        e["schema"]["properties"]["context"] for e in modes.values() if "context" in e["schema"].get("properties", {})
    )
    context = context_schema(template)
    tools = [convert_mode(name, modes[name], context) for name in sorted(modes)]
    tools.append(
        {
            "name": "get_tools",
            "agent": "meta",
            "mode": "get_tools",
            "description": GET_TOOLS_DESCRIPTION,
            "hidden": False,
            "parameters": {
                "type": "object",
                "properties": {
                    "context": context,
                    "tools": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "agent_mode tool names; empty for an overview",
                    },
                },
                "required": ["context", "tools"],
                "additionalProperties": False,
            },
        }
    )
    return {"source": source_name, "generated_by": "Tools/sync_tool_schemas.py", "tools": tools}


def sync(
    source: Path = typer.Option(
        ..., "--from", help="A claudesidian_modes_*.json file: agent_mode -> {description, schema}."
    ),
    output: Path = typer.Option(DEFAULT_SCHEMA_PATH, "--output", "-o", help="Where to write the registry."),
) -> None:
    """Regenerate the tool registry from the plugin's advertised mode schemas."""
    try:
        modes = json.loads(source.read_text(encoding="utf-8"))
        if not isinstance(modes, dict) or not all(isinstance(v, dict) and "schema" in v for v in modes.values()):
            raise ValueError("expected an object of agent_mode -> {description, schema}")
        document = build_document(modes, source.name)
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"error: cannot read {source}: {exc}", err=True)
        raise typer.Exit(2) from None
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, output)
    registry = ToolRegistry(document)
    hidden = sum(t.hidden for t in registry.tools.values())
    typer.echo(f"wrote {output}: {len(registry)} tools ({hidden} hidden), schema hash {registry.short_hash}")


def main(argv: list[str] | None = None) -> int:
    app = typer.Typer(add_completion=False)
    app.command()(sync)
    return app(args=argv, prog_name="sync_tool_schemas.py")


if __name__ == "__main__":
    main()
