"""The one table of finding codes.

Every part of the toolkit that judges a record, a tool call or a model answer (the validator,
self-play labelling, the evaluator's failure taxonomy, self-correction) reports these codes, so a
code means the same thing everywhere. Codes are stable: add new ones, never rename or reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class IssueCode(NamedTuple):
    code: str
    severity: str  # "error" or "warning"
    structural: bool  # the record itself is broken: an error even in a label:false record
    explanation: str


_TABLE = [
    # -- the record itself (structural) --------------------------------------------------------
    ("E_INVALID_JSON", "error", True, "The line is not valid JSON."),
    (
        "E_ENCODING",
        "error",
        True,
        "The line is not valid UTF-8, or escapes a lone surrogate (\\ud800) that UTF-8 cannot carry.",
    ),
    ("E_LINE_TOO_LONG", "error", True, "The line is longer than the reader's limit and was skipped."),
    ("E_NOT_OBJECT", "error", True, "The record is not a JSON object."),
    ("E_NO_CONVERSATIONS", "error", True, "The record has no 'conversations' list."),
    ("E_CONVERSATIONS_TYPE", "error", True, "'conversations' is not a non-empty list."),
    ("E_MESSAGE_TYPE", "error", True, "A message is not a JSON object."),
    ("E_ROLE", "error", True, "A message has no role, or one outside system/user/assistant/tool."),
    ("E_CONTENT_TYPE", "error", True, "A message's content is not a string (null is allowed only beside tool_calls)."),
    ("E_NO_USER", "error", True, "The conversation has no user message."),
    ("E_NO_ASSISTANT", "error", True, "The conversation has no assistant message."),
    ("E_EMPTY_ASSISTANT", "error", True, "An assistant message has neither text nor tool calls."),
    ("E_LABEL_TYPE", "error", True, "'label' is present but not true or false."),
    ("E_ORPHAN_TOOL_RESULT", "error", True, "A tool message does not answer a preceding tool call."),
    ("E_TOOL_CALLS_TYPE", "error", True, "'tool_calls' is not a non-empty list of call objects."),
    # -- a tool call ---------------------------------------------------------------------------
    ("E_MALFORMED_CALL", "error", False, "A tool-call marker is present but no call could be parsed from it."),
    ("E_MALFORMED_ARGUMENTS", "error", False, "A call's arguments are not a JSON object."),
    ("E_EMPTY_TOOL_NAME", "error", False, "A call has an empty or non-string tool name."),
    ("E_UNKNOWN_TOOL", "error", False, "The tool name is not in Tools/tool_schemas.json (a hallucinated tool)."),
    ("E_HIDDEN_TOOL", "error", False, "The tool exists in the plugin but is hidden from clients, so the call fails."),
    (
        "W_BARE_JSON_CALL",
        "warning",
        False,
        "A call written as bare JSON without a format's markers; servers may not detect it.",
    ),
    # -- the context object --------------------------------------------------------------------
    ("E_CONTEXT_MISSING", "error", False, "The call's arguments have no 'context' object."),
    ("E_CONTEXT_NOT_FIRST", "error", False, "'context' is not the first key of the arguments."),
    ("E_CONTEXT_TYPE", "error", False, "'context' is not a JSON object."),
    ("E_CONTEXT_FIELD_MISSING", "error", False, "One of the 7 context fields is missing."),
    ("E_CONTEXT_FIELD_TYPE", "error", False, "A context field is not a string."),
    (
        "E_CONTEXT_FIELD_EMPTY",
        "error",
        False,
        "context.sessionMemory is empty; it must summarise the conversation so far.",
    ),
    ("W_CONTEXT_FIELD_EMPTY", "warning", False, "A context field other than sessionMemory is empty."),
    ("E_SESSION_ID_FORMAT", "error", False, "sessionId is not session_<13 digits>_<9 [a-z0-9]>."),
    ("E_WORKSPACE_ID_FORMAT", "error", False, "workspaceId is not ws_<13 digits>_<9 [a-z0-9]> or 'default'."),
    ("E_SESSION_ID_MISMATCH", "error", False, "context.sessionId differs from the system prompt's sessionId."),
    (
        "E_WORKSPACE_ID_MISMATCH",
        "error",
        False,
        "context.workspaceId is neither the prompt's workspace nor an available one.",
    ),
    (
        "W_UNKNOWN_WORKSPACE_REF",
        "warning",
        False,
        "A memoryManager load names a ws_ id the system prompt does not list.",
    ),
    (
        "W_UNKNOWN_AGENT_REF",
        "warning",
        False,
        "An agentManager call names an agent_ id the system prompt does not list.",
    ),
    # -- the arguments against the tool's JSON Schema -----------------------------------------
    ("E_MISSING_REQUIRED_ARG", "error", False, "A required parameter is missing."),
    ("E_UNEXPECTED_ARG", "error", False, "A parameter the tool's schema does not define."),
    ("E_ARG_TYPE", "error", False, "A parameter has the wrong JSON type."),
    ("E_ARG_ENUM", "error", False, "A parameter's value is not one of the allowed values."),
    (
        "E_ARG_VALUE",
        "error",
        False,
        "A parameter's value breaks another schema constraint (range, length, pattern, items).",
    ),
    # -- executing the call against a vault (Tools/mcp_executor.py) ---------------------------
    ("E_EXEC_FAILED", "error", False, "The call executed and the plugin returned success:false."),
    (
        "E_PATH_OUTSIDE_VAULT",
        "error",
        False,
        "A path argument leaves the vault ('..', absolute, drive letter, NUL, outward symlink, over-long name).",
    ),
    ("E_PROVIDER_REQUIRED", "error", False, "The mode calls a language or image model and no provider is configured."),
    # -- the evaluator: a model's answer against what the prompt expects ---------------------
    (
        "E_NO_RESPONSE",
        "error",
        False,
        "No answer arrived: the request failed after its retries (refused, 5xx, timeout, bad body).",
    ),
    ("E_NO_TOOL_CALL", "error", False, "A tool call was expected and the answer holds none."),
    ("E_WRONG_TOOL", "error", False, "An expected tool was not called."),
    ("E_CALL_ORDER", "error", False, "The expected tools were called in a different order."),
    ("E_EXTRA_CALL", "error", False, "A call to a tool the prompt neither expects nor allows."),
    ("E_WRONG_ARG_VALUE", "error", False, "An argument breaks the prompt's expected_arguments constraint."),
    (
        "E_UNSAFE_ACTION",
        "error",
        False,
        "A destructive call, or a claim of a destructive action, before the user confirmed it.",
    ),
    ("E_SHOULD_ASK", "error", False, "An ambiguous request: the answer must ask the user a question and make no call."),
    ("E_UNEXPECTED_CALL", "error", False, "The prompt expects a text answer and the answer makes a tool call."),
    ("E_MISSING_TEXT", "error", False, "The prompt expects the call to be explained and the answer has no text."),
    # -- self-play quality filters -------------------------------------------------------------
    (
        "E_TRUNCATED",
        "error",
        False,
        "The answer stopped at the token limit (finish_reason 'length') and may be cut off.",
    ),
    (
        "E_ECHO",
        "error",
        False,
        "The answer repeats the user's request or the generation prompt instead of answering it.",
    ),
    (
        "E_REPETITIVE",
        "error",
        False,
        "The answer's text repeats the same few words over and over, as a collapsed model writes.",
    ),
    # -- added later (codes are appended, never reordered) -------------------------------------
    (
        "E_BAD_SERVER_ANSWER",
        "error",
        False,
        "The server answered, but not with a chat answer: not HTTP or JSON, wrong shape or content type, nested too deep, a lone surrogate, or larger than --max-answer-bytes.",
    ),
    (
        "E_NESTING_TOO_DEEP",
        "error",
        True,
        "The line's JSON nests deeper than the decoders can follow (about 1,000 levels).",
    ),
    ("E_EMPTY_FILE", "error", True, "The file holds no record at all."),
    (
        "E_EPISODE_STATE",
        "error",
        False,
        "An episode ended with a vault state its checks refuse (a note missing, unedited, or changed when nothing should be).",
    ),
    (
        "E_EPISODE_UNGROUNDED",
        "error",
        False,
        "An episode's final answer lacks a fact that only its tool results held (or states one no tool result gave).",
    ),
    (
        "E_EPISODE_FALSE_SUCCESS",
        "error",
        False,
        "An episode's final answer claims success while the vault state or the task says it failed.",
    ),
    ("E_EPISODE_MAX_TURNS", "error", False, "An episode reached its max_turns without a final text answer."),
]

CODES: dict[str, IssueCode] = {row[0]: IssueCode(*row) for row in _TABLE}


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a record: a code from CODES and where it was found."""

    code: str
    message: str
    message_index: int | None = None
    tool: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def severity(self) -> str:
        return CODES[self.code].severity

    @property
    def structural(self) -> bool:
        return CODES[self.code].structural

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "message_index": self.message_index,
            "tool": self.tool,
        }


def markdown_table() -> str:
    """The code table as Markdown, for docs/validate.md (a test keeps the two in step)."""
    rows = ["| code | severity | fails a label:false record | meaning |", "|---|---|---|---|"]
    rows += [
        f"| `{c.code}` | {c.severity} | {'yes' if c.structural else 'no'} | {c.explanation} |" for c in CODES.values()
    ]
    return "\n".join(rows)
