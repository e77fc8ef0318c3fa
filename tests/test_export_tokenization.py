"""llama.cpp tokenizes what the model was trained on exactly as transformers does: 100 training
conversations from Datasets/teacher, rendered with the tiny model's chat template, give the same
token ids from the tokenizer (transformers) and from the exported GGUF (llama.cpp, vocab only).
Without this, every evaluation through llama.cpp measures a model on prompts it never saw: chat
markers stored as normal tokens are split into characters, and SentencePiece's prefix space puts a
'▁' after every special token."""

import json
from pathlib import Path

import pytest

from Trainers.shared.data import _render, _strip_bos, chat_messages, encode_prompt
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
        text, _ = _strip_bos(tokenizer, _render(tokenizer, messages), [])  # what SFT trains on
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"], n
        first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = _strip_bos(tokenizer, _render(tokenizer, messages[:first], True), [])[0]  # what it answers
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
