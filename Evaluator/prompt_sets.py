"""Prompt sets: a JSON list of cases ``{id, question, tags, expected_tools, ...}``.

The earlier project's files load unchanged: fields this module does not interpret stay in
``metadata``. Fields it interprets (all optional except id and question):
- ``system``: the system prompt sent before the question (session / workspace ids live there);
- ``expected_tools``: tools the answer must call, in this order; ``[]`` or absent with a
  text-only expectation means "no call";
- ``allowed_tools``: further tools the answer may call without an E_EXTRA_CALL;
- ``expected_arguments``: ``{tool: {argument: constraint}}`` (see scoring.check_constraint);
- ``expected_response_type``: ``text_only``, ``tool_only`` or ``tool_text``;
- ``behavior_expectations`` / ``anti_patterns_to_avoid``: the behaviour rubric's inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent / "prompts"
BFCL_PREFIX = "bfcl:"  # ``bfcl:simple_python,multiple``: BFCL's categories, run by Evaluator/bfcl.py
_KNOWN = {
    "id",
    "question",
    "tags",
    "expected_tools",
    "allowed_tools",
    "expected_arguments",
    "system",
    "expected_response_type",
    "behavior_expectations",
    "anti_patterns_to_avoid",
}
RESPONSE_TYPES = {"text_only", "tool_only", "tool_text"}


class PromptSetError(ValueError):
    """A prompt set that cannot be used; the message names the file and the case."""


@dataclass
class PromptCase:
    id: str
    question: str
    tags: list[str] = field(default_factory=list)
    expected_tools: list[str] = field(default_factory=list)
    allowed_tools: list[str] = field(default_factory=list)
    expected_arguments: dict = field(default_factory=dict)
    system: str | None = None
    response_type: str | None = None
    behavior: dict = field(default_factory=dict)
    anti_patterns: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def messages(self) -> list[dict]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": self.question}]


@dataclass
class PromptSet:
    name: str
    path: Path
    sha256: str
    cases: list[PromptCase]

    def select(self, tags: list[str] | None = None, limit: int | None = None) -> "PromptSet":
        """The cases carrying any of tags (all when none), the first limit of them."""
        chosen = [c for c in self.cases if not tags or set(tags) & set(c.tags)]
        return PromptSet(self.name, self.path, self.sha256, chosen[:limit] if limit else chosen)


def _string_list(value, what: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PromptSetError(f"{where}: '{what}' must be a list of non-empty strings")
    return list(value)


def _case(item, where: str) -> PromptCase:
    if not isinstance(item, dict):
        raise PromptSetError(f"{where}: a case must be an object, not {type(item).__name__}")
    for key in ("id", "question"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise PromptSetError(f"{where}: '{key}' must be a non-empty string")
    where = f"{where} ({item['id']})"
    expected_arguments = item.get("expected_arguments") or {}
    if not isinstance(expected_arguments, dict) or not all(isinstance(v, dict) for v in expected_arguments.values()):
        raise PromptSetError(f"{where}: 'expected_arguments' must map tool names to objects of constraints")
    response_type = item.get("expected_response_type")
    if response_type is not None and response_type not in RESPONSE_TYPES:
        raise PromptSetError(f"{where}: 'expected_response_type' must be one of {', '.join(sorted(RESPONSE_TYPES))}")
    system = item.get("system")
    if system is not None and not isinstance(system, str):
        raise PromptSetError(f"{where}: 'system' must be a string")
    behavior, anti = item.get("behavior_expectations") or {}, item.get("anti_patterns_to_avoid") or {}
    if not isinstance(behavior, dict) or not isinstance(anti, dict):
        raise PromptSetError(f"{where}: 'behavior_expectations' and 'anti_patterns_to_avoid' must be objects")
    return PromptCase(
        id=item["id"],
        question=item["question"],
        tags=_string_list(item.get("tags"), "tags", where),
        expected_tools=_string_list(item.get("expected_tools"), "expected_tools", where),
        allowed_tools=_string_list(item.get("allowed_tools"), "allowed_tools", where),
        expected_arguments=expected_arguments,
        system=system,
        response_type=response_type,
        behavior=behavior,
        anti_patterns=anti,
        metadata={k: v for k, v in item.items() if k not in _KNOWN},
    )


def resolve_prompt_set(spec: str | Path) -> Path:
    """A path, or the name of a built-in set (``tool_prompts`` or ``tool_prompts.json``)."""
    path = Path(spec)
    if path.is_file():
        return path
    builtin = BUILTIN_DIR / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if path.parent == Path(".") and builtin.is_file():
        return builtin
    raise PromptSetError(
        f"{spec}: no such prompt set (built-in sets: {', '.join(builtin_sets())}; "
        f"BFCL's categories: {BFCL_PREFIX}simple_python,multiple,...)"
    )


def builtin_sets() -> list[str]:
    """The built-in sets' names; aliases (full_coverage, the seed's name for tool_prompts) are links, not listed."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.json") if not p.is_symlink())


def load_prompt_set(spec: str | Path) -> PromptSet:
    path = resolve_prompt_set(spec)
    data = path.read_bytes()
    try:
        items = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PromptSetError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(items, dict) and isinstance(items.get("prompts"), list):
        items = items["prompts"]
    return PromptSet(path.stem, path, hashlib.sha256(data).hexdigest(), parse_cases(items, str(path)))


def parse_cases(items, source: str = "prompt set") -> list[PromptCase]:
    """Cases from the decoded JSON list (a file's, or one built in memory); PromptSetError names
    the source and the case when one is unusable."""
    if not isinstance(items, list) or not items:
        raise PromptSetError(f"{source}: expected a non-empty JSON list of prompt cases")
    cases = [_case(item, f"{source}[{i}]") for i, item in enumerate(items)]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise PromptSetError(f"{source}: duplicate case id '{case.id}'")
        seen.add(case.id)
    return cases


def unknown_tools(prompt_set: PromptSet, registry) -> dict[str, list[str]]:
    """Case id -> expected or allowed tools the registry does not know (a stale prompt set)."""
    found = {}
    for case in prompt_set.cases:
        names = [
            n for n in case.expected_tools + case.allowed_tools + list(case.expected_arguments) if n not in registry
        ]
        if names:
            found[case.id] = names
    return found
