"""The one data contract: records, the context object, tool calls, the tool registry, issue codes."""

from .context import (
    CONTEXT_FIELDS,
    PromptIds,
    check_context,
    check_prompt_ids,
    extract_prompt_ids,
    generate_session_id,
    generate_workspace_id,
    is_session_id,
    is_workspace_id,
    make_context,
)
from .issues import CODES, Finding, IssueCode
from .registry import ToolRegistry, ToolSpec, load_registry
from .toolcalls import FORMATS, ParsedMessage, ToolCall, parse_content, parse_message, render_content, render_message

__all__ = [
    "CODES",
    "CONTEXT_FIELDS",
    "FORMATS",
    "Finding",
    "IssueCode",
    "ParsedMessage",
    "PromptIds",
    "ToolCall",
    "ToolRegistry",
    "ToolSpec",
    "check_context",
    "check_prompt_ids",
    "extract_prompt_ids",
    "generate_session_id",
    "generate_workspace_id",
    "is_session_id",
    "is_workspace_id",
    "load_registry",
    "make_context",
    "parse_content",
    "parse_message",
    "render_content",
    "render_message",
]
