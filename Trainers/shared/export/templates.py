"""The chat format a model was trained with, and the Ollama Modelfile / LM Studio note for it.

The family is read from the tokenizer's chat template by rendering probe conversations through it
(the same Jinja renderer llama.cpp uses for the template embedded in the GGUF), not by name:
- ``chatml``: ChatML turns with Hermes ``<tool_call>`` blocks (the toolkit's template, Qwen 2.5);
  whether tools are listed in the prompt, a default system prompt and the role of tool results
  are taken from the template's own output;
- ``mistral``: ``[INST]`` turns with ``[TOOL_CALLS]`` lists (Mistral v0.3, Nemo), with or without
  the space v0.3 writes after each marker, the system prompt in the last user turn (Mistral's own
  templates) or the first (the toolkit's, ``chat_templates.MISTRAL_TEMPLATE``);
- ``mistral-v11``: ``[SYSTEM_PROMPT]``, calls as ``[TOOL_CALLS]name[ARGS]{...}`` (Mistral Small 3.2, Devstral);
- ``harmony``: gpt-oss's ``<|start|>``/``<|channel|>`` messages, calls to ``functions.NAME``;
- ``llama3``: Llama 3.x header turns, calls as JSON with ``parameters`` (several joined by ``; ``).

A template in none of these families still exports as a GGUF (it carries the template), with one line
saying why there is no Modelfile (``UnknownFamily``).

Each family is one row of ``FAMILIES``: how it is recognised, the tag Ollama must find, and its
Ollama TEMPLATE writer. The Modelfile's TEMPLATE is checked against the chat template with Go's own
text/template and Ollama's rules (``check_ollama_template``, ``ollama.py``) before it is kept: the
prompt a model sees must be the one it was trained on, and Ollama must hand its calls back as calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from Tools.cli_common import UsageError
from Tools.schema.toolcalls import parse_content

PROBE_SYSTEM, PROBE_USER, PROBE_RESULT = "PROBE-SYSTEM", "PROBE-USER", '{"success": true}'
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "vaultManager_createFolder",
        "description": "Create a folder",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
}
PROBE_CALL = {
    "id": "abc123def",
    "type": "function",
    "function": {"name": "vaultManager_createFolder", "arguments": {"path": "Projects/Probe"}},
}


class UnknownFamily(UsageError):
    """A chat template that renders tool calls, in none of the families of FAMILIES: the GGUF
    exports with it, without an Ollama Modelfile."""


@dataclass
class ChatFormat:
    family: str  # a key of FAMILIES
    call_format: str  # the Tools.schema.toolcalls format the model writes: "hermes", "mistral", "harmony", "llama"
    bos: str = ""
    eos: str = ""
    stops: list = field(default_factory=list)
    renders_tools: bool = False  # does the chat template show the tool definitions to the model?
    default_system: str | None = None  # chatml: written when a conversation has no system message
    tools_block: tuple | None = None  # chatml: text before and after the tool list in the system turn
    tool_role: str = "tool"  # chatml: the role tool results are written under
    space: str = ""  # mistral: " " after [INST] / [TOOL_CALLS] / [AVAILABLE_TOOLS] (v0.3) or "" (Nemo)
    system_first: bool = False  # mistral: the system prompt goes into the first user turn, not the last

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def render_chat(
    template: str,
    messages: list[dict],
    tools: list | None = None,
    generation: bool = True,
    bos: str = "",
    eos: str = "",
) -> str:
    """messages through a Jinja chat template, exactly as llama-cpp-python renders a GGUF's template."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=generation)
    return formatter(messages=messages, tools=tools).prompt


def _probe(template, bos, eos):
    def render(messages, tools=None, generation=True):
        return render_chat(template, messages, tools, generation, bos, eos)

    return render


def _call_turn() -> list[dict]:
    return [
        {"role": "system", "content": PROBE_SYSTEM},
        {"role": "user", "content": PROBE_USER},
        {"role": "assistant", "content": "", "tool_calls": [PROBE_CALL]},
        {"role": "tool", "content": PROBE_RESULT, "tool_call_id": PROBE_CALL["id"]},
    ]


def detect_format(template: str | None, bos: str = "", eos: str = "") -> ChatFormat:
    """The chat format of a tokenizer's chat template; UsageError when the toolkit cannot write an
    Ollama template for it (the GGUF itself still carries the model's own template)."""
    if not template:
        raise UsageError(
            "the tokenizer has no chat template; the exported model would not know how to format a chat "
            "(train with model.chat_template: chatml)"
        )
    render = _probe(template, bos, eos)
    base = [{"role": "system", "content": PROBE_SYSTEM}, {"role": "user", "content": PROBE_USER}]
    try:
        plain = render(base)
        with_tools = render(base, [PROBE_TOOL])
        call_text = render(_call_turn(), generation=False)
    except Exception as exc:  # a template that cannot render a tool call cannot be exported for tool use
        raise UsageError(
            f"the chat template cannot render a tool-call conversation ({type(exc).__name__}: {exc})"
        ) from None
    probe = Probe(render, plain, with_tools, call_text, parse_content(call_text), bos, eos)
    for family in FAMILIES.values():
        fmt = family.detect(probe)
        if fmt:
            return fmt
    raise UnknownFamily(
        "the chat template is none of the families the toolkit knows (ChatML with <tool_call> blocks, "
        "Mistral [TOOL_CALLS], gpt-oss harmony, Llama 3.x JSON calls)"
    )


@dataclass
class Probe:
    """The probe conversations rendered through a chat template, for the families to recognise."""

    render: object
    plain: str  # system + user
    with_tools: str  # system + user with PROBE_TOOL
    call_text: str  # system + user + PROBE_CALL + its result
    parsed: object  # call_text through the toolkit's parser
    bos: str
    eos: str

    def calls(self, fmt: str) -> bool:
        return self.parsed.format == fmt and [c.name for c in self.parsed.calls] == [PROBE_CALL["function"]["name"]]


def _detect_mistral(p: Probe) -> ChatFormat | None:
    if "[TOOL_CALLS]" not in p.call_text or "[ARGS]" in p.call_text or not p.calls("mistral"):
        return None
    space = " " if f"[INST] {PROBE_SYSTEM}" in p.plain or "[INST] " in p.plain else ""
    return ChatFormat(
        "mistral",
        "mistral",
        p.bos,
        p.eos,
        ["[INST]", "[/INST]", p.eos or "</s>"],
        renders_tools=p.with_tools != p.plain,
        space=space,
        system_first=PROBE_SYSTEM in p.call_text,
    )  # the user turn is not the last one there


def _detect_mistral_v11(p: Probe) -> ChatFormat | None:
    if "[TOOL_CALLS]" not in p.call_text or "[ARGS]" not in p.call_text or not p.calls("mistral"):
        return None
    if f"[SYSTEM_PROMPT]{PROBE_SYSTEM}[/SYSTEM_PROMPT]" not in p.plain:
        raise UsageError(
            "the chat template writes [TOOL_CALLS]name[ARGS] calls but no [SYSTEM_PROMPT] turn; "
            "no Ollama template can be written for it"
        )
    return ChatFormat(
        "mistral-v11", "mistral", p.bos, p.eos, ["[INST]", p.eos or "</s>"], renders_tools=p.with_tools != p.plain
    )


def _detect_harmony(p: Probe) -> ChatFormat | None:
    if "<|channel|>" not in p.call_text or not p.calls("harmony"):
        return None
    return ChatFormat(
        "harmony",
        "harmony",
        p.bos,
        p.eos,
        list(dict.fromkeys(["<|return|>", "<|call|>", p.eos or "<|return|>"])),
        renders_tools=p.with_tools != p.plain,
    )


def _detect_llama3(p: Probe) -> ChatFormat | None:
    if "<|start_header_id|>" not in p.plain or not (p.calls("llama") or p.calls("python_tag")):
        return None
    return ChatFormat(
        "llama3", p.parsed.format, p.bos, p.eos, ["<|eot_id|>", "<|eom_id|>"], renders_tools=p.with_tools != p.plain
    )


def _detect_chatml(p: Probe) -> ChatFormat | None:
    if "<|im_start|>" not in p.plain or not p.calls("hermes"):
        return None
    fmt = ChatFormat(
        "chatml",
        "hermes",
        p.bos,
        p.eos,
        ["<|im_start|>", "<|im_end|>"] + ([p.eos] if p.eos and p.eos not in ("<|im_end|>",) else []),
    )
    no_system = p.render([{"role": "user", "content": PROBE_USER}])
    head = "<|im_start|>system\n"
    if no_system.startswith(head):
        fmt.default_system = no_system[len(head) : no_system.index("<|im_end|>")]
    fmt.tool_role = "user" if "<|im_start|>user\n<tool_response>" in p.call_text else "tool"
    if p.with_tools != p.plain:
        fmt.renders_tools = True
        tool_json = "\n" + json.dumps(PROBE_TOOL, ensure_ascii=False)
        start = p.with_tools.find(PROBE_SYSTEM) + len(PROBE_SYSTEM)
        at = p.with_tools.find(tool_json, start)
        end = p.with_tools.find("<|im_end|>", at)
        if at < 0 or end < 0:
            raise UsageError("the chat template lists tools in a way the toolkit cannot reproduce for Ollama")
        fmt.tools_block = (p.with_tools[start:at], p.with_tools[at + len(tool_json) : end])
    return fmt


# -- Ollama ------------------------------------------------------------------------------------
# Ollama detects the tool-call tag in its TEMPLATE: the first non-blank text inside the first
# `if` whose pipeline names the FIELD .ToolCalls (not a variable such as $m.ToolCalls), before any
# action, cut at "{". So messages are ranged with dot set to the message, and `{{ if .ToolCalls }}`
# starts with the tag itself. Without a tag Ollama parses every answer starting with "{" instead.
_TOOLS_NOTE = (
    "{{- /* This model learned the tools in training and its chat template does not list them; .Tools "
    "is read so that Ollama accepts tools in a request and parses the calls. */ -}}\n"
    "{{ if .Tools }}{{ end -}}\n"
)


def _go_text(text: str) -> str:
    """Literal text inside a Go template that sits in a Modelfile's triple-quoted TEMPLATE block."""
    if "{{" in text or '"""' in text:
        raise UsageError(
            "the chat template's system text contains '{{' or a triple quote, which a Modelfile TEMPLATE cannot hold literally"
        )
    return text


def _chatml_template(fmt: ChatFormat) -> str:
    parts = []
    default = _go_text(fmt.default_system) if fmt.default_system is not None else None
    if fmt.tools_block:
        before, after = (_go_text(t) for t in fmt.tools_block)
        system_text = "{{ if .System }}{{ .System }}{{ else }}" + (default or "") + "{{ end }}"
        tools = "{{ if .Tools }}" + before + "{{ range .Tools }}\n{{ json . }}{{ end }}" + after + "{{ end }}"
        opening = "{{ if or .System .Tools }}" if default is None else ""
        parts.append(
            opening
            + "<|im_start|>system\n"
            + system_text
            + tools
            + "<|im_end|>\n"
            + ("{{ end }}" if default is None else "")
        )
    else:
        parts.append(_TOOLS_NOTE)
        parts.append(
            "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n"
            + ("{{ else }}<|im_start|>system\n" + default + "<|im_end|>\n" if default is not None else "")
            + "{{ end }}"
        )
    # consecutive tool results stay separate turns (Qwen's template merges them; see docs/export.md)
    parts.append(
        "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n'
        "{{ if $m.ToolCalls }}{{ if .Content }}{{ .Content }}\n{{ end }}{{ end }}"
        '{{ if .ToolCalls }}{{ range $j, $c := .ToolCalls }}<tool_call>\n{"name": {{ json .Function.Name }}, '
        '"arguments": {{ json .Function.Arguments }}}\n</tool_call>{{ if ne (len (slice $m.ToolCalls $j)) 1 }}\n{{ end }}'
        "{{ end }}{{ else }}{{ .Content }}{{ end }}<|im_end|>\n"
        '{{ else if eq .Role "tool" }}<|im_start|>'
        + fmt.tool_role
        + "\n<tool_response>\n{{ .Content }}\n</tool_response><|im_end|>\n"
        "{{ end }}"
        '{{ if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}'
        "{{ end }}"
    )
    return "".join(parts)


def _mistral_tools(fmt: ChatFormat, sp: str = "") -> str:
    """[AVAILABLE_TOOLS] before the last user turn, when the chat template lists tools; and the
    indices of the first and last user turns."""
    users = (
        '{{ $firstUser := -1 }}{{ $lastUser := -1 }}{{ range $i, $m := .Messages }}{{ if eq $m.Role "user" }}'
        "{{ if lt $firstUser 0 }}{{ $firstUser = $i }}{{ end }}{{ $lastUser = $i }}{{ end }}{{ end }}"
    )
    if not fmt.renders_tools:
        return _TOOLS_NOTE + users, ""
    return users, (
        "{{ if and $.Tools (eq $i $lastUser) }}[AVAILABLE_TOOLS]"
        + sp
        + "[{{ range $j, $t := $.Tools }}{{ if $j }}, {{ end }}{{ json $t }}{{ end }}][/AVAILABLE_TOOLS]{{ end }}"
    )


def _mistral_template(fmt: ChatFormat) -> str:
    sp = fmt.space
    head, tools = _mistral_tools(fmt, sp)
    system_here = "(eq $i $firstUser)" if fmt.system_first else "$last"
    return (
        head + "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq .Role "user" }}'
        + tools
        + "[INST]"
        + sp
        + "{{ if and $.System "
        + system_here
        + " }}{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]"
        '{{ else if eq .Role "assistant" }}{{ if .ToolCalls }}[TOOL_CALLS]{{ "' + sp + '[" }}'
        '{{ range $j, $c := .ToolCalls }}{{ if $j }}, {{ end }}{"name": {{ json .Function.Name }}, '
        '"arguments": {{ json .Function.Arguments }}}{{ end }}]'
        + fmt.eos
        + "{{ else }}"
        + sp
        + "{{ .Content }}"
        + fmt.eos
        + "{{ end }}"
        '{{ else if eq .Role "tool" }}[TOOL_RESULTS]' + sp + '{"content": {{ .Content }}}[/TOOL_RESULTS]'
        "{{ end }}{{ end }}"
    )


def _mistral_v11_template(fmt: ChatFormat) -> str:
    head, tools = _mistral_tools(fmt)
    return (
        head + "{{ if .System }}[SYSTEM_PROMPT]{{ .System }}[/SYSTEM_PROMPT]{{ end }}"
        "{{ range $i, $m := .Messages }}"
        '{{ if eq .Role "user" }}' + tools + "[INST]{{ .Content }}[/INST]"
        '{{ else if eq .Role "assistant" }}{{ .Content }}'
        "{{ if .ToolCalls }}[TOOL_CALLS]{{ range $j, $c := .ToolCalls }}{{ if $j }}[TOOL_CALLS]{{ end }}"
        "{{ .Function.Name }}[ARGS]{{ json .Function.Arguments }}{{ end }}{{ end }}"
        + fmt.eos
        + '{{ else if eq .Role "tool" }}[TOOL_RESULTS]{{ .Content }}[/TOOL_RESULTS]'
        "{{ end }}{{ end }}"
    )


def _harmony_template(fmt: ChatFormat) -> str:
    # the call's tag follows the generation prompt's "<|start|>assistant", as the model writes it;
    # a tool result names the call it answers, found by the call id among the last calls
    return (
        "<|start|>system<|message|>Reasoning: low\n\n# Valid channels: analysis, commentary, final. Channel must be "
        "included for every message.{{ if .Tools }}\nCalls to these tools must go to the commentary channel: "
        "'functions'.{{ end }}<|end|>"
        "{{ if or .System .Tools }}<|start|>developer<|message|>{{ if .System }}# Instructions\n\n{{ .System }}"
        "{{ if .Tools }}\n\n{{ end }}{{ end }}{{ if .Tools }}# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "{{ range .Tools }}// {{ .Function.Description }}\ntype {{ .Function.Name }} = (_: {{ json .Function.Parameters }}) "
        "=> any;\n\n{{ end }}} // namespace functions{{ end }}<|end|>{{ end }}"
        "{{ $calls := slice .Messages 0 0 }}"
        "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq .Role "user" }}<|start|>user<|message|>{{ .Content }}<|end|>'
        '{{ else if eq .Role "assistant" }}{{ if $m.ToolCalls }}{{ $calls = $m.ToolCalls }}{{ if .Content }}'
        "<|start|>assistant<|channel|>commentary<|message|>{{ .Content }}<|end|>{{ end }}{{ end }}<|start|>assistant"
        "{{ if .ToolCalls }}<|channel|>commentary to=functions.{{ range $j, $c := .ToolCalls }}{{ if $j }}"
        "<|start|>assistant<|channel|>commentary to=functions.{{ end }}{{ .Function.Name }} <|constrain|>json<|message|>"
        "{{ json .Function.Arguments }}<|call|>{{ end }}{{ else }}<|channel|>final<|message|>{{ .Content }}<|return|>{{ end }}"
        '{{ else if eq .Role "tool" }}<|start|>functions.{{ range $calls }}{{ if eq .ID $m.ToolCallID }}{{ .Function.Name }}'
        "{{ end }}{{ end }} to=assistant<|channel|>commentary<|message|>{{ .Content }}<|end|>"
        '{{ end }}{{ if and $last (ne .Role "assistant") }}<|start|>assistant{{ end }}{{ end }}'
    )


def _llama3_template(fmt: ChatFormat) -> str:
    # no tag ("; " is written by an action, or Ollama would take it for one): Ollama reads an answer
    # that starts with '{' as calls, which is how the model writes them
    return (
        "<|start_header_id|>system<|end_header_id|>\n\n{{ if .Tools }}Environment: ipython\n{{ end }}"
        "Cutting Knowledge Date: December 2023\n\n{{ .System }}{{ if .Tools }}\n\nYou have access to the following "
        'functions. To call a function, respond with JSON for a function call in the format {"name": function name, '
        '"parameters": dictionary of argument name and its value}. Do not use variables.\n\n'
        "{{ range .Tools }}{{ json . }}\n\n{{ end }}{{ end }}<|eot_id|>"
        "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
        '{{ else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>\n\n'
        '{{ if .ToolCalls }}{{ range $j, $c := .ToolCalls }}{{ if $j }}{{ "; " }}{{ end }}{"name": {{ json .Function.Name }}, '
        '"parameters": {{ json .Function.Arguments }}}{{ end }}{{ else }}{{ .Content }}{{ end }}<|eot_id|>'
        '{{ else if eq .Role "tool" }}<|start_header_id|>ipython<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
        '{{ end }}{{ if and $last (ne .Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}{{ end }}'
    )


@dataclass(frozen=True)
class Family:
    """One chat family the export knows: a new family is one more row of FAMILIES (and of the
    tests' FAMILY_TEMPLATES)."""

    name: str
    tag: str  # the tool-call tag Ollama must detect in the TEMPLATE
    example: str  # a call as the model writes it (LM Studio note)
    detect: object  # Probe -> ChatFormat | None
    ollama_template: object  # ChatFormat -> Go template text
    title: str  # the family as users know it


FAMILIES = {
    f.name: f
    for f in (
        Family(
            "mistral-v11",
            "[TOOL_CALLS]",
            '[TOOL_CALLS]vaultManager_createFolder[ARGS]{"path": "Projects"}',
            _detect_mistral_v11,
            _mistral_v11_template,
            "Mistral v11",
        ),
        Family(
            "mistral",
            "[TOOL_CALLS]",
            '[TOOL_CALLS] [{"name": "vaultManager_createFolder", "arguments": {"path": "Projects"}, "id": "abc123def"}]',
            _detect_mistral,
            _mistral_template,
            "Mistral",
        ),
        Family(
            "chatml",
            "<tool_call>",
            '<tool_call>\n{"name": "vaultManager_createFolder", "arguments": {"path": "Projects"}}\n</tool_call>',
            _detect_chatml,
            _chatml_template,
            "ChatML",
        ),
        Family(
            "harmony",
            "<|channel|>commentary to=functions.",
            "<|channel|>commentary to=functions.vaultManager_createFolder "
            '<|constrain|>json<|message|>{"path": "Projects"}<|call|>',
            _detect_harmony,
            _harmony_template,
            "gpt-oss harmony",
        ),
        Family(
            "llama3",
            "{",
            '{"name": "vaultManager_createFolder", "parameters": {"path": "Projects"}}',
            _detect_llama3,
            _llama3_template,
            "Llama 3.x",
        ),
    )
}


def ollama_template(fmt: ChatFormat) -> str:
    return FAMILIES[fmt.family].ollama_template(fmt)


def canonical_json(text: str, drop: tuple = ()) -> str:
    """text with every embedded JSON object or array rewritten in one spelling (sorted keys,
    compact, unescaped) and the keys in drop removed: Go's json.Marshal and Jinja's tojson differ
    in spacing, key order and escaping but not in the data they write."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in drop}
        return [strip(v) for v in value] if isinstance(value, list) else value

    decoder, out, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        at = min((i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0), default=-1)
        if at < 0:
            break
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            out.append(text[pos : at + 1])
            pos = at + 1
            continue
        out.append(text[pos:at] + json.dumps(strip(value), sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        pos = end
    return "".join(out) + text[pos:]


def _answer(render, conversation: list[dict]) -> str:
    """The assistant turn (last message) as the model writes it: the text after the prompt that
    precedes it, up to the end-of-turn marker."""
    prompt = render(conversation[:-1], True)
    full = render(conversation, False)
    answer = full[len(prompt) :] if full.startswith(prompt) else full
    for end in ("<|im_end|>", "</s>", "<|eot_id|>", "<|return|>"):
        answer = answer.split(end)[0]
    return answer


def check_ollama_template(chat_template: str, fmt: ChatFormat, go_template: str, binary=None) -> list[str]:
    """Render probe conversations through the chat template (Jinja, as llama.cpp does) and through
    the Ollama template (Go, as Ollama does); the list of what differs (empty: none).

    Ollama must detect the family's tag and offer tools; prompts without JSON must be identical
    byte for byte, prompts with tools or calls identical up to the spelling of their JSON (and the
    call ids Mistral templates write: Ollama's template data has none); the call the model writes
    must come back from Ollama's parser as the same call."""
    from . import ollama

    jinja = _probe(chat_template, fmt.bos, fmt.eos)
    family = FAMILIES[fmt.family]

    def go(messages, tools=None):
        return ollama.render(go_template, messages, tools, binary)

    problems = []
    base = [{"role": "system", "content": PROBE_SYSTEM}, {"role": "user", "content": PROBE_USER}]
    first = go(base)
    if first.error:
        return [f"Ollama cannot render the template: {first.error}"]
    if not first.reads_tools:
        problems.append("the template does not read .Tools, so Ollama would answer 'does not support tools'")
    if first.tag != family.tag:
        problems.append(
            f"Ollama detects the tool-call tag {first.tag!r}, not {family.tag!r}: calls would come back as text"
        )
    conversation = _call_turn()
    cases = [
        ("system + user", base, None, True),
        ("user", base[1:], None, True),
        ("system + user + tools", base, [PROBE_TOOL], not fmt.renders_tools),
        ("call and result", conversation, [PROBE_TOOL], False),
    ]
    for label, messages, tools, exact in cases:
        expected = jinja(messages, tools).removeprefix(fmt.bos)
        got = go(messages, tools)
        drop = ("id", "call_id") if label == "call and result" else ()
        same = got.prompt == expected if exact else canonical_json(got.prompt, drop) == canonical_json(expected, drop)
        if got.error or not same:
            problems.append(
                f"prompt differs ({label}):\n  chat template: {expected!r}\n  Ollama:        {got.error or got.prompt!r}"
            )
    call = conversation[1:3]  # user + call: a system prompt moves with the last user turn in Mistral templates
    answer = _answer(lambda m, generation: go(m, [PROBE_TOOL]).prompt, call)  # Go: the prompt ends where the turn opens
    calls, _ = ollama.parse_tool_calls(answer, first.tag, [PROBE_TOOL["function"]["name"]])
    want = [(c.name, c.arguments) for c in parse_content(_answer(lambda m, g: jinja(m, [PROBE_TOOL], g), call)).calls]
    if calls != want or not calls:
        problems.append(f"Ollama's parser reads the call turn {answer!r} as {calls}, the chat template's as {want}")
    return problems


def modelfile(gguf_name: str, fmt: ChatFormat, go_template: str, num_ctx: int = 4096) -> str:
    stops = "".join(f"PARAMETER stop {json.dumps(s)}\n" for s in dict.fromkeys(s for s in fmt.stops if s))
    return (
        f"# Ollama Modelfile written by the Claudesidian toolkit (docs/export.md).\n"
        f"# Create the model:  ollama create NAME -f Modelfile   (run in this folder)\n"
        f"# Chat format: {fmt.family}; tool calls as {fmt.call_format}.\n"
        f"FROM ./{gguf_name}\n"
        f'TEMPLATE """{go_template}"""\n'
        f"{stops}"
        f"PARAMETER temperature 0\n"
        f"PARAMETER repeat_penalty 1.0\n"  # Ollama's default 1.1 rewrites repeated JSON keys and copied ids
        f"PARAMETER num_ctx {num_ctx}\n"
    )


def lmstudio_native_tools(fmt: ChatFormat) -> bool:
    """LM Studio's docs: a model gets native tool use when its chat template supports tools (it
    lists the request's tools in the prompt); any other model gets LM Studio's default tool-use
    system prompt, which asks for ``[TOOL_REQUEST]{...}[END_TOOL_REQUEST]`` blocks instead."""
    return fmt.renders_tools


def lmstudio_note(gguf_names: list[str], fmt: ChatFormat) -> str:
    files = "\n".join(f"- `{name}`" for name in gguf_names)
    if lmstudio_native_tools(fmt):
        tools = """5. Tool calling is native here: the chat template lists the tools of a request, which is what LM
   Studio keys native tool use on. Send the tool definitions (`tools` in `/v1/chat/completions`);
   LM Studio puts them into the prompt through this template and returns the calls the model writes
   in `tool_calls`. Evaluate it that way with
   `python -m Evaluator.cli --backend lmstudio --model NAME --tools-in-request --prompt-set tool_prompts --output r.json`."""
    else:
        tools = """5. Tool calling is NOT native here: this model learned the tool definitions in training and its
   chat template does not list tools, so LM Studio would answer a request that carries `tools` with
   its default tool-use prompt, which asks for `[TOOL_REQUEST]{...}[END_TOOL_REQUEST]` blocks, a
   format this model never saw, and changes the prompt it was trained on. Send requests WITHOUT
   `tools`: the calls then arrive in `content`, in the format above, and the toolkit's evaluator
   parses them there:
   `python -m Evaluator.cli --backend lmstudio --model NAME --prompt-set tool_prompts --output r.json`."""
    return f"""# Using this model in LM Studio

Files:
{files}

1. Import: `lms import {gguf_names[0]}` (or copy the file into LM Studio's models folder,
   `~/.lmstudio/models/<publisher>/<model>/`, and it appears under My Models).
2. Prompt template: keep the default. The GGUF carries the chat template the model was trained
   with (`tokenizer.chat_template`); LM Studio reads it from the file. Do not pick a preset
   template instead: a different template changes how tool calls are written.
3. Stop strings: {", ".join(f"`{s}`" for s in fmt.stops if s)} (the template's turn ends; LM Studio
   takes the end-of-turn token from the GGUF).
4. The model writes tool calls as {fmt.call_format} ({FAMILIES[fmt.family].title} family):

```
{FAMILIES[fmt.family].example}
```

{tools}
6. Sampling: temperature 0 and Repeat Penalty 1 (off). LM Studio's default penalty of 1.1 pushes the
   model away from tokens it already wrote, which breaks repeated JSON keys and copied session ids; the
   toolkit's evaluator sends `repeat_penalty: 1.0` with each request for the same reason.

What LM Studio does with tools is taken from its documentation (lmstudio.ai/docs, tool use); the
toolkit cannot run LM Studio in its tests. The same GGUF and template were checked with llama.cpp
(docs/export.md).
"""
