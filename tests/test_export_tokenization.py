"""llama.cpp tokenizes what the model was trained on exactly as transformers does: 100 training
conversations from Datasets/teacher, rendered with the tiny model's chat template, give the same
token ids from the tokenizer (transformers) and from the exported GGUF (llama.cpp, vocab only).
Without this, every evaluation through llama.cpp measures a model on prompts it never saw: chat
markers stored as normal tokens are split into characters, and SentencePiece's prefix space puts a
'▁' after every special token."""

import json
from pathlib import Path

import pytest

from Trainers.shared.data import chat_messages, encode_prompt, render_conversation, render_prompt
from Trainers.shared.tiny_model import CONTROL_TOKENS, MARKER_TOKENS

TEACHER = Path(__file__).resolve().parents[1] / "Datasets" / "teacher" / "teacher_sft.jsonl"


@pytest.fixture(scope="module")
def engines(tiny_model_dir, tiny_gguf):
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    llm = llama_cpp.Llama(model_path=str(tiny_gguf), vocab_only=True, verbose=False)
    yield AutoTokenizer.from_pretrained(tiny_model_dir), llm
    llm.close()


def test_training_conversations_and_prompts_get_the_same_ids_in_transformers_and_llama_cpp(engines):
    tokenizer, llm = engines
    records = [json.loads(line) for line in TEACHER.read_text(encoding="utf-8").splitlines()[:100]]
    assert len(records) == 100
    for n, record in enumerate(records):
        messages = chat_messages(record)
        text, _ = render_conversation(tokenizer, messages)  # what SFT trains on
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"], n
        first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = render_prompt(tokenizer, messages[:first])  # what it answers
        assert llm.tokenize(prompt.encode(), add_bos=True, special=True) == encode_prompt(
            tokenizer, messages[:first]
        ), n


def test_markers_are_single_tokens_and_only_the_call_markers_are_printed(engines):
    tokenizer, llm = engines
    for token in CONTROL_TOKENS + MARKER_TOKENS:
        ids = llm.tokenize(token.encode(), add_bos=False, special=True)
        assert ids == [tokenizer.convert_tokens_to_ids(token)], token
        # what llama.cpp writes into an answer: the call markers, never the turn markers
        assert llm.detokenize(ids) == (b"" if token in CONTROL_TOKENS else token.encode()), token
    # a user typing a turn marker does not open a turn (special=False parses it as text)
    assert len(llm.tokenize(b"<|im_start|>", add_bos=False, special=False)) > 1


@pytest.fixture(scope="module")
def trained_gguf(tmp_path_factory):
    """A model as the closed loop makes one: a tokenizer trained on teacher records, a full SFT
    step, a KTO step from that, and the KTO model exported by the toolkit's own export."""
    from conftest import require_llama_cpp

    require_llama_cpp()
    from Trainers.shared.config import load_config
    from Trainers.shared.export.build import export_gguf
    from Trainers.shared.export.source import resolve_source
    from Trainers.shared.tiny_model import build_tiny_model
    from Trainers.shared.train import run_training

    tmp = tmp_path_factory.mktemp("trained")
    lines = TEACHER.read_text(encoding="utf-8").splitlines()
    corpus = [json.dumps(chat_messages(json.loads(line)), ensure_ascii=False) for line in lines[100:1100]]
    base = build_tiny_model(tmp / "base", corpus=corpus, vocab_size=2000, hidden_size=64, num_layers=2)
    sft, kto = tmp / "sft.jsonl", tmp / "kto.jsonl"
    sft.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    kto_lines = (TEACHER.parent / "teacher_kto.jsonl").read_text(encoding="utf-8").splitlines()
    kto.write_text("\n".join(kto_lines[:4]) + "\n", encoding="utf-8")
    model = str(base)
    for method, data in (("sft", sft), ("kto", kto)):
        flags = {"model_name": model, "local_file": str(data), "output_dir": str(tmp / method), "max_steps": 1}
        flags.update(batch_size=2, gradient_accumulation=1, full_finetune=True, save_steps=100)
        model = str(run_training(load_config(method, None, flags)).final_dir)
    done = export_gguf(resolve_source(model), tmp / "gguf", [], name="kto", roundtrip="off", progress=False)
    return model, tmp / "gguf" / done.files[0]["file"]


def test_a_trained_model_keeps_the_sentencepiece_tokenizer_llama_cpp_needs(trained_gguf):
    """Each trained model folder carries its base's tokenizer.model. transformers saves only
    tokenizer.json, which llama.cpp's converter reads as BPE without the piece scores: llama.cpp then
    split 'session' into 'se', 'ss', 'ion' and every evaluated prompt differed from training."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    model, gguf = trained_gguf
    tokenizer = AutoTokenizer.from_pretrained(model)
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        assert llm.metadata["tokenizer.ggml.model"] == "llama"  # SentencePiece, with its scores
        for n, line in enumerate(TEACHER.read_text(encoding="utf-8").splitlines()[1200:1300]):
            text, _ = render_conversation(tokenizer, chat_messages(json.loads(line)))
            assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"], n
    finally:
        llm.close()


def test_llama_cpp_chat_completion_prompts_as_training_does(trained_gguf):
    """The embedded client's chat completion decodes exactly the tokens the model saw in training
    before an answer, BOS first: llama-cpp-python's template handler adds no BOS (it takes every
    template to write one), and ChatML does not, so a model trained with one lost it in evaluation.
    The tokens are read from llama.cpp's own tokenize call inside the completion."""
    from transformers import AutoTokenizer

    from Evaluator.clients import LlamaCppClient

    model, gguf = trained_gguf
    tokenizer = AutoTokenizer.from_pretrained(model)
    client = LlamaCppClient(str(gguf), n_ctx=2048)
    prompts = []
    tokenize = client._llm.tokenize

    def watched(text, add_bos=True, special=False):
        prompts.append(tokenize(text, add_bos=add_bos, special=special))
        return prompts[-1]

    client._llm.tokenize = watched
    try:
        for line in TEACHER.read_text(encoding="utf-8").splitlines()[1300:1303]:
            messages = chat_messages(json.loads(line))
            first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
            client.chat(messages[:first], max_tokens=2)
            assert prompts[0][0] == tokenizer.bos_token_id
            assert prompts[0] == encode_prompt(tokenizer, messages[:first])
            prompts.clear()
    finally:
        client.close()
