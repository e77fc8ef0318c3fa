"""The self-improvement loop with real, tiny stages: the tiny model answers teacher prompts
(transformers backend), TRL's KTO trainer trains on the labelled answers, the evaluator scores the
new adapter on held-out prompts, and the next iteration starts from that adapter."""

import json
from pathlib import Path

from conftest import run_tool
from SelfPlay.config import Task
from claudesidian.self_improve import LoopSettings, SelfImprovementLoop, stopped_by_drop
from SelfPlay.teacher import Teacher, shared_user_requests
from Tools.schema.interleave import check_kto_ready
from Tools.schema.records import write_json_atomic

TRAIN = [
    "--max-steps",
    "1",
    "--batch-size",
    "2",
    "--gradient-accumulation",
    "1",
    "--max-seq-length",
    "512",
    "--save-steps",
    "50",
]


def test_the_stop_rule_is_a_drop_in_pass_rate():
    rates = lambda *r: [{"pass_rate": x} for x in r]  # noqa: E731
    assert (
        not stopped_by_drop(rates(0.2))
        and not stopped_by_drop(rates(0.2, 0.2))
        and not stopped_by_drop(rates(0.2, 0.3))
    )
    assert stopped_by_drop(rates(0.2, 0.3, 0.25))
    assert not stopped_by_drop(
        rates(0.4) + [{"iteration": 1, "generated": {}}]
    )  # no evaluation yet: nothing to compare


def test_two_iterations_of_real_tiny_stages(tiny_model_dir, tmp_path):
    asked, said = [], []
    settings = LoopSettings(
        base_model=tiny_model_dir,
        workdir=tmp_path / "loop",
        iterations=2,
        num_prompts=3,
        eval_size=3,
        num_variations=1,
        max_tokens=16,
        train_args=TRAIN,
        interactive=True,
    )
    result = SelfImprovementLoop(settings, out=said.append, ask=lambda q: asked.append(q) or "y").run()
    work = settings.workdir
    state = json.loads((work / "self_improve.json").read_text())
    history = state["history"]
    assert asked == ["continue with iteration 2 of 2? [Y/n] "]
    assert shared_user_requests(work / "train_prompts.json", work / "heldout_prompts.json") == set()
    assert [h["iteration"] for h in history] == [0, 1, 2] and all(0 <= h["pass_rate"] <= 1 for h in history)
    for h in history:
        report = json.loads(Path(h["report"]).read_text())
        assert report["metadata"]["backend"] == "transformers" and report["summary"]["cases"] == 3
        assert report["summary"]["pass_at_1"] == h["pass_rate"]
    for iteration in (1, 2):
        kto = work / f"iter_{iteration}" / "kto.jsonl"
        records = [json.loads(l) for l in kto.read_text().splitlines()]
        assert check_kto_ready(kto).ready
        # a random model answers nothing right: its answers are the negatives, the prompts' references the positives
        assert {r["metadata"]["provenance"]["source"] for r in records if r["label"]} == {"reference"}
        assert {r["metadata"]["provenance"]["source"] for r in records if not r["label"]} == {"model"}
    first, second = Path(history[1]["model"]), Path(history[2]["model"])
    assert json.loads((second / "lineage.json").read_text())["parent_adapter"] == str(first)  # the next model
    rates = [h["pass_rate"] for h in history]
    dropped = next((i for i in (1, 2) if rates[i] < rates[i - 1]), None)
    if dropped is None:
        assert result["reason"] == "completed 2 iteration(s)"
    else:
        assert result["reason"].startswith("pass rate fell") and len(history) == dropped + 1
    assert result["best"]["pass_rate"] == max(rates) and state["best"] == result["best"]
    assert said[0].startswith("iteration 0 (starting model): pass rate")


def test_bad_input_is_one_line(tmp_path):
    result = run_tool("SelfPlay/self_improve.py", "--base-model", tmp_path, "--yes")
    assert result.returncode == 2 and "not a model directory" in result.stderr and "Traceback" not in result.stderr
    result = run_tool("SelfPlay/self_improve.py", "--base-model", tmp_path, "--iterations", "0")
    assert result.returncode == 2 and "--iterations" in result.stderr


def _prompt_set(path, namespace, tasks):
    teacher = Teacher(seed=9)
    write_json_atomic(
        path,
        [teacher.prompt_case(teacher.scene(i, namespace=namespace, task=t), namespace) for i, t in enumerate(tasks)],
    )
    return str(path)


def test_a_collapse_stops_the_loop_and_keeps_the_best_model(tiny_model_dir, tmp_path):
    """Self-play on clarification prompts at a reckless learning rate: the model collapses into
    repeating a word, the evaluator's pass rate falls, and the loop stops at once."""
    hidden = [
        Task("tool", "simple", tool=t, agent="commandManager")
        for t in ("commandManager_executeCommand", "commandManager_listCommands")
    ]
    asks = [
        Task("behavioral", "simple", behavior="intellectual_humility", scenario=s)
        for s in ("ambiguous_target", "vague_cleanup")
    ]
    train = _prompt_set(tmp_path / "train.json", "gen", (hidden + asks) * 2)
    held_out = _prompt_set(
        tmp_path / "heldout.json",
        "eval",
        hidden + hidden[:1] + [Task("tool", "simple", tool="vaultManager_createFolder", agent="vaultManager")],
    )
    settings = LoopSettings(
        base_model=tiny_model_dir,
        workdir=tmp_path / "loop",
        iterations=3,
        prompt_set=train,
        eval_prompt_set=held_out,
        num_variations=1,
        max_tokens=24,
        train_args=[
            "--max-steps",
            "10",
            "--batch-size",
            "4",
            "--learning-rate",
            "0.1",
            "--gradient-accumulation",
            "1",
            "--max-seq-length",
            "512",
            "--save-steps",
            "50",
        ],
    )
    result = SelfImprovementLoop(settings, out=lambda line: None).run()
    history = json.loads((settings.workdir / "self_improve.json").read_text())["history"]
    assert [h["iteration"] for h in history] == [0, 1]  # iterations 2 and 3 never ran
    assert history[0]["pass_rate"] > 0 and history[1]["pass_rate"] < history[0]["pass_rate"]
    assert result["reason"].startswith("pass rate fell") and result["best"]["iteration"] == 0
    assert result["best"]["model"] == tiny_model_dir
    collapsed = json.loads(Path(history[1]["report"]).read_text())["summary"]["failure_codes"]
    assert "E_REPETITIVE" in collapsed
