"""Judge one record against the data contract. The validator, self-play labelling and the
evaluator all call this; nothing else decides whether a record or a tool call is right."""

from __future__ import annotations

from .context import PromptIds, check_context, check_prompt_ids, extract_prompt_ids
from .issues import Finding
from .records import ROLES
from .registry import ToolRegistry
from .toolcalls import ParsedMessage, ToolCall, parse_message


def check_call(
    call: ToolCall, registry: ToolRegistry, prompt_ids: PromptIds | None = None, index: int | None = None
) -> list[Finding]:
    """Everything wrong with one parsed call: unknown tool, context, ids, arguments against the schema."""
    if not call.name or call.arguments is None:
        return []  # the parser already reported the empty name or the malformed arguments
    spec = registry.tools.get(call.name)
    arguments = call.arguments
    if (
        spec is not None
        and not spec.hidden
        and next(iter(arguments), None) == "context"
        and registry.is_clean(call.name, arguments)
    ):
        found = []  # the common case: one compiled check instead of the detailed ones below
    else:
        found = []
        if spec is None:
            found.append(Finding("E_UNKNOWN_TOOL", f"unknown tool '{call.name}'", index, call.name))
        elif spec.hidden:
            found.append(
                Finding(
                    "E_HIDDEN_TOOL", f"'{call.name}' is hidden by the plugin and cannot be called", index, call.name
                )
            )
        found.extend(check_context(arguments, call.name, index))
        if spec is not None:
            found.extend(registry.validate_arguments(call.name, arguments, index))
    if prompt_ids is not None:
        found.extend(check_prompt_ids(arguments, prompt_ids, call.name, index))
    return found


def check_assistant_message(
    message: dict, registry: ToolRegistry, system_prompt: str | None = None, index: int | None = None
) -> tuple[ParsedMessage, list[Finding]]:
    """Parse one assistant message and judge each call, ids against the system prompt included."""
    parsed = parse_message(message, index)
    found = list(parsed.findings)
    if not parsed.calls and not parsed.findings and not parsed.text.strip():
        found.append(Finding("E_EMPTY_ASSISTANT", "assistant message has neither text nor tool calls", index))
    prompt_ids = extract_prompt_ids(system_prompt) if parsed.calls and system_prompt else None
    for call in parsed.calls:
        found.extend(check_call(call, registry, prompt_ids, index))
    return parsed, found


def validate_record(record: object, registry: ToolRegistry) -> list[Finding]:
    """All findings for one record, in message order."""
    if not isinstance(record, dict):
        return [Finding("E_NOT_OBJECT", f"record is {type(record).__name__}, not an object")]
    found: list[Finding] = []
    if "label" in record and not isinstance(record["label"], bool):
        found.append(Finding("E_LABEL_TYPE", f"label is {record['label']!r}; it must be true or false"))
    conversations = record.get("conversations")
    if conversations is None:
        return found + [Finding("E_NO_CONVERSATIONS", "record has no 'conversations' list")]
    if not isinstance(conversations, list) or not conversations:
        return found + [Finding("E_CONVERSATIONS_TYPE", "'conversations' must be a non-empty list")]

    system_prompt = None
    roles_seen = set()
    pending_calls: list[str | None] = []
    for index, message in enumerate(conversations):
        if not isinstance(message, dict):
            found.append(Finding("E_MESSAGE_TYPE", f"message is {type(message).__name__}, not an object", index))
            continue
        role = message.get("role")
        if role not in ROLES:
            found.append(Finding("E_ROLE", f"role {role!r} is not one of {', '.join(ROLES)}", index))
            continue
        roles_seen.add(role)
        content = message.get("content")
        has_calls = role == "assistant" and message.get("tool_calls") is not None
        if not isinstance(content, str) and not (content is None and has_calls):
            found.append(Finding("E_CONTENT_TYPE", f"{role} content is {type(content).__name__}, not a string", index))
            if role != "assistant":
                continue
        if role == "system":
            if system_prompt is None and isinstance(content, str):
                system_prompt = content
        elif role == "assistant":
            parsed, message_findings = check_assistant_message(message, registry, system_prompt, index)
            found.extend(message_findings)
            pending_calls = [c.id for c in parsed.calls]
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not pending_calls or (
                call_id is not None and call_id not in pending_calls and None not in pending_calls
            ):
                found.append(
                    Finding("E_ORPHAN_TOOL_RESULT", "tool message does not answer a preceding tool call", index)
                )
            elif call_id in pending_calls:
                pending_calls.remove(call_id)
            else:
                pending_calls.pop(0)
        else:
            pending_calls = []
    if "user" not in roles_seen:
        found.append(Finding("E_NO_USER", "conversation has no user message"))
    if "assistant" not in roles_seen:
        found.append(Finding("E_NO_ASSISTANT", "conversation has no assistant message"))
    return found


def record_passes(findings: list[Finding], label: bool | None, strict: bool = False) -> bool:
    """A negative (label false) fails only on structural errors; any other record fails on any
    error, and on any warning too when strict."""
    if label is False:
        return not any(f.structural for f in findings)
    bad = ("error", "warning") if strict else ("error",)
    return not any(f.severity in bad for f in findings)
