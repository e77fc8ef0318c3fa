"""Chat templates the toolkit can put on a tokenizer (``model.chat_template``) besides the
model's own: ``chatml`` (the tiny model's template, ``tiny_model.CHAT_TEMPLATE``) and ``mistral``.

``mistral`` is the Mistral Instruct v3 format (Mistral 7B Instruct v0.3 and its MLX builds):
``<s>[INST] user[/INST] answer</s>``, tool calls as ``[TOOL_CALLS] [{"name": ..., "arguments":
{...}, "id": "..."}]</s>`` and tool results as ``[TOOL_RESULTS] {...}[/TOOL_RESULTS]``. The system
prompt goes into the first user turn. Mistral's own template attaches it to the last user turn,
so a conversation prefix renders differently from the whole conversation and assistant turns
cannot be located for the loss mask; for a single-turn prompt the two are identical, so a model
trained with this template is served correctly by Mistral's own.
"""

MISTRAL_TEMPLATE = (
    "{{- bos_token }}"
    "{%- set ns = namespace(system=none) %}"
    "{%- if messages and messages[0]['role'] == 'system' %}{%- set ns.system = messages[0]['content'] %}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if ns.system %}{{- '[INST] ' + ns.system + '\\n\\n' + message['content'] + '[/INST]' }}{%- set ns.system = none %}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{%- if message['content'] %}{{- ' ' + message['content'] }}{%- endif %}"
    "{{- '[TOOL_CALLS] [' }}"
    "{%- for call in message['tool_calls'] %}"
    "{%- set fn = call['function'] if call.get('function') else call %}"
    "{{- '{\"name\": ' + (fn['name'] | tojson) + ', \"arguments\": ' }}"
    "{%- if fn['arguments'] is string %}{{- fn['arguments'] }}{%- else %}{{- fn['arguments'] | tojson }}{%- endif %}"
    "{%- if call.get('id') %}{{- ', \"id\": ' + (call['id'] | tojson) }}{%- endif %}"
    "{{- '}' + (', ' if not loop.last else ']') }}"
    "{%- endfor %}"
    "{{- eos_token }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + (message['content'] or '') + eos_token }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '[TOOL_RESULTS] {\"content\": ' + (message['content'] | tojson) + ', \"call_id\": ' + (message.get('tool_call_id') | tojson) + '}[/TOOL_RESULTS]' }}"
    "{%- endif %}"
    "{%- endfor %}"
)
