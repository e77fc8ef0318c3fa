"""python -m Trainers.doctor: what this machine can run, in one screen (replaces the earlier
project's check_gpu_setup.py and test_installation.py).

GPU and VRAM, CUDA and the versions of torch, transformers, TRL, PEFT, bitsandbytes, unsloth and
the other optional engines, free disk, whether LM Studio, Ollama and the Hugging Face Hub answer,
and which tokens (.env or environment) are set, never their values. Nothing is downloaded.
Exit codes: 0 training can run (on CPU at least), 1 a training package is missing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
OPTIONAL = ("bitsandbytes", "unsloth", "flash_attn", "wandb", "huggingface_hub", "llama_cpp", "mcp", "mlx")
DISTRIBUTIONS = {"llama_cpp": "llama-cpp-python", "flash_attn": "flash-attn", "huggingface_hub": "huggingface-hub"}
TOKENS = (("HF_TOKEN", "HF_API_KEY"), ("WANDB_API_KEY",))


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def gpu() -> dict:
    """CUDA devices with their memory, as torch sees them (torch is imported only when installed)."""
    if importlib.util.find_spec("torch") is None:
        return {"cuda": None, "devices": [], "note": "torch is not installed"}
    import torch

    devices = (
        [
            {
                "name": torch.cuda.get_device_name(i),
                "vram_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
            }
            for i in range(torch.cuda.device_count())
        ]
        if torch.cuda.is_available()
        else []
    )
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return {
        "cuda": torch.version.cuda,
        "devices": devices,
        "mps": mps,
        "bf16": bool(devices) and torch.cuda.is_bf16_supported(),
    }


def servers(timeout: float = 2.0) -> dict:
    """LM Studio and Ollama where the evaluator and self-play would look for them."""
    from Evaluator.backends import make_client
    from Evaluator.clients import BackendError

    found = {}
    for backend in ("lmstudio", "ollama"):
        client = make_client(backend, "", timeout=timeout)
        try:
            models = client.list_models()
            found[backend] = {"url": client.endpoint, "answering": True, "models": len(models)}
        except BackendError as exc:
            found[backend] = {"url": client.endpoint, "answering": False, "why": str(exc)}
        finally:
            client.close()
    return found


def tokens() -> dict:
    """Which token variables are set, and where from; the values are never read out."""
    from Evaluator.backends import load_dotenv_once

    before = {name for group in TOKENS for name in group if os.environ.get(name)}
    load_dotenv_once()
    state = {}
    for group in TOKENS:
        name = next((n for n in group if os.environ.get(n)), None)
        state[" / ".join(group)] = (
            "missing" if name is None else f"{name} set ({'environment' if name in before else '.env'})"
        )
    return state


def diagnose() -> dict:
    from Trainers.shared.backend import hub_unreachable

    usage = shutil.disk_usage(ROOT)
    return {
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": {m: _version(m) for m in REQUIRED + OPTIONAL},
        "gpu": gpu(),
        "disk_free_gb": round(usage.free / 2**30, 1),
        "servers": servers(),
        "hub": hub_unreachable() or "reachable",
        "tokens": tokens(),
    }


def render(report: dict) -> list[str]:
    lines = [f"python      {report['python']}", f"platform    {report['platform']}"]
    g = report["gpu"]
    if g["devices"]:
        lines += [
            f"gpu         {d['name']}, {d['vram_gb']} GB VRAM (CUDA {g['cuda']}, bf16 {g['bf16']})"
            for d in g["devices"]
        ]
    else:
        why = g.get("note") or (
            "Apple MPS available: train with Trainers/mistral_lora_mac"
            if g.get("mps")
            else f"no CUDA device (torch CUDA build: {g['cuda'] or 'none'}); training runs on CPU"
        )
        lines.append(f"gpu         none: {why}")
    for module, version in report["packages"].items():
        mark = "ok     " if version else ("MISSING" if module in REQUIRED else "-      ")
        lines.append(f"{mark}     {module} {version or 'not installed'}")
    lines.append(f"disk        {report['disk_free_gb']} GB free beside the repository")
    for backend, state in report["servers"].items():
        lines.append(
            f"{backend:<12}{state['url']}: "
            + (f"answering, {state['models']} model(s)" if state["answering"] else f"not answering ({state['why']})")
        )
    lines.append(f"hub         Hugging Face Hub {report['hub']}")
    lines += [f"token       {group}: {state}" for group, state in report["tokens"].items()]
    missing = [m for m in REQUIRED if not report["packages"][m]]
    lines.append(
        f"result      training cannot run: {', '.join(missing)} missing (bash Trainers/rtx3090_sft/setup.sh)"
        if missing
        else "result      training can run" + ("" if g["devices"] else " (on CPU: tiny models only)")
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m Trainers.doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    report = diagnose()
    print(json.dumps(report, indent=2) if args.json else "\n".join(render(report)))
    return 1 if any(not report["packages"][m] for m in REQUIRED) else 0


if __name__ == "__main__":
    sys.exit(main())
