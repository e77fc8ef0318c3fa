"""The SFT trainer (Trainers/shared/methods/sft.py) on a tiny model: random batches, the CPU loss
against TRL's own, and the loss weighted by the token classes encode_sft marks (sft.id_loss_weight,
sft.prose_loss_weight)."""

import pytest

from tests.conftest import SESSION, WORKSPACE, tool_record


def _rows(tokenizer, count: int = 3) -> list[dict]:
    from Trainers.shared.data import chat_messages, encode_sft

    return encode_sft(tokenizer, [chat_messages(tool_record(f"Projects/P{n}", f"Make P{n}")) for n in range(count)])


def test_sft_batches_are_random_not_length_grouped(tiny_model_dir, tmp_path):
    """An answer's length follows its tool, so length-grouped batches hold one tool each and the
    model learnt the batch's tool instead of reading the request (expected tool 5% against 43%,
    docs/benchmarks.md): SFT draws its batches at random."""
    from datasets import Dataset
    from torch.utils.data import RandomSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from Trainers.shared.config import load_config
    from Trainers.shared.methods import get_method

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = Dataset.from_list([{"input_ids": [7, 8, 9] * n, "labels": [7, 8, 9] * n} for n in range(1, 9)])
    args = {"output_dir": str(tmp_path), "per_device_train_batch_size": 2, "report_to": [], "bf16": False}
    trainer = get_method("sft").trainer(load_config("sft"), model, tokenizer, rows, args, [])
    assert type(trainer._get_train_sampler()) is RandomSampler


def test_the_lean_cpu_forward_gives_the_full_forwards_logits(tiny_model_dir):
    """On CPU the decoder runs without the attention mask of a right-padded batch and the LM head
    only on labelled positions: the same logits there as the whole model with its mask. A
    left-padded batch keeps its mask (dropping it would let the padding be attended)."""
    import torch
    from transformers import AutoModelForCausalLM

    from Trainers.shared.methods.sft import labelled_logits

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.randint(5, 200, (3, 14))
    for side in ("right", "left"):
        mask = torch.ones_like(ids)
        if side == "right":
            mask[1, 9:], mask[2, 5:] = 0, 0
        else:
            mask[1, :5], mask[2, :9] = 0, 0
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :3] = -100
        labelled = labels[:, 1:] != -100
        with torch.no_grad():
            lean, outputs, hidden = labelled_logits(
                model, {"input_ids": ids, "attention_mask": mask}, labelled, lean=True
            )
            full = model(input_ids=ids, attention_mask=mask).logits[:, :-1][labelled]
        assert outputs is None and hidden is None and lean.shape == (int(labelled.sum()), model.config.vocab_size)
        assert torch.allclose(lean, full, atol=1e-5), side


def test_the_cpu_sft_trainer_computes_trls_loss_and_metrics(tiny_model_dir, tmp_path):
    """On CPU the SFT trainer takes the model's own cross-entropy instead of TRL's tiled LM head
    (about half of each CPU step): the same loss, gradient and logged token accuracy as TRL's trainer."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from Trainers.shared.methods.sft import sft_trainer_class

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [{"input_ids": list(range(5, 5 + n)), "labels": [-100] * 2 + list(range(7, 5 + n))} for n in (6, 9, 4)]
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=3, report_to=[], bf16=False, use_cpu=True)
    results = []
    for cpu in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        trainer = sft_trainer_class(cpu)(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
        )
        assert type(trainer).__name__ == ("OwnLossSftTrainer" if cpu else "SFTTrainer")
        batch = next(iter(trainer.get_train_dataloader()))
        model.train()  # as in a training step: the metrics are logged for training
        loss = trainer.compute_loss(model, batch, num_items_in_batch=(batch["labels"][:, 1:] != -100).sum())
        loss.backward()
        grad = model.lm_head.weight.grad.clone()
        results.append((loss.item(), grad, trainer._metrics["train"]["mean_token_accuracy"][-1]))
    (trl_loss, trl_grad, trl_acc), (cpu_loss, cpu_grad, cpu_acc) = results
    assert abs(trl_loss - cpu_loss) < 1e-5 and trl_loss > 0
    assert torch.allclose(trl_grad, cpu_grad, atol=1e-6)
    assert trl_acc == cpu_acc


def test_encode_sft_marks_exactly_the_ids_and_the_prose_of_the_answer(tiny_model_dir):
    """token_class marks the answer's session and workspace ids, token for token, and nothing of the
    system prompt that holds the same ids; and the context's five prose values, but not an argument
    that repeats one of their words (the subgoal "Create Projects/P0" and the path "Projects/P0")."""
    from transformers import AutoTokenizer

    from Trainers.shared.data import ID_TOKEN, PROSE_TOKEN

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for n, row in enumerate(_rows(tokenizer)):
        assert len(row["token_class"]) == len(row["input_ids"])

        answer = [label != -100 for label in row["labels"]]
        assert not any(c and not kept for c, kept in zip(row["token_class"], answer))  # answer tokens only

        def text_of(kind, row=row, answer=answer):
            marked = [t for t, c, kept in zip(row["input_ids"], row["token_class"], answer) if c == kind and kept]
            return tokenizer.decode(marked).replace(" ", "")

        assert text_of(ID_TOKEN) == SESSION + WORKSPACE  # in the answer's key order, nothing else
        prompt = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label == -100])
        assert SESSION in prompt and WORKSPACE in prompt  # the prompt's ids are not weighed
        prose = ["Organising notes", "The user keeps project notes in Projects.", "Creating a folder"]
        prose += ["Organise the vault", f"Create Projects/P{n}"]
        # each value whole; its opening quote may share a token with the key's colon
        assert text_of(PROSE_TOKEN).replace('"', "") == "".join(prose).replace(" ", "")
        assert f'"path":"Projects/P{n}"' in text_of(0)  # the argument keeps its full weight


def test_the_prose_of_a_record_with_thousands_of_calls_is_bounded(tiny_model_dir):
    """A hostile answer with thousands of calls, each with its own subgoal, is searched for at most
    MAX_COPIED_VALUES prose values; a value every call repeats is found at each place, once."""
    import copy

    from transformers import AutoTokenizer

    from Trainers.shared.data import MAX_COPIED_VALUES, _prose_spans, chat_messages, render_conversation

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = chat_messages(tool_record("Projects/P0", "Make P0"))
    call = messages[-1]["tool_calls"][0]
    calls = []
    for n in range(3000):
        calls.append(copy.deepcopy(call))
        calls[-1]["function"]["arguments"]["context"]["subgoal"] = f"step {n:04d}"
    messages[-1]["tool_calls"] = calls
    text, spans = render_conversation(tokenizer, messages)
    found = [text[start:end] for start, end in _prose_spans(text, messages, spans)]
    assert 0 < sum(value.startswith('"step') for value in found) <= MAX_COPIED_VALUES
    assert found.count('"Organising notes"') == 3000


@pytest.mark.parametrize("cut_inside_an_id", [False, True])
def test_each_token_counts_its_class_weight(tiny_model_dir, tmp_path, cut_inside_an_id):
    """The weighted loss is the mean negative log-likelihood of the labelled tokens with each id
    token counted id_loss_weight times and each prose token prose_loss_weight times; under gradient
    accumulation a micro-batch counts by its share of the tokens; TRL's truncation (max_length) cuts
    the token classes with the tokens."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from Trainers.shared.data import ID_TOKEN, PROSE_TOKEN
    from Trainers.shared.methods.sft import sft_collator, sft_trainer_class

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = _rows(tokenizer)
    cut = rows[0]["token_class"].index(ID_TOKEN) + 3 if cut_inside_an_id else None
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = SFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=3,
        report_to=[],
        bf16=False,
        use_cpu=True,
        max_length=cut,
        remove_unused_columns=False,  # as the toolkit runs SFT: the rows keep token_class
    )
    trainer = sft_trainer_class(cpu=True, class_weights=(1.0, 3.0, 0.25))(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        data_collator=sft_collator(tokenizer),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    classes = batch["token_class"]
    assert classes.shape == batch["input_ids"].shape
    if cut:
        assert batch["input_ids"].shape[1] == cut and (classes[:, -3:] == ID_TOKEN).all()
    assert (classes == PROSE_TOKEN).any() or cut
    for kind in (ID_TOKEN, PROSE_TOKEN):
        assert (batch["labels"][classes == kind] != -100).all()
    count = (batch["labels"][:, 1:] != -100).sum()
    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=count).item()
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="none")
        weights = (targets != -100) * torch.tensor([1.0, 3.0, 0.25])[classes[:, 1:]]
        expected = (nll * weights).sum() / weights.sum()
        plain = nll.sum() / count
        half = trainer.compute_loss(model, dict(batch), num_items_in_batch=2 * count).item()
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert abs(loss - plain.item()) > 1e-4  # a weight that did nothing would fail here
    assert half == pytest.approx(loss / 2, rel=1e-5)  # half of an accumulated batch's tokens


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--id-loss-weight", "0", "sft.id_loss_weight must be a positive number"),
        ("--prose-loss-weight", "inf", "sft.prose_loss_weight must be a positive number"),
        ("--copy-attention-weight", "-1", "sft.copy_attention_weight must be 0 or more"),
    ],
)
def test_a_bad_loss_weight_is_one_line(run, tiny_sft_file, tmp_path, flag, value, message):
    done = run(
        "Trainers/rtx3090_sft/train_sft.py",
        "--local-file",
        tiny_sft_file,
        flag,
        value,
        "--dry-run",
        "--output-dir",
        tmp_path,
    )
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr
