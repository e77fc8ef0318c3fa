"""The copy-attention loss of SFT (sft.copy_attention_weight): where encode_sft says each copied answer
token comes from (data.copy_sources), the loss against the model's own attention, a short training
that teaches the head to look there, and the refusal of a model it cannot read (a bad weight's one
line is in tests/test_sft_trainer.py)."""

import pytest

from tests.conftest import tool_record

FOLDER = "Projects/Garden planning"


def _encoded(tokenizer, request: str, folder: str = FOLDER) -> dict:
    from Trainers.shared.data import chat_messages, encode_sft

    return encode_sft(tokenizer, [chat_messages(tool_record(folder, request))])[0]


def _piece(tokenizer, token: int) -> str:
    return tokenizer.convert_ids_to_tokens(token).replace("▁", "").lower()


def test_each_copied_answer_token_points_at_its_request_token(tiny_model_dir):
    """The call's path is spelt in the request: every answer token inside it (in the call and where
    the context's subgoal repeats it) points at the request token under its first character, and
    nothing else points anywhere."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    request = f"Please make the folder {FOLDER.lower()} for me"
    row = _encoded(tokenizer, request)
    ids, sources = row["input_ids"], row["copy_source"]
    text = tokenizer.decode(ids)
    request_at = text.index(request[:20])
    pointed = [(n, s) for n, s in enumerate(sources) if s >= 0]
    assert len(sources) == len(ids) and pointed
    copied = [ids[n + 1] for n, _ in pointed]
    assert all(row["labels"][n + 1] != -100 for n, _ in pointed)  # answer tokens only
    assert "".join(_piece(tokenizer, t) for t in copied).count(FOLDER.replace(" ", "").lower()) == 2
    for n, source in pointed:
        assert source < n and len(tokenizer.decode(ids[:source])) >= request_at  # back, into the request
        answer, spelt = _piece(tokenizer, ids[n + 1]), _piece(tokenizer, ids[source])
        assert answer[:1] == spelt[:1], (answer, spelt)


@pytest.mark.parametrize(
    "request_text",
    [
        "Please make a folder for the garden",  # the value is not spelt
        "Please make the folder Projects/Garden planningtools",  # only inside a longer word
    ],
)
def test_a_value_the_request_does_not_spell_points_nowhere(tiny_model_dir, request_text):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert set(_encoded(tokenizer, request_text)["copy_source"]) == {-1}


def test_a_record_with_thousands_of_values_is_bounded(tiny_model_dir):
    """A hostile call with thousands of values, each spelt in the request, is aligned for at most
    MAX_COPIED_VALUES of them."""
    from transformers import AutoTokenizer

    from Trainers.shared.data import MAX_COPIED_VALUES, chat_messages, copy_sources, render_conversation

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    words = [f"w{n:04d}" for n in range(3000)]
    record = tool_record(FOLDER, " ".join(words))
    messages = chat_messages(record)
    messages[-1]["tool_calls"][0]["function"]["arguments"]["tags"] = words
    text, spans = render_conversation(tokenizer, messages)
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    pointed = [s for s in copy_sources(text, messages, offsets, spans) if s >= 0]
    pieces_per_word = len(tokenizer.tokenize("w0001"))
    assert 0 < len(pointed) <= MAX_COPIED_VALUES * (pieces_per_word + 1)


def _batch(tokenizer, count: int = 4):
    import torch

    rows = [
        _encoded(tokenizer, f"Please make the folder Projects/Plan {n} now", f"Projects/Plan {n}") for n in range(count)
    ]
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(count, width, dtype=torch.long)
    sources = torch.full((count, width), -1)
    for n, row in enumerate(rows):
        ids[n, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
        sources[n, : len(row["copy_source"])] = torch.tensor(row["copy_source"])
    return ids, sources


def test_the_loss_is_the_heads_own_attention(tiny_model_dir):
    """Recomputed from the last layer's input, the loss equals the mean negative log of the
    attention the model itself pays (eager attention, its own weights) from each pointing position
    to its source, in the last layer's first head."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from Trainers.shared.methods.sft import copy_attention_loss

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="eager").eval()
    with torch.no_grad():  # weights far from their init, so a wrong head or scale shows
        for weight in model.parameters():
            weight.add_(torch.randn_like(weight) * 0.2)
    ids, sources = _batch(tokenizer)
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True, output_hidden_states=True)
        loss = copy_attention_loss(model, out.hidden_states, sources)
    attention = out.attentions[-1][:, 0]  # (batch, query, key) of the last layer's first head
    rows, positions = (sources >= 0).nonzero(as_tuple=True)
    expected = -attention[rows, positions, sources[rows, positions]].log().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    second_head = -out.attentions[-1][:, 1][rows, positions, sources[rows, positions]].log().mean()
    assert abs(second_head.item() - loss.item()) > 1e-3  # another head's attention would differ


def test_sft_with_the_weight_teaches_the_head_to_look(tiny_model_dir, tmp_path):
    """A short SFT with copy_attention_weight lowers the loss on its own batch (the head looks at
    the copied tokens), logs it, and leaves the model a plain Llama."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from Trainers.shared.methods.sft import PLAIN, copy_attention_loss, sft_collator, sft_trainer_class

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [
        _encoded(tokenizer, f"Please make the folder Projects/Plan {n} now", f"Projects/Plan {n}") for n in range(8)
    ]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids, sources = _batch(tokenizer)

    def measured():
        with torch.no_grad():
            return copy_attention_loss(model, model(input_ids=ids, output_hidden_states=True).hidden_states, sources)

    before = measured().item()
    args = SFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=40,
        learning_rate=3e-3,
        report_to=[],
        bf16=False,
        use_cpu=True,
        logging_steps=10,
        save_strategy="no",
        remove_unused_columns=False,
    )
    trainer = sft_trainer_class(True, PLAIN, 1.0)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        data_collator=sft_collator(tokenizer),
    )
    trainer.train()
    after = measured().item()
    assert after < before / 2, (before, after)
    assert any("copy_attention_loss" in entry for entry in trainer.state.log_history)
    assert type(trainer.model).__name__ == "LlamaForCausalLM"


def test_a_model_whose_attention_cannot_be_recomputed_is_refused():
    from Tools.cli_common import UsageError
    from Trainers.shared.methods.sft import check_copy_attention

    import torch

    with pytest.raises(UsageError, match="copy_attention_weight needs separate q_proj and k_proj"):
        check_copy_attention(torch.nn.Linear(2, 2))
