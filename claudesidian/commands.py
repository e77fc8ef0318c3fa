"""The one command table: every command of the toolkit, behind ``python -m claudesidian <command>``.

Each row names the function that runs it (``module:function``, called with the argument list), a
one-line description, and the seed paths it serves: the scripts and ``python -m`` forms people have
in their notes. A seed path that is a ``.py`` file other than the command's own module is a thin
shim (run by path, it calls ``claudesidian.__main__.run_seed_path``); tests/test_layers.py exempts
exactly those from the layer rule. Importing this table imports no command.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    target: str  # "package.module:function"; function(argv: list[str]) -> int
    summary: str
    seeds: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    @property
    def shims(self) -> tuple[str, ...]:
        """The seed .py files that only hand over to this command (not the command's own module)."""
        own = self.module.replace(".", "/") + ".py"
        return tuple(s for s in self.seeds if s.endswith(".py") and s != own)


COMMANDS = (
    # data tools (Tools/, the ground floor)
    Command(
        "validate",
        "Tools.validate_syngen:main",
        "judge datasets against the data contract (exit 1 on findings)",
        ("Tools/validate_syngen.py", "validate-syngen"),
    ),
    Command(
        "interleave",
        "Tools.interleave_dataset:main",
        "make or check a KTO-ready file: strict true/false alternation",
        ("Tools/interleave_dataset.py", "Tools/shuffle_and_interleave.py", "interleave-dataset"),
    ),
    Command(
        "coverage",
        "Tools.analyze_tool_coverage:main",
        "which tools a dataset teaches, in which formats, with how many positives and negatives",
        ("Tools/analyze_tool_coverage.py", "analyze-tool-coverage"),
    ),
    Command(
        "sync-schemas",
        "Tools.sync_tool_schemas:main",
        "regenerate Tools/tool_schemas.json from the plugin's mode schemas",
        ("Tools/sync_tool_schemas.py",),
    ),
    Command(
        "mcp-exec",
        "Tools.mcp_executor:main",
        "run tool calls against a vault from the command line",
        ("Tools/mcp_executor.py",),
    ),
    Command(
        "mcp-server",
        "Tools.vault_mcp_server:main",
        "serve a vault's tools over MCP (stdio or HTTP)",
        ("Tools/vault_mcp_server.py", "python -m Tools.vault_mcp_server"),
    ),
    # self-play (SelfPlay/)
    Command(
        "sample-data",
        "SelfPlay.teacher:sample_main",
        "regenerate Datasets/sample/ with the template teacher",
        ("Tools/sample_data.py",),
    ),
    Command(
        "teacher",
        "SelfPlay.teacher:main",
        "the template teacher: shipped datasets, the sample, held-out prompt sets",
        ("python -m SelfPlay.teacher",),
    ),
    Command(
        "selfplay",
        "SelfPlay.prompt_set_cli:main",
        "self-play over a prompt set: answers labelled, a KTO file written",
        ("Tools/selfplay_generator.py",),
    ),
    Command(
        "generate",
        "SelfPlay.run_generation:main",
        "the three-prompt self-play generator (SelfPlay/configs)",
        ("SelfPlay/run_generation.py", "SelfPlay/run.sh"),
    ),
    Command(
        "episodes",
        "SelfPlay.episodes:main",
        "write the teacher's multi-turn episode records",
        ("python -m SelfPlay.episodes",),
    ),
    Command(
        "selfplay-config",
        "SelfPlay.config:main",
        "check the self-play config; --write-agents regenerates agents.yaml",
        ("python -m SelfPlay.config",),
    ),
    # training (Trainers/)
    Command(
        "train-sft",
        "Trainers.rtx3090_sft.train_sft:main",
        "SFT LoRA training (NVIDIA, or CPU for tiny models)",
        ("Trainers/rtx3090_sft/train_sft.py", "Trainers/rtx3090_sft/train.sh"),
    ),
    Command(
        "train-kto",
        "Trainers.rtx3090_kto.train_kto:main",
        "KTO training, e.g. from an SFT adapter",
        ("Trainers/rtx3090_kto/train_kto.py", "Trainers/rtx3090_kto/train.sh"),
    ),
    Command(
        "train-dpo",
        "Trainers.rtx3090_dpo.train_dpo:main",
        "DPO training on chosen/rejected pairs of one prompt",
        ("Trainers/rtx3090_dpo/train_dpo.py",),
    ),
    Command(
        "train-mlx",
        "Trainers.mistral_lora_mac.main:main",
        "MLX LoRA SFT / KTO on Apple silicon (mlx[cpu] elsewhere)",
        ("Trainers/mistral_lora_mac/main.py",),
    ),
    Command(
        "export",
        "Trainers.shared.export.cli:main",
        "gguf RUN_DIR: GGUF + Modelfile + round trip; upload PATH REPO: the Hub",
        (
            "python -m Trainers.shared.export",
            "Trainers/rtx3090_sft/src/upload_to_hf.py",
            "Trainers/rtx3090_kto/src/upload_to_hf.py",
            "Trainers/rtx3090_sft/upload_model.sh",
            "Trainers/rtx3090_kto/upload_model.sh",
        ),
    ),
    Command(
        "daemon",
        "Trainers.daemon.cli:main",
        "the training queue daemon (status, or serve inbox/ and queue/)",
        ("python -m Trainers.daemon",),
    ),
    Command(
        "doctor",
        "Trainers.doctor:main",
        "what this machine can run: GPU, memory, packages, tokens",
        ("Trainers/doctor.py", "python -m Trainers.doctor"),
    ),
    Command(
        "notebooks", "Trainers.notebooks.build:main", "regenerate the Colab notebooks", ("Trainers/notebooks/build.py",)
    ),
    Command(
        "tiny-model",
        "Trainers.shared.tiny_model:main",
        "a tiny random-weight model and tokenizer, built here (nothing downloaded)",
        ("python -m Trainers.shared.tiny_model",),
    ),
    Command(
        "bench-training",
        "Trainers.shared.benchmark:main",
        "the trainers' data-path (and --gpu step) benchmark",
        ("python -m Trainers.shared.benchmark",),
    ),
    Command(
        "self-correction-answers",
        "Trainers.shared.self_correction.initial_answers:main",
        "a model's first answers to golden questions (manual self-correction, step 1)",
        ("Tools/generate_initial_answers.py",),
    ),
    Command(
        "self-correction-data",
        "Trainers.shared.self_correction.answers_cli:main",
        "self-correction SFT and KTO data from those answers (step 2)",
        ("Tools/self_correction_trainer.py",),
    ),
    # evaluation (Evaluator/)
    Command(
        "evaluate",
        "Evaluator.__main__:main",
        "evaluate a model on a prompt set (no flags: an interactive picker)",
        ("python -m Evaluator", "python -m Evaluator.cli"),
    ),
    Command(
        "lmstudio",
        "Evaluator.lmstudio_cli:main",
        "LM Studio shortcuts: list-models, run",
        ("python -m Evaluator.lmstudio_cli",),
    ),
    Command(
        "compare",
        "Evaluator.compare:main",
        "what changed between two evaluation reports",
        ("python -m Evaluator.compare",),
    ),
    Command(
        "html-report",
        "Evaluator.html_report:main",
        "one self-contained HTML page of charts from reports and run logs",
        ("python -m Evaluator.html_report",),
    ),
    Command(
        "bench-evaluator",
        "Evaluator.benchmark:main",
        "the evaluator's concurrency and per-case cost",
        ("python -m Evaluator.benchmark",),
    ),
    # the app layer (claudesidian/)
    Command(
        "pipeline",
        "claudesidian.pipeline:main",
        "SFT, then KTO from the SFT adapter",
        ("Trainers/train_sft_to_kto_pipeline.sh",),
    ),
    Command(
        "closed-loop",
        "claudesidian.closed_loop:main",
        "the whole loop: teacher data -> validate -> SFT -> KTO -> GGUF -> evaluation (make demo)",
        ("Tools/closed_loop.py", "make demo"),
    ),
    Command(
        "self-improve",
        "claudesidian.self_improve:main",
        "generate -> KTO -> evaluate -> next model, until the pass rate drops",
        ("SelfPlay/self_improve.py",),
    ),
)

BY_NAME = {c.name: c for c in COMMANDS}
