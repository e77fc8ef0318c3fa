"""The one tiny-model factory: a small Llama-architecture model with random weights and a
SentencePiece tokenizer trained on the spot, saved in Hugging Face format.

Tests, the demo and benchmarks build models with it, so nothing is ever downloaded. The tokenizer
is a SentencePiece ``tokenizer.model`` (llama.cpp's converter accepts it; a custom BPE tokenizer it
rejects) whose chat markers are declared in ``added_tokens_decoder`` (the converter writes them as
CONTROL or USER_DEFINED tokens, so llama.cpp keeps them whole) and which adds no prefix space
(``add_dummy_prefix`` off, ``add_prefix_space: false``: llama.cpp would otherwise put a ``▁`` after
every special token, transformers not), so both engines give the same token ids. The chat
template is ChatML with Hermes-style ``<tool_call>`` blocks, rendered exactly as
``Tools.schema.toolcalls.render_content(calls, "hermes")`` writes them. ``family`` builds the model
with another family's template and special tokens instead (``chat_templates.py``: Qwen 2.5, Mistral
v0.3 and v11, gpt-oss harmony, Llama 3.x).

    python -m Trainers.shared.tiny_model OUT_DIR [FAMILY] [--hidden 64 --layers 2 --heads 4]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Iterable

# Control tokens (never printed back) and printable markers (written out, so llama.cpp returns the
# calls as text a parser can read). Both are single tokens in transformers and llama.cpp alike.
CONTROL_TOKENS = ["<|im_start|>", "<|im_end|>"]
MARKER_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

# ChatML; assistant tool calls as <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>.
# Arguments given as a JSON string (OpenAI style) are written through unchanged.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{%- if message['content'] %}{{- message['content'] + '\\n' }}{%- endif %}"
    "{%- for call in message['tool_calls'] %}"
    "{%- set fn = call['function'] if call.get('function') else call %}"
    "{%- if not loop.first %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>\\n{\"name\": ' + (fn['name'] | tojson) + ', \"arguments\": ' }}"
    "{%- if fn['arguments'] is string %}{{- fn['arguments'] }}{%- else %}{{- fn['arguments'] | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{%- else %}"
    "{{- message['content'] or '' }}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def default_corpus() -> list[str]:
    """Text the tokenizer learns from: the tool registry and a few rendered calls."""
    from Tools.schema.registry import load_registry

    registry = load_registry()
    lines = []
    for tool in registry.tools.values():
        lines.append(f"{tool.name} {tool.agent} {tool.mode} {tool.description}")
        for name, prop in tool.parameters.get("properties", {}).items():
            lines.append(f'"{name}": {json.dumps(prop.get("description", ""))}')
    lines += [
        '<tool_call>\n{"name": "vaultManager_createFolder", "arguments": {"context": {"sessionId": '
        '"session_1732147550000_x2y3z4a5b", "workspaceId": "ws_1732147550000_c6d7e8f9g"}, "path": "Projects/Notes"}}\n</tool_call>',
        "Please create a folder for my project notes and read the meeting note from yesterday.",
        "I could not find that note. Do you want me to search the vault for it first?",
    ]
    return lines * 4


def build_tiny_model(
    out_dir: str | Path,
    corpus: Iterable[str] | None = None,
    *,
    vocab_size: int = 1000,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    family: str = "chatml",
) -> Path:
    """Write a random-weight LlamaForCausalLM and its SentencePiece tokenizer to out_dir."""
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from .chat_templates import family as chat_family

    spec = chat_family(family)
    control, special = list(spec.control), list(spec.control + spec.markers)
    bos, eos = spec.bos, spec.eos
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "corpus.txt"
        text.write_text("\n".join(corpus or default_corpus()) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(tmp) / "tokenizer"),
            vocab_size=vocab_size,
            model_type="bpe",
            byte_fallback=True,
            hard_vocab_limit=False,
            character_coverage=1.0,
            user_defined_symbols=[t for t in special if t not in (bos, "</s>")],
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=3,
            bos_piece=bos,
            split_digits=True,
            add_dummy_prefix=False,
            num_threads=1,
            minloglevel=2,
        )
        (out / "tokenizer.model").write_bytes((Path(tmp) / "tokenizer.model").read_bytes())
    processor = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    eos_id = processor.piece_to_id(eos)
    added = {
        str(processor.piece_to_id(t)): {
            "content": t,
            "special": t in control,
            "normalized": False,
            "lstrip": False,
            "rstrip": False,
            "single_word": False,
        }
        for t in special
        if t not in (bos, "</s>")
    }
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": bos,
                "eos_token": eos,
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "add_bos_token": True,
                "add_eos_token": False,
                "legacy": False,
                "add_prefix_space": False,
                "added_tokens_decoder": added,
                "additional_special_tokens": control,
                "model_max_length": 2048,
                "chat_template": spec.template,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (out / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": bos,
                "eos_token": eos,
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "additional_special_tokens": control,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=processor.vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=eos_id,
        pad_token_id=3,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from Tools.cli_common import ArgumentParser, die

    from .chat_templates import family_names

    families = family_names()
    parser = ArgumentParser(
        prog="python -m Trainers.shared.tiny_model",
        description="Write a tiny random-weight Llama and a tokenizer trained on the spot to OUT_DIR "
        "(Hugging Face format; nothing is downloaded): a model to try the trainers, export and evaluator on.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument(
        "family",
        metavar="FAMILY",
        nargs="?",
        default="chatml",
        choices=families,
        help=f"the chat template and special tokens: {', '.join(families)} (default chatml)",
    )
    parser.add_argument("--hidden", type=int, default=64, help="width (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads, a divisor of --hidden (default 4)")
    args = parser.parse_args(argv)
    if min(args.hidden, args.layers, args.heads) < 1 or args.hidden % args.heads:
        die(
            f"--hidden {args.hidden}, --layers {args.layers} and --heads {args.heads} must be positive, heads dividing hidden"
        )
    out = Path(args.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        die(f"{out} exists and is not an empty folder; choose a new OUT_DIR")
    try:
        made = build_tiny_model(
            out, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads, family=args.family
        )
    except OSError as exc:
        die(f"cannot write the model to {out}: {exc.strerror or exc}")
    print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main())
