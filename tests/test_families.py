"""Every model family the presets train (and Llama 3.x, which users bring), end to end on CPU: a tiny
model built with the family's chat template and special tokens (Trainers/shared/chat_templates.py),
SFT with the loss on the assistant turns only, KTO from the SFT adapter, GGUF export with the
Modelfile Ollama gets (checked with Go's text/template) or the one line saying why there is none, and
evaluation through embedded llama.cpp, which must see the very token ids transformers trained on."""

import json
import shutil

import pytest

from Tools.schema.toolcalls import parse_content
from Trainers.shared.chat_templates import family as chat_family
from Trainers.shared.config import load_config
from Trainers.shared.data import (
    IGNORE_INDEX,
    chat_messages,
    encode_prompt,
    encode_sft,
    render_conversation,
    render_prompt,
)
from Trainers.shared.train import run_training

from conftest import require_llama_cpp, tool_record, write_jsonl

# family -> (the end of a plain answer as it is trained, the family the export detects)
FAMILIES = {
    "qwen2.5": ("Done.<|im_end|>", "chatml"),
    "mistral": (" Done.</s>", "mistral"),
    "mistral-v11": ("Done.</s>", "mistral-v11"),
    "harmony": ("<|channel|>final<|message|>Done.<|return|>", "harmony"),
    "llama3": ("Done.<|eot_id|>", "llama3"),
}


def _conversation(folder: str) -> dict:
    """system, user, call, result, answer: two assistant turns, one of them a call."""
    record = tool_record(folder, f"Create a folder for {folder}")
    record["conversations"] += [
        {"role": "tool", "content": '{"success": true}'},
        {"role": "assistant", "content": "Done."},
    ]
    return record


def _check_mask(tokenizer, fmt: str, answer_end: str) -> None:
    record = _conversation("Projects/Alpha")
    messages = chat_messages(record)
    text, spans = render_conversation(tokenizer, messages)
    row = encode_sft(tokenizer, [messages])[0]
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    trained = [(a, b) for (a, b), label in zip(offsets, row["labels"]) if label != IGNORE_INDEX]
    # every trained token lies inside an assistant turn, and together they cover both turns whole
    assert all(any(s <= a and b <= e for s, e in spans) for a, b in trained)
    assert "".join(text[a:b] for a, b in trained) == "".join(text[s:e] for s, e in spans)
    call_turn, answer_turn = (text[s:e] for s, e in spans)
    parsed = parse_content(call_turn)
    call = json.loads(record["conversations"][2]["tool_calls"][0]["function"]["arguments"])
    assert (parsed.format, [(c.name, c.arguments) for c in parsed.calls]) == (
        fmt,
        [("vaultManager_createFolder", call)],
    )
    assert answer_turn == answer_end
    for untrained in ("session_context", "Create a folder for", "success"):
        assert untrained in text and all(untrained not in text[s:e] for s, e in spans)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_builds_trains_exports_and_evaluates(name, tmp_path):
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from Trainers.shared.export.build import export_gguf
    from Trainers.shared.export.source import resolve_source
    from Trainers.shared.tiny_model import build_tiny_model

    require_llama_cpp()
    spec = chat_family(name)
    answer_end, exported_as = FAMILIES[name]
    model = build_tiny_model(tmp_path / "model", family=name)
    tokenizer = AutoTokenizer.from_pretrained(model)
    assert tokenizer.chat_template == spec.template and tokenizer.eos_token == spec.eos
    _check_mask(tokenizer, spec.call_format, answer_end)

    sft_data = write_jsonl(tmp_path / "sft.jsonl", [_conversation(f"Projects/{n}") for n in ("Alpha", "Beta")] * 2)
    flags = {
        "model_name": str(model),
        "batch_size": 2,
        "gradient_accumulation": 1,
        "save_steps": 100,
        "learning_rate": 5e-3,
    }
    sft = run_training(
        load_config("sft", None, {**flags, "local_file": sft_data, "output_dir": str(tmp_path / "sft"), "max_steps": 2})
    )
    kto_data = write_jsonl(
        tmp_path / "kto.jsonl",
        [
            tool_record("Projects/Alpha", "Create a folder for Alpha", True),
            tool_record("Trash/tmp", "Create a folder for Alpha", False),
        ]
        * 2,
    )
    kto = run_training(
        load_config(
            "kto",
            None,
            {
                **flags,
                "model_name": str(sft.final_dir),
                "local_file": kto_data,
                "output_dir": str(tmp_path / "kto"),
                "max_steps": 2,
            },
        )
    )

    out = tmp_path / "gguf"
    result = export_gguf(
        resolve_source(kto.run_dir), out, ["Q8_0"], name="m", roundtrip="plumbing", server=False, progress=False
    )
    assert result.chat_format["family"] == exported_as and result.chat_format["call_format"] == spec.call_format
    assert (out / "m-Q8_0.gguf").is_file() and (out / "m-f16.gguf").is_file()
    # Ollama gets a Modelfile whose TEMPLATE Go renders as the chat template does, with the family's tag
    assert (out / "Modelfile").is_file() and result.template_problems == [] and result.no_ollama is None
    assert any("not checked" in w for w in result.warnings) != bool(shutil.which("go")), result.warnings
    # evaluated through embedded llama.cpp: the control call parses in the family's format, every prompt answered
    trip = result.roundtrip
    assert trip["ok"] and trip["template_renders"], trip
    assert trip["backends"][0]["backend"] == "llamacpp" and trip["backends"][0]["answers"] == 3
    assert trip["backends"][0]["control_parsed"]

    # the same token ids in transformers and llama.cpp, for what SFT trains on and for what a prompt asks
    llm = Llama(model_path=str(out / "m-Q8_0.gguf"), vocab_only=True, verbose=False)
    try:
        for folder in ("Projects/Alpha", "Notes/Meetings 2024"):
            messages = chat_messages(_conversation(folder))
            text, _ = render_conversation(tokenizer, messages)
            assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"]
            prompt = render_prompt(tokenizer, messages[:2])
            assert llm.tokenize(prompt.encode(), add_bos=True, special=True) == encode_prompt(tokenizer, messages[:2])
        for token in spec.control + spec.markers:  # markers print, turn tokens do not
            ids = llm.tokenize(token.encode(), add_bos=False, special=True)
            assert ids == [tokenizer.convert_tokens_to_ids(token)], token
            assert llm.detokenize(ids) == (b"" if token in spec.control else token.encode()), token
    finally:
        llm.close()


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="expected one of chatml, qwen2.5"):
        chat_family("phi")


def test_a_template_of_no_known_family_exports_a_gguf_and_says_in_one_line_why_there_is_no_modelfile(tmp_path):
    from Trainers.shared.export.build import export_gguf
    from Trainers.shared.export.source import resolve_source
    from Trainers.shared.tiny_model import build_tiny_model

    require_llama_cpp()
    model = build_tiny_model(tmp_path / "model")
    config_file = model / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    # Zephyr-style turns, calls in the text `tool_call:` form: the parser reads it, no family owns it
    config["chat_template"] = (
        "{%- for m in messages %}{{- '<|' + m['role'] + '|>\\n' }}{%- if m.get('tool_calls') %}"
        "{%- for c in m['tool_calls'] %}{{- 'tool_call: ' + c['function']['name'] + '\\narguments: ' + "
        "(c['function']['arguments'] | tojson) }}{%- endfor %}{%- else %}{{- m['content'] }}{%- endif %}"
        "{{- eos_token }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}"
    )
    config_file.write_text(json.dumps(config))
    out = tmp_path / "gguf"
    result = export_gguf(resolve_source(model), out, [], name="m", progress=False)
    assert (out / "m-f16.gguf").is_file() and not (out / "Modelfile").exists() and not (out / "LMSTUDIO.md").exists()
    assert result.no_ollama.startswith("Ollama: no Modelfile: the chat template is none of the families")
    assert "\n" not in result.no_ollama and result.roundtrip is None and result.chat_format == {}
    assert "round trip skipped" in " ".join(result.warnings)
    assert json.loads((out / "export.json").read_text())["no_ollama"] == result.no_ollama


def test_presets_say_what_they_train_and_the_7b_and_20b_presets_use_the_toolkits_templates(capsys):
    from Trainers.shared.cli import build_parser
    from Trainers.shared.config import SIZE_PRESETS

    config = load_config("sft", None, {"model_size": "7b"})
    assert config.chat_template == "mistral"  # the preset's own model: Mistral v0.3's format
    assert (
        load_config("sft", None, {"model_size": "7b", "model_name": "meta-llama/Llama-3.2-3B-Instruct"}).chat_template
        is None
    )
    assert load_config("sft", None, {"model_size": "3b"}).chat_template is None  # Qwen's own template
    assert load_config("sft", None, {"model_size": "20b"}).chat_template == "harmony"
    with pytest.raises(SystemExit):
        build_parser("sft").parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for size, preset in SIZE_PRESETS.items():
        assert f"{size} {preset.model_name}: {' '.join(preset.trains.split())}" in help_text
    for fmt in ("(hermes)", "(mistral)", "(harmony)", "Llama 3.x"):
        assert fmt in help_text
