"""Labelling: what an answer is expected to do, and whether it does it.

Self-play labels with the evaluator's judge (Evaluator/scoring.score_case: the shared validator,
then expected tools, arguments and the behaviour rubric), plus execution in a fresh vault sandbox
with --execute-mcp, plus the quality filters (truncated answers, answers that echo the request).
Whole records also pass the validator's rule for negatives (no structural error) before they are
written, so every file self-play writes passes Tools/validate_syngen.py.
The expectation comes from the prompt-set case, or for generated examples from the example's
metadata and SelfPlay/configs (the tool asked for; the behaviour scenario's criteria). A negative's
`metadata.codes` are the error codes this judge found, so they can be checked again at any time.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from Evaluator.prompt_sets import PromptCase
from Evaluator.scoring import score_case
from Tools.schema.issues import Finding
from Tools.schema.records import first_message, messages
from Tools.schema.validate import record_passes, validate_record

from .config import SelfPlayConfig

_WORDS = re.compile(r"[a-z0-9]+")


def _substitute(value, variables: dict):
    """$workspace_id and friends in a scenario's expected_arguments."""
    if isinstance(value, str) and value.startswith("$"):
        return variables.get(value[1:], value)
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    return value


def expectation(
    config: SelfPlayConfig,
    registry,
    *,
    kind: str,
    question: str,
    system: str | None = None,
    tools=(),
    behavior: str | None = None,
    scenario: str | None = None,
    workspace_id: str | None = None,
    case_id: str = "example",
    expected_arguments: dict | None = None,
) -> PromptCase:
    """The prompt case an answer is judged against. Tool examples: the tools asked for must be
    called (a hidden tool's right answer is text that calls nothing). Behavioural examples: the
    scenario's criteria from behaviors.yaml."""
    if kind == "tool":
        visible = [t for t in tools if t in registry and not registry.tools[t].hidden]
        return PromptCase(
            id=case_id,
            question=question,
            system=system,
            expected_tools=visible,
            response_type=None if visible else "text_only",
            tags=["tool"],
            expected_arguments=expected_arguments or {},
        )
    spec = config.scenario(behavior, scenario)
    arguments = _substitute(spec.expected_arguments, {"workspace_id": workspace_id})
    return PromptCase(
        id=case_id,
        question=question,
        system=system,
        expected_tools=list(spec.expected_tools),
        allowed_tools=list(spec.allowed_tools),
        response_type=spec.expected_response_type,
        behavior=dict(spec.behavior_expectations),
        tags=[behavior, *spec.tags],
        expected_arguments={**arguments, **(expected_arguments or {})},
    )


def record_expectation(record: dict, config: SelfPlayConfig, registry) -> PromptCase:
    """The expectation of a record SelfPlay or the teacher wrote, rebuilt from its metadata."""
    meta = record.get("metadata") or {}
    system = first_message(record, "system")
    user = [m for m in messages(record) if isinstance(m, dict) and m.get("role") == "user"]
    return expectation(
        config,
        registry,
        kind=meta.get("type", "tool"),
        question=(user[-1]["content"] if user else ""),
        system=system["content"] if system else None,
        tools=meta.get("tools") or (),
        behavior=meta.get("behavior"),
        scenario=(meta.get("provenance") or {}).get("scenario"),
        workspace_id=meta.get("workspace_id"),
    )


def normalize_text(text: str) -> str:
    return " ".join(_WORDS.findall((text or "").casefold()))


def quality_findings(message: dict | None, finish_reason: str | None = None, echo_of=()) -> list[Finding]:
    """E_TRUNCATED when the answer hit the token limit; E_ECHO when its text repeats the request or
    a generation prompt (at least 6 words of it) and it makes no call."""
    found = []
    if message is None:
        return found
    if finish_reason == "length":
        found.append(Finding("E_TRUNCATED", "the answer stopped at the token limit (finish_reason 'length')"))
    text = normalize_text(message.get("content") if isinstance(message.get("content"), str) else "")
    if text and not message.get("tool_calls") and "tool_call" not in text:
        for source in echo_of:
            source = normalize_text(source)
            if len(source.split()) >= 6 and (source in text or text in source and len(text.split()) >= 6):
                found.append(Finding("E_ECHO", "the answer repeats the request instead of answering it"))
                break
    return found


@dataclass
class Verdict:
    """The label of one answer and why."""

    passed: bool
    codes: list[str]  # error codes, in the order found, each once
    findings: list[Finding] = field(default_factory=list)
    failed_stage: str | None = None
    format: str | None = None
    calls: list = field(default_factory=list)

    def report(self) -> dict:
        return {
            "valid": self.passed,
            "codes": self.codes,
            "failed_stage": self.failed_stage,
            "format": self.format,
            "calls": [c.name for c in self.calls],
            "findings": [f.to_dict() for f in self.findings],
        }


def judge(
    case: PromptCase,
    message: dict | None,
    registry,
    *,
    error: str | None = None,
    finish_reason: str | None = None,
    execute=None,
    echo_of=(),
) -> Verdict:
    """Label one answer: score_case (validator, tools, arguments, behaviour, execution) + quality filters."""
    score = score_case(case, message, registry, error, execute)
    extra = quality_findings(message, finish_reason, echo_of)
    findings = score.findings + extra
    codes = list(dict.fromkeys(f.code for f in findings if f.severity == "error"))
    failed = score.failed_stage or ("quality" if extra else None)
    return Verdict(not codes, codes, findings, failed, score.format, score.calls)


def check_writable(record: dict, registry) -> None:
    """The shared validator's rule for a negative: a record with a structural error (an answer
    that is not a message, content of the wrong type, ...) would fail any file it is written to,
    so it is not an example at all. Raises ValueError naming the codes."""
    findings = validate_record(record, registry)
    if not record_passes(findings, False):
        raise ValueError(", ".join(dict.fromkeys(f.code for f in findings if f.structural)))


class SandboxExecutor:
    """--execute-mcp for self-play: each answer's calls run in a fresh copy of the vault, with the
    session's workspace registered under its id first. One sandbox per thread, reset per answer."""

    def __init__(self, vault_path: str | None = None):
        from Tools.vault.sandbox import DEFAULT_TEMPLATE

        self.template = vault_path or str(DEFAULT_TEMPLATE)
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()

    def _sandbox(self):
        box = getattr(self._local, "box", None)
        if box is None:
            from Tools.vault.sandbox import VaultSandbox

            box = self._local.box = VaultSandbox(self.template)
            with self._lock:
                self._all.append(box)
        return box

    def for_session(self, session_id: str | None, workspace: dict | None):
        """An execute(calls) -> findings function for score_case, in a fresh sandbox holding the
        session's workspace ({"id", "name", "rootFolder", "folders", "description"}) and the session."""
        from Evaluator.execution import execute_calls

        def execute(calls) -> list[Finding]:
            box = self._sandbox()
            box.reset()
            if workspace and workspace.get("id") and workspace["id"] != "default":
                box.add_workspace(
                    workspace["id"],
                    workspace.get("name") or "Workspace",
                    workspace.get("rootFolder") or "/",
                    workspace.get("description") or "",
                    tuple(workspace.get("folders") or ()),
                    session_id,
                )
            return execute_calls(box, calls)

        return execute

    def close(self) -> None:
        with self._lock:
            for box in self._all:
                box.close()
            self._all.clear()
