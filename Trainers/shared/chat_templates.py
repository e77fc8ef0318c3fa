"""Chat templates of the model families the toolkit trains, written from each family's documented
format (the families' own template files are not copied), and the special tokens each one uses.

A template here renders a conversation left to right, so every prefix of a conversation renders as
a prefix of the whole (what the loss mask needs, ``data.render_conversation``); where a family's
own template does not, the difference is named below. ``tiny_model.build_tiny_model(family=...)``
builds a test model with each; ``model.chat_template: NAME`` puts one on a real model (the 7b
preset puts ``mistral`` on its own).

- ``chatml``: the toolkit's ChatML with Hermes ``<tool_call>`` blocks (``tiny_model.CHAT_TEMPLATE``).
- ``qwen2.5``: Qwen 2.5 Instruct: ChatML, a default system prompt, the request's tools listed in
  the system turn inside ``<tools>``, calls as ``<tool_call>`` blocks, results as user turns
  holding ``<tool_response>`` (Qwen's own merges consecutive results into one user turn).
- ``mistral`` (v0.3): ``<s>[INST] user[/INST] answer</s>``, the tools as ``[AVAILABLE_TOOLS] [...]``
  before the last user turn, calls as ``[TOOL_CALLS] [{"name": ..., "arguments": {...}, "id":
  "..."}]</s>``, results as ``[TOOL_RESULTS] {"content": RESULT, "call_id": ...}[/TOOL_RESULTS]`` (the
  result written as it is, as Mistral's own template does: a JSON result stays JSON). The system prompt goes into
  the first user turn: Mistral's own attaches it to the last user turn, so a conversation prefix
  renders differently from the whole conversation and assistant turns cannot be located for the
  loss mask; for a single-turn prompt the two are identical.
- ``mistral-v11`` (Mistral Small 3.2, Magistral, Devstral): ``[SYSTEM_PROMPT]...[/SYSTEM_PROMPT]``,
  calls as ``[TOOL_CALLS]name[ARGS]{...}`` (once per call), results as ``[TOOL_RESULTS]...[/TOOL_RESULTS]``.
- ``harmony`` (gpt-oss): ``<|start|>ROLE<|message|>...<|end|>``; a call is
  ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}<|call|>``,
  its result ``<|start|>functions.NAME to=assistant<|channel|>commentary<|message|>...<|end|>``, an
  answer ``<|channel|>final<|message|>...<|return|>``. gpt-oss's own template ends only the last
  answer with ``<|return|>`` (earlier ones with ``<|end|>``) and lists tools as TypeScript types;
  here every answer ends with ``<|return|>`` (prefixes stay prefixes) and a tool's parameters are
  its JSON schema.
- ``llama3`` (Llama 3.1 / 3.2): ``<|begin_of_text|><|start_header_id|>ROLE<|end_header_id|>\\n\\n...<|eot_id|>``,
  calls as JSON ``{"name": ..., "parameters": {...}}`` (several joined by ``; ``), results in
  ``ipython`` turns, tools listed in the system turn (Llama's ``tools_in_user_message=false`` form).
"""

from __future__ import annotations

from dataclasses import dataclass

# The body every template shares: a call's arguments given as a JSON string (OpenAI style) are
# written through unchanged, an object as JSON.
_ARGS = (
    "{%- if fn['arguments'] is string %}{{- fn['arguments'] }}{%- else %}{{- fn['arguments'] | tojson }}{%- endif %}"
)
_FN = "{%- set fn = call['function'] if call.get('function') else call %}"

QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

QWEN25_TEMPLATE = (
    "{%- set has_system = messages and messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + (messages[0]['content'] if has_system else '" + QWEN_DEFAULT_SYSTEM + "') }}"
    "{%- if tools %}"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call>\' }}'
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- for message in (messages[1:] if has_system else messages) %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if message['content'] %}{{- message['content'] + ('\\n' if message.get('tool_calls') else '') }}{%- endif %}"
    "{%- for call in message.get('tool_calls') or [] %}" + _FN + "{%- if not loop.first %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>\\n{\"name\": ' + (fn['name'] | tojson) + ', \"arguments\": ' }}"
    + _ARGS
    + "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _last_user() -> str:
    return (
        "{%- set ns = namespace(last_user=-1) %}"
        "{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}"
        "{%- endif %}{%- endfor %}"
    )


MISTRAL_TEMPLATE = (
    "{{- bos_token }}"
    + _last_user()
    + "{%- set ns.system = messages[0]['content'] if messages and messages[0]['role'] == 'system' else none %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if tools and loop.index0 == ns.last_user %}{{- '[AVAILABLE_TOOLS] ' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif %}"
    "{%- if ns.system %}{{- '[INST] ' + ns.system + '\\n\\n' + message['content'] + '[/INST]' }}{%- set ns.system = none %}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{%- if message['content'] %}{{- ' ' + message['content'] }}{%- endif %}"
    "{{- '[TOOL_CALLS] [' }}"
    "{%- for call in message['tool_calls'] %}"
    + _FN
    + "{{- '{\"name\": ' + (fn['name'] | tojson) + ', \"arguments\": ' }}"
    + _ARGS
    + "{%- if call.get('id') %}{{- ', \"id\": ' + (call['id'] | tojson) }}{%- endif %}"
    "{{- '}' + (', ' if not loop.last else ']') }}"
    "{%- endfor %}"
    "{{- eos_token }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + (message['content'] or '') + eos_token }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '[TOOL_RESULTS] {\"content\": ' + message['content'] + ', \"call_id\": ' + (message.get('tool_call_id') | tojson) + '}[/TOOL_RESULTS]' }}"
    "{%- endif %}"
    "{%- endfor %}"
)

MISTRAL_V11_TEMPLATE = (
    "{{- bos_token }}"
    + _last_user()
    + "{%- if messages and messages[0]['role'] == 'system' %}{{- '[SYSTEM_PROMPT]' + messages[0]['content'] + '[/SYSTEM_PROMPT]' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if tools and loop.index0 == ns.last_user %}{{- '[AVAILABLE_TOOLS]' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif %}"
    "{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- message['content'] or '' }}"
    "{%- for call in message.get('tool_calls') or [] %}"
    + _FN
    + "{{- '[TOOL_CALLS]' + fn['name'] + '[ARGS]' }}"
    + _ARGS
    + "{%- endfor %}"
    "{{- eos_token }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '[TOOL_RESULTS]' + message['content'] + '[/TOOL_RESULTS]' }}"
    "{%- endif %}"
    "{%- endfor %}"
)

HARMONY_TEMPLATE = (
    "{{- '<|start|>system<|message|>Reasoning: low\\n\\n# Valid channels: analysis, commentary, final. "
    "Channel must be included for every message.' }}"
    "{%- if tools %}{{- \"\\nCalls to these tools must go to the commentary channel: 'functions'.\" }}{%- endif %}"
    "{{- '<|end|>' }}"
    "{%- set has_system = messages and messages[0]['role'] == 'system' %}"
    "{%- if has_system or tools %}"
    "{{- '<|start|>developer<|message|>' }}"
    "{%- if has_system %}{{- '# Instructions\\n\\n' + messages[0]['content'] + ('\\n\\n' if tools else '') }}{%- endif %}"
    "{%- if tools %}"
    "{{- '# Tools\\n\\n## functions\\n\\nnamespace functions {\\n\\n' }}"
    "{%- for tool in tools %}{%- set fn = tool['function'] if tool.get('function') else tool %}"
    "{{- '// ' + (fn.get('description') or '') + '\\ntype ' + fn['name'] + ' = (_: ' + (fn.get('parameters', {}) | tojson) + ') => any;\\n\\n' }}"
    "{%- endfor %}"
    "{{- '} // namespace functions' }}"
    "{%- endif %}"
    "{{- '<|end|>' }}"
    "{%- endif %}"
    "{%- set ns = namespace(calls=[]) %}"
    "{%- for message in (messages[1:] if has_system else messages) %}"
    "{%- if message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{%- set ns.calls = message['tool_calls'] %}"
    "{%- if message['content'] %}{{- '<|start|>assistant<|channel|>commentary<|message|>' + message['content'] + '<|end|>' }}{%- endif %}"
    "{%- for call in message['tool_calls'] %}"
    + _FN
    + "{{- '<|start|>assistant<|channel|>commentary to=functions.' + fn['name'] + ' <|constrain|>json<|message|>' }}"
    + _ARGS
    + "{{- '<|call|>' }}"
    "{%- endfor %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- '<|start|>assistant<|channel|>final<|message|>' + (message['content'] or '') + '<|return|>' }}"
    "{%- elif message['role'] == 'tool' %}"  # the result names the call it answers (by call id)
    "{{- '<|start|>functions.' }}"
    "{%- for call in ns.calls %}"
    + _FN
    + "{%- if call.get('id') == message.get('tool_call_id') %}{{- fn['name'] }}{%- endif %}{%- endfor %}"
    "{{- ' to=assistant<|channel|>commentary<|message|>' + message['content'] + '<|end|>' }}"
    "{%- else %}"
    "{{- '<|start|>' + message['role'] + '<|message|>' + (message['content'] or '') + '<|end|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start|>assistant' }}{%- endif %}"
)

LLAMA3_TEMPLATE = (
    "{{- bos_token + '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{%- if tools %}{{- 'Environment: ipython\\n' }}{%- endif %}"
    "{{- 'Cutting Knowledge Date: December 2023\\n\\n' }}"
    "{%- set has_system = messages and messages[0]['role'] == 'system' %}"
    "{%- if has_system %}{{- messages[0]['content'] }}{%- endif %}"
    "{%- if tools %}"
    "{{- '\\n\\nYou have access to the following functions. To call a function, respond with JSON for a function call '"
    ' + \'in the format {"name": function name, "parameters": dictionary of argument name and its value}. \''
    " + 'Do not use variables.\\n\\n' }}"
    "{%- for tool in tools %}{{- (tool | tojson) + '\\n\\n' }}{%- endfor %}"
    "{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in (messages[1:] if has_system else messages) %}"
    "{%- if message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- for call in message['tool_calls'] %}" + _FN + "{%- if not loop.first %}{{- '; ' }}{%- endif %}"
    "{{- '{\"name\": ' + (fn['name'] | tojson) + ', \"parameters\": ' }}" + _ARGS + "{{- '}' }}"
    "{%- endfor %}"
    "{{- '<|eot_id|>' }}"
    "{%- else %}"
    "{{- '<|start_header_id|>' + ('ipython' if message['role'] == 'tool' else message['role']) + '<|end_header_id|>\\n\\n' }}"
    "{{- (message['content'] or '') + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TemplateFamily:
    """A family's template and tokens, as the tiny model is built with them. control: special tokens
    llama.cpp keeps out of an answer's text; markers: special tokens it writes out (the parser reads them)."""

    name: str
    template: str
    bos: str
    eos: str
    control: tuple
    markers: tuple
    call_format: str  # the Tools.schema.toolcalls format the model writes its calls in


def _families() -> dict:
    from .tiny_model import CHAT_TEMPLATE, CONTROL_TOKENS, MARKER_TOKENS

    chatml = (tuple(CONTROL_TOKENS), tuple(MARKER_TOKENS))
    mistral = ("[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]")
    return {
        f.name: f
        for f in (
            TemplateFamily("chatml", CHAT_TEMPLATE, "<s>", "<|im_end|>", *chatml, "hermes"),
            TemplateFamily("qwen2.5", QWEN25_TEMPLATE, "<s>", "<|im_end|>", *chatml, "hermes"),
            TemplateFamily("mistral", MISTRAL_TEMPLATE, "<s>", "</s>", mistral, ("[TOOL_CALLS]",), "mistral"),
            TemplateFamily(
                "mistral-v11",
                MISTRAL_V11_TEMPLATE,
                "<s>",
                "</s>",
                mistral + ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"),
                ("[TOOL_CALLS]", "[ARGS]"),
                "mistral",
            ),
            # llama.cpp's converter stores every <|...|> token as a control token; it prints harmony's
            # message markers all the same (as it does for gpt-oss), and the call ends at <|call|>
            TemplateFamily(
                "harmony",
                HARMONY_TEMPLATE,
                "<s>",
                "<|return|>",
                ("<|return|>", "<|call|>"),
                ("<|start|>", "<|end|>", "<|channel|>", "<|constrain|>", "<|message|>"),
                "harmony",
            ),
            TemplateFamily(
                "llama3",
                LLAMA3_TEMPLATE,
                "<|begin_of_text|>",
                "<|eot_id|>",
                ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"),
                (),
                "llama",
            ),
        )
    }


def family_names() -> list[str]:
    return list(_families())


def family(name: str) -> TemplateFamily:
    """The family called name (ValueError naming the known ones otherwise)."""
    families = _families()
    if name not in families:
        raise ValueError(f"unknown chat family {name!r}; expected one of {', '.join(families)}")
    return families[name]
