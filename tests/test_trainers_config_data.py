"""Trainers: configuration precedence and the shared SFT/KTO data path (no training here)."""

import json

import pytest

from conftest import tool_record, write_jsonl
from Tools.cli_common import UsageError
from Trainers.shared import data as D
from Trainers.shared.config import SIZE_PRESETS, load_config
from Trainers.shared.methods.kto import kto_row


def test_size_preset_selects_model_and_batch_and_flags_win_over_yaml(tmp_path):
    config = load_config("sft", None, {"model_size": "3b"})
    assert config.model_name == SIZE_PRESETS["3b"].model_name and config.training.batch_size == 8
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("model: {size: 13b}\ntraining: {batch_size: 5, learning_rate: 1.0e-3}\n")
    config = load_config("sft", yaml_file, {"learning_rate": 5e-4})
    assert config.model_name == SIZE_PRESETS["13b"].model_name
    assert (config.training.batch_size, config.training.learning_rate) == (5, 5e-4)  # YAML < flag
    kto = load_config("kto", None, {})
    assert (
        kto.training.learning_rate,
        kto.training.num_epochs,
        kto.training.batch_size,
        kto.training.gradient_accumulation,
        kto.kto.beta,
    ) == (2e-7, 1, 4, 6, 0.3)
    assert kto.model_name == "unsloth/mistral-7b-v0.3-bnb-4bit"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("training: {batch_sise: 4}\n", "unknown key 'training.batch_sise'"),
        ("trainer: {}\n", "unknown section 'trainer'"),
        ("training: {learning_rate: fast}\n", "must be a number"),
    ],
)
def test_bad_yaml_is_a_usage_error(tmp_path, text, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment):
        load_config("sft", path, {})


def test_mlx_and_nvidia_share_one_vocabulary_and_earlier_mlx_names_still_load(tmp_path, capsys):
    from Trainers.shared.mlx.config import load_mlx_config

    data = write_jsonl(tmp_path / "d.jsonl", [tool_record("P/A", "x")])
    old = tmp_path / "old.yaml"
    old.write_text(
        "lora: {rank: 8, keys: [q_proj]}\ntraining: {method: kto, per_device_batch_size: 4, "
        "gradient_accumulation_steps: 2, lr_schedule: linear, save_interval: 7, keep_checkpoints: 2, "
        "eval_interval: 5}\ndata: {dataset_path: d.jsonl, validation_split: 0.2}\n"
        "eval: {samples: 3, max_new_tokens: 9}\n"
    )
    mlx = load_mlx_config(old)
    note = capsys.readouterr().err
    assert note.startswith("note: ") and "lora.rank -> lora.r" in note and len(note.strip().splitlines()) == 1
    assert (
        mlx.method,
        mlx.lora.r,
        mlx.lora.target_modules,
        mlx.training.batch_size,
        mlx.training.gradient_accumulation,
        mlx.training.lr_scheduler,
        mlx.training.save_steps,
        mlx.training.save_total_limit,
    ) == ("kto", 8, ["q_proj"], 4, 2, "linear", 7, 2)
    assert (
        mlx.monitor.eval_steps,
        mlx.monitor.validation_fraction,
        mlx.monitor.num_eval_samples,
        mlx.monitor.eval_max_tokens,
        mlx.data.local_file,
    ) == (5, 0.2, 3, 9, data)
    new = tmp_path / "new.yaml"
    new.write_text("lora: {r: 8, target_modules: [q_proj]}\ntraining: {batch_size: 4, gradient_accumulation: 2}\n")
    nvidia = load_config("kto", new, {"local_file": data})
    assert (nvidia.lora.r, nvidia.lora.target_modules, nvidia.training.batch_size) == (8, ["q_proj"], 4)
    assert nvidia.kto.beta == mlx.kto.beta == 0.3 and capsys.readouterr().err == ""  # one KTO beta default
    with pytest.raises(UsageError, match="method 'kto', but this is the sft trainer"):
        load_config("sft", old, {})


@pytest.mark.parametrize("name", ["cosine", "linear", "constant", "wsd"])
def test_every_schedule_warms_up_and_wsd_holds_the_peak_until_the_last_fifth(name):
    """The torch trainers hand the shared schedule names to transformers' own schedulers."""
    import torch
    from transformers import get_scheduler

    from Trainers.shared.train import schedule_args

    training = load_config("sft", None, {}).training
    training.lr_scheduler = name
    args = schedule_args(training, 100)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(
        args["lr_scheduler_type"], optimizer, 10, 100, scheduler_specific_kwargs=args.get("lr_scheduler_kwargs")
    )
    rates = []
    for _ in range(101):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[5] == pytest.approx(0.5) and rates[10] == pytest.approx(1.0)
    peak = {"cosine": 10, "linear": 10, "constant": 100, "wsd": 80}[name]  # the last step at the peak rate
    assert rates[10 : peak + 1] == pytest.approx([1.0] * (peak - 9))
    assert rates[min(peak + 1, 100)] < 1.0 or name == "constant"
    assert rates[100] == pytest.approx(1.0 if name == "constant" else 0.0, abs=1e-6)
    if name == "wsd":
        assert rates[90] == pytest.approx(0.5, rel=1e-3)  # a cosine over the last 20 steps


def test_an_unknown_schedule_is_one_line_naming_the_choices(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("training: {lr_scheduler: cosine_with_restarts}\n")
    with pytest.raises(UsageError, match=r"must be one of cosine, linear, constant, wsd, not 'cosine_with_restarts'"):
        load_config("sft", config, {})


def test_kto_refuses_batch_of_one():
    with pytest.raises(UsageError, match="at least 2"):
        load_config("kto", None, {"batch_size": 1})


MISTRAL_LIKE = (
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]"
    "{% elif m.role == 'assistant' %}{% if m.tool_calls %}[TOOL_CALLS] "
    "{{ m.tool_calls | map(attribute='function') | list | tojson }}{% else %}{{ m.content }}{% endif %}"
    "{{ eos_token }}{% endif %}{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _two_turns():
    record = tool_record("Projects/Alpha", "Create a folder for Alpha")
    record["conversations"] += [
        {"role": "tool", "content": '{"success": true}'},
        {"role": "user", "content": "Thanks, anything else?"},
        {"role": "assistant", "content": "Done: the folder Projects/Alpha exists now."},
    ]
    return record


@pytest.mark.parametrize("template", [None, MISTRAL_LIKE], ids=["chatml", "no-generation-prompt"])
def test_loss_mask_keeps_exactly_the_assistant_turns(tokenizer, template, monkeypatch):
    if template:  # a template with neither {% generation %} markers nor a generation prompt
        monkeypatch.setattr(tokenizer, "chat_template", template)
    row = D.encode_sft(tokenizer, [D.chat_messages(_two_turns())])[0]
    kept = tokenizer.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != D.IGNORE_INDEX])
    assert '"name": "vaultManager_createFolder"' in kept and "Projects/Alpha exists now." in kept
    assert kept.count(tokenizer.eos_token) == 2  # each turn's end token is learnt: the model must stop
    for outside in (
        "Create a folder for Alpha",
        "Thanks, anything else",
        "session_context",
        "success",
        "[INST]",
        "<|im_start|>",
    ):
        assert outside not in kept


def test_sft_and_kto_render_a_tool_call_identically(tokenizer):
    record = tool_record("Projects/Alpha", "Create a folder for Alpha", True)
    kto = kto_row(tokenizer, record)
    sft = D.encode_sft(tokenizer, [D.chat_messages(record)])[0]
    sft_completion = tokenizer.decode([t for t, l in zip(sft["input_ids"], sft["labels"]) if l != D.IGNORE_INDEX])
    assert kto["completion"].startswith("<tool_call>\n") and kto["completion"] == sft_completion
    assert tokenizer.decode(sft["input_ids"]).startswith(tokenizer.bos_token + kto["prompt"])
    # the same call written as Hermes text in the record renders the same tokens
    text_record = tool_record("Projects/Alpha", "Create a folder for Alpha", True)
    call = text_record["conversations"][-1].pop("tool_calls")[0]["function"]
    text_record["conversations"][-1]["content"] = '<tool_call>{"name": "%s", "arguments": %s}</tool_call>' % (
        call["name"],
        call["arguments"],
    )
    assert kto_row(tokenizer, text_record) == kto


def _load(tmp_path, records):
    return D.load_records(write_jsonl(tmp_path / "d.jsonl", records))


def test_invalid_positive_is_refused_with_a_summary(tmp_path):
    bad = tool_record("Projects/A", "Make it", tool="vaultManager_inventedTool")
    data = _load(tmp_path, [tool_record("Projects/B", "Make B"), bad])
    with pytest.raises(D.DataError, match=r"1 of 2 record\(s\) fail validation \(E_UNKNOWN_TOOL x1\); first at line 2"):
        D.validate_for("sft", data)
    assert D.validate_for("sft", data, drop_invalid=True) == 1 and len(data.records) == 1


def test_kto_accepts_negatives_but_needs_both_labels_alternating(tmp_path):
    wrong = tool_record("Projects/A", "Make it", False, tool="vaultManager_inventedTool")
    D.validate_for("kto", _load(tmp_path, [tool_record("Projects/A", "Make it", True), wrong]))
    with pytest.raises(D.DataError, match="SFT trains on positives only"):
        D.validate_for("sft", _load(tmp_path, [tool_record("P/A", "x", True), wrong]))
    with pytest.raises(D.DataError, match="only label true"):
        D.validate_for("kto", _load(tmp_path, [tool_record("P/A", "x", True)] * 2))
    with pytest.raises(D.DataError, match="1 same-label neighbour"):
        D.validate_for("kto", _load(tmp_path, [tool_record("P/A", "x", True)] * 2 + [wrong]))


def test_unreadable_line_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(tool_record("P/A", "x")) + "\n{not json\n")
    with pytest.raises(D.DataError, match="1 unreadable line"):
        D.load_records(str(path))
