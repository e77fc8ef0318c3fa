"""The two export jobs: GGUF files for local use, and the folder uploaded to the Hub.

Both check everything a user can get wrong (paths, base model, quantization names, disk space from
a size estimate, the token) before any work, build in a temporary directory beside the output (the
same filesystem, so files are moved in by rename) and write a manifest last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from Tools.cli_common import UsageError, file_stem
from Tools.schema.records import write_json_atomic

from . import merge, quantize
from .source import ExportSource

FREE_BYTES_VARIABLE = "TOOLKIT_EXPORT_FREE_BYTES"  # overrides the measured free space (tests, odd filesystems)
_ADAPTER_FILES = (
    "adapter_model.safetensors",
    "adapter_config.json",
    "lineage.json",
    "effective_config.yaml",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "added_tokens.json",
)


def free_bytes(path: Path) -> int:
    """Free space where path will be written (its nearest existing parent)."""
    if os.environ.get(FREE_BYTES_VARIABLE):
        return int(os.environ[FREE_BYTES_VARIABLE])
    existing = path
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).free


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def check_space(estimate: int, where: Path) -> None:
    free = free_bytes(where)
    if free < estimate:
        raise UsageError(
            f"not enough disk space at {where}: the export needs about {_size(estimate)}, "
            f"{_size(free)} is free (free some space or pass --outdir on another disk)"
        )


def gguf_estimate(parameters: int, quantizations: list[str], merging: bool) -> int:
    return (
        (2 * parameters if merging else 0)
        + quantize.estimate_bytes(parameters, "F16")
        + sum(quantize.estimate_bytes(parameters, q) for q in quantizations)
    )


class Steps:
    """A rich progress bar over the named steps of an export (or plain lines without one)."""

    def __init__(self, names: list[str], show: bool = True):
        self.names, self.show, self._bar = names, show, None

    def __enter__(self):
        if self.show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            )
            self._bar.start()
            self._task = self._bar.add_task(self.names[0] if self.names else "", total=len(self.names))
        return self

    def start(self, name: str) -> None:
        if self._bar:
            self._bar.update(self._task, description=name)

    def done(self) -> None:
        if self._bar:
            self._bar.advance(self._task)

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()


@dataclass
class GgufExport:
    outdir: Path
    files: list[dict] = field(default_factory=list)  # {"file", "type", "bytes", "sha256", "fallback_tensors"}
    chat_format: dict = field(default_factory=dict)
    modelfile: str | None = None
    no_ollama: str | None = None  # why there is no Modelfile (a chat family the toolkit does not know), one line
    template_problems: list = field(default_factory=list)
    roundtrip: dict | None = None
    warnings: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.template_problems and (self.roundtrip is None or self.roundtrip["ok"])


def _tokenizer_format(directory: Path):
    from transformers import AutoTokenizer

    from .templates import detect_format

    tokenizer = AutoTokenizer.from_pretrained(directory)
    return detect_format(tokenizer.chat_template, tokenizer.bos_token or "", tokenizer.eos_token or "")


def _prepare_outdir(outdir: Path, overwrite: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: exists and is not a directory")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise UsageError(f"{outdir}: already holds files; pass --overwrite to replace them, or another --outdir")


def export_gguf(
    source: ExportSource,
    outdir: Path,
    quantizations: list[str],
    *,
    name: str | None = None,
    llama_cpp_dir: str | None = None,
    roundtrip: str = "strict",
    server: bool = True,
    overwrite: bool = False,
    merged_dir: Path | None = None,
    progress: bool = True,
    checked: bool = False,
) -> GgufExport:
    """f16 GGUF, then each quantization, a Modelfile and an LM Studio note, into outdir; then the
    round trip. merged_dir: a full model already merged from source (skips merging again);
    checked: the caller has already checked the output folder and disk space."""
    from ..gguf import ConverterNotFound, convert_to_gguf, find_llama_cpp
    from ..lineage import file_sha256
    from .ollama import GoMissing
    from .templates import UnknownFamily, check_ollama_template, lmstudio_note, modelfile, ollama_template

    name = file_stem(name or source.name)
    try:
        find_llama_cpp(explicit=llama_cpp_dir)
    except ConverterNotFound as exc:
        raise UsageError(str(exc)) from None
    needs_merge = source.kind == "adapter" and merged_dir is None
    if not checked:
        _prepare_outdir(outdir, overwrite)
        check_space(gguf_estimate(merge.parameter_count(source), quantizations, needs_merge), outdir)
    try:
        fmt = _tokenizer_format(source.tokenizer_dir)  # no template, or one without tool calls, stops here
    except UnknownFamily as exc:
        fmt = None
        no_ollama = (
            f"Ollama: no Modelfile: {exc}, so no Ollama TEMPLATE or tool-call tag can be written for it; "
            "the GGUF carries the model's own chat template (llama.cpp --jinja, LM Studio)"
        )
    result = GgufExport(outdir, chat_format=fmt.to_dict() if fmt else {}, no_ollama=None if fmt else no_ollama)
    if not fmt and roundtrip != "off":
        roundtrip = "off"
        result.warnings.append("round trip skipped: the toolkit cannot read this template's tool calls")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    steps = (
        (["merge LoRA into base"] if needs_merge else [])
        + ["convert to f16 GGUF"]
        + [f"quantize {q}" for q in quantizations]
        + ([f"round trip ({roundtrip})"] if roundtrip != "off" else [])
    )
    with (
        tempfile.TemporaryDirectory(dir=outdir.parent, prefix=f".{outdir.name}-") as tmp,
        Steps(steps, progress) as bar,
    ):
        work = Path(tmp)
        model_dir = merged_dir or source.model_dir
        if needs_merge:
            bar.start(steps[0])
            model_dir = merge.merge_adapter(source, work / "merged")
            bar.done()
        bar.start("convert to f16 GGUF")
        f16 = convert_to_gguf(model_dir, work / f"{name}-f16.gguf", "f16", llama_cpp_dir)
        bar.done()
        made = [(f16, "F16", 0)]
        for q in quantizations:
            bar.start(f"quantize {q}")
            done = quantize.quantize(f16, work / f"{name}-{q}.gguf", q)
            made.append((done.path, q, done.fallback_tensors))
            if done.fallback_tensors:
                result.warnings.append(
                    f"{q}: {done.fallback_tensors} of {done.total_tensors} tensors were written in a "
                    "fallback type (their rows are not a multiple of the block size)"
                )
            bar.done()
        served = made[1][0] if len(made) > 1 else f16  # the Modelfile points at the first quantization
        if fmt:
            go_template = ollama_template(fmt)
            try:
                result.template_problems = check_ollama_template(_template_of(source, model_dir), fmt, go_template)
            except GoMissing as exc:
                result.warnings.append(f"Modelfile not checked: {exc}")
            (work / "Modelfile").write_text(modelfile(served.name, fmt, go_template), encoding="utf-8")
            (work / "LMSTUDIO.md").write_text(
                lmstudio_note([p.name for p, _, _ in made[1:] + made[:1]], fmt), encoding="utf-8"
            )
        if roundtrip != "off":
            from .roundtrip import verify

            bar.start(f"round trip ({roundtrip})")
            result.roundtrip = {**verify(served, fmt, roundtrip, server=server).to_dict(), "gguf": served.name}
            bar.done()
        outdir.mkdir(parents=True, exist_ok=True)
        for path, kind, fallback in made:
            result.files.append(
                {
                    "file": path.name,
                    "type": kind,
                    "bytes": path.stat().st_size,
                    "sha256": file_sha256(path),
                    "fallback_tensors": fallback,
                }
            )
        for path in [p for p, _, _ in made] + [work / "Modelfile", work / "LMSTUDIO.md"]:
            if path.exists():
                os.replace(path, outdir / path.name)
    result.modelfile = str(outdir / "Modelfile") if fmt else None
    write_json_atomic(outdir / "export.json", _manifest(source, result, name))
    return result


def _template_of(source: ExportSource, model_dir: Path) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir).chat_template


def _manifest(source: ExportSource, result: GgufExport, name: str) -> dict:
    from importlib.metadata import version

    from ..lineage import toolkit_commit

    return {
        "name": name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {
            "model_dir": str(source.model_dir),
            "kind": source.kind,
            "base_model": source.base_model,
            "run_dir": str(source.run_dir) if source.run_dir else None,
        },
        "files": result.files,
        "chat_format": result.chat_format,
        "modelfile_problems": result.template_problems,
        "no_ollama": result.no_ollama,
        "roundtrip": result.roundtrip,
        "warnings": result.warnings,
        "llama_cpp_python": version("llama-cpp-python"),
        "toolkit_commit": toolkit_commit(),
    }


# -- the upload folder -------------------------------------------------------------------------
@dataclass
class UploadPlan:
    repo_id: str
    folder: Path
    save_method: str
    private: bool
    files: list[tuple[str, int]] = field(default_factory=list)
    gguf: GgufExport | None = None

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def upload_estimate(source: ExportSource, save_method: str, quantizations: list[str] | None) -> int:
    params = merge.parameter_count(source)
    adapter = sum(p.stat().st_size for p in source.model_dir.glob("*.safetensors"))
    need = {"lora": adapter, "merged_16bit": 2 * params, "merged_4bit": 2 * params + params // 2}[save_method]
    if source.kind == "full":
        need = 2 * params
    if quantizations is not None:
        need += gguf_estimate(params, quantizations, False)
    return need


def build_upload_folder(
    source: ExportSource,
    repo_id: str,
    folder: Path,
    save_method: str,
    *,
    quantizations: list[str] | None = None,
    private: bool = False,
    overwrite: bool = False,
    llama_cpp_dir: str | None = None,
    roundtrip: str = "strict",
    server: bool = True,
    progress: bool = True,
) -> UploadPlan:
    """Write exactly what would be uploaded to folder: the weights for save_method, the GGUF files
    (quantizations is not None) with Modelfile and LM Studio note, and the model card."""
    from .card import find_eval_report, model_card

    if save_method not in merge.SAVE_METHODS:
        raise UsageError(f"unknown --save-method {save_method!r}; expected one of {', '.join(merge.SAVE_METHODS)}")
    if save_method == "lora" and source.kind == "full":
        raise UsageError(f"{source.model_dir} is a full model, not an adapter; use --save-method merged_16bit")
    if save_method == "merged_4bit":
        merge.require_4bit()
    _prepare_outdir(folder, overwrite)
    check_space(upload_estimate(source, save_method, quantizations), folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    plan = UploadPlan(repo_id, folder, save_method, private)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as tmp:
        work = Path(tmp)
        stage = work / "upload"
        merged = None
        if source.kind == "full":
            shutil.copytree(source.model_dir, stage, ignore=shutil.ignore_patterns("*.npz", "checkpoints"))
            merged = source.model_dir
        elif save_method == "lora":
            stage.mkdir()
            for file in _ADAPTER_FILES:  # not training_args.bin (a pickle) nor TRL's ref/ copy
                if (source.model_dir / file).is_file():
                    shutil.copy2(source.model_dir / file, stage / file)
        else:
            merged = merge.merge_adapter(source, work / "merged16")
            if save_method == "merged_16bit":
                shutil.copytree(merged, stage)
            else:
                merge.save_4bit(merged, stage)
        for file in ("lineage.json", "effective_config.yaml"):
            if (source.model_dir / file).is_file() and not (stage / file).exists():
                shutil.copy2(source.model_dir / file, stage / file)
        call_format = None
        if quantizations is not None:
            plan.gguf = export_gguf(
                source,
                stage,
                quantizations,
                name=file_stem(repo_id),
                llama_cpp_dir=llama_cpp_dir,
                roundtrip=roundtrip,
                server=server,
                overwrite=True,
                merged_dir=merged,
                progress=progress,
                checked=True,
            )
            call_format = plan.gguf.chat_format.get("call_format")
        else:
            try:
                call_format = _tokenizer_format(source.tokenizer_dir).call_format
            except UsageError:
                call_format = None
        gguf_files = (
            [f["file"] for f in plan.gguf.files if f["type"] != "F16"]
            + [f["file"] for f in plan.gguf.files if f["type"] == "F16"]
            if plan.gguf
            else None
        )
        report = find_eval_report(source.run_dir, source.model_dir)
        (stage / "README.md").write_text(
            model_card(
                source,
                repo_id,
                save_method,
                call_format=call_format,
                gguf_files=gguf_files,
                eval_report=report,
                no_ollama=plan.gguf.no_ollama if plan.gguf else None,
            ),
            encoding="utf-8",
        )
        if folder.exists():
            shutil.rmtree(folder)  # --overwrite: replaced only now that the new folder is complete
        os.replace(stage, folder)
    if plan.gguf:
        plan.gguf.outdir = folder
        plan.gguf.modelfile = str(folder / "Modelfile") if plan.gguf.modelfile else None
    plan.files = sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
    return plan
