"""The one data path of every training method: load, validate, render with the model's chat template, mask.

Every method turns a record into chat messages the same way (tool calls re-rendered from the parsed
calls as OpenAI ``tool_calls``, so the chat template writes them in the model's own format), and
all render through ``render_conversation``, so a tool call looks identical in SFT, KTO and DPO.
Assistant spans are found by rendering conversation prefixes, which works on templates without
``{% generation %}`` markers; SFT trains on those spans only.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from Tools.cli_common import UsageError
from Tools.schema.context import PROSE_FIELDS, SESSION_ID_RE, WORKSPACE_ID_RE
from Tools.schema.records import iter_jsonl, label_of
from Tools.schema.registry import ToolRegistry, load_registry
from Tools.schema.toolcalls import parse_message
from Tools.schema.validate import record_passes, validate_record

IGNORE_INDEX = -100


class DataError(UsageError):
    """The dataset cannot be trained on as it is: one line saying why and what to do."""


@dataclass
class LoadedData:
    source: str
    records: list = field(default_factory=list)  # (line number, record), in file order
    labels: Counter = field(default_factory=Counter)


def load_records(local_file: str | None, dataset_name: str | None = None, split: str = "train") -> LoadedData:
    """Every record of a local JSONL file (unreadable lines are an error) or of a Hugging Face dataset."""
    if local_file:
        path = Path(local_file)
        if not path.is_file():
            raise DataError(f"{local_file}: no such dataset file")
        data, bad = LoadedData(str(path)), []
        for line in iter_jsonl(path):
            if line.error or not isinstance(line.record, dict):
                bad.append(line.number)
            else:
                data.records.append((line.number, line.record))
        if bad:
            raise DataError(
                f"{path}: {len(bad)} unreadable line(s) (first: line {bad[0]}); "
                f"run python Tools/validate_syngen.py {path}"
            )
    elif dataset_name:
        import datasets

        try:
            rows = datasets.load_dataset(dataset_name, split=split)
        except Exception as exc:  # hub, network and format errors all end the same way for the user
            raise DataError(
                f"cannot load dataset {dataset_name!r} ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from None
        data = LoadedData(f"hf:{dataset_name}[{split}]", [(i + 1, dict(r)) for i, r in enumerate(rows)])
    else:
        raise DataError(
            "no dataset: pass --local-file FILE or --dataset-name NAME (or set data.local_file in the config)"
        )
    if not data.records:
        raise DataError(f"{data.source}: no records")
    data.labels.update({True: "true", False: "false", None: "unlabeled"}[label_of(r)] for _, r in data.records)
    return data


def validate_for(
    method: str, data: LoadedData, registry: ToolRegistry | None = None, drop_invalid: bool = False
) -> int:
    """Refuse data the method must not train on (its ``check_data``); returns how many records were left out."""
    from .methods import get_method

    return get_method(method).check_data(data, registry or load_registry(), drop_invalid)


def check_records(data: LoadedData, registry: ToolRegistry, drop_invalid: bool) -> int:
    """Every record through the shared validator, judged by its label (a negative only needs to be
    structurally sound). A failing record refuses the file with a summary, or with drop_invalid is
    removed; returns how many were removed."""
    failing, codes = [], Counter()
    for number, record in data.records:
        findings = validate_record(record, registry)
        if findings and not record_passes(findings, label_of(record)):
            failing.append((number, findings))
            codes.update(f.code for f in findings if f.severity == "error")
    if failing and drop_invalid:
        before, dropped = len(data.records), {number for number, _ in failing}
        data.records = [(n, r) for n, r in data.records if n not in dropped]
        if not data.records:
            raise DataError(f"{data.source}: every record fails validation")
        recount(data)
        return before - len(data.records)
    if failing:
        number, findings = failing[0]
        first = next((f for f in findings if f.severity == "error"), findings[0])
        top = ", ".join(f"{code} x{count}" for code, count in codes.most_common(4))
        raise DataError(
            f"{data.source}: {len(failing)} of {len(data.records)} record(s) fail validation ({top}); "
            f"first at line {number}: {first.message}. Train on the rest with --drop-invalid, or write "
            f"them out with python Tools/validate_syngen.py {data.source} --write-valid OUT"
        )
    return 0


def recount(data: LoadedData) -> None:
    data.labels = Counter({True: "true", False: "false", None: "unlabeled"}[label_of(r)] for _, r in data.records)


# -- rendering ---------------------------------------------------------------------------------
def chat_messages(record: dict) -> list[dict]:
    """A record's conversation as chat-template messages; tool calls re-rendered from parsed calls."""
    out, pending = [], []
    for index, message in enumerate(record["conversations"]):
        role, content = message["role"], message.get("content")
        if role == "assistant":
            parsed = parse_message(message, index)
            if parsed.calls:
                for k, call in enumerate(
                    parsed.calls
                ):  # deterministic 9-character ids (Mistral's tokenizer requires them)
                    call.id = call.id or f"c{index:03d}{k:05d}"
                pending = [c.id for c in parsed.calls]
                # arguments as objects: Qwen's and Mistral's templates write `arguments | tojson`, which
                # would turn an OpenAI-style JSON string into a quoted string the model then learns
                calls = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or {}}}
                    for c in parsed.calls
                ]
                out.append({"role": "assistant", "content": parsed.text, "tool_calls": calls})
                continue
            out.append({"role": "assistant", "content": content or ""})
        elif role == "tool":
            call_id = message.get("tool_call_id") or (pending.pop(0) if pending else None)
            out.append({"role": "tool", "content": content or "", "tool_call_id": call_id})
        else:
            out.append({"role": role, "content": content or ""})
    return out


def _render(tokenizer, messages: list[dict], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The text a model continues from to answer messages, as training renders it: the chat
    template with its generation prompt, without a BOS the tokenizer adds itself."""
    return _strip_bos(tokenizer, _render(tokenizer, messages, True))


def render_conversation(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The full rendered text, as training tokenises it (without a BOS the tokenizer adds itself), and
    the character spans of each assistant turn (its end token included).

    A turn starts where ``messages[:i]`` rendered with a generation prompt ends and stops where
    ``messages[:i+1]`` ends; both must be prefixes of the full text, which every template that
    renders a conversation left to right satisfies.
    """
    text = _render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True) if i else ""
        through = _render(tokenizer, messages[: i + 1]).rstrip()
        if not (text.startswith(before) and text.startswith(through) and len(through) > len(before)):
            raise DataError(
                "the chat template renders conversation prefixes differently from the whole "
                "conversation, so assistant turns cannot be located; set model.chat_template: chatml "
                "(mistral for Mistral models, whose template moves the system prompt to the last user turn; "
                "harmony for gpt-oss, whose template ends only the last answer with <|return|>)"
            )
        spans.append((len(before), len(through)))
    stripped = _strip_bos(tokenizer, text)
    cut = len(text) - len(stripped)
    return stripped, [(a - cut, b - cut) for a, b in spans]


def _strip_bos(tokenizer, text: str) -> str:
    """Drop a BOS the template wrote when the tokenizer adds its own, so no sequence gets two."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer("", add_special_tokens=True)["input_ids"]:
        return text[len(bos) :]
    return text


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of messages rendered with a generation prompt: what a model sees before it answers,
    tokenised exactly as training tokenises the text before an assistant turn."""
    return tokenizer(render_prompt(tokenizer, messages), add_special_tokens=True)["input_ids"]


def _starts_inside(offsets: list, spans: list[tuple[int, int]]) -> list[bool]:
    """Per token (start, end): whether it is non-empty and starts inside one of the character spans.
    One walk over tokens and sorted spans together, so a text with many spans stays linear."""
    spans, inside, k = sorted(spans), [], 0
    for start, end in offsets:
        while k < len(spans) and spans[k][1] <= start:
            k += 1
        inside.append(end > start and k < len(spans) and spans[k][0] <= start)
    return inside


# The values of one turn looked for in the text (its arguments in the request, its context's prose
# in the answer): more than any real call holds, and a bound on the work a hostile record with
# thousands of values can ask for.
MAX_COPIED_VALUES = 64


def _argument_values(value, out: set) -> set:
    """The strings and numbers inside a call's arguments, the context object aside (its values come
    from the system prompt or are the model's own words)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "context":
                _argument_values(item, out)
    elif isinstance(value, list):
        for item in value:
            _argument_values(item, out)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        out.add(str(value))
    return out


def _find_word(text: str, value: str, start: int, end: int) -> int:
    """The first place in text[start:end] where value stands as a whole (no letter or digit either
    side), or -1."""
    at = text.find(value, start, end)
    while at >= 0:
        before = text[at - 1] if at > 0 else " "
        after = text[at + len(value)] if at + len(value) < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return at
        at = text.find(value, at + 1, end)
    return -1


def copy_sources(text: str, messages: list[dict], offsets: list, spans: list[tuple[int, int]]) -> list[int]:
    """Per token position, the index of the request token that the next token copies, or -1.

    For each argument value of at least 3 characters that the turn's user message spells (case
    aside, as a whole word), every place the answer writes it is aligned character by character with
    where the request spells it: an answer token copies the request token under its first
    character (`Garden` after a quote copies `▁Garden`). SFT's copy_attention_weight teaches one
    attention head to look there, the look-up a model built from scratch forms only late."""
    source = [-1] * len(offsets)
    starts = [start for start, _ in offsets]
    folded, fold = text.lower(), str.lower
    if len(folded) != len(text):  # a character whose lower case is longer: compare as written
        folded, fold = text, str
    turns = iter(spans)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        answer_start, answer_end = next(turns)
        request = next((m["content"] for m in reversed(messages[:i]) if m["role"] == "user"), "")
        request_start = text.rfind(request, 0, answer_start) if request else -1
        if request_start < 0 or not message.get("tool_calls"):
            continue
        values = set()
        for call in message["tool_calls"]:
            _argument_values(call["function"]["arguments"], values)
        for value in sorted(fold(v) for v in values if len(v) >= 3)[:MAX_COPIED_VALUES]:
            spelt = _find_word(folded, value, request_start, request_start + len(request))
            at = answer_start
            while spelt >= 0 and (at := _find_word(folded, value, at, answer_end)) >= 0:
                first = bisect.bisect_right(starts, at) - 1
                for k in range(max(first, 1), len(offsets)):
                    token_start, token_end = offsets[k]
                    if token_start >= at + len(value):
                        break
                    if token_end <= at:
                        continue
                    char = spelt + max(0, token_start - at)
                    while char < spelt + len(value) - 1 and text[char].isspace():
                        char += 1
                    copied = bisect.bisect_right(starts, char) - 1
                    if 0 <= copied < k - 1:
                        source[k - 1] = copied
                at += len(value)
    return source


# token_class values (0: any other token), the classes SFT weighs apart
ID_TOKEN, PROSE_TOKEN = 1, 2


def _prose_spans(text: str, messages: list[dict], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans of the context prose each answer writes: the JSON strings of its calls'
    sessionDescription, sessionMemory, toolContext, primaryGoal and subgoal, found after their key
    as a chat template's `tojson` writes them. At most MAX_COPIED_VALUES per turn, each found
    only within its own answer, so a hostile record stays linear."""
    found, turns = [], iter(spans)
    for message in messages:
        if message["role"] != "assistant":
            continue
        start, end = next(turns)
        needles = set()
        for call in message.get("tool_calls") or []:
            arguments = call["function"]["arguments"]
            context = arguments.get("context") if isinstance(arguments, dict) else None
            for name in PROSE_FIELDS if isinstance(context, dict) else ():
                if isinstance(context.get(name), str):
                    needles.add((json.dumps(name) + ": ", json.dumps(context[name], ensure_ascii=False)))
        for key, value in sorted(needles)[:MAX_COPIED_VALUES]:
            at = text.find(key + value, start, end)
            while at >= 0:
                found.append((at + len(key), at + len(key) + len(value)))
                at = text.find(key + value, at + len(key) + len(value), end)
    return found


def encode_sft(tokenizer, conversations: list[list[dict]]) -> list[dict]:
    """input_ids and labels per conversation (labels are -100 outside assistant turns); token_class:
    ID_TOKEN on the answer tokens inside a session or workspace id, PROSE_TOKEN on those inside the
    context's prose, 0 elsewhere, the classes SFT's id_loss_weight and prose_loss_weight weigh; and
    copy_source (copy_sources), where SFT's copy_attention_weight teaches a head to look."""
    texts, all_spans = [], []
    for messages in conversations:
        text, spans = render_conversation(tokenizer, messages)
        texts.append(text)
        all_spans.append(spans)
    encoded = tokenizer(texts, return_offsets_mapping=True, add_special_tokens=True)
    rows = []
    for messages, text, ids, offsets, spans in zip(
        conversations, texts, encoded["input_ids"], encoded["offset_mapping"], all_spans
    ):
        in_ids = [m.span() for pattern in (SESSION_ID_RE, WORKSPACE_ID_RE) for m in pattern.finditer(text)]
        answer, id_token = _starts_inside(offsets, spans), _starts_inside(offsets, in_ids)
        prose = _starts_inside(offsets, _prose_spans(text, messages, spans))
        labels = [token if kept else IGNORE_INDEX for token, kept in zip(ids, answer)]
        token_class = [
            (ID_TOKEN if on_id else PROSE_TOKEN if in_prose else 0) if kept else 0
            for kept, on_id, in_prose in zip(answer, id_token, prose)
        ]
        copy_source = copy_sources(text, messages, offsets, spans)
        rows.append({"input_ids": ids, "labels": labels, "token_class": token_class, "copy_source": copy_source})
    return rows


def prompt_completion(tokenizer, record: dict) -> tuple[str, str]:
    """The text before the last assistant turn and that turn (its end token included), rendered
    exactly as SFT renders them: the completion KTO and DPO score."""
    messages = chat_messages(record)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    text, spans = render_conversation(tokenizer, messages[: last + 1])
    start, end = spans[-1]
    return text[:start], text[start:end]


def prompt_key(record: dict) -> str:
    """The conversation before the last assistant turn, as a comparable string: records with the
    same key answer the same prompt."""
    messages = record["conversations"]
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return json.dumps(messages[:last], sort_keys=True)


@dataclass
class Prepared:
    rows: list
    source: str
    records: int
    labels: Counter
    truncated: int = 0
    dropped: int = 0


def prepare(method: str, data: LoadedData, tokenizer, max_seq_length: int, dropped: int = 0) -> Prepared:
    """The method's trainer rows (its ``rows``) from data that passed validate_for."""
    from .methods import get_method

    rows, truncated = get_method(method).rows(data, tokenizer, max_seq_length)
    return Prepared(rows, data.source, len(data.records), data.labels, truncated, dropped)
