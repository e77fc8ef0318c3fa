"""Model card and Hugging Face upload: a real SFT -> KTO run on the tiny model, a real evaluator
report in its run directory, the upload_to_hf.py / upload_model.sh wrappers, and the upload itself
against a loopback double of the Hub's endpoints (create repo, validate card, preupload, LFS batch
and PUT, commit), with a recognisable fake token that must never be shown."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from Evaluator.protocol_doubles import HubDouble
from Trainers.shared.export.card import find_eval_report, model_card
from Trainers.shared.export.source import resolve_source

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_FAKEtoken_do_not_print_4242"


@pytest.fixture(scope="module")
def kto_run(tiny_sft_run, tiny_model_dir, tiny_gguf, tmp_path_factory):
    """KTO continued from the SFT adapter, with an evaluator report written into its run directory."""
    from conftest import tool_record, write_jsonl
    from Evaluator import cli as evaluator
    from Trainers.shared.config import load_config
    from Trainers.shared.train import run_training

    root = tmp_path_factory.mktemp("kto_run")
    records = []
    for name in ("Alpha", "Beta"):
        records += [
            tool_record(f"Projects/{name}", f"Create a folder for {name}", True),
            tool_record("Trash/tmp", f"Create a folder for {name}", False),
        ]
    result = run_training(
        load_config(
            "kto",
            None,
            {
                "model_name": str(tiny_sft_run.final_dir),
                "local_file": write_jsonl(root / "kto.jsonl", records),
                "output_dir": str(root / "kto_output_rtx3090"),
                "batch_size": 2,
                "gradient_accumulation": 1,
                "max_steps": 2,
                "save_steps": 100,
                "beta": 0.2,
            },
        )
    )
    code = evaluator.main(
        [
            "--model",
            str(tiny_gguf),
            "--prompt-set",
            "tool_prompts",
            "--limit",
            "2",
            "--max-tokens",
            "8",
            "--no-progress",
            "--output",
            str(result.run_dir / "eval_report.json"),
        ]
    )
    assert code == 0
    return result


def upload(*args, cwd, env=None, script="Trainers/rtx3090_kto/src/upload_to_hf.py"):
    clean = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_API_KEY")}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "HF_HOME": str(cwd / "hf_home"), **(env or {})},
    )


def no_token_anywhere(run, folder: Path | None = None):
    assert TOKEN not in run.stdout + run.stderr
    for path in folder.rglob("*") if folder else []:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_model_card_comes_from_the_real_lineage_and_the_latest_report(kto_run, tiny_sft_run, tiny_model_dir):
    source = resolve_source(kto_run.run_dir)
    assert source.kind == "adapter" and source.parent_lineage["method"] == "sft"
    report = find_eval_report(source.run_dir, source.model_dir)
    assert report and report[0].name == "eval_report.json"
    card = model_card(
        source,
        "user/tiny-claudesidian",
        "merged_16bit",
        call_format="hermes",
        gguf_files=["tiny-claudesidian-Q8_0.gguf"],
        eval_report=report,
    )
    sft, kto = json.loads((tiny_sft_run.final_dir / "lineage.json").read_text()), source.lineage
    for value in (
        f"`{tiny_model_dir}`",
        "SFT -> KTO",
        sft["dataset_sha256"],
        kto["dataset_sha256"],
        kto["schema_hash"],
        kto["toolkit_commit"],
        f"| records | {kto['dataset_records']} |",
        "| KTO beta | 0.2 |",
        "| learning rate | 2e-07 |",
        "| LoRA rank | 32 |",
        "| prompt set | tool_prompts (2 cases) |",
        f"| pass@1 | {report[1]['summary']['pass_at_1'] * 100:.1f}% |",
        "`E_NO_TOOL_CALL` x2",
        "ollama create tiny-claudesidian -f Modelfile",
        "<tool_call>",
    ):
        assert value in card, value
    assert "N/A" not in card and "None" not in card and "| |" not in card and "|  |" not in card


def test_dry_run_writes_the_exact_upload_folder_and_reads_the_token_from_dotenv(kto_run, tmp_path):
    (tmp_path / ".env").write_text(f"HF_TOKEN={TOKEN}\n")
    folder = tmp_path / "upload"
    run = upload(
        kto_run.run_dir,
        "user/tiny-claudesidian",
        "yes",
        "--quantizations",
        "Q8_0",
        "--roundtrip",
        "plumbing",
        "--no-server",
        "--dry-run",
        "--no-progress",
        "--outdir",
        folder,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    files = {p.name for p in folder.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "README.md",
        "lineage.json",
        "effective_config.yaml",
        "Modelfile",
        "LMSTUDIO.md",
        "export.json",
        "tiny-claudesidian-f16.gguf",
        "tiny-claudesidian-Q8_0.gguf",
    } <= files
    assert "training_args.bin" not in files and "ref" not in files
    assert "token: found" in run.stdout and "dry run: nothing uploaded" in run.stdout
    assert "tiny-claudesidian-Q8_0.gguf" in run.stdout and f"{len(files)} files" in run.stdout
    assert "FROM ./tiny-claudesidian-Q8_0.gguf" in (folder / "Modelfile").read_text()
    no_token_anywhere(run, folder)


def test_upload_through_the_hub_double_stores_exactly_the_folder(kto_run, tmp_path):
    folder = tmp_path / "upload"
    with HubDouble() as hub:
        run = upload(
            kto_run.final_dir,
            "user/tiny-lora",
            "--save-method",
            "lora",
            "--private",
            "--no-progress",
            "--outdir",
            folder,
            cwd=tmp_path,
            env={"HF_API_KEY": TOKEN, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"},
        )
        assert run.returncode == 0, run.stderr[-3000:]
        stored = hub.files["user/tiny-lora"]
        assert hub.repos["user/tiny-lora"]["private"] and hub.tokens == {TOKEN}
        assert any(r["method"] == "PUT" for r in hub.requests)  # the weights went through Git LFS
    local = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert stored == local
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "lineage.json"} <= set(stored)
    assert "library_name: peft" in stored["README.md"].decode()
    assert f"uploaded {len(local)} files" in run.stdout
    no_token_anywhere(run, folder)


def test_a_refused_upload_is_one_line_without_the_token(kto_run, tmp_path):
    with HubDouble() as hub:
        hub.fail_next("401")
        run = upload(
            kto_run.final_dir,
            "user/tiny-lora",
            "--save-method",
            "lora",
            "--no-progress",
            "--outdir",
            tmp_path / "up",
            cwd=tmp_path,
            env={"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"},
        )
    assert run.returncode == 2 and "HTTP 401" in run.stderr and "write access" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert (tmp_path / "up" / "adapter_model.safetensors").is_file()  # the prepared folder is kept
    no_token_anywhere(run)


def test_upload_model_sh_takes_the_latest_run(kto_run, tmp_path):
    run = subprocess.run(
        [
            "bash",
            str(ROOT / "Trainers/rtx3090_kto/upload_model.sh"),
            "user/latest-kto",
            "--runs-root",
            kto_run.run_dir.parent,
            "--save-method",
            "lora",
            "--dry-run",
            "--no-progress",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable, "HF_HOME": str(tmp_path / "hf_home")},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (kto_run.run_dir / "upload-latest-kto" / "adapter_model.safetensors").is_file()
    assert "token: none" in run.stdout or "token: found" in run.stdout


@pytest.mark.parametrize("method", ["sft", "kto"])
def test_both_wrappers_are_the_same_command_with_their_own_runs_folder(method):
    run = subprocess.run(
        [sys.executable, str(ROOT / f"Trainers/rtx3090_{method}/src/upload_to_hf.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and f"newest run under {method}_output_rtx3090/" in " ".join(run.stdout.split())
    assert "--save-method" in run.stdout and "--create-gguf" in run.stdout and "--dry-run" in run.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["{final}", "user/x"], "no Hugging Face token"),
        (["{final}", "not-a-repo", "--dry-run"], "REPO_ID must be username/model-name"),
        (
            ["{final}", "user/x", "--save-method", "merged_4bit", "--dry-run"],
            "merged_4bit needs bitsandbytes and a CUDA GPU",
        ),
        (["{base}", "user/x", "--save-method", "lora", "--dry-run"], "is a full model, not an adapter"),
        (["{final}", "user/x", "yes", "--quantizations", "Q3_Z", "--dry-run"], "unknown quantization Q3_Z"),
        (["latest", "user/x", "--runs-root", "{empty}", "--dry-run"], "no finished run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, kto_run, tiny_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    values = {"{final}": str(kto_run.final_dir), "{base}": tiny_model_dir, "{empty}": str(tmp_path / "empty")}
    run = upload(*[values.get(a, a) for a in args], "--outdir", tmp_path / "out", cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr[-2000:]
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()
