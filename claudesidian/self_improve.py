"""The self-improvement loop: generate with the current model -> train KTO on its labelled answers
-> evaluate on a held-out prompt set -> the trained model is the next current model.

    python -m claudesidian self-improve --base-model MODEL_DIR --iterations 3 --workdir runs/self_improve [--yes]

(``python SelfPlay/self_improve.py`` is the same command.)

The model runs in-process through the transformers backend (base model + the latest LoRA
adapter), so nothing has to be exported or served between iterations. Before the first iteration
the starting model is evaluated; after each iteration the new model is. The loop stops as soon as
the evaluator's pass rate drops from one iteration to the next (the seed's warning: self-play can
collapse a model), keeping the best model so far, or when an iteration's answers give no KTO file
(one label missing). On a terminal it asks before each next iteration unless --yes is given.
Everything goes to --workdir: the prompt sets, per-iteration data, training runs, evaluation
reports, and self_improve.json (the history, rewritten after every stage).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die

EXIT_INTERRUPTED = 130


@dataclass
class LoopSettings:
    base_model: str
    workdir: Path
    iterations: int = 3
    adapter: str | None = None  # the starting adapter (e.g. an SFT final_model/)
    prompt_set: str | None = None  # generation prompts (default: teacher prompts written into workdir)
    eval_prompt_set: str | None = None  # held-out prompts (default: teacher prompts disjoint from the above)
    num_prompts: int = 30
    eval_size: int = 30
    num_variations: int = 3
    temperature: float = 0.7
    max_tokens: int = 256
    reference_positives: bool = True
    train_args: list = field(default_factory=list)
    seed: int = 0
    interactive: bool = False


def kto_config(argv: list[str]):
    """The KTO trainer's RunConfig from its own command-line flags (--train-arg), as train_kto.py reads them."""
    from Trainers.shared.cli import build_parser
    from Trainers.shared.config import load_config

    flags = vars(build_parser("kto").parse_args(argv))
    return load_config("kto", flags.pop("config"), flags)


def stopped_by_drop(history: list[dict]) -> bool:
    """The stop rule: the last evaluation's pass rate is below the one before it."""
    rates = [h["pass_rate"] for h in history if h.get("pass_rate") is not None]
    return len(rates) >= 2 and rates[-1] < rates[-2]


class SelfImprovementLoop:
    def __init__(self, settings: LoopSettings, out=print, ask=input):
        from Tools.schema.registry import load_registry

        from SelfPlay.config import load_config

        self.s = settings
        self.out, self.ask = out, ask
        self.registry = load_registry()
        self.config = load_config(registry=self.registry)
        self.history: list[dict] = []
        self.state_file = settings.workdir / "self_improve.json"

    # -- stages ------------------------------------------------------------------------------
    def prepare(self) -> tuple[str, str]:
        """The generation and held-out prompt sets; teacher-written ones share no request."""
        from SelfPlay.teacher import Teacher, shared_user_requests, write_heldout_prompt_set

        from Tools.schema.records import write_json_atomic

        work = self.s.workdir
        train = self.s.prompt_set
        if train is None:
            train = str(work / "train_prompts.json")
            write_json_atomic(train, Teacher(seed=self.s.seed).prompt_cases(self.s.num_prompts))
        held_out = self.s.eval_prompt_set
        if held_out is None:
            held_out = str(work / "heldout_prompts.json")
            write_heldout_prompt_set(held_out, seed=self.s.seed + 1, size=self.s.eval_size, exclude=[train])
        elif Path(train).suffix == ".json" and Path(held_out).suffix == ".json":
            shared = shared_user_requests(train, held_out)
            if shared:
                self.out(f"warning: the evaluation set shares {len(shared)} request(s) with the generation set")
        return train, held_out

    def client(self, adapter: str | None):
        from Evaluator.backends import connect

        return connect("transformers", self.s.base_model, adapter=adapter, timeout=600)

    def generate(self, iteration: int, adapter: str | None, prompt_set: str) -> dict:
        from SelfPlay.prompt_answers import PromptSetGenerator, load_cases

        client = self.client(adapter)
        try:
            name, cases = load_cases(prompt_set, client, seed=self.s.seed, size=self.s.num_prompts)
            generator = PromptSetGenerator(
                client,
                cases,
                self.registry,
                self.config,
                prompt_set=name,
                seed=self.s.seed + iteration,
                temperature=self.s.temperature,
                num_variations=self.s.num_variations,
                max_tokens=self.s.max_tokens,
                reference_positives=self.s.reference_positives,
            )
            output = self.s.workdir / f"iter_{iteration}" / "kto.jsonl"
            summary = generator.run(len(cases) * self.s.num_variations, output)
        finally:
            client.close()
        return {
            "file": str(output) if summary.kto.get("records") else None,
            "valid": summary.valid,
            "invalid": summary.invalid,
            "kto": summary.kto,
        }

    def train(self, iteration: int, adapter: str | None, kto_file: str) -> str:
        """KTO through the trainers' library function, continuing from adapter."""
        from Trainers.shared.train import run_training

        out = self.s.workdir / f"iter_{iteration}" / "train"
        argv = [
            "--model-name",
            adapter or self.s.base_model,
            "--local-file",
            kto_file,
            "--output-dir",
            str(out),
            *self.s.train_args,
        ]
        result = run_training(kto_config(argv))
        if result.final_dir is None:
            raise UsageError(
                f"iteration {iteration}: KTO training left no final model (--dry-run?); its output is in {out}"
            )
        return str(result.final_dir)

    def evaluate(self, iteration: int, adapter: str | None, prompt_set: str) -> dict:
        from Evaluator.evaluation import EvalRequest, evaluate
        from Evaluator.runner import RunSettings

        output = self.s.workdir / f"iter_{iteration}" / "eval.json"
        result = evaluate(
            EvalRequest(
                backend="transformers",
                model=self.s.base_model,
                adapter=adapter,
                prompt_set=prompt_set,
                output=output,
                progress=False,
                settings=RunSettings(max_tokens=self.s.max_tokens, timeout=600),
            )
        )
        summary = result.report["summary"]
        return {"report": str(output), "pass_rate": summary["pass_at_1"] or 0.0, "cases": summary["cases"]}

    # -- the loop ----------------------------------------------------------------------------
    def save(self, **extra) -> None:
        from Tools.schema.records import write_json_atomic

        write_json_atomic(
            self.state_file,
            {
                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.s).items()},
                "history": self.history,
                **extra,
            },
        )

    def run(self) -> dict:
        self.s.workdir.mkdir(parents=True, exist_ok=True)
        train_set, held_out = self.prepare()
        adapter = self.s.adapter
        baseline = self.evaluate(0, adapter, held_out)
        self.history.append({"iteration": 0, "model": adapter or self.s.base_model, **baseline})
        self.out(
            f"iteration 0 (starting model): pass rate {baseline['pass_rate']:.1%} on {baseline['cases']} held-out cases"
        )
        self.save()
        reason = f"completed {self.s.iterations} iteration(s)"
        for iteration in range(1, self.s.iterations + 1):
            if self.s.interactive and iteration > 1:
                answer = self.ask(f"continue with iteration {iteration} of {self.s.iterations}? [Y/n] ").strip().lower()
                if answer not in ("", "y", "yes"):
                    reason = f"stopped by the user before iteration {iteration}"
                    break
            started = time.perf_counter()
            data = self.generate(iteration, adapter, train_set)
            entry = {"iteration": iteration, "generated": data}
            if not data["file"]:
                self.history.append(entry)
                reason = f"iteration {iteration}: {data['kto'].get('error')}"
                break
            adapter = entry["model"] = self.train(iteration, adapter, data["file"])
            entry.update(self.evaluate(iteration, adapter, held_out))
            entry["wall_s"] = round(time.perf_counter() - started, 1)
            self.history.append(entry)
            self.save()
            self.out(
                f"iteration {iteration}: {data['valid']} valid / {data['invalid']} invalid answers, "
                f"pass rate {entry['pass_rate']:.1%} ({entry['wall_s']} s); model {adapter}"
            )
            if stopped_by_drop(self.history):
                previous = self.history[-2]["pass_rate"]
                reason = (
                    f"pass rate fell from {previous:.1%} to {entry['pass_rate']:.1%} at iteration {iteration}: "
                    "stopping before the model collapses"
                )
                break
        evaluated = [h for h in self.history if h.get("pass_rate") is not None]
        best = max(evaluated, key=lambda h: (h["pass_rate"], -h["iteration"]))
        result = {
            "reason": reason,
            "best": {"iteration": best["iteration"], "model": best["model"], "pass_rate": best["pass_rate"]},
        }
        self.save(**result)
        return result


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="self_improve.py",
        description=__doc__.splitlines()[0],
        epilog="Exit codes: 0 the loop ran (stopped or not), 2 bad input, 130 interrupted.",
    )
    p.add_argument("--base-model", required=True, help="a local Hugging Face model directory")
    p.add_argument("--adapter", help="a LoRA adapter to start from (e.g. an SFT run's final_model/)")
    p.add_argument("--iterations", type=int, default=3, help="at most this many generate -> train -> evaluate rounds")
    p.add_argument("--workdir", type=Path, default=Path("runs") / "self_improve", help="where everything goes")
    p.add_argument("--prompt-set", help="generation prompts (default: teacher prompts written into the workdir)")
    p.add_argument(
        "--eval-prompt-set", help="held-out prompts (default: teacher prompts sharing no request with the above)"
    )
    p.add_argument("--num-prompts", type=int, default=30, help="teacher generation prompts (default 30)")
    p.add_argument("--eval-size", type=int, default=30, help="teacher held-out prompts (default 30)")
    p.add_argument("--num-variations", type=int, default=3, help="answers per prompt (default 3)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument(
        "--no-reference-positives",
        action="store_true",
        help="do not pair a failed answer with the prompt's reference answer (a weak model then gives no positives)",
    )
    p.add_argument(
        "--train-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed on to the KTO trainer, e.g. --train-arg=--max-steps --train-arg=20 (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--yes", "--non-interactive", dest="yes", action="store_true", help="never ask before the next iteration"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.iterations < 1 or args.num_prompts < 1 or args.eval_size < 1 or args.num_variations < 1:
            raise UsageError("--iterations, --num-prompts, --eval-size and --num-variations must be at least 1")
        if not (Path(args.base_model) / "config.json").is_file():
            raise UsageError(f"--base-model {args.base_model}: not a model directory (no config.json)")
        for flag, path in (
            ("--adapter", args.adapter),
            ("--prompt-set", args.prompt_set),
            ("--eval-prompt-set", args.eval_prompt_set),
        ):
            if path and not Path(path).exists():
                raise UsageError(f"{flag} {path}: no such file or folder")
        kto_config(args.train_arg)  # a bad --train-arg fails now, not after the first generation
        settings = LoopSettings(
            base_model=args.base_model,
            workdir=args.workdir,
            iterations=args.iterations,
            adapter=args.adapter,
            prompt_set=args.prompt_set,
            eval_prompt_set=args.eval_prompt_set,
            num_prompts=args.num_prompts,
            eval_size=args.eval_size,
            num_variations=args.num_variations,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            reference_positives=not args.no_reference_positives,
            train_args=args.train_arg,
            seed=args.seed,
            interactive=not args.yes and sys.stdin.isatty(),
        )
        result = SelfImprovementLoop(settings).run()
    except UsageError as exc:
        die(str(exc))
    except KeyboardInterrupt:
        print(f"interrupted; what finished is in {args.workdir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    best = result["best"]
    print(
        f"{result['reason']}\nbest: iteration {best['iteration']}, pass rate {best['pass_rate']:.1%}, model {best['model']}\n"
        f"history: {args.workdir / 'self_improve.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
