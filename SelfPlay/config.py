"""SelfPlay's configuration: SelfPlay/configs/*.yaml loaded into dataclasses.

Every key is read; an unknown or missing key is an error naming the file and the key, so a weight
that is misspelt cannot be silently ignored (the earlier project's YAML weights were). agents.yaml
is generated from Tools/tool_schemas.json:

    python -m SelfPlay.config --write-agents      # keeps the weights already in the file
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TYPES = ("tool", "behavioral")


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class PromptSpec:
    system: str
    user: Template
    temperature: float
    max_tokens: int


@dataclass(frozen=True)
class AnswerSpec:
    temperature: float
    max_tokens: int
    system_prompt: bool
    inject_ids: bool


@dataclass(frozen=True)
class UserSpec:
    weight: float
    prompt: PromptSpec
    answer: AnswerSpec


@dataclass(frozen=True)
class Variation:
    name: str
    weight: float
    instructions: str


@dataclass(frozen=True)
class EnvironmentSpec:
    prompt: PromptSpec
    variations: dict[str, Variation]
    session_context: Template


@dataclass(frozen=True)
class Scenario:
    """A behavioural situation and its validation criteria (the evaluator's prompt-case fields)."""

    id: str
    weight: float
    situation: str
    expected_tools: tuple[str, ...] = ()
    allowed_tools: tuple[str, ...] = ()
    expected_response_type: str | None = None
    behavior_expectations: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    expected_arguments: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Behavior:
    name: str
    weight: float
    description: str
    scenarios: dict[str, Scenario]


@dataclass(frozen=True)
class ToolChoice:
    name: str
    agent: str
    weight: float
    description: str


@dataclass(frozen=True)
class Agent:
    name: str
    weight: float
    tools: dict[str, ToolChoice]


@dataclass(frozen=True)
class SelfPlayConfig:
    environment: EnvironmentSpec
    user_tool: UserSpec
    user_behavioral: UserSpec
    agents: dict[str, Agent]
    behaviors: dict[str, Behavior]
    schema_hash: str
    directory: Path

    def user(self, kind: str) -> UserSpec:
        return self.user_tool if kind == "tool" else self.user_behavioral

    def tool(self, name: str) -> ToolChoice:
        return next(a.tools[name] for a in self.agents.values() if name in a.tools)

    def scenario(self, behavior: str, scenario: str) -> Scenario:
        return self.behaviors[behavior].scenarios[scenario]


# -- weighted choices (the one sampler, so tests can check it against the configured weights) -------
def pick(rng: random.Random, weights: dict[str, float]) -> str:
    """One key, drawn with probability weight / sum(weights); deterministic for a seeded rng."""
    total = sum(weights.values())
    point = rng.random() * total
    for key, weight in weights.items():
        point -= weight
        if point < 0:
            return key
    return next(k for k, w in reversed(weights.items()) if w > 0)


def type_weights(config: SelfPlayConfig) -> dict[str, float]:
    return {"tool": config.user_tool.weight, "behavioral": config.user_behavioral.weight}


def tool_probabilities(config: SelfPlayConfig) -> dict[str, float]:
    """P(tool) for a tool example: P(agent) x P(tool | agent)."""
    agents = sum(a.weight for a in config.agents.values())
    result = {}
    for agent in config.agents.values():
        tools = sum(t.weight for t in agent.tools.values())
        for tool in agent.tools.values():
            result[tool.name] = (agent.weight / agents) * (tool.weight / tools if tools else 0.0)
    return result


@dataclass(frozen=True)
class Task:
    """What one example is about, drawn from the configured weights."""

    kind: str  # "tool" or "behavioral"
    variation: str
    tool: str | None = None
    agent: str | None = None
    behavior: str | None = None
    scenario: str | None = None


def draw_task(config: SelfPlayConfig, rng: random.Random, kind: str | None = None) -> Task:
    """Type (70/30 by default), environment variation, then tool (agent, then tool) or behaviour
    (behaviour, then scenario), each by its configured weight."""
    kind = kind or pick(rng, type_weights(config))
    variation = pick(rng, {v.name: v.weight for v in config.environment.variations.values()})
    if kind == "tool":
        agent = config.agents[pick(rng, {a.name: a.weight for a in config.agents.values()})]
        tool = pick(rng, {t.name: t.weight for t in agent.tools.values()})
        return Task(kind, variation, tool=tool, agent=agent.name)
    behavior = config.behaviors[pick(rng, {b.name: b.weight for b in config.behaviors.values()})]
    return Task(
        kind,
        variation,
        behavior=behavior.name,
        scenario=pick(rng, {s.id: s.weight for s in behavior.scenarios.values()}),
    )


# -- what the prompts carry ------------------------------------------------------------------------
def render_parameters(parameters: dict) -> str:
    """The task parameters appended to prompts 1 and 2 as a JSON block: the same facts the prose
    states, in a form any backend (the template teacher included) can read exactly."""
    return "```json\n" + json.dumps(parameters, ensure_ascii=False) + "\n```"


def parse_parameters(text: str) -> dict | None:
    """The last ```json block of a prompt, when it holds an object with a 'task'; else None."""
    start = text.rfind("```json")
    if start == -1:
        return None
    end = text.find("```", start + 7)
    try:
        value = json.loads(text[start + 7 : end if end != -1 else None])
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("task"), str) else None


def render_session_context(config: SelfPlayConfig, session_id: str, workspace_id: str, workspace: dict) -> str:
    """The <session_context> / <current_workspace> system prompt, ids written by code."""
    folders = [f for f in workspace.get("folders") or [] if isinstance(f, str)]
    return config.environment.session_context.substitute(
        session_id=session_id,
        workspace_id=workspace_id,
        name=workspace.get("name", "Workspace"),
        description=workspace.get("description") or "-",
        root_folder=workspace.get("rootFolder") or "/",
        folders=", ".join(folders) or "-",
    ).strip()


# -- loading -------------------------------------------------------------------------------------
class _Reader:
    """Reads one mapping, remembering which keys were used; leftovers are errors."""

    def __init__(self, data, where: str):
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        self.data, self.where, self.used = data, where, set()

    def get(self, key: str, kind=None, default=...):
        if key not in self.data:
            if default is ...:
                raise ConfigError(f"{self.where}: missing key '{key}'")
            return default
        self.used.add(key)
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is not None and not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float):
            raise ConfigError(f"{self.where}: '{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def weight(self, key: str = "weight") -> float:
        value = self.get(key, float)
        if value < 0:
            raise ConfigError(f"{self.where}: '{key}' must be >= 0, got {value}")
        return value

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ConfigError(f"{self.where}: unknown key(s) {', '.join(map(repr, extra))}")


def _yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None


def _prompt(r: _Reader) -> PromptSpec:
    return PromptSpec(
        system=r.get("system", str),
        user=Template(r.get("user", str)),
        temperature=r.get("temperature", float),
        max_tokens=r.get("max_tokens", int),
    )


def _user(path: Path) -> UserSpec:
    r = _Reader(_yaml(path), str(path))
    a = _Reader(r.get("answer", dict), f"{path}: answer")
    answer = AnswerSpec(
        a.get("temperature", float), a.get("max_tokens", int), a.get("system_prompt", bool), a.get("inject_ids", bool)
    )
    a.done()
    spec = UserSpec(r.weight(), _prompt(r), answer)
    r.done()
    return spec


def _environment(path: Path) -> EnvironmentSpec:
    r = _Reader(_yaml(path), str(path))
    variations = {}
    for name, item in r.get("variations", dict).items():
        v = _Reader(item, f"{path}: variations.{name}")
        variations[name] = Variation(name, v.weight(), v.get("instructions", str))
        v.done()
    spec = EnvironmentSpec(_prompt(r), variations, Template(r.get("session_context", str)))
    r.done()
    return spec


def _strings(r: _Reader, key: str) -> tuple[str, ...]:
    value = r.get(key, list, [])
    if not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{r.where}: '{key}' must be a list of names")
    return tuple(value)


def _behaviors(path: Path, registry) -> dict[str, Behavior]:
    top = _Reader(_yaml(path), str(path))
    result = {}
    for name, item in top.get("behaviors", dict).items():
        b = _Reader(item, f"{path}: behaviors.{name}")
        scenarios = {}
        for i, raw in enumerate(b.get("scenarios", list)):
            s = _Reader(raw, f"{path}: behaviors.{name}.scenarios[{i}]")
            scenario = Scenario(
                id=s.get("id", str),
                weight=s.weight(),
                situation=s.get("situation", str),
                expected_tools=_strings(s, "expected_tools"),
                allowed_tools=_strings(s, "allowed_tools"),
                expected_response_type=s.get("expected_response_type", str, None),
                behavior_expectations=s.get("behavior_expectations", dict, {}),
                tags=_strings(s, "tags"),
                expected_arguments=s.get("expected_arguments", dict, {}),
            )
            s.done()
            unknown = [t for t in scenario.expected_tools + scenario.allowed_tools if t not in registry]
            if unknown:
                raise ConfigError(f"{s.where}: unknown tool(s) {', '.join(unknown)}")
            scenarios[scenario.id] = scenario
        result[name] = Behavior(name, b.weight(), b.get("description", str), scenarios)
        b.done()
    top.done()
    return result


def _agents(path: Path, registry) -> tuple[dict[str, Agent], str]:
    top = _Reader(_yaml(path), str(path))
    schema_hash = top.get("schema_hash", str)
    agents = {}
    for name, item in top.get("agents", dict).items():
        a = _Reader(item, f"{path}: agents.{name}")
        tools = {}
        for tool, raw in a.get("tools", dict).items():
            t = _Reader(raw, f"{path}: agents.{name}.tools.{tool}")
            if tool not in registry:
                raise ConfigError(
                    f"{t.where}: not a tool of Tools/tool_schemas.json (regenerate: python -m SelfPlay.config --write-agents)"
                )
            tools[tool] = ToolChoice(tool, name, t.weight(), t.get("description", str))
            t.done()
        agents[name] = Agent(name, a.weight(), tools)
        a.done()
    top.done()
    missing = sorted(set(registry.tools) - {t for a in agents.values() for t in a.tools})
    if missing or schema_hash != registry.schema_hash:
        raise ConfigError(
            f"{path} is stale for Tools/tool_schemas.json ({len(missing)} tool(s) missing, schema hash "
            f"{'differs' if schema_hash != registry.schema_hash else 'matches'}); "
            "regenerate it: python -m SelfPlay.config --write-agents"
        )
    return agents, schema_hash


def load_config(directory: str | Path | None = None, registry=None) -> SelfPlayConfig:
    """The five config files of a configs/ directory (default SelfPlay/configs)."""
    from Tools.schema.registry import load_registry

    root = Path(directory) if directory else CONFIG_DIR
    registry = registry or load_registry()
    agents, schema_hash = _agents(root / "agents.yaml", registry)
    return SelfPlayConfig(
        environment=_environment(root / "prompts" / "environment.yaml"),
        user_tool=_user(root / "prompts" / "user_tool.yaml"),
        user_behavioral=_user(root / "prompts" / "user_behavioral.yaml"),
        agents=agents,
        behaviors=_behaviors(root / "behaviors.yaml", registry),
        schema_hash=schema_hash,
        directory=root,
    )


# -- agents.yaml from the registry ---------------------------------------------------------------
HIDDEN_WEIGHT = 0.5  # an agent of hidden tools: the right answer is to say they are unavailable; asked rarely


def _first_sentence(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    text = text if end == -1 else text[: end + 1]
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def agents_document(registry, previous: dict | None = None) -> str:
    """agents.yaml for registry; weights already set in previous (a loaded agents.yaml) are kept."""
    old = (previous or {}).get("agents") or {}
    lines = [
        "# Generated from Tools/tool_schemas.json by `python -m SelfPlay.config --write-agents`.",
        "# Tool examples draw an agent by its weight, then one of its tools by the tool's weight;",
        "# the description goes into prompt 2. Regenerating keeps the weights set here.",
        "# commandManager is hidden by the plugin: its right answer is to say so, without a call.",
        f"schema_hash: {registry.schema_hash}",
        "agents:",
    ]
    for agent, names in registry.agents().items():
        entry = old.get(agent) or {}
        visible = sum(not registry.tools[n].hidden for n in names)
        # by default every visible tool is equally likely: an agent weighs as many tools as it has
        lines += [f"  {agent}:", f"    weight: {float(entry.get('weight', visible or HIDDEN_WEIGHT))}", "    tools:"]
        for name in names:
            weight = ((entry.get("tools") or {}).get(name) or {}).get("weight", 1.0)
            spec = registry.tools[name]
            description = _first_sentence(spec.description) or spec.mode
            lines.append(
                f"      {name}: {{weight: {float(weight)}, description: {json.dumps(description, ensure_ascii=False)}}}"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from Tools.cli_common import ArgumentParser, die
    from Tools.schema.registry import load_registry

    parser = ArgumentParser(
        prog="python -m SelfPlay.config", description="Check SelfPlay's config files, or regenerate agents.yaml."
    )
    parser.add_argument(
        "--write-agents", action="store_true", help="regenerate configs/agents.yaml from Tools/tool_schemas.json"
    )
    parser.add_argument("--dir", type=Path, default=CONFIG_DIR, help="configs directory (default SelfPlay/configs)")
    args = parser.parse_args(argv)
    registry = load_registry()
    if args.write_agents:
        from Tools.schema.records import write_text_atomic

        path = args.dir / "agents.yaml"
        previous = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
        write_text_atomic(path, agents_document(registry, previous))
        print(f"wrote {path}: {len(registry)} tools, schema {registry.short_hash}")
    try:
        config = load_config(args.dir, registry)
    except ConfigError as exc:
        die(str(exc))
    print(
        f"{args.dir}: {len(config.agents)} agents, {sum(len(a.tools) for a in config.agents.values())} tools, "
        f"{len(config.behaviors)} behaviours, {len(config.environment.variations)} environment variations: ok"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
