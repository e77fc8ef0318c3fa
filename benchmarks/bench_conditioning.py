"""How much a trained model reads its prompt: the loss of each record's assistant turn after its own
system and user turns, side by side with the loss of the same turn after another record's, and their
ratio. A model that answers from the request scores far lower with its own prompt; a model that has
only learnt what answers look like scores about the same with either.

    python benchmarks/bench_conditioning.py MODEL_DIR DATA.jsonl [--records 40]

For the demo: MODEL_DIR = demo_output/sft_runs/<run>/final_model, DATA = demo_output/data/teacher_sft.jsonl
(the training records: a model that ignores the prompt there ignores it on held-out requests too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def assistant_loss(model, tokenizer, messages: list[dict]) -> float:
    """Mean loss per assistant token, the tokens SFT trains on."""
    import torch

    from Trainers.shared.data import encode_sft

    row = encode_sft(tokenizer, [messages])[0]
    with torch.no_grad():
        out = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]]))
    return out.loss.item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a Hugging Face model directory (a run's final_model/)")
    parser.add_argument("data", type=Path, help="SFT records whose first two turns are system and user")
    parser.add_argument("--records", type=int, default=40, help="records compared (default 40)")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"{args.model}: not a model directory (no config.json)")
    if args.records < 2:
        parser.error("--records must be at least 2")

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from Tools.schema.records import iter_jsonl
    from Trainers.shared.data import chat_messages

    conversations = []
    for line in iter_jsonl(args.data):
        if line.error is None and [m["role"] for m in chat_messages(line.record)[:2]] == ["system", "user"]:
            conversations.append(chat_messages(line.record))
        if len(conversations) == args.records:
            break
    if len(conversations) < 2:
        parser.error(f"{args.data}: fewer than 2 records that open with a system and a user turn")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    n = len(conversations)
    own = [assistant_loss(model, tokenizer, c) for c in conversations]
    # the next record's system prompt and request in front of this record's answer
    other = [
        assistant_loss(model, tokenizer, conversations[(i + 1) % n][:2] + c[2:]) for i, c in enumerate(conversations)
    ]
    mean_own, mean_other = sum(own) / n, sum(other) / n
    print(f"records: {n}")
    print(
        f"| prompt | loss per assistant token |\n|---|---|\n| its own | {mean_own:.3f} |\n| another record's | {mean_other:.3f} |"
    )
    print(f"another record's prompt / its own: {mean_other / mean_own:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
