"""Compare a model's answer with the golden answer and name every difference with a code.

Tool-call answers (the golden message holds calls) are judged with the toolkit's one parser
(``Tools.schema.toolcalls``), the one judge (``Tools.schema.validate``: context, ids against the
system prompt, arguments against the tool's schema) and the evaluator's comparison
(``Evaluator.scoring.compare_tool_names`` / ``compare_arguments``); their codes come from the shared
table in ``Tools/schema/issues.py``. Text answers get the generic codes of ``TEXT_CODES`` below,
whose ``X`` is filled in (``LENGTH_SHORT_BY_12_TOKENS``, ``SIMILARITY_45%``). "Tokens" in those
codes are whitespace-separated words, so the codes do not depend on any tokenizer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import NamedTuple

from Evaluator.scoring import compare_arguments, compare_tool_names
from Tools.schema.issues import Finding
from Tools.schema.registry import ToolRegistry, load_registry
from Tools.schema.toolcalls import ParsedMessage, parse_message
from Tools.schema.validate import check_assistant_message


class TextCode(NamedTuple):
    code: str  # X stands for the number filled in
    rule: str


# The generic codes for text answers, in the order they are reported. Thresholds are part of the rule.
TEXT_CODES = (
    TextCode("PRIMARY_ANSWER_MISSING", "the answer has fewer than 2 word characters (empty, or punctuation only)"),
    TextCode("LENGTH_SHORT_BY_X_TOKENS", "the answer has X fewer words than the golden answer, X over 5"),
    TextCode("LENGTH_LONG_BY_X_TOKENS", "the answer has X more words than the golden answer, X over 5"),
    TextCode("TOO_BRIEF", "the answer has under half the golden answer's characters and at least 20 fewer"),
    TextCode("TOO_VERBOSE", "the answer has over twice the golden answer's characters and at least 50 more"),
    TextCode(
        "VERY_DIFFERENT_CONTENT", "character similarity to the golden answer (difflib ratio, case-folded) below 30%"
    ),
    TextCode("SIMILARITY_X%", "similarity X from 30% to 59%"),
    TextCode(
        "CLOSE_BUT_INACCURATE",
        "similarity 60% or more, yet the answer is not right (below 95%, or another code applies)",
    ),
    TextCode(
        "OFF_TOPIC_CONTENT",
        "over half of the answer's distinct words of 4+ letters occur neither in the question nor in the golden answer",
    ),
    TextCode("MISSING_NUMBERS", "the golden answer contains numbers and the answer none"),
    TextCode(
        "NUMERIC_ERROR_MISSING_X_VALUES",
        "X distinct numbers of the golden answer are absent from the answer (which has some)",
    ),
    TextCode("NUMERIC_ERROR_EXTRA_X_VALUES", "X distinct numbers of the answer are absent from the golden answer"),
    TextCode("STRUCTURE_SHOULD_BE_LIST", "the golden answer has 2+ list lines (-, *, 1.) and the answer none"),
    TextCode("STRUCTURE_SHOULD_BE_PROSE", "the answer has 2+ list lines and the golden answer none"),
    TextCode("MISSING_CODE_BLOCK", "the golden answer has a fenced code block (three backticks) and the answer none"),
    TextCode("FORMAT_SHOULD_BE_JSON", "the golden answer is a JSON object or array and the answer is not"),
    TextCode(
        "MISSING_KEY_CONCEPTS_X_TERMS",
        "X of the golden answer's distinct words of 5+ letters are absent from the answer, more than 30% of them",
    ),
)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w])")
_LIST_LINE = re.compile(r"(?m)^\s*(?:[-*\u2022]|\d+[.)])\s+\S")
_LIST_NUMBER = re.compile(r"(?m)^\s*\d+[.)]\s+")
_WORD = re.compile(r"[^\W\d_]+")
MATCH_SIMILARITY = 0.95


def markdown_table() -> str:
    """TEXT_CODES as Markdown, for docs/self-correction.md (a test keeps the two in step)."""
    return "\n".join(["| code | produced when |", "|---|---|"] + [f"| `{c.code}` | {c.rule} |" for c in TEXT_CODES])


def code_pattern(code: str) -> str:
    """The TEXT_CODES entry a filled-in code belongs to: LENGTH_SHORT_BY_12_TOKENS -> ..._X_TOKENS."""
    return re.sub(r"\d+", "X", code)


def similarity(answer: str, golden: str) -> float:
    return SequenceMatcher(
        None, " ".join(answer.casefold().split()), " ".join(golden.casefold().split()), autojunk=False
    ).ratio()


def _words(text: str, min_len: int) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if len(w) >= min_len}


def _numbers(text: str) -> set[str]:
    text = _LIST_NUMBER.sub("", text)  # "1." opening a list line is structure, not a value
    return {n.replace(",", ".") for n in _NUMBER.findall(text)}


def _is_json(text: str) -> bool:
    body = text.strip()
    if body[:1] not in ("{", "["):
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def text_codes(answer: str, golden: str, question: str = "") -> list[str]:
    """The generic codes for a text answer, in TEXT_CODES order; empty when it is right."""
    answer, golden = answer.strip(), golden.strip()
    if len(re.findall(r"\w", answer)) < 2:
        return ["PRIMARY_ANSWER_MISSING"]
    found = []
    words, golden_words = len(answer.split()), len(golden.split())
    if golden_words - words > 5:
        found.append(f"LENGTH_SHORT_BY_{golden_words - words}_TOKENS")
    elif words - golden_words > 5:
        found.append(f"LENGTH_LONG_BY_{words - golden_words}_TOKENS")
    if len(golden) >= 20 and len(answer) * 2 < len(golden) and len(golden) - len(answer) >= 20:
        found.append("TOO_BRIEF")
    elif len(answer) > 2 * len(golden) and len(answer) - len(golden) >= 50:
        found.append("TOO_VERBOSE")
    ratio = similarity(answer, golden)
    percent = int(ratio * 100)
    if percent < 30:
        found.append("VERY_DIFFERENT_CONTENT")
    elif percent < 60:
        found.append(f"SIMILARITY_{percent}%")
    topic = _words(golden, 4) | _words(question, 4)
    own = _words(answer, 4)
    if own and len(own - topic) * 2 > len(own):
        found.append("OFF_TOPIC_CONTENT")
    numbers, golden_numbers = _numbers(answer), _numbers(golden)
    if golden_numbers and not numbers:
        found.append("MISSING_NUMBERS")
    elif golden_numbers - numbers:
        found.append(f"NUMERIC_ERROR_MISSING_{len(golden_numbers - numbers)}_VALUES")
    if numbers - golden_numbers:
        found.append(f"NUMERIC_ERROR_EXTRA_{len(numbers - golden_numbers)}_VALUES")
    lists, golden_lists = len(_LIST_LINE.findall(answer)), len(_LIST_LINE.findall(golden))
    if golden_lists >= 2 and not lists:
        found.append("STRUCTURE_SHOULD_BE_LIST")
    elif lists >= 2 and not golden_lists:
        found.append("STRUCTURE_SHOULD_BE_PROSE")
    if "```" in golden and "```" not in answer:
        found.append("MISSING_CODE_BLOCK")
    if _is_json(golden) and not _is_json(answer):
        found.append("FORMAT_SHOULD_BE_JSON")
    concepts = _words(golden, 5)
    missing = concepts - _words(answer, 5)
    if concepts and len(missing) * 10 > len(concepts) * 3:
        found.append(f"MISSING_KEY_CONCEPTS_{len(missing)}_TERMS")
    if percent >= 60 and (ratio < MATCH_SIMILARITY or found):
        found.append("CLOSE_BUT_INACCURATE")
    return sorted(found, key=lambda code: _ORDER[code_pattern(code)])


_ORDER = {entry.code: n for n, entry in enumerate(TEXT_CODES)}


@dataclass
class Comparison:
    """One answer against its golden answer."""

    match: bool
    kind: str  # "tool": the golden answer calls tools; "text": it does not
    codes: list[str]  # distinct, in the order found
    findings: list[Finding] = field(default_factory=list)  # tool answers: every finding, with its message
    parsed: ParsedMessage | None = None  # the answer as the shared parser read it

    def to_dict(self) -> dict:
        return {
            "match": self.match,
            "kind": self.kind,
            "codes": self.codes,
            "findings": [f.to_dict() for f in self.findings],
        }


def _required(registry: ToolRegistry, tool: str) -> set[str]:
    spec = registry.tools.get(tool)
    return set(spec.parameters.get("required", [])) if spec is not None else set()


def _tool_findings(golden: ParsedMessage, answer: str, system: str | None, registry: ToolRegistry):
    parsed, judged = check_assistant_message({"role": "assistant", "content": answer}, registry, system)
    errors = [f for f in judged if f.severity == "error" and f.code != "E_EMPTY_ASSISTANT"]
    if not parsed.calls:
        return parsed, errors or [
            Finding("E_NO_TOOL_CALL", "the answer holds no tool call" if answer.strip() else "the answer is empty")
        ]
    found = errors + compare_tool_names([c.name for c in golden.calls], [c.name for c in parsed.calls])
    unused = list(parsed.calls)
    for expected in golden.calls:
        call = next((c for c in unused if c.name == expected.name and isinstance(c.arguments, dict)), None)
        if call is None:
            continue  # a missing call is already E_WRONG_TOOL (or its arguments are malformed)
        unused.remove(call)
        required = _required(registry, call.name)
        # a missing argument the schema requires is already E_MISSING_REQUIRED_ARG from the validator
        found += [
            f
            for f in compare_arguments(expected.arguments or {}, call.arguments, call.name)
            if not (f.extra.get("missing") and f.extra.get("argument") in required)
        ]
    return parsed, found


def compare_answer(
    golden: dict, answer: str, system: str | None = None, question: str = "", registry: ToolRegistry | None = None
) -> Comparison:
    """Compare the model's answer text with the golden assistant message (any record format).

    system is the prompt's system message (ids in calls are checked against it); question the last
    user message (for OFF_TOPIC_CONTENT)."""
    registry = registry or load_registry()
    answer = answer if isinstance(answer, str) else ""
    expected = parse_message(golden)
    if expected.calls:
        parsed, findings = _tool_findings(expected, answer, system, registry)
        codes = list(dict.fromkeys(f.code for f in findings))
        return Comparison(not codes, "tool", codes, findings, parsed)
    parsed = parse_message({"role": "assistant", "content": answer})
    if parsed.calls:
        finding = Finding(
            "E_UNEXPECTED_CALL", f"a text answer is expected; the answer called {[c.name for c in parsed.calls]}"
        )
        return Comparison(False, "text", [finding.code], [finding], parsed)
    codes = text_codes(parsed.text or answer, expected.text, question)
    return Comparison(not codes, "text", codes, [], parsed)


# -- compact one-line summaries for reports ------------------------------------------------------
def _short(value, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def summarize(message: dict | str, limit: int = 100) -> str:
    """A message as one line: calls as name(arg=value, ...) without the context object, text cut at limit."""
    parsed = parse_message(message if isinstance(message, dict) else {"role": "assistant", "content": message})
    if not parsed.calls:
        return (
            _short(parsed.text or (message if isinstance(message, str) else message.get("content") or ""), limit)
            or "(empty)"
        )
    parts = []
    for call in parsed.calls:
        arguments = call.arguments if isinstance(call.arguments, dict) else {}
        shown = ", ".join(f"{k}={_short(v, 40)}" for k, v in arguments.items() if k != "context")
        parts.append(f"{call.name}({shown})")
    return _short("; ".join(parts), limit)
