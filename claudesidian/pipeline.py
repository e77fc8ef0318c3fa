"""SFT, then KTO starting from the SFT adapter: ``python -m claudesidian pipeline``
(``Trainers/train_sft_to_kto_pipeline.sh`` runs it after checking the training packages).

Flags the pipeline does not know are passed to both stages (e.g. --model-size, --max-steps);
KTO gets ``--model-name <SFT final_model>``, so it continues from the SFT adapter and uses it as its
reference model.
"""

from __future__ import annotations

import sys

from Tools.cli_common import ArgumentParser, UsageError, die


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="train_sft_to_kto_pipeline.sh", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sft-file",
        metavar="JSONL",
        help="SFT dataset (positives; default the shipped Datasets/teacher/teacher_sft.jsonl)",
    )
    parser.add_argument(
        "--kto-file",
        metavar="JSONL",
        help="KTO dataset (interleaved true/false; default the shipped Datasets/teacher/teacher_kto.jsonl)",
    )
    parser.add_argument(
        "--sft-config", metavar="FILE", help="SFT YAML (default Trainers/rtx3090_sft/configs/config.yaml)"
    )
    parser.add_argument(
        "--kto-config", metavar="FILE", help="KTO YAML (default Trainers/rtx3090_kto/configs/config.yaml)"
    )
    parser.add_argument("--sft-output-dir")
    parser.add_argument("--kto-output-dir")
    return parser


def run_pipeline(argv: list[str]) -> tuple:
    from Trainers.shared.cli import build_parser as stage_parser
    from Trainers.shared.config import REPO_ROOT, SHIPPED_DATASET, load_config, use_shipped_dataset
    from Trainers.shared.data import load_records, validate_for
    from Trainers.shared.train import run_training

    args, rest = build_parser().parse_known_args(argv)
    stage, unknown = {}, []
    for method, data, config_file, output in (
        ("sft", args.sft_file, args.sft_config, args.sft_output_dir),
        ("kto", args.kto_file, args.kto_config, args.kto_output_dir),
    ):
        # a flag only one stage knows (e.g. --beta) goes to that stage alone
        namespace, extra = stage_parser(method).parse_known_args(
            rest + (["--local-file", data] if data else []) + (["--output-dir", output] if output else [])
        )
        flags = vars(namespace)
        flags.pop("config")
        unknown.append({a for a in extra if a.startswith("--")})
        stage[method] = (config_file or REPO_ROOT / f"Trainers/rtx3090_{method}/configs/config.yaml", flags)
    if unknown[0] & unknown[1]:
        raise UsageError(
            f"unrecognized arguments: {' '.join(sorted(unknown[0] & unknown[1]))} (see train_sft_to_kto_pipeline.sh --help)"
        )
    kto_file, kto_flags = stage["kto"]
    kto_check = load_config("kto", kto_file, kto_flags)  # a KTO config error must surface before hours of SFT
    sft_config = load_config("sft", *stage["sft"])
    for method, config in (("sft", sft_config), ("kto", kto_check)):
        if use_shipped_dataset(config):
            print(f"{method} dataset: none given; using the shipped {SHIPPED_DATASET.format(method=method)}")
            stage[method][1]["local_file"] = config.data.local_file
    validate_for("kto", load_records(kto_check.data.local_file, kto_check.data.dataset_name, kto_check.data.split))
    sft = run_training(sft_config)
    if sft.final_dir is None:  # --dry-run: show the KTO plan too, without an SFT adapter to start from
        return sft, run_training(kto_check)
    print(f"SFT adapter: {sft.final_dir}; starting KTO from it", flush=True)
    kto = run_training(load_config("kto", kto_file, {**kto_flags, "model_name": str(sft.final_dir)}))
    return sft, kto


def main(argv: list[str] | None = None) -> int:
    try:
        sft, kto = run_pipeline(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        die(str(exc))
    except KeyboardInterrupt:
        die("interrupted; resume a stage with its train.sh --resume latest", 130)
    if sft.final_dir is None:
        print(f"dry run: SFT would run in {sft.run_dir}, KTO in {kto.run_dir}; nothing trained")
    else:
        print(f"pipeline done: SFT {sft.final_dir} -> KTO {kto.final_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
