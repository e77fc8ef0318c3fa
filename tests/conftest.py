"""Shared fixtures. Reference material is read from ../shared/reference beside the checkout and
never copied into the project; tests that need it skip when it is absent."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("TOOLKIT_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))


@pytest.fixture(scope="session", autouse=True)
def every_backend():
    """Tests compose the toolkit as its entry points do: SelfPlay's template teacher joins the evaluator's backends."""
    from SelfPlay.backend import register

    register()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "datasets").is_dir():
        pytest.skip(f"reference material not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def registry():
    from Tools.schema.registry import load_registry

    return load_registry()


def require_llama_cpp() -> None:
    """Skip the calling test unless llama-cpp-python and llama.cpp's GGUF converter are both here."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
    from Trainers.shared.gguf import ConverterNotFound, find_llama_cpp

    try:
        find_llama_cpp()
    except ConverterNotFound as exc:
        pytest.skip(str(exc))


def run_tool(script: str, *args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would: python path/to/script.py ARGS."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def run():
    return run_tool


# --- trainers fixtures (Trainers/shared) -------------------------------------------------------
SESSION, WORKSPACE = "session_1732147550000_x2y3z4a5b", "ws_1732147550000_c6d7e8f9g"
SYSTEM = (
    f"<session_context>\nIMPORTANT: When using tools, include these values in your tool call parameters:\n\n"
    f'- sessionId: "{SESSION}"\n- workspaceId: "{WORKSPACE}"\n</session_context>'
)


def tool_record(folder: str, user: str, label: bool | None = None, tool: str = "vaultManager_createFolder") -> dict:
    """A record the shared validator passes: a real tool, a full context object, ids from the prompt."""
    context = {
        "sessionId": SESSION,
        "workspaceId": WORKSPACE,
        "sessionDescription": "Organising notes",
        "sessionMemory": "The user keeps project notes in Projects.",
        "toolContext": "Creating a folder",
        "primaryGoal": "Organise the vault",
        "subgoal": f"Create {folder}",
    }
    call = {
        "id": "abc123def",
        "type": "function",
        "function": {"name": tool, "arguments": json.dumps({"context": context, "path": folder})},
    }
    record = {
        "conversations": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
    }
    if label is not None:
        record["label"] = label
    return record


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from Trainers.shared.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture
def tiny_sft_file(tmp_path):
    """Four memorisable positives, repeated so a few steps see each several times."""
    records = [
        tool_record(f"Projects/{name}", f"Create a folder for {name}") for name in ("Alpha", "Beta", "Gamma", "Delta")
    ]
    return write_jsonl(tmp_path / "sft.jsonl", records * 2)


@pytest.fixture
def tiny_kto_file(tmp_path):
    """Strict true/false alternation; the negatives call the tool with a wrong, unrelated folder."""
    records = []
    for name in ("Alpha", "Beta", "Gamma", "Delta"):
        records.append(tool_record(f"Projects/{name}", f"Create a folder for {name}", True))
        records.append(tool_record("Trash/tmp", f"Create a folder for {name}", False))
    return write_jsonl(tmp_path / "kto.jsonl", records)


# --- end trainers fixtures ---------------------------------------------------------------------


# --- evaluator fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    """The tiny model as an f16 GGUF, converted with llama.cpp's own converter (from the
    llama-cpp-python sdist; see Trainers/shared/gguf.py for the setup command)."""
    require_llama_cpp()
    from Trainers.shared.gguf import convert_to_gguf

    return convert_to_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-f16.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_gguf):
    """llama.cpp's OpenAI-compatible server (llama_cpp.server) serving the tiny GGUF as model 'tiny';
    yields its base URL."""
    from Evaluator.llama_server import llama_server as serve

    with serve(tiny_gguf, alias="tiny") as url:
        yield url


# --- end evaluator fixtures --------------------------------------------------------------------


# --- export fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_sft_run(tiny_model_dir, tmp_path_factory):
    """A real SFT run on the tiny model (a few steps at a high learning rate, so the adapter really
    moves the weights): the run directory the export commands take."""
    from Trainers.shared.config import load_config
    from Trainers.shared.train import run_training

    root = tmp_path_factory.mktemp("sft_run")
    data = write_jsonl(
        root / "sft.jsonl", [tool_record(f"Projects/{n}", f"Create a folder for {n}") for n in ("Alpha", "Beta")] * 2
    )
    return run_training(
        load_config(
            "sft",
            None,
            {
                "model_name": tiny_model_dir,
                "local_file": data,
                "output_dir": str(root / "sft_output_rtx3090"),
                "batch_size": 2,
                "gradient_accumulation": 1,
                "max_steps": 3,
                "learning_rate": 5e-3,
                "save_steps": 100,
            },
        )
    )


# --- end export fixtures -----------------------------------------------------------------------
