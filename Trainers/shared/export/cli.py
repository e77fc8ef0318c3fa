"""Command lines of the export: ``python -m Trainers.shared.export gguf RUN_DIR`` and
``upload_to_hf.py MODEL_PATH REPO_ID`` (the rtx3090_sft / rtx3090_kto wrappers). Thin: they parse
flags, call build.py and print a summary. Exit 0 ok, 1 when the Modelfile check or the round trip
found a problem (the files are kept for inspection), 2 for input errors."""

from __future__ import annotations

import sys
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die, format_table

from .quantize import DEFAULT_QUANTIZATIONS

_RUNS = {"sft": "sft_output_rtx3090", "kto": "kto_output_rtx3090"}


def _common(parser: ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--quantizations",
        metavar="LIST",
        help=f"comma-separated llama.cpp types after the f16 GGUF (default {','.join(DEFAULT_QUANTIZATIONS)}; 'none' for f16 only)",
    )
    add("--base-model", metavar="PATH_OR_ID", help="the adapter's base model, when it moved or was a 4-bit build")
    add(
        "--llama-cpp-dir",
        metavar="DIR",
        help="a llama.cpp checkout holding convert_hf_to_gguf.py (default: $LLAMA_CPP_DIR, "
        "then the llama-cpp-python sdist in .cache/)",
    )
    add(
        "--roundtrip",
        choices=("strict", "plumbing", "off"),
        default="strict",
        help="after export, load the GGUF in llama.cpp (embedded and server) and run tool prompts: strict fails when "
        "no answer holds a parsed call; plumbing checks template, generation and parsing only (default strict)",
    )
    add("--no-server", action="store_true", help="round trip through embedded llama.cpp only")
    add("--overwrite", action="store_true", help="replace the files of an earlier export in the output folder")
    add("--no-progress", action="store_true", help="no progress bar")


def gguf_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m Trainers.shared.export gguf",
        description="Export a trained run (or a full model directory) as GGUF: f16, then each "
        "quantization, an Ollama Modelfile and an LM Studio note; then prove the files "
        "work for tool calling. See docs/export.md.",
    )
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory, its final_model/, an MLX fused_model/ or any full model directory",
    )
    parser.add_argument("--outdir", metavar="DIR", help="where the files go (default RUN_DIR/gguf)")
    parser.add_argument("--name", help="file name stem (default <method>-<run stamp>)")
    _common(parser)
    return parser


def upload_parser(method: str | None) -> ArgumentParser:
    prog = f"Trainers/rtx3090_{method}/src/upload_to_hf.py" if method else "python -m Trainers.shared.export upload"
    parser = ArgumentParser(
        prog=prog,
        description="Merge (or keep) the adapter, optionally build GGUF files, write a "
        "model card from the run's lineage and upload to the Hugging Face Hub. "
        "Token: HF_TOKEN or HF_API_KEY (environment or .env). See docs/export.md.",
    )
    where = f" ('latest': the newest run under {_RUNS[method]}/)" if method else ""
    parser.add_argument(
        "model_path", metavar="MODEL_PATH", help=f"final_model/, a run directory or an MLX fused_model/{where}"
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="username/model-name")
    parser.add_argument(
        "gguf", nargs="?", choices=("yes", "no"), help="'yes': also build GGUF files (same as --create-gguf)"
    )
    parser.add_argument(
        "--save-method",
        choices=("merged_16bit", "merged_4bit", "lora"),
        default="merged_16bit",
        help="merged_16bit (default), merged_4bit (needs bitsandbytes + CUDA) or lora (the adapter only)",
    )
    parser.add_argument(
        "--create-gguf", action="store_true", help="also build GGUF files, a Modelfile and an LM Studio note"
    )
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write the exact folder that would be uploaded, print the plan, upload nothing",
    )
    parser.add_argument(
        "--outdir", metavar="DIR", help="where the upload folder is written (default RUN_DIR/upload-<model-name>)"
    )
    if method:
        parser.add_argument(
            "--runs-root",
            metavar="DIR",
            default=None,
            help=f"where MODEL_PATH 'latest' looks for runs (default <repo>/{_RUNS[method]})",
        )
    _common(parser)
    return parser


def _default_outdir(source, leaf: str) -> Path:
    return (source.run_dir / leaf) if source.run_dir else source.model_dir.with_name(f"{source.model_dir.name}-{leaf}")


def _print_gguf(result) -> None:
    rows = [("file", "type", "size (MB)", "fallback tensors")]
    rows += [(f["file"], f["type"], round(f["bytes"] / 2**20, 2), f["fallback_tensors"]) for f in result.files]
    print("\n".join(format_table(rows)))
    fmt = result.chat_format
    if fmt:
        print(
            f"chat format: {fmt['family']} (tool calls as {fmt['call_format']}; stop tokens {', '.join(fmt['stops'])})"
        )
    print(
        result.no_ollama
        or f"Modelfile: {result.modelfile}" + ("" if not result.template_problems else " (CHECK FAILED)")
    )
    for problem in result.template_problems:
        print(f"  modelfile problem: {problem}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    trip = result.roundtrip
    if trip:
        print(
            f"round trip ({trip['mode']}): chat template in GGUF: {'yes' if trip['template_present'] else 'NO'}, "
            f"renders tools and calls: {'yes' if trip['template_renders'] else 'NO'}"
        )
        for b in trip["backends"]:
            print(
                f"  {b['backend']}: {b['answers']} answers, {b['parsed_calls']} with a parsed call, {b['passed']} passed; "
                f"positive control {'parsed' if b['control_parsed'] else 'FAILED'}"
            )
        for problem in trip["problems"] + [p for b in trip["backends"] for p in b["problems"]]:
            print(f"  round-trip problem: {problem}")
    print(
        f"next: cd {result.outdir} && ollama create NAME -f Modelfile   (LM Studio: see LMSTUDIO.md)"
        if result.modelfile
        else f"next: llama.cpp: llama-server -m {result.outdir}/{result.files[-1]['file']} --jinja"
    )


def gguf_main(argv: list[str] | None = None) -> int:
    from .build import export_gguf
    from .quantize import parse_quantizations
    from .source import resolve_source

    args = gguf_parser().parse_args(argv)
    try:
        quantizations = parse_quantizations(args.quantizations)
        source = resolve_source(args.run_dir, args.base_model)
        if source.base_note:
            print(f"note: {source.base_note}")
        outdir = Path(args.outdir) if args.outdir else _default_outdir(source, "gguf")
        result = export_gguf(
            source,
            outdir,
            quantizations,
            name=args.name,
            llama_cpp_dir=args.llama_cpp_dir,
            roundtrip=args.roundtrip,
            server=not args.no_server,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except UsageError as exc:
        die(str(exc))
    except RuntimeError as exc:  # the converter or llama.cpp failed; its last lines say why
        die(str(exc))
    except KeyboardInterrupt:
        die("interrupted; nothing was moved into the output folder", 130)
    _print_gguf(result)
    print(
        f"done: {len(result.files)} GGUF file(s) in {result.outdir}"
        + ("" if result.ok else "; the checks above FAILED")
    )
    return 0 if result.ok else 1


def upload_main(argv: list[str] | None = None, method: str | None = None) -> int:
    from ..config import REPO_ROOT
    from .build import build_upload_folder
    from .hub import redact, resolve_token, upload_folder
    from .quantize import parse_quantizations
    from .source import resolve_source

    args = upload_parser(method).parse_args(argv)
    token = resolve_token()
    try:
        if args.repo_id.count("/") != 1 or not all(args.repo_id.split("/")):
            raise UsageError(f"REPO_ID must be username/model-name, not {args.repo_id!r}")
        gguf = args.create_gguf or args.gguf == "yes"
        quantizations = parse_quantizations(args.quantizations) if gguf else None
        if not args.dry_run and not token:
            raise UsageError(
                "no Hugging Face token: set HF_TOKEN or HF_API_KEY (in the environment or .env), or use --dry-run"
            )
        runs_root = Path(getattr(args, "runs_root", None) or REPO_ROOT / _RUNS[method]) if method else None
        source = resolve_source(args.model_path, args.base_model, runs_root)
        if source.base_note:
            print(f"note: {source.base_note}")
        folder = Path(args.outdir) if args.outdir else _default_outdir(source, f"upload-{args.repo_id.split('/')[1]}")
        plan = build_upload_folder(
            source,
            args.repo_id,
            folder,
            args.save_method,
            quantizations=quantizations,
            private=args.private,
            overwrite=args.overwrite,
            llama_cpp_dir=args.llama_cpp_dir,
            roundtrip=args.roundtrip,
            server=not args.no_server,
            progress=not args.no_progress,
        )
        if plan.gguf:
            _print_gguf(plan.gguf)
            if not plan.gguf.ok:
                print(f"not uploaded: the checks above failed; the folder is kept at {plan.folder}")
                return 1
        rows = [("file", "size (MB)")] + [(name, round(size / 2**20, 2)) for name, size in plan.files]
        print("\n".join(format_table(rows)))
        print(
            f"plan: {'private' if args.private else 'public'} repository {args.repo_id}, {args.save_method}, "
            f"{len(plan.files)} files, {plan.total_bytes / 2**20:.1f} MB from {plan.folder}; "
            f"token: {'found' if token else 'none'}"
        )
        if args.dry_run:
            print("dry run: nothing uploaded; the folder above is exactly what would be")
            return 0
        done = upload_folder(plan.folder, args.repo_id, token, private=args.private)
    except UsageError as exc:
        die(redact(str(exc), token))
    except RuntimeError as exc:
        die(redact(str(exc), token))
    except KeyboardInterrupt:
        die("interrupted", 130)
    print(f"done: uploaded {done.files} files to {done.repo_url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"gguf": gguf_main, "upload": upload_main}
    if not argv or argv[0] not in commands:
        if argv and argv[0] in ("-h", "--help"):
            print(
                "usage: python -m Trainers.shared.export {gguf,upload} ...\n\n"
                "  gguf RUN_DIR      GGUF files, Modelfile and LM Studio note for local use\n"
                "  upload PATH REPO  the Hugging Face upload (as upload_to_hf.py)\n\nSee docs/export.md."
            )
            return 0
        die("expected a command: gguf or upload (see python -m Trainers.shared.export --help)")
    return commands[argv[0]](argv[1:])
