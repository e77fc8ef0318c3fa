"""The model card (README.md) from what the run actually recorded.

Every value comes from ``lineage.json`` (the adapter's, and its parent's for KTO after SFT),
``effective_config.yaml`` and the newest evaluator report in the run directory. A value the run did
not record is left out, never printed as "N/A"; the keys read here are the keys the trainers and
the evaluator write (tests build the card from a real run to hold them to it).
"""

from __future__ import annotations

import json
from pathlib import Path

from Tools.cli_common import file_stem

from .source import ExportSource, looks_local


def find_eval_report(*folders: Path | None) -> tuple[Path, dict] | None:
    """The newest evaluator report (Evaluator/reporting.py's JSON) in or below the folders."""
    found = []
    for folder in filter(None, folders):
        for path in list(folder.glob("*.json")) + list(folder.glob("*/*.json")):
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if (
                isinstance(report, dict)
                and isinstance(report.get("metadata"), dict)
                and "report_version" in report["metadata"]
                and isinstance(report.get("summary"), dict)
            ):
                found.append((report["metadata"].get("started_at") or "", path, report))
    if not found:
        return None
    _, path, report = max(found, key=lambda item: (item[0], item[1].stat().st_mtime))
    return path, report


def _config(source: ExportSource) -> dict:
    path = source.model_dir / "effective_config.yaml"
    if not path.is_file() and source.run_dir:
        path = source.run_dir / "effective_config.yaml"
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _rows(pairs) -> list[str]:
    kept = [(k, v) for k, v in pairs if v not in (None, "", [], {})]
    return ["| " + k + " | " + str(v).replace("|", "\\|") + " |" for k, v in kept]


def _table(header: tuple[str, str], pairs) -> list[str]:
    rows = _rows(pairs)
    return [f"| {header[0]} | {header[1]} |", "|---|---|", *rows] if rows else []


def _hyperparameters(config: dict) -> list[tuple[str, object]]:
    method = config.get("method") or ""
    lora, training, own, model = (config.get(k) or {} for k in ("lora", "training", method, "model"))
    steps = training.get("max_steps")
    pairs = [
        ("LoRA rank", lora.get("r", lora.get("rank"))),
        ("LoRA alpha", lora.get("alpha")),
        ("LoRA dropout", lora.get("dropout")),
        ("LoRA target modules", ", ".join(lora.get("target_modules") or [])),
        ("learning rate", training.get("learning_rate")),
        ("batch size", training.get("batch_size")),
        ("gradient accumulation", training.get("gradient_accumulation")),
        ("epochs", training.get("num_epochs") if not steps or steps < 0 else None),
        ("max steps", steps if steps and steps > 0 else None),
        ("LR scheduler", training.get("lr_scheduler")),
        ("warmup", training.get("warmup_ratio")),
        ("max sequence length", model.get("max_seq_length")),
        ("seed", training.get("seed")),
    ]
    pairs += [
        (f"{method.upper()} beta", own.get("beta")),
        ("two-stage LR", own.get("two_stage_lr") or None),
        (
            "desirable / undesirable weight",
            f"{own.get('desirable_weight')} / {own.get('undesirable_weight')}" if "desirable_weight" in own else None,
        ),
    ]
    return pairs


def _stage(lineage: dict) -> list[tuple[str, object]]:
    sha = lineage.get("dataset_sha256")
    return [
        ("method", (lineage.get("method") or "").upper() or None),
        ("dataset", lineage.get("dataset")),
        ("records", lineage.get("dataset_records")),
        ("dataset sha256", f"`{sha}`" if sha else None),
        ("optimizer steps", lineage.get("global_step")),
        ("training time (s)", lineage.get("train_seconds")),
        ("backend", lineage.get("backend")),
        ("final train loss", (lineage.get("metrics") or {}).get("train_loss")),
    ]


def _pct(value) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


def _evaluation(report_path: Path, report: dict) -> list[str]:
    meta, summary = report["metadata"], report["summary"]
    prompt_set = meta.get("prompt_set") or {}
    pairs = [
        ("prompt set", f"{prompt_set.get('name')} ({prompt_set.get('cases')} cases)" if prompt_set else None),
        ("backend / model", f"{meta.get('backend')} / {meta.get('model')}"),
        ("run at", meta.get("started_at")),
        ("pass@1", _pct(summary.get("pass_at_1"))),
        ("attempts", summary.get("attempts")),
        ("failed requests", summary.get("requests_failed")),
    ]
    pairs += [
        (f"stage `{name}`", f"{_pct(v['rate'])} of {v['applicable']}")
        for name, v in (summary.get("stages") or {}).items()
        if v.get("applicable")
    ]
    codes = list((summary.get("failure_codes") or {}).items())[:5]
    pairs += [("top failure codes", ", ".join(f"`{c}` x{v['count']}" for c, v in codes) or None)]
    return [
        f"From `{report_path.name}`, the newest evaluator report in the run directory:",
        "",
        *_table(("metric", "value"), pairs),
    ]


def _example(call_format: str) -> str:
    from Tools.schema.toolcalls import ToolCall, render_content

    call = ToolCall(
        "vaultManager_createFolder",
        {"context": {"sessionId": "session_...", "workspaceId": "ws_..."}, "path": "Projects/Notes"},
        "abc123def",
    )
    return render_content([call], call_format)


def model_card(
    source: ExportSource,
    repo_id: str,
    save_method: str,
    *,
    call_format: str | None = None,
    gguf_files: list[str] | None = None,
    eval_report: tuple[Path, dict] | None = None,
    no_ollama: str | None = None,
) -> str:
    """no_ollama: the line saying why the GGUF files come without a Modelfile (None: one is included)."""
    lineage, parent = source.lineage, source.parent_lineage
    config = _config(source)
    base = lineage.get("base_model") or source.base_model
    stages = [s for s in (parent, lineage) if s]
    methods = " -> ".join((s.get("method") or "").upper() for s in stages if s.get("method"))
    datasets = [s.get("dataset") for s in stages if s.get("dataset")]
    tags = (
        ["claudesidian", "obsidian", "tool-calling", "function-calling"]
        + [s["method"] for s in stages if s.get("method")]
        + (["lora"] if source.kind == "adapter" else [])
        + (["gguf"] if gguf_files else [])
    )
    front = [
        "---",
        f"base_model: {base}" if base and not looks_local(str(base)) else None,  # the Hub validates it
        f"library_name: {'peft' if save_method == 'lora' else 'transformers'}",
        "pipeline_tag: text-generation",
        "tags:",
        *[f"- {t}" for t in dict.fromkeys(tags)],
        "---",
    ]
    lines = [line for line in front if line is not None]
    name = file_stem(repo_id)
    kind = {
        "lora": "the LoRA adapter",
        "merged_16bit": "the full model: the LoRA adapter merged into the base in 16-bit",
        "merged_4bit": "the full model, LoRA merged into the base, stored in 4-bit (bitsandbytes NF4)",
    }[save_method]
    if source.kind == "full":
        kind = "the full model (16-bit)"
    lines += [
        "",
        f"# {name}",
        "",
        f"A model trained to call the tools of the Claudesidian / Nexus MCP plugin for Obsidian vaults, "
        f"fine-tuned from `{base}`{f' with {methods}' if methods else ''} by the Claudesidian toolkit. "
        f"This repository holds {kind}"
        + (" and GGUF files for llama.cpp, LM Studio and Ollama." if gguf_files else "."),
        "",
        "## Training",
        "",
    ]
    lines += _table(
        ("field", "value"),
        [
            ("base model", f"`{base}`" if base else None),
            ("method(s)", methods),
            ("tool schema hash", f"`{lineage['schema_hash']}`" if lineage.get("schema_hash") else None),
            ("toolkit commit", f"`{lineage['toolkit_commit']}`" if lineage.get("toolkit_commit") else None),
            ("versions", ", ".join(f"{k} {v}" for k, v in (lineage.get("versions") or {}).items() if v)),
            ("datasets", ", ".join(f"`{d}`" for d in datasets)),
        ],
    )
    for stage in stages:
        lines += [
            "",
            f"### {(stage.get('method') or 'training').upper()} stage",
            "",
            *_table(("field", "value"), _stage(stage)),
        ]
    hyper = _table(("hyper-parameter", "value"), _hyperparameters(config))
    if hyper:
        lines += [
            "",
            f"### Hyper-parameters{' (' + config['method'].upper() + ' stage)' if config.get('method') else ''}",
            "",
            *hyper,
        ]
    lines += ["", "## Evaluation", ""]
    lines += (
        _evaluation(*eval_report)
        if eval_report
        else [
            "No evaluator report was found in the run directory. Measure this model with "
            "`python -m Evaluator.cli --backend ollama --model NAME --prompt-set tool_prompts --output r.json`."
        ]
    )
    lines += [
        "",
        "## Intended use",
        "",
        "Local assistants (LM Studio, Ollama, llama.cpp) that manage an Obsidian vault through the Claudesidian "
        "MCP tools: creating, reading, searching and editing notes and folders, with the session context the "
        "plugin expects in every call. Not for general chat quality, and not for actions without a human able "
        "to confirm destructive ones.",
    ]
    if call_format:
        lines += [
            "",
            "## Tool-call format",
            "",
            f"The model writes calls as `{call_format}`:",
            "",
            "```",
            _example(call_format),
            "```",
        ]
    if gguf_files:
        ollama = [
            "Ollama (a Modelfile with a tools-aware template and stop tokens is included):",
            "",
            "```bash",
            "ollama create " + name.lower() + " -f Modelfile",
            "ollama run " + name.lower(),
            "```",
        ]
        lines += [
            "",
            "## Run it locally",
            "",
            *([no_ollama] if no_ollama else ollama),
            "",
            f"LM Studio: `lms import {gguf_files[0]}` (or copy it into `~/.lmstudio/models/`); keep the "
            "prompt template the GGUF carries." + ("" if no_ollama else " See `LMSTUDIO.md`."),
            "",
            "Files:",
            "",
            *[f"- `{f}`" for f in gguf_files],
        ]
    return "\n".join(lines) + "\n"
