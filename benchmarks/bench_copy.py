"""How well a trained model copies into its calls the values that a request spells: teacher-forced on
SFT records, for each call argument whose text the user turn writes out (case aside), whether the
model predicts the value's first token and all of its tokens, per tool and argument.

    python benchmarks/bench_copy.py MODEL_DIR DATA.jsonl [--records 300]

In seconds it shows what the closed loop's argument accuracy needs 10 minutes for, and why: a value
whose first token is wrong is written wrong as a whole, and a model that has not learnt to copy
writes a value it was trained on instead (docs/benchmarks.md, "Copying forms late"). For the demo:
MODEL_DIR = demo_output/sft_runs/<run>/final_model, and DATA = records it did not train on, e.g.
``python -m SelfPlay.teacher datasets --out /tmp/probe --seed 4242 --sft 2000`` then
/tmp/probe/teacher_sft.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass
class CopiedValue:
    tool: str
    argument: str
    tokens: list[int]  # positions of the value's tokens in the encoded record


def copied_values(tokenizer, messages: list[dict]) -> tuple[list[int], list[CopiedValue]]:
    """The record's token ids (as SFT encodes them) and, for each top-level string argument of its
    first assistant turn's calls that the first user turn spells, the positions of its tokens."""
    from Trainers.shared.data import render_conversation

    text, spans = render_conversation(tokenizer, messages)
    user = next((m.get("content") or "" for m in messages if m["role"] == "user"), "").casefold()
    turn = next((m for m in messages if m["role"] == "assistant"), None)
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    if not spans or not turn or not turn.get("tool_calls"):
        return encoded["input_ids"], []
    start, end = spans[0]
    found, cursor = [], start
    for call in turn["tool_calls"]:
        function = call.get("function", call)
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                continue
        if not isinstance(arguments, dict):
            continue
        for key, value in arguments.items():
            if key == "context" or not isinstance(value, str) or not value or value.casefold() not in user:
                continue
            field = f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
            at = text.find(field, cursor, end)
            if at < 0:
                continue
            cursor = at + len(field)
            a = at + len(json.dumps(key)) + 3  # past the key, ': ' and the value's opening quote
            b = at + len(field) - 1
            # every token that holds a character of the value (a quote merged into it included)
            tokens = [i for i, (s, e) in enumerate(encoded["offset_mapping"]) if s < b and e > a and e > s]
            found.append(CopiedValue(function["name"], key, tokens))
    return encoded["input_ids"], found


def score(predicted: list[int], ids: list[int], value: CopiedValue) -> tuple[bool, bool]:
    """(first token right, every token right), where predicted[i] is the model's greedy guess for
    ids[i + 1] given ids[: i + 1]."""
    right = [predicted[t - 1] == ids[t] for t in value.tokens]
    return bool(right) and right[0], bool(right) and all(right)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a Hugging Face model directory (a run's final_model/)")
    parser.add_argument("data", type=Path, help="SFT records (best ones the model did not train on)")
    parser.add_argument("--records", type=int, default=300, help="records read (default 300)")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"{args.model}: not a model directory (no config.json)")
    if not args.data.is_file():
        parser.error(f"{args.data}: no such file")
    if args.records < 1:
        parser.error("--records must be at least 1")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from Tools.schema.records import iter_jsonl
    from Trainers.shared.data import chat_messages

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    table: dict[tuple[str, str], list[int]] = {}
    read = 0
    for line in iter_jsonl(args.data):
        if read == args.records:
            break
        if line.error is not None:
            continue
        read += 1
        try:
            messages = chat_messages(line.record)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # not a conversation record: nothing to probe
        ids, values = copied_values(tokenizer, messages)
        if not values:
            continue
        with torch.no_grad():
            predicted = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()
        for value in values:
            first, whole = score(predicted, ids, value)
            row = table.setdefault((value.tool, value.argument), [0, 0, 0])
            row[0], row[1], row[2] = row[0] + 1, row[1] + first, row[2] + whole
    if not table:
        parser.error(f"{args.data}: none of the first {read} records has a call value that its request spells")
    print(f"records read: {read}; teacher-forced, greedy\n")
    print("| tool | argument | values | first token right | whole value right |\n|---|---|---|---|---|")
    for (tool, argument), (n, first, whole) in sorted(table.items()):
        print(f"| {tool} | {argument} | {n} | {first / n:.0%} | {whole / n:.0%} |")
    n, first, whole = (sum(row[k] for row in table.values()) for k in range(3))
    print(f"| all | | {n} | {first / n:.0%} | {whole / n:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
