"""The earlier project's commands and files, run as its documents write them (issue 17).

Each test quotes the seed's command line; the deliberate differences are in the README's table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT, tool_record, write_jsonl
from factories import hermes_answer
from Evaluator.protocol_doubles import OllamaDouble, OpenAIDouble, free_port

PY = sys.executable


def sh(args, cwd=ROOT, env=None, timeout=180):
    env = {**os.environ, "PYTHON": PY, **(env or {})}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def one_error_line(run):
    lines = run.stderr.strip().splitlines()
    assert "Traceback" not in run.stderr + run.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]


# -- item 1: default datasets, --drop-invalid for KTO, validate_syngen --write-valid ----------------------
@pytest.mark.parametrize("method", ["sft", "kto"])
def test_train_sh_without_local_file_uses_the_shipped_dataset_and_fails_fast_offline(method):
    # seed: cd Trainers/rtx3090_sft && ./train.sh --model-size 7b   (no network here: the 7b model is not cached)
    started = time.time()
    run = sh(
        ["./train.sh", "--model-size", "7b", "--dry-run"],
        cwd=ROOT / "Trainers" / f"rtx3090_{method}",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent-hf-home"},
    )
    assert run.returncode == 2
    assert f"dataset: none given; using the shipped Datasets/teacher/teacher_{method}.jsonl" in run.stdout
    assert "is not in the local Hugging Face cache and the Hub is offline (HF_HUB_OFFLINE is set)" in one_error_line(
        run
    )
    assert time.time() - started < 30


def test_unreachable_hub_is_detected_once_without_retries():
    started = time.time()
    run = sh(
        ["./train.sh", "--model-size", "3b", "--dry-run"],
        cwd=ROOT / "Trainers" / "rtx3090_sft",
        env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HUB_OFFLINE": "", "HF_HOME": "/nonexistent-hf-home"},
    )
    assert "the Hub is unreachable (127.0.0.1" in one_error_line(run)
    assert time.time() - started < 30  # the seed's version retried for about a minute


def test_default_dataset_plan_with_a_local_model(tiny_model_dir):
    run = sh(
        ["./train.sh", "--model-size", "7b", "--model-name", tiny_model_dir, "--dry-run"],
        cwd=ROOT / "Trainers" / "rtx3090_kto",
    )
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout.split("plan:\n", 1)[1].split("\neffective config:", 1)[0])
    assert plan["dataset"].endswith("Datasets/teacher/teacher_kto.jsonl") and plan["labels"] == {
        "true": 1200,
        "false": 1200,
    }


def test_kto_drop_invalid_keeps_the_alternation(tmp_path):
    from Trainers.shared.data import load_records, validate_for

    good = [tool_record(f"Projects/P{i}", f"Make folder {i}", label) for i, label in enumerate([True, False] * 3)]
    broken_positive = tool_record("Projects/X", "Make folder X", True)
    broken_positive["conversations"][2]["tool_calls"][0]["function"]["name"] = "vaultManager_inventedTool"
    broken_negative = {"conversations": [{"role": "user", "content": "hi"}], "label": False}  # structurally broken
    records = good[:2] + [broken_positive] + good[2:4] + [broken_negative] + good[4:]
    data = load_records(write_jsonl(tmp_path / "kto.jsonl", records))
    with pytest.raises(Exception, match="--drop-invalid"):
        validate_for("kto", load_records(data.source))
    assert validate_for("kto", data, drop_invalid=True) == 2
    labels = [r["label"] for _, r in data.records]
    assert labels == [True, False] * 3 and dict(data.labels) == {"true": 3, "false": 3}


def test_the_earlier_projects_kto_set_trains_with_drop_invalid(reference_dir, tiny_model_dir):
    # seed: cd ../rtx3090_kto && ./train.sh --model-size 7b --local-file ../../Datasets/<the earlier KTO set>.jsonl
    data = reference_dir / "datasets" / "behavior_merged_kto_v1.5_balanced.jsonl"
    kto = ROOT / "Trainers" / "rtx3090_kto"
    refused = sh(
        ["./train.sh", "--model-size", "7b", "--local-file", str(data), "--model-name", tiny_model_dir, "--dry-run"],
        cwd=kto,
    )
    assert "Train on the rest with --drop-invalid" in one_error_line(refused)
    run = sh(
        [
            "./train.sh",
            "--model-size",
            "7b",
            "--local-file",
            str(data),
            "--model-name",
            tiny_model_dir,
            "--dry-run",
            "--drop-invalid",
        ],
        cwd=kto,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout.split("plan:\n", 1)[1].split("\neffective config:", 1)[0])
    assert plan["labels"]["true"] == plan["labels"]["false"] > 2000 and plan["dropped_invalid"] > 0


def test_validate_syngen_write_valid_and_invalid(tmp_path, run):
    good = tool_record("Projects/A", "Make folder A")
    bad = tool_record("Projects/B", "Make folder B", tool="vaultManager_inventedTool")
    source = write_jsonl(tmp_path / "mixed.jsonl", [good, bad, good])
    result = run(
        "Tools/validate_syngen.py",
        source,
        "--write-valid",
        tmp_path / "ok.jsonl",
        "--write-invalid",
        tmp_path / "bad.jsonl",
        "--summary-only",
    )
    assert result.returncode == 1  # findings still fail the run
    assert "wrote 2 passing record(s)" in result.stderr and "wrote 1 failing record(s)" in result.stderr
    assert [json.loads(line) for line in (tmp_path / "ok.jsonl").read_text().splitlines()] == [good, good]
    assert run("Tools/validate_syngen.py", tmp_path / "ok.jsonl").returncode == 0


# -- item 2: evaluation --------------------------------------------------------------------------------------


def test_evaluator_cli_seed_command_defaults_to_ollama_and_full_coverage():
    # seed: python -m Evaluator.cli --model NAME --prompt-set Evaluator/prompts/full_coverage.json
    results = ROOT / "Evaluator" / "results"
    before = set(results.glob("*")) if results.is_dir() else set()
    with OllamaDouble(hermes_answer, models=("claudesidian-mcp",)) as double:
        run = sh(
            [
                PY,
                "-m",
                "Evaluator.cli",
                "--model",
                "claudesidian-mcp",
                "--prompt-set",
                "Evaluator/prompts/full_coverage.json",
            ],
            env={"OLLAMA_HOST": double.url},
        )
    written = set(results.glob("*")) - before
    try:
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("backend: ollama (the default for a model name")
        report = json.loads(next(p for p in written if p.suffix == ".json").read_text())
        tools = {t for case in report["cases"] for t in case["expected_tools"]}
        assert len(report["cases"]) == len(tools) == 45  # one case per tool the model is shown
        assert report["summary"]["per_tool"]["vaultManager_listDirectory"]["rate"] == 1.0
        assert any(p.suffix == ".md" for p in written)
    finally:
        for path in written:
            path.unlink()


def test_python_m_evaluator_help_prints_help():
    run = sh([PY, "-m", "Evaluator", "--help"], timeout=60)
    assert run.returncode == 0 and "interactive picker" in run.stdout and "--prompt-set" in run.stdout


def test_adapter_with_a_server_backend_is_an_error(tmp_path):
    run = sh(
        [
            PY,
            "-m",
            "Evaluator.cli",
            "--backend",
            "lmstudio",
            "--model",
            "m",
            "--adapter",
            str(tmp_path),
            "--prompt-set",
            "tool_prompts",
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    assert run.returncode == 2 and "--adapter applies to the transformers backend only" in one_error_line(run)


def test_unknown_ollama_model_is_caught_before_the_run(tmp_path):
    with OllamaDouble(hermes_answer, models=("qwen2.5:7b",)) as double:
        run = sh(
            [
                PY,
                "-m",
                "Evaluator.cli",
                "--backend",
                "ollama",
                "--model",
                "claudesidian-mcp",
                "--base-url",
                double.url,
                "--prompt-set",
                "tool_prompts",
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
        assert not double.requests
    assert "has no model 'claudesidian-mcp' (it has: qwen2.5:7b); run: ollama pull claudesidian-mcp" in one_error_line(
        run
    )
    assert not (tmp_path / "r.json").exists()


def test_a_404_on_v1_models_is_not_a_server_answering(tmp_path):
    with OllamaDouble() as not_openai:  # something that answers HTTP but has no /v1/models
        run = sh(
            [
                PY,
                "-m",
                "Evaluator.cli",
                "--backend",
                "lmstudio",
                "--model",
                "m",
                "--base-url",
                not_openai.url,
                "--prompt-set",
                "tool_prompts",
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
    assert "LM Studio is not answering: HTTP 404" in one_error_line(run)


def test_execute_mcp_registers_the_workspaces_the_prompt_names():
    from Evaluator.execution import make_executor
    from Evaluator.prompt_sets import parse_cases
    from Tools.schema.toolcalls import parse_message

    records = [json.loads(line) for line in (ROOT / "Datasets/teacher/teacher_sft.jsonl").open()][:60]
    cases = parse_cases(
        [{"id": str(i), "question": "q", "system": r["conversations"][0]["content"]} for i, r in enumerate(records)]
    )
    execute = make_executor(None, cases)
    codes = [f.code for r in records for f in execute(parse_message(r["conversations"][-1]).calls)]
    assert codes and set(codes) == {"E_PROVIDER_REQUIRED"}  # only the calls that need a model provider fail
    assert "E_EXEC_FAILED" in {
        f.code for r in records for f in make_executor(None)(parse_message(r["conversations"][-1]).calls)
    }


def test_execute_mcp_against_the_vault_mcp_server(tmp_path):
    pytest.importorskip("mcp")
    from Tools.vault.sandbox import DEFAULT_TEMPLATE

    vault = tmp_path / "vault"
    shutil.copytree(DEFAULT_TEMPLATE, vault)
    command = f"{PY} {ROOT / 'Tools' / 'vault_mcp_server.py'} --vault {vault}"

    def list_directory_case():
        with OpenAIDouble(hermes_answer) as double:
            run = sh(
                [
                    PY,
                    "-m",
                    "Evaluator.cli",
                    "--backend",
                    "lmstudio",
                    "--model",
                    "double-model",
                    "--base-url",
                    double.url,
                    "--prompt-set",
                    "tool_prompts",
                    "--tags",
                    "vaultManager",
                    "--execute-mcp",
                    "--mcp-command",
                    command,
                    "--output",
                    str(tmp_path / "r.json"),
                ]
            )
        assert run.returncode == 0, run.stderr
        return next(
            c for c in json.loads((tmp_path / "r.json").read_text())["cases"] if c["id"] == "vaultManager_listDirectory"
        )

    case = list_directory_case()  # the server's vault has no Thesis folder: the call runs there and fails
    assert case["failed_stage"] == "execution" and "Folder not found at path: Thesis" in case["findings"][0]["message"]
    (vault / "Thesis").mkdir()
    assert list_directory_case()["passed"]
    run = sh(
        [
            PY,
            "-m",
            "Evaluator.cli",
            "--backend",
            "lmstudio",
            "--model",
            "m",
            "--prompt-set",
            "tool_prompts",
            "--mcp-command",
            command,
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    assert "--mcp-command is used only with --execute-mcp" in one_error_line(run)


# -- item 3: generators say which backend runs; --host/--port alone; --num-examples; run.sh's files -------
def test_generators_without_model_say_the_template_teacher_runs_first(tmp_path):
    # seed: ./SelfPlay/run.sh --quick   (files as the seed names them, beside run.sh)
    out = ROOT / "SelfPlay" / "selfplay_output.jsonl"
    written = [out, out.with_name("selfplay_output_invalid.jsonl"), out.with_name("selfplay_output_summary.json")]
    if any(p.exists() for p in written):
        pytest.skip("SelfPlay/selfplay_output*.jsonl exist (a user's run); not overwriting them")
    try:
        run = sh(["./SelfPlay/run.sh", "--quick", "--seed", "3"])
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("backend: the offline template teacher (no --model given")
        valid = [json.loads(line) for line in written[0].read_text().splitlines()]
        invalid = [json.loads(line) for line in written[1].read_text().splitlines()]
        assert all(r["label"] is True for r in valid) and all(r["label"] is False for r in invalid)
        assert len(valid) + len(invalid) >= 1
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    # seed: python Tools/selfplay_generator.py --num-examples 100: the KTO file says why it holds fewer
    run = sh([PY, "Tools/selfplay_generator.py", "--num-examples", "100", "--output", str(tmp_path / "kto.jsonl")])
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("backend: the offline template teacher")
    kto_records = len((tmp_path / "kto.jsonl").read_text().splitlines())
    assert kto_records < 100 and f"KTO: {tmp_path / 'kto.jsonl'} ({kto_records} of the 100 requested:" in run.stdout


def test_host_and_port_alone_ask_lm_studio_for_its_loaded_model(tmp_path):
    # seed: python3 SelfPlay/run_generation.py --host 192.168.1.104 --port 1234 --num-examples 500
    from Evaluator.protocol_doubles import client_answer
    from Evaluator.backends import make_client

    teacher = make_client("template", "teacher", seed=1)
    with OpenAIDouble(client_answer(teacher), models=("qwen3-8b-claudesidian",)) as double:
        port = str(double.port)
        run = sh(
            [
                PY,
                "SelfPlay/run_generation.py",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--num-examples",
                "3",
                "--output",
                str(tmp_path / "o.jsonl"),
            ]
        )
        assert run.returncode == 0, run.stderr
        assert (
            run.stdout.splitlines()[0]
            == f"backend: LM Studio at http://127.0.0.1:{port}/v1, model qwen3-8b-claudesidian"
        )
        assert {r["model"] for r in double.requests} == {"qwen3-8b-claudesidian"}
    with OpenAIDouble(models=("a", "b")) as double:
        port = str(double.port)
        run = sh(
            [
                PY,
                "SelfPlay/run_generation.py",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--output",
                str(tmp_path / "p.jsonl"),
            ]
        )
    assert "has several models: a, b; pass --model NAME" in one_error_line(run)

    class LMStudioDouble(OpenAIDouble):
        """LM Studio with just-in-time loading lists every downloaded model on /v1/models; its native
        /api/v1/models says which one is in memory (a protocol double: no LM Studio runs here)."""

        def _route(self, handler, method, body):
            if method == "GET" and handler.path == "/api/v1/models":
                return self._send(
                    handler,
                    200,
                    {
                        "models": [
                            {
                                "key": m,
                                "type": "llm",
                                "loaded_instances": [{"id": m}] if m == "qwen3-8b-claudesidian" else [],
                            }
                            for m in self.models
                        ]
                    },
                )
            return super()._route(handler, method, body)

    with LMStudioDouble(client_answer(teacher), models=("other-model", "qwen3-8b-claudesidian")) as double:
        run = sh(
            [
                PY,
                "SelfPlay/run_generation.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(double.port),
                "--num-examples",
                "2",
                "--output",
                str(tmp_path / "q.jsonl"),
            ]
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[0].endswith("model qwen3-8b-claudesidian")


# -- item 5: seed 001's Python API -------------------------------------------------------------------------
def test_seed_python_api(tmp_path, monkeypatch):
    from Evaluator.backends import make_client
    from Evaluator.protocol_doubles import client_answer

    teacher = make_client("template", "teacher", seed=2)
    with OpenAIDouble(client_answer(teacher), models=("local-model",)) as double:
        monkeypatch.setenv("LMSTUDIO_HOST", double.url)
        # the seed's README, as written
        from SelfPlay.generator import SelfPlayGenerator
        from Evaluator.lmstudio_client import LMStudioClient
        from Evaluator.config import LMStudioSettings

        settings = LMStudioSettings(model="local-model")
        client = LMStudioClient(settings=settings)
        generator = SelfPlayGenerator(model_client=client)
        results = generator.generate_batch(
            num_examples=8, output_file=str(tmp_path / "output.jsonl"), validate=True, save_invalid=True
        )
        assert len(results["valid"]) + len(results["invalid"]) == results.written > 0
        assert all(r["label"] for r in results["valid"]) and not any(r["label"] for r in results["invalid"])

        tool_example = generator.generate_single_example(generation_type="tool")
        behavioral_example = generator.generate_single_example(generation_type="behavioral")
        assert tool_example.task.kind == "tool" and behavioral_example.task.kind == "behavioral"
        verdicts = [
            generator.validate_example(generator.generate_single_example(generation_type="tool", index=i))
            for i in range(12)
        ]
    assert client.model == "local-model" and double.requests[0]["model"] == "local-model"
    failing = [report for is_valid, report in verdicts if not is_valid]
    assert failing, "the teacher makes mistakes at its default temperature"
    for issue in failing[0].issues:
        assert issue.level in ("error", "warning") and issue.message
    assert any(issue.level == "error" for issue in failing[0].issues)

    from SelfPlay.id_utils import generate_ids, validate_session_id

    session_id, workspace_id = generate_ids()
    assert validate_session_id(session_id) and workspace_id.startswith("ws_") and not validate_session_id(workspace_id)


def test_selfplay_execute_mcp_against_the_vault_mcp_server(tmp_path):
    # seed: python Tools/selfplay_generator.py ... --execute-mcp (the guide's MCP section: calls run on a real server)
    pytest.importorskip("mcp")
    from Tools.vault.sandbox import DEFAULT_TEMPLATE, snapshot

    vault = tmp_path / "vault"
    shutil.copytree(DEFAULT_TEMPLATE, vault)
    before = snapshot(vault)
    run = sh(
        [
            PY,
            "Tools/selfplay_generator.py",
            "--num-examples",
            "30",
            "--execute-mcp",
            "--mcp-command",
            f"{PY} {ROOT / 'Tools' / 'vault_mcp_server.py'} --vault {vault}",
            "--output",
            str(tmp_path / "o.jsonl"),
        ]
    )
    assert run.returncode == 0, run.stderr
    assert snapshot(vault) != before  # the answers' calls changed the server's vault, not a sandbox copy
    run = sh(
        [
            PY,
            "Tools/selfplay_generator.py",
            "--execute-mcp",
            "--mcp-command",
            f"{PY} -c 'import sys; sys.exit(3)'",
            "--output",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert "could not connect to MCP server" in one_error_line(run)


# -- item 4: --wandb without a key, .env from any folder, uploads and Hub look-ups with no network ---------
def test_wandb_without_a_key_goes_offline_before_anything_loads(tiny_model_dir, tiny_sft_file, tmp_path):
    # seed: ./train.sh --model-size 7b --wandb --wandb-project my-project   (no WANDB_API_KEY anywhere)
    pytest.importorskip("wandb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    run = subprocess.run(
        [
            "./train.sh",
            "--model-size",
            "7b",
            "--model-name",
            tiny_model_dir,
            "--local-file",
            tiny_sft_file,
            "--wandb",
            "--wandb-project",
            "my-project",
            "--dry-run",
        ],
        cwd=ROOT / "Trainers" / "rtx3090_sft",
        capture_output=True,
        text=True,
        timeout=180,
        env={**env, "PYTHON": PY, "HOME": str(tmp_path)},
    )  # no ~/.netrc from `wandb login`
    assert run.returncode == 0, run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith(
        "wandb: no API key (WANDB_API_KEY in the environment or .env, or `wandb login`); logging offline"
    )


def test_dotenv_is_found_at_the_repository_root_from_any_folder(tmp_path):
    dotenv = ROOT / ".env"
    if dotenv.exists():
        pytest.skip("a .env exists at the repository root; not touching it")
    dotenv.write_text("TOOLKIT_DOTENV_PROBE=from-root\n")
    try:
        run = subprocess.run(
            [
                PY,
                "-c",
                "import os; from Evaluator.backends import load_dotenv_once; load_dotenv_once(); "
                "print(os.environ.get('TOOLKIT_DOTENV_PROBE'))",
            ],
            cwd=ROOT / "Trainers" / "rtx3090_kto",
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        dotenv.unlink()
    assert run.stdout.strip() == "from-root", run.stderr


def test_upload_with_no_network_is_one_line_within_seconds(tiny_sft_run, tmp_path):
    # seed (from Trainers/rtx3090_kto): python src/upload_to_hf.py ./kto_output_rtx3090/final_model username/model-name
    #   --save-method merged_16bit --create-gguf        ... and the same with --dry-run; here the Hub cannot be reached
    model = tmp_path / "final_model"
    shutil.copytree(tiny_sft_run.final_dir, model)
    config = json.loads((model / "adapter_config.json").read_text())
    (model / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": "someone/not-cached-7b"})
    )
    offline = {
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "HF_HUB_OFFLINE": "",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": "hf_FAKEtoken_do_not_print_4242",
        # a 7b merge needs about 42 GB: pin the free space so the space check passes on any disk
        "TOOLKIT_EXPORT_FREE_BYTES": str(10**15),
    }
    for extra in ([], ["--dry-run"]):
        started = time.time()
        run = sh(
            [
                PY,
                "src/upload_to_hf.py",
                str(model),
                "username/model-name",
                "--save-method",
                "merged_16bit",
                "--create-gguf",
                "--outdir",
                str(tmp_path / "up"),
                *extra,
            ],
            cwd=ROOT / "Trainers" / "rtx3090_kto",
            env=offline,
        )
        assert (
            "someone/not-cached-7b is not in the local Hugging Face cache and the Hub is unreachable"
            in one_error_line(run)
        )
        assert time.time() - started < 30
    # a LoRA upload needs no base model: it is the upload itself that cannot reach the Hub
    run = sh(
        [
            PY,
            "src/upload_to_hf.py",
            str(tiny_sft_run.final_dir),
            "username/model-name",
            "--save-method",
            "lora",
            "--outdir",
            str(tmp_path / "lora"),
            "--no-progress",
        ],
        cwd=ROOT / "Trainers" / "rtx3090_kto",
        env=offline,
    )
    assert "cannot upload to username/model-name: the Hub is unreachable" in one_error_line(run)
    assert "hf_FAKEtoken" not in run.stdout + run.stderr


# -- item 6: set-up and the doctor ---------------------------------------------------------------------------
def test_scripts_without_the_environment_say_how_to_install(tmp_path):
    # seed: cd Trainers/rtx3090_kto && ./train.sh --model-size 7b   on a machine without the project's .venv
    bare = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    for script, cwd in (("./train.sh", "Trainers/rtx3090_kto"), ("./SelfPlay/run.sh", ".")):
        run = sh([script, "--help"], cwd=ROOT / cwd, env={"PYTHON": str(bare / "bin" / "python")})
        assert run.returncode == 2 and "set up the project's environment: bash" in one_error_line(run)
        assert "ModuleNotFoundError" not in run.stderr


def test_setup_sh_flags():
    # seed: bash setup.sh --quick / bash setup.sh --with-flash-attn
    run = sh(["bash", "Trainers/rtx3090_kto/setup.sh", "--help"])
    assert run.returncode == 0 and "--quick" in run.stdout and "--with-flash-attn" in run.stdout
    assert "unknown option --fast" in one_error_line(sh(["bash", "Trainers/rtx3090_kto/setup.sh", "--fast"]))
    if not shutil.which("nvidia-smi"):
        assert "--with-flash-attn needs a CUDA GPU" in one_error_line(
            sh(["bash", "Trainers/rtx3090_sft/setup.sh", "--with-flash-attn"])
        )


def test_doctor_reports_servers_and_tokens_without_their_values():
    secret = "hf_FAKEtoken_do_not_print_4242"
    with OpenAIDouble(models=("a", "b")) as lmstudio:
        run = sh(
            [PY, "-m", "Trainers.doctor"],
            env={
                "LMSTUDIO_HOST": lmstudio.url,
                "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
                "HF_TOKEN": secret,
                "WANDB_API_KEY": "",
                "HF_HUB_OFFLINE": "1",
            },
        )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert f"lmstudio    {lmstudio.url}/v1: answering, 2 model(s)" in out and "ollama" in out and "not answering" in out
    assert "HF_TOKEN / HF_API_KEY: HF_TOKEN set (environment)" in out and secret not in out
    assert "torch " in out and "bitsandbytes" in out and "unsloth" in out and "GB free" in out
    assert "Hugging Face Hub offline (HF_HUB_OFFLINE is set)" in out


# -- item 7: make demo leaves the tree clean; the daemon log lines the seed greps for ----------------------
def test_make_demo_writes_into_an_ignored_folder_and_leaves_the_docs_alone():
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    recipe = [line for line in sh(["make", "-n", "demo"]).stdout.splitlines() if "closed_loop.py" in line]
    assert recipe and "--out demo_output" in recipe[0] and "--benchmarks-md" not in recipe[0]
    explicit = sh(["make", "-n", "demo", "DEMO_FLAGS=--benchmarks-md docs/benchmarks.md"]).stdout
    assert "--benchmarks-md docs/benchmarks.md" in explicit
    ignored = sh(["git", "check-ignore", "demo_output/report.md", "outputs/closed_loop/report.md"])
    assert ignored.stdout.split() == ["demo_output/report.md", "outputs/closed_loop/report.md"]


def test_daemon_log_names_self_correction_jobs(tmp_path, tiny_model_dir):
    # seed: tail -f logs/daemon_$(date +%Y%m%d).log | grep "Self-Correction"
    queue = tmp_path / "queue" / "normal"
    queue.mkdir(parents=True)
    (queue / "self_correction_step500_20251121_143022.jsonl").write_text("not json\n")
    run = sh(
        [
            PY,
            "-m",
            "Trainers.daemon",
            "--base-model",
            tiny_model_dir,
            "--method",
            "sft",
            "--once",
            "--root",
            str(tmp_path),
        ]
    )
    assert run.returncode == 1  # the job fails on its data; the log still says what it was
    grep = subprocess.run(
        f'grep "Self-Correction" {tmp_path}/logs/daemon_$(date +%Y%m%d).log',
        shell=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Self-Correction: self_correction_step500_20251121_143022.jsonl: training (sft)" in grep.stdout


# -- item 8: the Colab notebooks, executed on CPU with the tiny model -----------------------------------------
NOTEBOOKS = ROOT / "Trainers" / "notebooks"


def test_notebooks_are_what_the_builder_writes():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import build
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for name, nb in build.build().items():
        assert (NOTEBOOKS / name).read_text(encoding="utf-8") == build.render(nb), (
            f"run python {NOTEBOOKS / 'build.py'}"
        )


@pytest.mark.parametrize(
    "name,method",
    [("sft_colab_beginner.ipynb", "sft"), ("sft_colab_tool_calling.ipynb", "sft"), ("kto_colab_notebook.ipynb", "kto")],
)
def test_notebook_runs_on_cpu_with_the_tiny_model(name, method, tiny_model_dir, tmp_path, monkeypatch):
    # seed: open Trainers/notebooks/sft_colab_beginner.ipynb in Colab, Runtime > Run all
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    labels = [True, False] * 2 if method == "kto" else [None] * 4
    records = [tool_record(f"Projects/P{i}", f"Create a folder for P{i}", label) for i, label in enumerate(labels)]
    overrides = {
        "MODEL_NAME": tiny_model_dir,
        "DATASET": write_jsonl(tmp_path / "data.jsonl", records),
        "MAX_STEPS": 2,
        "BATCH_SIZE": 2,
        "OUTPUT_DIR": str(tmp_path / "runs"),
        "EVAL_CASES": 1,
        "EVAL_MAX_TOKENS": 4,
        "QUANTIZATIONS": "none",
    }
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    index = next(i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", []))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in overrides.items())))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    text = "".join(o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))
    assert "adapter, tokenizer and lineage in" in text and "validator exit code: 0" in text
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if (p / "final_model" / "lineage.json").is_file()]
    assert (run_dir / "eval_report.json").is_file()
    assert "set HF_REPO" in text
    if name == "sft_colab_tool_calling.ipynb":
        assert list((run_dir / "gguf").glob("*.gguf")) and (run_dir / "gguf" / "Modelfile").is_file()


def test_pipeline_without_files_uses_the_shipped_datasets(tiny_model_dir, tmp_path):
    # seed: cd Trainers && ./train_sft_to_kto_pipeline.sh --wandb --wandb-project my-project
    pytest.importorskip("wandb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    run = subprocess.run(
        [
            "./train_sft_to_kto_pipeline.sh",
            "--wandb",
            "--wandb-project",
            "my-project",
            "--model-name",
            tiny_model_dir,
            "--dry-run",
        ],
        cwd=ROOT / "Trainers",
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "PYTHON": PY, "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    assert "sft dataset: none given; using the shipped Datasets/teacher/teacher_sft.jsonl" in run.stdout
    assert "kto dataset: none given; using the shipped Datasets/teacher/teacher_kto.jsonl" in run.stdout
    assert "wandb: no API key" in run.stdout and "dry run: SFT would run in" in run.stdout
