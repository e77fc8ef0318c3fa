"""The tool registry: Tools/tool_schemas.json as real JSON Schema per tool.

Loaded once per process, validators compiled once per tool on first use, and a schema hash that
every dataset, checkpoint and report the toolkit writes is stamped with. jsonschema-rs is the one
JSON Schema engine of the toolkit (about 6x faster than the pure-Python package on the SFT set).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jsonschema_rs

from .context import clean_context_schema
from .issues import Finding

DEFAULT_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "tool_schemas.json"

_KIND_CODES = {
    "Required": "E_MISSING_REQUIRED_ARG",
    "AdditionalProperties": "E_UNEXPECTED_ARG",
    "Type": "E_ARG_TYPE",
    "Enum": "E_ARG_ENUM",
}


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    agent: str
    mode: str
    description: str
    parameters: dict
    hidden: bool = False

    def openai_tool(self) -> dict:
        """The tool as an OpenAI / llama.cpp / Ollama ``tools`` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolRegistry:
    def __init__(self, document: dict, path: Path | None = None):
        self.path = path
        self.document = document
        self.tools: dict[str, ToolSpec] = {}
        for entry in document["tools"]:
            spec = ToolSpec(
                entry["name"],
                entry["agent"],
                entry["mode"],
                entry.get("description", ""),
                entry["parameters"],
                bool(entry.get("hidden", False)),
            )
            self.tools[spec.name] = spec
        self.schema_hash = hashlib.sha256(canonical_json(document["tools"]).encode()).hexdigest()
        self._validators: dict[tuple[str, bool], jsonschema_rs.Validator] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def short_hash(self) -> str:
        return self.schema_hash[:12]

    def visible(self) -> list[ToolSpec]:
        return [t for t in self.tools.values() if not t.hidden]

    def agents(self) -> dict[str, list[str]]:
        """Agent name -> its tool names (hidden tools included), in registry order."""
        result: dict[str, list[str]] = {}
        for tool in self.tools.values():
            result.setdefault(tool.agent, []).append(tool.name)
        return result

    def openai_tools(self, names=None) -> list[dict]:
        chosen = self.visible() if names is None else [self.tools[n] for n in names]
        return [t.openai_tool() for t in chosen]

    def _validator(self, name: str, clean: bool = False) -> jsonschema_rs.Validator:
        """The tool's validator. By default the context object is only required to be an object
        (context.check_context judges it, with its own codes); the clean variant also demands a
        context that check_context would pass without a single finding."""
        key = (name, clean)
        validator = self._validators.get(key)
        if validator is None:
            schema = dict(self.tools[name].parameters)
            properties = dict(schema.get("properties", {}))
            if "context" in properties:
                properties["context"] = clean_context_schema() if clean else {"type": "object"}
            schema["properties"] = properties
            validator = self._validators[key] = jsonschema_rs.validator_for(schema)
        return validator

    def is_clean(self, name: str, arguments: dict) -> bool:
        """True when the arguments of a known tool, context included, have nothing to report:
        one compiled check that lets the common case skip the detailed Python checks."""
        try:
            return self._validator(name, clean=True).is_valid(arguments)
        except ValueError:  # jsonschema-rs gives up on very deep arguments; validate_arguments reports it
            return False

    def validate_arguments(self, name: str, arguments: dict, index: int | None = None) -> list[Finding]:
        """Schema findings for one known tool's arguments (required, unexpected, types, enums, values)."""
        validator = self._validator(name)
        try:
            if validator.is_valid(arguments):
                return []
            errors = list(validator.iter_errors(arguments))
        except ValueError as exc:  # "Recursion limit reached" on arguments nested hundreds deep
            return [Finding("E_ARG_VALUE", f"arguments cannot be checked against the schema: {exc}", index, name)]
        found = []
        for error in errors:
            kind = type(error.kind).__name__
            where = "/".join(str(p) for p in error.instance_path)
            if kind == "AdditionalProperties":
                for param in error.kind.unexpected:
                    prefix = f"{where}/" if where else ""
                    found.append(Finding("E_UNEXPECTED_ARG", f"unexpected parameter '{prefix}{param}'", index, name))
                continue
            code = _KIND_CODES.get(kind, "E_ARG_VALUE")
            if code == "E_MISSING_REQUIRED_ARG":
                missing = str(error.kind.property).strip('"')
                message = f"missing required parameter '{where + '/' if where else ''}{missing}'"
            else:
                message = f"{where or 'arguments'}: {error.message}"
            found.append(Finding(code, message, index, name))
        return found


@lru_cache(maxsize=8)
def _load(path: str) -> ToolRegistry:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if not isinstance(document, dict) or not isinstance(document.get("tools"), list):
        raise ValueError(f"{path} is not a tool schema file (expected an object with a 'tools' list)")
    return ToolRegistry(document, Path(path))


def load_registry(path: str | Path | None = None) -> ToolRegistry:
    """The registry from Tools/tool_schemas.json, or another file of the same shape (cached)."""
    return _load(str(Path(path or DEFAULT_SCHEMA_PATH).resolve()))
