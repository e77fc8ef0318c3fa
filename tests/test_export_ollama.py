"""The Ollama Modelfile TEMPLATE checked with the real thing: Go's own text/template through
Trainers/shared/export/ollama_check (Ollama's data, message collation, tool struct and tag
detection), against the chat template each family ships, rendered with Jinja as llama.cpp does;
and the call the model writes read back through the port of Ollama's tool-call parser.

A family is one row of FAMILY_TEMPLATES (and one row of templates.FAMILIES)."""

import json
import shutil

import pytest

from factories import bundled_template
from Trainers.shared.export import ollama
from Trainers.shared.export.templates import (
    FAMILIES,
    PROBE_CALL,
    PROBE_SYSTEM,
    PROBE_TOOL,
    PROBE_USER,
    _answer,
    _call_turn,
    canonical_json,
    check_ollama_template,
    detect_format,
    ollama_template,
    render_chat,
)
from Trainers.shared.chat_templates import (
    HARMONY_TEMPLATE,
    LLAMA3_TEMPLATE,
    MISTRAL_TEMPLATE,
    MISTRAL_V11_TEMPLATE,
    QWEN25_TEMPLATE,
)
from Trainers.shared.tiny_model import CHAT_TEMPLATE


@pytest.fixture(scope="module")
def go_checker():
    if not shutil.which("go"):
        pytest.skip("Go is not installed (CI installs golang-go; apt-get install golang-go)")
    return ollama.build_checker()  # cached under .cache/ollama_check by the hash of its source


def _mistral_v03(nemo: str) -> str:
    """Mistral v0.3's template differs from Nemo's by the space after each marker."""
    for marker in ("[AVAILABLE_TOOLS]", "[INST]", "[TOOL_CALLS]", "[TOOL_RESULTS]"):
        nemo = nemo.replace(f'"{marker}', f'"{marker} ').replace(f"'{marker}", f"'{marker} ")
    return nemo


# name -> (template, bos, eos, family, call format, lists tools, space after markers)
FAMILY_TEMPLATES = {
    "toolkit ChatML": (lambda: CHAT_TEMPLATE, "<s>", "<|im_end|>", "chatml", "hermes", False, ""),
    "Qwen 2.5": (lambda: bundled_template("Qwen-Qwen2.5-7B-Instruct"), "", "<|im_end|>", "chatml", "hermes", True, ""),
    "Mistral Nemo": (
        lambda: bundled_template("mistralai-Mistral-Nemo-Instruct-2407"),
        "<s>",
        "</s>",
        "mistral",
        "mistral",
        True,
        "",
    ),
    "Mistral v0.3": (
        lambda: _mistral_v03(bundled_template("mistralai-Mistral-Nemo-Instruct-2407")),
        "<s>",
        "</s>",
        "mistral",
        "mistral",
        True,
        " ",
    ),
    # the toolkit's templates for each family (Trainers/shared/chat_templates.py, tests/test_families.py)
    "toolkit Qwen 2.5": (lambda: QWEN25_TEMPLATE, "<s>", "<|im_end|>", "chatml", "hermes", True, ""),
    "toolkit Mistral v0.3": (lambda: MISTRAL_TEMPLATE, "<s>", "</s>", "mistral", "mistral", True, " "),
    "toolkit Mistral v11": (lambda: MISTRAL_V11_TEMPLATE, "<s>", "</s>", "mistral-v11", "mistral", True, ""),
    "toolkit gpt-oss harmony": (lambda: HARMONY_TEMPLATE, "", "<|return|>", "harmony", "harmony", True, ""),
    "toolkit Llama 3.x": (lambda: LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>", "llama3", "llama", True, ""),
}


@pytest.mark.parametrize("name", FAMILY_TEMPLATES)
def test_ollama_renders_what_the_chat_template_renders_and_parses_the_calls(name, go_checker):
    make, bos, eos, family, call, tools, space = FAMILY_TEMPLATES[name]
    template = make()
    fmt = detect_format(template, bos, eos)
    assert (fmt.family, fmt.call_format, fmt.renders_tools, fmt.space) == (family, call, tools, space)
    assert eos in fmt.stops
    go = ollama_template(fmt)
    assert check_ollama_template(template, fmt, go, go_checker) == []
    # the same facts, spelled out: Go finds the tag, renders the prompt byte for byte ...
    base = [{"role": "system", "content": PROBE_SYSTEM}, {"role": "user", "content": PROBE_USER}]
    rendered = ollama.render(go, base, binary=go_checker)
    assert rendered.tag == FAMILIES[family].tag and rendered.reads_tools
    assert rendered.prompt == render_chat(template, base, bos=bos, eos=eos).removeprefix(bos)
    # ... with tools and with a call and its result, equal up to the spelling of the JSON
    for messages in (base, _call_turn()):
        want = render_chat(template, messages, [PROBE_TOOL], bos=bos, eos=eos).removeprefix(bos)
        got = ollama.render(go, messages, [PROBE_TOOL], binary=go_checker).prompt
        assert canonical_json(got, ("id", "call_id")) == canonical_json(want, ("id", "call_id"))
        assert (PROBE_TOOL["function"]["description"] in got) == tools
    # ... and the call turn Ollama renders comes back from Ollama's parser as the same call
    answer = _answer(lambda m, g: ollama.render(go, m, [PROBE_TOOL], binary=go_checker).prompt, _call_turn()[1:3])
    calls, content = ollama.parse_tool_calls(answer, rendered.tag, [PROBE_TOOL["function"]["name"]])
    assert calls == [(PROBE_CALL["function"]["name"], PROBE_CALL["function"]["arguments"])] and not content.strip()


def test_a_tag_behind_a_variable_or_an_action_is_not_found(go_checker):
    """What made every earlier Modelfile hand calls back as text: `$m.ToolCalls` is a variable, and a
    nested `if .Content` before the tag hides it; Ollama then falls back to '{'."""
    cases = {
        "{{ range $m := .Messages }}{{ if $m.ToolCalls }}<tool_call>{{ end }}{{ end }}{{ .Tools }}": "{",
        "{{ range .Messages }}{{ if .ToolCalls }}{{ if .Content }}\n{{ .Content }}{{ end }}<tool_call>{{ end }}{{ end }}": "{",
        "{{ range .Messages }}{{ if .ToolCalls }}{{ .Content }}<tool_call>{{ end }}{{ end }}": "{",
        "{{ range .Messages }}{{ if .ToolCalls }}\n  [TOOL_CALLS] [{{ range .ToolCalls }}{}{{ end }}{{ end }}{{ end }}": "[TOOL_CALLS] [",
        '{{ range .Messages }}{{ if .ToolCalls }}<tool_call>\n{"name": {{ end }}{{ end }}': "<tool_call>",
    }
    for template, tag in cases.items():
        assert ollama.render(template, [], binary=go_checker).tag == tag, template


def test_go_data_is_ollamas(go_checker):
    """json is json.Marshal (sorted map keys, <>& escaped), consecutive same-role messages merge
    (tool results do not), system messages join into .System, and a tool keeps only the schema
    keywords of Ollama's struct."""
    template = (
        "{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }}"
        "{{ range .ToolCalls }}{{ json .Function.Arguments }}{{ end }}|{{ end }}{{ range .Tools }}{{ json . }}{{ end }}"
    )
    tool = {
        "type": "function",
        "function": {
            "name": "t",
            "description": "d",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "required": ["a"],
                "properties": {
                    "a": {"type": "string", "minLength": 1, "description": "x<y"},
                    "b": {"oneOf": [{"type": "string"}], "enum": ["p", "q"]},
                },
            },
        },
    }
    messages = [
        {"role": "system", "content": "s1"},
        {"role": "system", "content": "s2"},
        {"role": "user", "content": "u1"},
        {"role": "user", "content": "u2"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "t", "arguments": json.dumps({"z": "<&>", "a": 1})},
                }
            ],
        },
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
    ]
    out = ollama.render(template, messages, [tool], binary=go_checker)
    assert out.error == "" and out.reads_tools and out.tag == "{"
    assert out.prompt == (
        's1\n\ns2|system:s1\n\ns2|user:u1\n\nu2|assistant:{"a":1,"z":"\\u003c\\u0026\\u003e"}|'
        'tool:r1|tool:r2|{"type":"function","function":{"name":"t","description":"d","parameters":'
        '{"type":"object","required":["a"],"properties":{"a":{"type":"string","description":"x\\u003cy"},'
        '"b":{"enum":["p","q"]}}}}}'
    )
    assert not ollama.render("{{ range .Messages }}{{ .Content }}{{ end }}", [], binary=go_checker).reads_tools
    assert "does not read .Messages" in ollama.render("{{ .Prompt }}", [], binary=go_checker).error
    assert ollama.render("{{ if }}", [], binary=go_checker).error  # Go's parser, not a look-alike


def test_ollamas_parser_rules():
    name = "vaultManager_createFolder"
    hermes = '<tool_call>\n{"name": "vaultManager_createFolder", "arguments": {"path": "A"}}\n</tool_call>'
    assert ollama.parse_tool_calls(hermes, "<tool_call>", [name]) == ([(name, {"path": "A"})], "")
    two = '[TOOL_CALLS] [{"name": "a_b", "arguments": {"x": 1}}, {"name": "a_b", "arguments": "{\\"x\\": 2}"}]'
    assert ollama.parse_tool_calls(two, "[TOOL_CALLS]", ["a_b"])[0] == [("a_b", {"x": 1}), ("a_b", {"x": 2})]
    # with the fallback tag '{', text before the JSON makes the whole answer content
    assert ollama.parse_tool_calls("Sure: " + hermes, "{", [name]) == ([], "Sure: " + hermes)
    # a tag Ollama did not detect leaves the call in the text
    assert ollama.parse_tool_calls(hermes, "[TOOL_CALLS]", [name]) == ([], hermes)
    # a call without arguments is not a call; a name still being written waits for more
    assert ollama.parse_tool_calls('<tool_call>{"name": "vaultManager_createFolder"}', "<tool_call>", [name])[0] == []
    assert ollama.parse_tool_calls('<tool_call>{"a": 1} vaultManager_create', "<tool_call>", [name])[0] == []


@pytest.mark.parametrize("name", FAMILY_TEMPLATES)
def test_the_lm_studio_note_says_whether_tool_calling_is_native(name):
    from Trainers.shared.export.templates import lmstudio_note

    make, bos, eos, family, call, tools, space = FAMILY_TEMPLATES[name]
    note = lmstudio_note(["m-Q4_K_M.gguf", "m-f16.gguf"], detect_format(make(), bos, eos))
    assert "lms import m-Q4_K_M.gguf" in note and eos in note
    if tools:  # Qwen 2.5 and the Mistral templates list tools: LM Studio's native tool use
        assert "Tool calling is native here" in note and "--tools-in-request" in note
    else:  # the toolkit's ChatML does not: LM Studio would switch to its [TOOL_REQUEST] prompt
        assert "NOT native" in note and "[TOOL_REQUEST]" in note and "WITHOUT\n   `tools`" in note


@pytest.mark.parametrize("name", [n for n in FAMILY_TEMPLATES if n.startswith("toolkit ")])
def test_parallel_calls_and_their_results_render_alike_and_parse_back(name, go_checker):
    """Two calls in one turn and their two results (a harmony result names its call by id)."""
    make, bos, eos, *_ = FAMILY_TEMPLATES[name]
    template = make()
    go = ollama_template(detect_format(template, bos, eos))
    second = {
        "id": "xyz789ghi",
        "type": "function",
        "function": {"name": "vaultManager_listDirectory", "arguments": {"path": "Projects"}},
    }
    tools = [
        PROBE_TOOL,
        {"type": "function", "function": {**PROBE_TOOL["function"], "name": "vaultManager_listDirectory"}},
    ]
    messages = [
        {"role": "system", "content": PROBE_SYSTEM},
        {"role": "user", "content": PROBE_USER},
        {"role": "assistant", "content": "", "tool_calls": [PROBE_CALL, second]},
        {"role": "tool", "content": '{"a": 1}', "tool_call_id": PROBE_CALL["id"]},
        {"role": "tool", "content": '{"b": 2}', "tool_call_id": second["id"]},
    ]
    want = render_chat(template, messages, tools, bos=bos, eos=eos).removeprefix(bos)
    got = ollama.render(go, messages, tools, binary=go_checker)
    assert got.error == "" and canonical_json(got.prompt, ("id", "call_id")) == canonical_json(want, ("id", "call_id"))
    answer = _answer(lambda m, g: ollama.render(go, m, tools, binary=go_checker).prompt, messages[1:3])
    calls, _ = ollama.parse_tool_calls(answer, got.tag, [t["function"]["name"] for t in tools])
    assert calls == [(c["function"]["name"], c["function"]["arguments"]) for c in (PROBE_CALL, second)]


# the families' own templates, as llama.cpp bundles them: name -> (bos, eos, family, call format)
OWN_TEMPLATES = {
    "openai-gpt-oss-120b": ("<|startoftext|>", "<|return|>", "harmony", "harmony"),
    "meta-llama-Llama-3.1-8B-Instruct": ("<|begin_of_text|>", "<|eot_id|>", "llama3", "llama"),
    "meta-llama-Llama-3.2-3B-Instruct": ("<|begin_of_text|>", "<|eot_id|>", "llama3", "llama"),
    "Mistral-Small-3.2-24B-Instruct-2506": ("<s>", "</s>", "mistral-v11", "mistral"),
    "unsloth-mistral-Devstral-Small-2507": ("<s>", "</s>", "mistral-v11", "mistral"),
}


@pytest.mark.parametrize("name", OWN_TEMPLATES)
def test_the_families_own_templates_are_detected_and_ollama_reads_their_calls(name, go_checker):
    """They export (the 20b preset's gpt-oss was refused before); Ollama finds the tag and reads the
    call back, but their prompts carry what a TEMPLATE does not reproduce (today's date, a fixed
    system prompt, TypeScript tool types, tools in the user turn): the check says so, and only that."""
    bos, eos, family, call = OWN_TEMPLATES[name]
    template = bundled_template(name)
    fmt = detect_format(template, bos, eos)
    assert (fmt.family, fmt.call_format) == (family, call)
    problems = check_ollama_template(template, fmt, ollama_template(fmt), go_checker)
    assert problems and all(p.startswith("prompt differs") for p in problems), problems
